/* db_fold.c -- the fold and its freshness (see db_fold.h). */
#include "sql/db_fold.h"

#include <stdio.h>
#include <stdlib.h>

#include "sql/db_int.h"
#include "sql/pgarray.h"

ab_status
db_fold_run(struct db *db, int max_events, struct db_fold_result *out)
{
    PGconn *conn = db_conn(db);
    if (conn == NULL)
        return AB_EDB;
    char arg[16];
    snprintf(arg, sizeof(arg), "%d", max_events);
    const char *params[1] = {arg};
    PGresult *res = PQexecParams(conn,
                                 "SELECT folded, watermark, pending"
                                 " FROM arbiter.fold($1::int) f"
                                 /* quantile sketches, same transaction and
                                  * range (013_quantiles.sql) */
                                 " CROSS JOIN LATERAL"
                                 " arbiter.fold_quantiles(f.watermark)",
                                 1, NULL, params, NULL, NULL, 0);
    ab_status rc = AB_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        db_report(db, "fold", res);
        rc = AB_EDB;
    } else {
        out->folded = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        out->watermark = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        out->pending = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    }
    PQclear(res);
    return rc;
}

ab_status
db_fold_status(struct db *db, struct db_fold_status *out)
{
    PGconn *conn = db_conn(db);
    if (conn == NULL)
        return AB_EDB;
    PGresult *res = PQexec(conn,
                           "SELECT watermark,"
                           " (extract(epoch FROM folded_at) * 1000)::bigint,"
                           " pending_events, lag_seconds, events_total"
                           " FROM arbiter.fold_status()");
    ab_status rc = AB_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        db_report(db, "fold status", res);
        rc = AB_EDB;
    } else {
        out->watermark = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        out->folded_at_ms = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        out->pending_events = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
        out->lag_seconds = strtod(PQgetvalue(res, 0, 3), NULL);
        out->events_total = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
    }
    PQclear(res);
    return rc;
}

/* ---- the leader's in-memory fold ----------------------------------------- */

/* One statement inside the open transaction; false (reported) unless
 * its status is 'want'. The result is the caller's when *out is given. */
static bool
tx_step(struct db *db, const char *what, const char *sql, int n,
        const char *const *params, int want, PGresult **out)
{
    PGresult *res = db_run(db, what, sql, n, params, want, DB_ONCE);
    bool ok = db_res_ok(res, want);
    if (ok && out != NULL)
        *out = res;
    else
        PQclear(res);
    return ok;
}

void
db_fold_abort(struct db *db)
{
    db_rollback(db);
}

ab_status
db_fold_begin(struct db *db, int max_events, struct db_fold_range *out)
{
    if (db_begin(db) != AB_OK)
        return AB_EDB;
    char arg[16];
    snprintf(arg, sizeof(arg), "%d", max_events);
    const char *params[1] = {arg};
    PGresult *res = NULL;
    if (!tx_step(db, "fold begin",
                 "SELECT w0, w1, unit_w, events, more, epoch"
                 " FROM arbiter.fold_begin($1::int)",
                 1, params, PGRES_TUPLES_OK, &res) ||
        PQntuples(res) != 1) {
        PQclear(res);
        db_rollback(db);
        return AB_EDB;
    }
    out->w0 = db_get_i64(res, 0, 0, 0);
    out->w1 = db_get_i64(res, 0, 1, 0);
    out->unit_w = db_get_i64(res, 0, 2, 0);
    out->events = db_get_i64(res, 0, 3, 0);
    out->more = PQgetvalue(res, 0, 4)[0] == 't';
    out->epoch = db_get_i64(res, 0, 5, 0);
    PQclear(res);
    return AB_OK;
}

/* Rows (experiment_id, metric, unit, arm, n, sum, first_us, last_us) to
 * fn. */
static void
each_unit(PGresult *res, db_unit_fn *fn, void *arg)
{
    for (int i = 0; i < PQntuples(res); i++) {
        struct db_unit_value v = {
            .experiment_id = db_get_i64(res, i, 0, 0),
            .metric = PQgetvalue(res, i, 1),
            .unit = PQgetvalue(res, i, 2),
            .arm = PQgetvalue(res, i, 3),
            .n = db_get_i64(res, i, 4, 0),
            .sum = db_get_f64(res, i, 5),
            .first_us = db_get_i64(res, i, 6, 0),
            .last_us = db_get_i64(res, i, 7, 0),
        };
        if (PQnfields(res) > 9) {
            v.member0 = PQgetvalue(res, i, 8)[0] == 't';
            v.member1 = PQgetvalue(res, i, 9)[0] == 't';
        }
        fn(arg, &v);
    }
}

#define US_OF(col)                                                            \
    "(extract(epoch FROM " col ") * 1000000)::bigint"

ab_status
db_fold_delta(struct db *db, db_unit_fn *fn, void *arg)
{
    PGresult *res = NULL;
    if (!tx_step(db, "fold delta",
                 "SELECT d.experiment_id, d.metric, d.unit, d.arm, d.n, d.s, "
                 US_OF("d.first_ts") ", " US_OF("d.last_ts") ","
                 " coalesce(f.member0, false), coalesce(f.member1, false)"
                 " FROM pg_temp.ingest_delta d"
                 " LEFT JOIN pg_temp.fold_members f"
                 " ON (f.experiment_id, f.unit, f.arm)"
                 " = (d.experiment_id, d.unit, d.arm)",
                 0, NULL, PGRES_TUPLES_OK, &res))
        return AB_EDB;
    each_unit(res, fn, arg);
    PQclear(res);
    return AB_OK;
}

ab_status
db_fold_joins(struct db *db, db_unit_fn *fn, void *arg)
{
    PGresult *res = NULL;
    if (!tx_step(db, "fold joins",
                 "SELECT experiment_id, unit, arm FROM pg_temp.fold_members"
                 " WHERE by_exposure",
                 0, NULL, PGRES_TUPLES_OK, &res))
        return AB_EDB;
    for (int i = 0; i < PQntuples(res); i++) {
        struct db_unit_value v = {
            .experiment_id = db_get_i64(res, i, 0, 0),
            .metric = "",
            .unit = PQgetvalue(res, i, 1),
            .arm = PQgetvalue(res, i, 2),
            .member0 = false,
            .member1 = true,
        };
        fn(arg, &v);
    }
    PQclear(res);
    return AB_OK;
}

ab_status
db_fold_defs(struct db *db, db_def_fn *fn, void *arg)
{
    PGresult *res = NULL;
    if (!tx_step(db, "fold metric definitions",
                 "SELECT m.experiment_id, m.name, m.kind, m.covariate"
                 " FROM arbiter.metric_defs m WHERE m.experiment_id IN"
                 " (SELECT DISTINCT experiment_id FROM pg_temp.fold_members)",
                 0, NULL, PGRES_TUPLES_OK, &res))
        return AB_EDB;
    for (int i = 0; i < PQntuples(res); i++) {
        struct db_metric_def d = {
            .experiment_id = db_get_i64(res, i, 0, 0),
            .name = PQgetvalue(res, i, 1),
            .kind = PQgetvalue(res, i, 2),
            .covariate =
                PQgetisnull(res, i, 3) ? NULL : PQgetvalue(res, i, 3),
        };
        fn(arg, &d);
    }
    PQclear(res);
    return AB_OK;
}

/* The four key arrays of rows[0..n). */
static void
key_arrays(const struct db_unit_value *rows, size_t n, struct pgarray a[4])
{
    for (int k = 0; k < 4; k++)
        pgarray_begin(&a[k]);
    for (size_t i = 0; i < n; i++) {
        pgarray_int(&a[0], rows[i].experiment_id);
        pgarray_text(&a[1], rows[i].metric);
        pgarray_text(&a[2], rows[i].unit);
        pgarray_text(&a[3], rows[i].arm);
    }
}

static void
arrays_free(struct pgarray *a, size_t n)
{
    for (size_t k = 0; k < n; k++)
        free(a[k].p);
}

ab_status
db_fold_load(struct db *db, const struct db_unit_value *keys, size_t n,
             db_unit_fn *fn, void *arg)
{
    if (n == 0)
        return AB_OK;
    struct pgarray a[4];
    key_arrays(keys, n, a);
    const char *params[4];
    for (int k = 0; k < 4; k++)
        params[k] = pgarray_end(&a[k]);
    PGresult *res = NULL;
    bool ok = tx_step(
        db, "fold load",
        "SELECT u.experiment_id, u.metric, u.unit, u.arm, u.n, u.value_sum, "
        US_OF("u.first_ts") ", " US_OF("u.last_ts")
        " FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[])"
        " AS k(e, m, u, a) JOIN arbiter.unit_metrics u"
        " ON (u.experiment_id, u.metric, u.unit, u.arm) = (k.e, k.m, k.u, k.a)",
        4, params, PGRES_TUPLES_OK, &res);
    arrays_free(a, 4);
    if (!ok)
        return AB_EDB;
    each_unit(res, fn, arg);
    PQclear(res);
    return AB_OK;
}

/* The 12 arrays of arbiter.fold_finish's rows. */
static void
arm_arrays(const struct db_arm_delta *r, size_t n, struct pgarray a[12])
{
    for (int k = 0; k < 12; k++)
        pgarray_begin(&a[k]);
    for (size_t i = 0; i < n; i++) {
        pgarray_int(&a[0], r[i].experiment_id);
        pgarray_text(&a[1], r[i].arm);
        pgarray_text(&a[2], r[i].metric);
        pgarray_int(&a[3], r[i].units);
        const double v[8] = {r[i].sum,        r[i].sum_sq,    r[i].den_sum,
                             r[i].den_sum_sq, r[i].cross_sum, r[i].pre_sum,
                             r[i].pre_sum_sq, r[i].pre_cross_sum};
        for (int k = 0; k < 8; k++)
            pgarray_double(&a[4 + k], v[k]);
    }
}

ab_status
db_fold_finish(struct db *db, int64_t w1, int64_t events,
               const struct db_arm_delta *rows, size_t n)
{
    struct pgarray a[12];
    arm_arrays(rows, n, a);
    char w[24], e[24];
    snprintf(w, sizeof(w), "%lld", (long long)w1);
    snprintf(e, sizeof(e), "%lld", (long long)events);
    const char *params[14] = {w, e};
    for (int k = 0; k < 12; k++)
        params[2 + k] = pgarray_end(&a[k]);
    bool ok = tx_step(db, "fold finish",
                      "SELECT arbiter.fold_finish($1::bigint, $2::bigint,"
                      " $3::bigint[], $4::text[], $5::text[], $6::bigint[],"
                      " $7::float8[], $8::float8[], $9::float8[],"
                      " $10::float8[], $11::float8[], $12::float8[],"
                      " $13::float8[], $14::float8[]),"
                      /* quantile sketches of the same range, in this
                       * transaction (013_quantiles.sql) */
                      " arbiter.fold_quantiles($1::bigint)",
                      14, params, PGRES_TUPLES_OK, NULL);
    arrays_free(a, 12);
    if (!ok) {
        db_rollback(db);
        return AB_EDB;
    }
    return db_commit(db);
}

ab_status
db_fold_checkpoint_begin(struct db *db, int64_t *watermark,
                         int64_t *unit_watermark, int64_t *epoch)
{
    if (db_begin(db) != AB_OK)
        return AB_EDB;
    PGresult *res = NULL;
    if (!tx_step(db, "fold checkpoint",
                 "SELECT pg_advisory_xact_lock(1095910985, 0);"
                 " SELECT watermark, unit_watermark, epoch"
                 " FROM arbiter.fold_state",
                 0, NULL, PGRES_TUPLES_OK, &res) ||
        PQntuples(res) != 1) {
        PQclear(res);
        db_rollback(db);
        return AB_EDB;
    }
    *watermark = db_get_i64(res, 0, 0, 0);
    *unit_watermark = db_get_i64(res, 0, 1, 0);
    *epoch = db_get_i64(res, 0, 2, 0);
    PQclear(res);
    return AB_OK;
}

ab_status
db_fold_checkpoint_put(struct db *db, const struct db_unit_value *rows,
                       size_t n)
{
    struct pgarray a[8];
    key_arrays(rows, n, a);
    for (int k = 4; k < 8; k++)
        pgarray_begin(&a[k]);
    for (size_t i = 0; i < n; i++) {
        pgarray_int(&a[4], rows[i].n);
        pgarray_double(&a[5], rows[i].sum);
        pgarray_int(&a[6], rows[i].first_us);
        pgarray_int(&a[7], rows[i].last_us);
    }
    const char *params[8];
    for (int k = 0; k < 8; k++)
        params[k] = pgarray_end(&a[k]);
    bool ok = tx_step(db, "fold checkpoint",
                      "SELECT arbiter.fold_checkpoint($1::bigint[],"
                      " $2::text[], $3::text[], $4::text[], $5::bigint[],"
                      " $6::float8[], $7::bigint[], $8::bigint[])",
                      8, params, PGRES_TUPLES_OK, NULL);
    arrays_free(a, 8);
    return ok ? AB_OK : AB_EDB;
}

ab_status
db_fold_checkpoint_commit(struct db *db)
{
    if (!tx_step(db, "fold checkpoint",
                 "UPDATE arbiter.fold_state SET unit_watermark = watermark,"
                 " checkpointed_at = clock_timestamp()",
                 0, NULL, PGRES_COMMAND_OK, NULL)) {
        db_rollback(db);
        return AB_EDB;
    }
    return db_commit(db);
}

ab_status
db_fold_units_sync(struct db *db, int64_t *watermark, int64_t *epoch)
{
    PGresult *res =
        db_run(db, "fold units sync",
               "SELECT arbiter.fold_units_sync(),"
               " (SELECT watermark FROM arbiter.fold_state),"
               " (SELECT epoch FROM arbiter.fold_state)",
               0, NULL, PGRES_TUPLES_OK, DB_ONCE);
    ab_status rc = AB_EDB;
    if (db_res_ok(res, PGRES_TUPLES_OK) && PQntuples(res) == 1) {
        *watermark = db_get_i64(res, 0, 1, 0);
        *epoch = db_get_i64(res, 0, 2, 0);
        rc = AB_OK;
    }
    PQclear(res);
    return rc;
}

ab_status
db_fold_checkpoint_status(struct db *db, int64_t *unit_watermark,
                          int64_t *checkpointed_at_ms)
{
    PGresult *res = db_run(db, "fold checkpoint status",
                           "SELECT unit_watermark, (extract(epoch FROM"
                           " checkpointed_at) * 1000)::bigint"
                           " FROM arbiter.fold_state",
                           0, NULL, PGRES_TUPLES_OK, DB_RETRY);
    ab_status rc = AB_EDB;
    if (db_res_ok(res, PGRES_TUPLES_OK) && PQntuples(res) == 1) {
        *unit_watermark = db_get_i64(res, 0, 0, 0);
        *checkpointed_at_ms = db_get_i64(res, 0, 1, 0);
        rc = AB_OK;
    }
    PQclear(res);
    return rc;
}
