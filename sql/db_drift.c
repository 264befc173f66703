/* db_drift.c -- drift watch state (db_drift.h). PostgreSQL builds every
 * JSON answer; db_text() runs it. */
#include "sql/db_drift.h"

#include <stdio.h>
#include <stdlib.h>

#include "sql/db.h"
#include "sql/db_int.h"

ab_status
db_drift_reference_json(struct db *db, int64_t experiment_id,
                        const char *metric, int64_t reference_s,
                        int64_t min_values, int64_t cap, char **out)
{
    struct db_i64 id, ref, min, c;
    const char *params[5] = {db_i64(&id, experiment_id), metric,
                             db_i64(&ref, reference_s),
                             db_i64(&min, min_values), db_i64(&c, cap)};
    return db_text(db, "drift reference",
                   "SELECT arbiter.drift_reference($1::bigint, $2,"
                   " $3::float8, $4::int, $5::int)::text",
                   5, params, out);
}

ab_status
db_drift_current_json(struct db *db, int64_t experiment_id,
                      const char *metric, int64_t window_s, int64_t cap,
                      char **out)
{
    struct db_i64 id, w, c;
    const char *params[4] = {db_i64(&id, experiment_id), metric,
                             db_i64(&w, window_s), db_i64(&c, cap)};
    return db_text(db, "drift current",
                   "SELECT arbiter.drift_current($1::bigint, $2, $3::float8,"
                   " $4::int)::text",
                   4, params, out);
}

ab_status
db_drift_save(struct db *db, int64_t experiment_id, const char *metric,
              int64_t looks, int64_t last_seen_ms, bool drift,
              const char *result)
{
    struct db_i64 id, lk, seen;
    const char *params[6] = {db_i64(&id, experiment_id),
                             metric,
                             db_i64(&lk, looks),
                             db_i64(&seen, last_seen_ms),
                             drift ? "true" : "false",
                             result};
    char *text = NULL;
    ab_status rc = db_text(
        db, "drift save",
        "WITH u AS (UPDATE arbiter.drift_state SET looks = $3::bigint,"
        " last_seen = to_timestamp($4::bigint / 1000.0),"
        " flagged_at = CASE WHEN NOT flagged AND $5::boolean THEN now()"
        "              ELSE flagged_at END,"
        " flagged = flagged OR $5::boolean, result = $6::jsonb,"
        " updated_at = now()"
        " WHERE experiment_id = $1::bigint AND metric = $2 RETURNING 1)"
        " SELECT count(*)::text FROM u",
        6, params, &text);
    free(text);
    return rc;
}

ab_status
db_drift_results_json(struct db *db, const char *key, char **out)
{
    const char *params[1] = {key};
    return db_text(
        db, "drift results",
        "SELECT coalesce(json_agg(json_build_object("
        " 'metric', metric, 'looks', looks, 'flagged', flagged,"
        " 'flagged_at', flagged_at, 'psi', psi, 'ks_d', ks_d, 'ks_p', ks_p,"
        " 'alpha_look', alpha_look, 'drift_at_last_look', drift_at_last_look,"
        " 'reference_values', reference_values,"
        " 'current_values', current_values,"
        " 'reference_from', reference_from, 'reference_to', reference_to,"
        " 'last_seen', last_seen, 'updated_at', updated_at)"
        " ORDER BY metric), '[]')::text"
        " FROM arbiter.drift WHERE experiment = $1",
        1, params, out);
}
