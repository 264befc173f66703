/* db_shadow.c -- paired observations of shadow experiments (see
 * db_shadow.h). */
#include "sql/db_shadow.h"

#include <stdio.h>

#include "sql/db.h"

ab_status
db_shadow_pairs_add(struct db *db, int64_t experiment_id, const char *pairs,
                    char **out)
{
    char id[32];
    snprintf(id, sizeof(id), "%lld", (long long)experiment_id);
    const char *p[2] = {id, pairs};
    return db_text(db, "shadow pairs add",
                   "SELECT arbiter.shadow_pairs_add($1::bigint, $2::jsonb)"
                   "::text",
                   2, p, out);
}

ab_status
db_shadow_labels_set(struct db *db, int64_t experiment_id, const char *labels,
                     char **out)
{
    char id[32];
    snprintf(id, sizeof(id), "%lld", (long long)experiment_id);
    const char *p[2] = {id, labels};
    return db_text(db, "shadow labels set",
                   "SELECT arbiter.shadow_labels_set($1::bigint, $2::jsonb)"
                   "::text",
                   2, p, out);
}

ab_status
db_shadow_summary(struct db *db, int64_t experiment_id,
                  double score_tolerance, int sample, char **out)
{
    char id[32], tol[40], n[16];
    snprintf(id, sizeof(id), "%lld", (long long)experiment_id);
    snprintf(tol, sizeof(tol), "%.17g", score_tolerance);
    snprintf(n, sizeof(n), "%d", sample);
    const char *p[3] = {id, tol, n};
    return db_text(db, "shadow summary",
                   "SELECT arbiter.shadow_summary($1::bigint, $2::float8,"
                   " $3::integer)::text",
                   3, p, out);
}
