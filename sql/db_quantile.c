/* db_quantile.c -- the quantile sketches (see db_quantile.h). */
#include "sql/db_quantile.h"

#include <stdio.h>

#include "sql/db.h"

ab_status
db_quantile_buckets_json(struct db *db, int64_t experiment_id, char **out)
{
    char id[32];
    snprintf(id, sizeof(id), "%lld", (long long)experiment_id);
    const char *params[1] = {id};
    return db_text(
        db, "quantile buckets",
        "SELECT coalesce(json_object_agg(metric, arms), '{}')::text FROM ("
        " SELECT metric, json_object_agg(arm, bins) AS arms FROM ("
        "  SELECT metric, arm, json_agg(json_build_array(bucket, count)"
        "   ORDER BY bucket) AS bins FROM arbiter.quantile_buckets"
        "  WHERE experiment_id = $1::bigint GROUP BY metric, arm) a"
        " GROUP BY metric) m",
        1, params, out);
}
