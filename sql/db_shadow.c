/* db_shadow.c -- paired observations of shadow experiments (see
 * db_shadow.h). */
#include "sql/db_shadow.h"

#include <stdio.h>

#include "sql/db.h"
#include "sql/db_int.h"

/* SELECT fn($1::bigint, $2::jsonb)::text: the two batch writers. */
static ab_status
batch_call(struct db *db, const char *what, const char *sql,
           int64_t experiment_id, const char *batch, char **out)
{
    struct db_i64 id;
    const char *p[2] = {db_i64(&id, experiment_id), batch};
    return db_text(db, what, sql, 2, p, out);
}

ab_status
db_shadow_pairs_add(struct db *db, int64_t experiment_id, const char *pairs,
                    char **out)
{
    return batch_call(db, "shadow pairs add",
                      "SELECT arbiter.shadow_pairs_add($1::bigint, $2::jsonb)"
                      "::text",
                      experiment_id, pairs, out);
}

ab_status
db_shadow_labels_set(struct db *db, int64_t experiment_id, const char *labels,
                     char **out)
{
    return batch_call(
        db, "shadow labels set",
        "SELECT arbiter.shadow_labels_set($1::bigint, $2::jsonb)"
        "::text",
        experiment_id, labels, out);
}

ab_status
db_shadow_summary(struct db *db, int64_t experiment_id,
                  double score_tolerance, int sample, char **out)
{
    struct db_i64 id, n;
    char tol[40];
    snprintf(tol, sizeof(tol), "%.17g", score_tolerance);
    const char *p[3] = {db_i64(&id, experiment_id), tol, db_i64(&n, sample)};
    return db_text(db, "shadow summary",
                   "SELECT arbiter.shadow_summary($1::bigint, $2::float8,"
                   " $3::integer)::text",
                   3, p, out);
}
