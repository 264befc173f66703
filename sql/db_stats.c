/* db_stats.c -- arm statistics for results and decisions (db_stats.h):
 * typed rows read through db_run(); the SRM counts as a JSON text. */
#include "sql/db_stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/db.h"
#include "sql/db_int.h"

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

ab_status
db_moved_units_json(struct db *db, int64_t experiment_id, char **out)
{
    char id[32];
    snprintf(id, sizeof(id), "%lld", (long long)experiment_id);
    const char *params[1] = {id};
    return db_text(
        db, "moved units",
        "SELECT coalesce(json_object_agg(a.arm, coalesce(p.moved_units, 0)"
        " ORDER BY a.arm), '{}')::text FROM arbiter.experiment_arms a"
        " LEFT JOIN arbiter.arm_population p"
        " ON (p.experiment_id, p.arm) = (a.experiment_id, a.arm)"
        " WHERE a.experiment_id = $1::bigint",
        1, params, out);
}

ab_status
db_arm_stats_read(struct db *db, const char *key, struct db_arm_stat **out,
                  size_t *n_out)
{
    const char *params[1] = {key};
    PGresult *res = db_run(
        db, "arm stats",
        "SELECT metric, arm, n, exposed_units, units_with_events, sum,"
        " sum_sq, den_sum, den_sum_sq, cross_sum, pre_sum, pre_sum_sq,"
        " pre_cross_sum FROM arbiter.arm_stats WHERE experiment = $1"
        " ORDER BY metric, arm",
        1, params, PGRES_TUPLES_OK, DB_RETRY);
    if (!db_res_ok(res, PGRES_TUPLES_OK)) {
        PQclear(res);
        return AB_EDB;
    }
    size_t n = (size_t)PQntuples(res);
    struct db_arm_stat *rows = n ? ab_xcalloc(n, sizeof(*rows)) : NULL;
    for (size_t i = 0; i < n; i++) {
        struct db_arm_stat *r = &rows[i];
        int row = (int)i;
        r->metric = db_get_str(res, row, 0);
        r->arm = db_get_str(res, row, 1);
        double *f[] = {&r->n,          &r->exposed_units, &r->units_with_events,
                       &r->sum,        &r->sum_sq,        &r->den_sum,
                       &r->den_sum_sq, &r->cross_sum,     &r->pre_sum,
                       &r->pre_sum_sq, &r->pre_cross_sum};
        for (size_t k = 0; k < AB_ARRAY_LEN(f); k++)
            *f[k] = db_get_f64(res, row, (int)k + 2);
    }
    PQclear(res);
    *out = rows;
    *n_out = n;
    return AB_OK;
}

void
db_arm_stats_free(struct db_arm_stat *rows, size_t n)
{
    for (size_t i = 0; rows != NULL && i < n; i++) {
        free(rows[i].metric);
        free(rows[i].arm);
    }
    free(rows);
}

const struct db_arm_stat *
db_arm_stat_find(const struct db_arm_stat *rows, size_t n, const char *metric,
                 const char *arm)
{
    for (size_t i = 0; i < n; i++)
        if (rows[i].metric && rows[i].arm &&
            strcmp(rows[i].metric, metric) == 0 &&
            strcmp(rows[i].arm, arm) == 0)
            return &rows[i];
    return NULL;
}

ab_status
db_units_in_several_arms(struct db *db, int64_t experiment_id, int64_t *out)
{
    char id[32];
    snprintf(id, sizeof(id), "%lld", (long long)experiment_id);
    const char *params[1] = {id};
    PGresult *res = db_run(
        db, "units in several arms",
        /* kept by the fold (015_attribution.sql): one row */
        "SELECT coalesce((SELECT a.several FROM arbiter.attr_units a"
        " WHERE a.experiment_id = $1::bigint), 0)",
        1, params, PGRES_TUPLES_OK, DB_RETRY);
    ab_status rc = AB_EDB;
    if (db_res_ok(res, PGRES_TUPLES_OK) && PQntuples(res) == 1) {
        *out = db_get_i64(res, 0, 0, 0);
        rc = AB_OK;
    }
    PQclear(res);
    return rc;
}
