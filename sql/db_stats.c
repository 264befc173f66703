/* db_stats.c -- arm statistics for results and decisions (db_stats.h).
 * Each query has PostgreSQL build the JSON document; db_text() runs it. */
#include "sql/db_stats.h"

#include <stdio.h>

#include "sql/db.h"

ab_status
db_arm_stats_json(struct db *db, const char *key, char **out)
{
    const char *params[1] = {key};
    return db_text(
        db, "arm stats",
        "SELECT coalesce(json_agg(json_build_object("
        " 'metric', metric, 'kind', kind, 'direction', direction,"
        " 'role', role, 'arm', arm, 'n', n, 'exposed_units', exposed_units,"
        " 'units_with_events', units_with_events, 'sum', sum,"
        " 'sum_sq', sum_sq, 'den_sum', den_sum, 'den_sum_sq', den_sum_sq,"
        " 'cross_sum', cross_sum, 'pre_sum', pre_sum,"
        " 'pre_sum_sq', pre_sum_sq, 'pre_cross_sum', pre_cross_sum)"
        " ORDER BY metric, arm), '[]')::text"
        " FROM arbiter.arm_stats WHERE experiment = $1",
        1, params, out);
}

ab_status
db_srm_counts_json(struct db *db, int64_t experiment_id,
                   int64_t weights_version, char **out)
{
    char id[32], wv[32];
    snprintf(id, sizeof(id), "%lld", (long long)experiment_id);
    snprintf(wv, sizeof(wv), "%lld", (long long)weights_version);
    const char *params[2] = {id, wv};
    return db_text(
        db, "srm counts",
        "SELECT coalesce(json_object_agg(arm, units), '{}')::text FROM ("
        " SELECT arm, count(*) AS units FROM arbiter.exposure_units"
        " WHERE experiment_id = $1::bigint AND weights_version = $2::bigint"
        " GROUP BY arm) t",
        2, params, out);
}
