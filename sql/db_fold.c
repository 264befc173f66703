/* db_fold.c -- the fold and its freshness (see db_fold.h). */
#include "sql/db_fold.h"

#include <stdio.h>
#include <stdlib.h>

#include "sql/db_int.h"

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
