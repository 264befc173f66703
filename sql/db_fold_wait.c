/* db_fold_wait.c -- the reader's horizon and the leader's nudge (see
 * db_fold_wait.h). */
#include "sql/db_fold_wait.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/db_int.h"

ab_status
db_fold_horizon(struct db *db, int64_t leader_key,
                struct db_fold_horizon *out)
{
    char key[32];
    snprintf(key, sizeof(key), "%lld", (long long)leader_key);
    const char *params[1] = {key};
    PGresult *res = db_run(
        db, "fold horizon",
        "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint,"
        " f.watermark, f.unit_watermark,"
        " EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
        "   AND granted AND classid = ($1::bigint >> 32)::oid"
        "   AND objid = ($1::bigint & 4294967295)::oid AND objsubid = 1)"
        " FROM arbiter.fold_state f",
        1, params, PGRES_TUPLES_OK, DB_RETRY);
    ab_status rc = AB_OK;
    if (!db_res_ok(res, PGRES_TUPLES_OK) || PQntuples(res) != 1) {
        rc = AB_EDB;
    } else {
        out->horizon = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        out->watermark = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        out->unit_watermark = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
        out->leader = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
    }
    PQclear(res);
    return rc;
}

ab_status
db_fold_watermark(struct db *db, int64_t *watermark, int64_t *unit_watermark)
{
    PGresult *res = db_run(db, "fold watermark",
                           "SELECT watermark, unit_watermark"
                           " FROM arbiter.fold_state",
                           0, NULL, PGRES_TUPLES_OK, DB_RETRY);
    ab_status rc = AB_OK;
    if (!db_res_ok(res, PGRES_TUPLES_OK) || PQntuples(res) != 1) {
        rc = AB_EDB;
    } else {
        *watermark = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        *unit_watermark = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    }
    PQclear(res);
    return rc;
}

ab_status
db_fold_nudge(struct db *db, bool checkpoint)
{
    PGresult *res = db_run(db, "fold nudge",
                           checkpoint
                               ? "NOTIFY " DB_FOLD_CHANNEL ", 'checkpoint'"
                               : "NOTIFY " DB_FOLD_CHANNEL,
                           0, NULL, PGRES_COMMAND_OK, DB_RETRY);
    ab_status rc = db_res_ok(res, PGRES_COMMAND_OK) ? AB_OK : AB_EDB;
    PQclear(res);
    return rc;
}

ab_status
db_fold_listen(struct db *db)
{
    /* DB_ONCE: a LISTEN belongs to its session */
    PGresult *res = db_run(db, "fold listen", "LISTEN " DB_FOLD_CHANNEL, 0,
                           NULL, PGRES_COMMAND_OK, DB_ONCE);
    ab_status rc = db_res_ok(res, PGRES_COMMAND_OK) ? AB_OK : AB_EDB;
    PQclear(res);
    return rc;
}

int
db_fold_nudged(struct db *db)
{
    PGconn *conn = db->conn;
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK ||
        !PQconsumeInput(conn))
        return 0;
    int got = 0;
    PGnotify *n;
    while ((n = PQnotifies(conn)) != NULL) {
        got |= DB_FOLD_NUDGED;
        if (n->extra != NULL && strcmp(n->extra, "checkpoint") == 0)
            got |= DB_FOLD_NUDGED_CHECKPOINT;
        PQfreemem(n);
    }
    return got;
}
