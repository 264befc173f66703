/* db_events.c -- the events side of the libpq layer (see db_events.h).
 * Runs its statements through sql/db_int.h's one execute path. The
 * writer's statement is DB_ONCE: service/ingest.c retries whole batches
 * (and spools them), so a second run here would only hide the outage. */
#include "sql/db_events.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/db_int.h"
#include "sql/pgarray.h"

enum { A_IDS, A_BATCH, A_EXP, A_EID, A_UNIT, A_ARM, A_HINT, A_METRIC,
       A_VALUE, A_TS, A_ATTR, N_ARRAYS };

/* Will the same statement fail again? See db_events.h. */
static bool
permanent_failure(const struct db *db, const PGresult *res)
{
    if (res == NULL || PQstatus(db->conn) != CONNECTION_OK)
        return false;
    const char *state = db_sqlstate(res);
    if (strlen(state) != 5)
        return false;
    static const char *const transient[] = {"08", "40", "53", "57", "58",
                                            "XX"};
    for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++)
        if (strncmp(state, transient[i], 2) == 0)
            return false;
    return strcmp(state, "55P03") != 0;
}

ab_status
db_events_write(struct db *db, const char *const *batch_ids, size_t n_batches,
                const struct db_event *ev, size_t n, struct db_batch_result *out)
{
    struct pgarray a[N_ARRAYS];
    for (int k = 0; k < N_ARRAYS; k++)
        pgarray_begin(&a[k]);
    for (size_t i = 0; i < n_batches; i++)
        pgarray_text(&a[A_IDS], batch_ids[i]);
    for (size_t i = 0; i < n; i++) {
        pgarray_int(&a[A_BATCH], ev[i].batch + 1);
        pgarray_int(&a[A_EXP], ev[i].experiment_id);
        pgarray_text(&a[A_EID], ev[i].event_id);
        pgarray_text(&a[A_UNIT], ev[i].unit);
        pgarray_text(&a[A_ARM], ev[i].arm);
        pgarray_text(&a[A_HINT], ev[i].arm_hint);
        pgarray_text(&a[A_METRIC], ev[i].metric);
        pgarray_double(&a[A_VALUE], ev[i].value);
        pgarray_int(&a[A_TS], ev[i].ts_ms);
        pgarray_text(&a[A_ATTR], ev[i].attributes);
    }
    const char *params[N_ARRAYS];
    for (int k = 0; k < N_ARRAYS; k++)
        params[k] = pgarray_end(&a[k]);

    ab_status rc = AB_OK;
    /* one statement = one transaction (autocommit) */
    PGresult *res = db_run(db, "events write",
                           "SELECT accepted, duplicates FROM arbiter.ingest("
                           "$1::text[], $2::int[], $3::bigint[], $4::text[],"
                           " $5::text[], $6::text[], $7::text[], $8::text[],"
                           " $9::float8[], $10::bigint[], $11::text[])",
                           N_ARRAYS, params, PGRES_TUPLES_OK, DB_ONCE);
    if (res == NULL) {
        rc = AB_EDB;
        goto done;
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK ||
        (size_t)PQntuples(res) != n_batches) {
        if (PQresultStatus(res) == PGRES_TUPLES_OK)
            db_report(db, "events write", res);
        rc = PQresultStatus(res) == PGRES_FATAL_ERROR &&
                     permanent_failure(db, res)
                 ? AB_EINVAL
                 : AB_EDB;
        goto done;
    }
    for (size_t i = 0; i < n_batches; i++) {
        out[i].accepted = (int)strtol(PQgetvalue(res, (int)i, 0), NULL, 10);
        out[i].duplicates = (int)strtol(PQgetvalue(res, (int)i, 1), NULL, 10);
    }
done:
    PQclear(res);
    for (int k = 0; k < N_ARRAYS; k++)
        free(a[k].p);
    return rc;
}

static ab_status
call_ms(struct db *db, const char *what, const char *sql, int n,
        const int64_t *ms)
{
    char buf[2][32];
    const char *params[2];
    for (int i = 0; i < n; i++) {
        snprintf(buf[i], sizeof(buf[i]), "%lld", (long long)ms[i]);
        params[i] = buf[i];
    }
    PGresult *res = db_run(db, what, sql, n, params, PGRES_TUPLES_OK, DB_RETRY);
    ab_status rc = db_res_ok(res, PGRES_TUPLES_OK) ? AB_OK : AB_EDB;
    PQclear(res);
    return rc;
}

ab_status
db_events_partitions(struct db *db, int64_t from_ms, int64_t to_ms)
{
    int64_t ms[2] = {from_ms, to_ms};
    return call_ms(db, "event partitions",
                   "SELECT arbiter.ensure_event_partitions("
                   "to_timestamp($1::bigint / 1000.0),"
                   " to_timestamp($2::bigint / 1000.0))",
                   2, ms);
}

ab_status
db_events_retention(struct db *db, int64_t cutoff_ms)
{
    return call_ms(db, "event retention",
                   "SELECT arbiter.apply_retention("
                   "to_timestamp($1::bigint / 1000.0))",
                   1, &cutoff_ms);
}

ab_status
db_events_probe(struct db *db)
{
    PGresult *res = db_run(db, "events probe",
                           "SELECT count(*) FROM arbiter.ingest('{}'::text[],"
                           " '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}',"
                           " '{}', '{}')",
                           0, NULL, PGRES_TUPLES_OK, DB_ONCE);
    ab_status rc = db_res_ok(res, PGRES_TUPLES_OK) ? AB_OK : AB_EDB;
    PQclear(res);
    return rc;
}
