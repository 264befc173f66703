/* db_stats.c -- arm statistics for results and decisions (db_stats.h). */
#include <libpq-fe.h> /* before db.h: it declares db_conn() */

#include "sql/db_stats.h"

#include <stdio.h>
#include <stdlib.h>

#include "sql/db.h"

ab_status
db_arm_stats_json(struct db *db, const char *key, char **out)
{
    const char *params[1] = {key};
    PGconn *conn = db_conn(db);
    if (conn == NULL)
        return AB_EDB;
    PGresult *res = PQexecParams(
        conn,
        "SELECT coalesce(json_agg(json_build_object("
        " 'metric', metric, 'kind', kind, 'direction', direction,"
        " 'role', role, 'arm', arm, 'n', n, 'exposed_units', exposed_units,"
        " 'units_with_events', units_with_events, 'sum', sum,"
        " 'sum_sq', sum_sq, 'den_sum', den_sum, 'den_sum_sq', den_sum_sq,"
        " 'cross_sum', cross_sum, 'pre_sum', pre_sum,"
        " 'pre_sum_sq', pre_sum_sq, 'pre_cross_sum', pre_cross_sum)"
        " ORDER BY metric, arm), '[]')::text"
        " FROM arbiter.arm_stats WHERE experiment = $1",
        1, NULL, params, NULL, NULL, 0);
    ab_status rc = AB_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_report(db, "arm stats", res);
        rc = AB_EDB;
    } else {
        *out = ab_xstrdup(PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    return rc;
}

ab_status
db_srm_counts_json(struct db *db, int64_t experiment_id,
                   int64_t weights_version, char **out)
{
    char id[32], wv[32];
    snprintf(id, sizeof(id), "%lld", (long long)experiment_id);
    snprintf(wv, sizeof(wv), "%lld", (long long)weights_version);
    const char *params[2] = {id, wv};
    PGconn *conn = db_conn(db);
    if (conn == NULL)
        return AB_EDB;
    PGresult *res = PQexecParams(
        conn,
        "SELECT coalesce(json_object_agg(arm, units), '{}')::text FROM ("
        " SELECT arm, count(*) AS units FROM arbiter.exposure_units"
        " WHERE experiment_id = $1::bigint AND weights_version = $2::bigint"
        " GROUP BY arm) t",
        2, NULL, params, NULL, NULL, 0);
    ab_status rc = AB_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_report(db, "srm counts", res);
        rc = AB_EDB;
    } else {
        *out = ab_xstrdup(PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    return rc;
}
