/* db_events.c -- the events side of the libpq layer (see db_events.h).
 * COPY and the staged transaction need the raw connection (db_conn() of
 * sql/db_int.h), outside db_run(): never retried here, because
 * service/ingest.c retries whole batches (and spools them). */
#include "sql/db_events.h"

#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/db_int.h"
#include "sql/pgarray.h"

/* Will the same statement fail again? See db_events.h. */
static bool
permanent_failure(PGconn *conn, const PGresult *res)
{
    if (res == NULL || PQstatus(conn) != CONNECTION_OK)
        return false;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (state == NULL || strlen(state) != 5)
        return false;
    static const char *const transient[] = {"08", "40", "53", "57", "58",
                                            "XX"};
    for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++)
        if (strncmp(state, transient[i], 2) == 0)
            return false;
    /* 23505: a batch id committed meanwhile by another transaction -- the
     * in-flight one a missed client-side deadline left behind, completing
     * after the server resumed (ingest_raw's skip test cannot see an
     * uncommitted row; the primary key waits for it, then refuses). The
     * retry sees the committed row and skips the batch: exactly once. */
    return strcmp(state, "55P03") != 0 && strcmp(state, "23505") != 0;
}

/* ---- one bounded exchange --------------------------------------------------
 *
 * On a connection opened with db_open_bounded() (db->deadline_ms > 0) the
 * statements of one call are sent without blocking and every wait is a
 * poll() that ends at the call's deadline (db_wait_socket); a missed
 * deadline marks the run failed, and the caller drops the connection
 * (db_drop). On other connections these are PQexec and friends. */

struct run {
    struct db *db;
    PGconn *conn;
    bool bounded;
    bool failed; /* the connection is unusable: drop it */
    int64_t deadline;
};

static void
run_begin(struct run *r, struct db *db, PGconn *conn)
{
    *r = (struct run){db, conn, db->deadline_ms > 0, false, 0};
    if (r->bounded) {
        r->deadline = db_mono_ms() + db->deadline_ms;
        if (PQsetnonblocking(conn, 1) != 0)
            r->failed = true;
    }
}

/* Wait for the socket, then read what arrived (keeps libpq's input moving
 * while output is blocked, as the libpq docs ask of PQflush callers). */
static bool
run_wait(struct run *r, short events)
{
    while (!r->failed && !db_wait_socket(r->conn, events, r->deadline)) {
        /* an error, or the deadline: then another slice if the caller
         * can afford it (db_set_patience) */
        int64_t now = db_mono_ms();
        if (now < r->deadline || r->db->patient == NULL ||
            !r->db->patient(r->db->patient_arg)) {
            r->failed = true;
            return false;
        }
        r->deadline = now + 50;
    }
    if (r->failed || !PQconsumeInput(r->conn)) {
        r->failed = true;
        return false;
    }
    return true;
}

static bool
run_flush(struct run *r)
{
    for (;;) {
        int f = PQflush(r->conn);
        if (f == 0)
            return true;
        if (f < 0 || !run_wait(r, POLLOUT | POLLIN)) {
            r->failed = true;
            return false;
        }
    }
}

/* The next result, or NULL (the end, or r->failed). */
static PGresult *
run_next(struct run *r)
{
    if (r->failed)
        return NULL;
    while (r->bounded && PQisBusy(r->conn))
        if (!run_wait(r, POLLIN))
            return NULL;
    return PQgetResult(r->conn);
}

static bool
is_copy(const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    return st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH;
}

/* PQexec / PQexecParams (n > 0): the last result, or the first error;
 * NULL when the run failed. */
static PGresult *
run_exec(struct run *r, const char *sql, int n, const char *const *params)
{
    if (r->failed)
        return NULL;
    if (!r->bounded)
        return n == 0 ? PQexec(r->conn, sql)
                      : PQexecParams(r->conn, sql, n, NULL, params, NULL,
                                     NULL, 0);
    int sent = n == 0 ? PQsendQuery(r->conn, sql)
                      : PQsendQueryParams(r->conn, sql, n, NULL, params, NULL,
                                          NULL, 0);
    if (!sent || !run_flush(r)) {
        r->failed = true;
        return NULL;
    }
    PGresult *last = NULL, *res;
    while ((res = run_next(r)) != NULL) {
        bool copy = is_copy(res);
        if (last != NULL && PQresultStatus(last) == PGRES_FATAL_ERROR) {
            PQclear(res);
        } else {
            PQclear(last);
            last = res;
        }
        if (copy)
            break; /* PQgetResult would answer the COPY state again */
    }
    if (r->failed) {
        PQclear(last);
        return NULL;
    }
    return last;
}

/* PQputCopyData / PQputCopyEnd (data NULL) and the flush after the end. */
static bool
run_put(struct run *r, const char *data, size_t len)
{
    for (;;) {
        if (r->failed)
            return false;
        int k = data ? PQputCopyData(r->conn, data, (int)len)
                     : PQputCopyEnd(r->conn, NULL);
        if (k == 1)
            return data || !r->bounded || run_flush(r);
        if (k < 0 || !r->bounded || !run_wait(r, POLLOUT | POLLIN)) {
            r->failed = true;
            return false;
        }
    }
}

/* After the call: a failed bounded run leaves the connection in an unknown
 * state (a statement half sent or unanswered): drop it. */
static void
run_end(struct run *r, const char *what)
{
    if (r->bounded && r->failed)
        db_drop(r->db, what, db_mono_ms() >= r->deadline);
    else if (r->bounded && r->db->conn)
        PQsetnonblocking(r->conn, 0);
}

/* ---- COPY text rows -------------------------------------------------------
 *
 *   ord \t batch \t experiment_id \t event_id \t unit \t arm \t arm_hint
 *       \t metric \t value \t ts_ms \t attributes \n
 *
 * (the columns of pg_temp.ingest_stage, 006_fold.sql); NULL is \N; in text
 * fields backslash, tab, newline and carriage return are escaped (COPY
 * text format, PostgreSQL docs "COPY", File Formats). */

struct buf {
    char *p;
    size_t len, cap;
};

static void
buf_reserve(struct buf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + more)
        cap *= 2;
    b->p = ab_xrealloc(b->p, cap);
    b->cap = cap;
}

static void
buf_raw(struct buf *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void
buf_field(struct buf *b, const char *s, char sep)
{
    if (s == NULL) {
        buf_raw(b, "\\N", 2);
    } else {
        size_t n = strlen(s);
        buf_reserve(b, 2 * n);
        for (size_t i = 0; i < n; i++) {
            char c = s[i], e = 0;
            switch (c) {
            case '\\': e = '\\'; break;
            case '\t': e = 't'; break;
            case '\n': e = 'n'; break;
            case '\r': e = 'r'; break;
            default: break;
            }
            if (e) {
                b->p[b->len++] = '\\';
                b->p[b->len++] = e;
            } else {
                b->p[b->len++] = c;
            }
        }
    }
    buf_raw(b, &sep, 1);
}

static void
buf_num(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
buf_num(struct buf *b, const char *fmt, ...)
{
    buf_reserve(b, 40);
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->p + b->len, 40, fmt, ap);
    va_end(ap);
    b->len += (size_t)(k > 0 && k < 40 ? k : 0);
}

/* Run one statement; PGRES_* expected. On failure: log, classify into
 * *rc, return false (res is cleared either way). */
static bool
step(struct db *db, PGconn *conn, PGresult *res, ExecStatusType want,
     const char *what, ab_status *rc)
{
    if (PQresultStatus(res) == want) {
        PQclear(res);
        return true;
    }
    db_report(db, what, res);
    *rc = PQresultStatus(res) == PGRES_FATAL_ERROR &&
                  permanent_failure(conn, res)
              ? AB_EINVAL
              : AB_EDB;
    /* a unique key another transaction committed meanwhile (an event id
     * or a batch id, see permanent_failure): db_events_write retries at
     * once on the same connection */
    if (*rc == AB_EDB && PQstatus(conn) == CONNECTION_OK &&
        strcmp(db_sqlstate(res), "23505") == 0)
        *rc = AB_ECONFLICT;
    PQclear(res);
    return false;
}

/* COPY the events into the stage, in 256 KiB messages. */
static bool
copy_events(struct run *r, const struct db_event *ev, size_t n, struct buf *b)
{
    for (size_t i = 0; i < n; i++) {
        const struct db_event *e = &ev[i];
        buf_num(b, "%zu\t%d\t%lld\t", i + 1, e->batch + 1,
                (long long)e->experiment_id);
        buf_field(b, e->event_id, '\t');
        buf_field(b, e->unit, '\t');
        buf_field(b, e->arm, '\t');
        buf_field(b, e->arm_hint, '\t');
        buf_field(b, e->metric, '\t');
        buf_num(b, "%.17g\t%lld\t", e->value, (long long)e->ts_ms);
        buf_field(b, e->attributes, '\n');
        if (b->len >= 256 * 1024 || i + 1 == n) {
            if (!run_put(r, b->p, b->len))
                return false;
            b->len = 0;
        }
    }
    return run_put(r, NULL, 0);
}

static ab_status
write_once(struct db *db, const char *const *batch_ids, size_t n_batches,
           const struct db_event *ev, size_t n, struct db_batch_result *out)
{
    struct pgarray ids;
    pgarray_begin(&ids);
    for (size_t i = 0; i < n_batches; i++)
        pgarray_text(&ids, batch_ids[i]);
    const char *param = pgarray_end(&ids);
    struct buf b = {0};

    ab_status rc = AB_OK;
    PGresult *res = NULL;
    PGconn *conn = db_conn(db);
    if (conn == NULL) {
        free(ids.p);
        return AB_EDB;
    }
    struct run r;
    run_begin(&r, db, conn);
    if (!step(db, conn,
              run_exec(&r, "BEGIN; SELECT arbiter.ingest_stage_prepare()", 0,
                       NULL),
              PGRES_TUPLES_OK, "events stage", &rc))
        goto fail;
    if (!step(db, conn,
              run_exec(&r, "COPY pg_temp.ingest_stage FROM STDIN", 0, NULL),
              PGRES_COPY_IN, "events copy", &rc))
        goto fail;
    if (!copy_events(&r, ev, n, &b)) {
        rc = AB_EDB;
        goto fail;
    }
    bool copied = true;
    while ((res = run_next(&r)) != NULL) {
        if (copied &&
            !step(db, conn, res, PGRES_COMMAND_OK, "events copy", &rc))
            copied = false;
        else if (!copied)
            PQclear(res);
        res = NULL;
    }
    if (!copied || r.failed) {
        rc = r.failed ? AB_EDB : rc;
        goto fail;
    }
    res = run_exec(&r,
                   "SELECT accepted, duplicates"
                   " FROM arbiter.ingest_raw($1::text[])",
                   1, &param);
    if (PQresultStatus(res) != PGRES_TUPLES_OK ||
        (size_t)PQntuples(res) != n_batches) {
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
            PQclear(res);
            res = NULL;
            rc = AB_EDB;
            goto fail;
        }
        PGresult *r2 = res;
        res = NULL;
        step(db, conn, r2, PGRES_TUPLES_OK, "events write", &rc);
        goto fail;
    }
    for (size_t i = 0; i < n_batches; i++) {
        out[i].accepted = (int)strtol(PQgetvalue(res, (int)i, 0), NULL, 10);
        out[i].duplicates = (int)strtol(PQgetvalue(res, (int)i, 1), NULL, 10);
    }
    PQclear(res);
    res = NULL;
    /* a failed COMMIT leaves the outcome unknown: AB_EDB, and a retry of
     * the same batch ids is exactly once (so is a COMMIT sent before a
     * missed deadline, which the server may complete when it resumes) */
    if (!step(db, conn, run_exec(&r, "COMMIT", 0, NULL), PGRES_COMMAND_OK,
              "events commit", &rc)) {
        if (rc == AB_EINVAL || rc == AB_ECONFLICT)
            rc = AB_EDB;
        goto done;
    }
    goto done;
fail:
    if (!r.failed && PQstatus(conn) == CONNECTION_OK &&
        PQtransactionStatus(conn) != PQTRANS_IDLE)
        PQclear(run_exec(&r, "ROLLBACK", 0, NULL));
done:
    if (r.failed)
        rc = AB_EDB;
    run_end(&r, "events write");
    PQclear(res);
    free(ids.p);
    free(b.p);
    return rc;
}

/* A unique violation (AB_ECONFLICT from step) means that a transaction
 * holding one of the same new ids committed while this one waited on the
 * index: the retry's anti-join (016_ingest_ack.sql) or batch skip sees the
 * committed row and counts the events as duplicates -- exactly once, with
 * no spooling. Each retry can meet at most the ids of other transactions
 * that were in flight, so a few attempts suffice; after them the writer's
 * own retry (spool, replay) takes over. */
#define WRITE_ATTEMPTS 4

ab_status
db_events_write(struct db *db, const char *const *batch_ids, size_t n_batches,
                const struct db_event *ev, size_t n, struct db_batch_result *out)
{
    ab_status rc = AB_ECONFLICT;
    for (int i = 0; i < WRITE_ATTEMPTS && rc == AB_ECONFLICT; i++)
        rc = write_once(db, batch_ids, n_batches, ev, n, out);
    return rc == AB_ECONFLICT ? AB_EDB : rc;
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
    PGconn *conn = db_conn(db);
    if (conn == NULL)
        return AB_EDB;
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    ab_status rc = AB_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_report(db, what, res);
        rc = AB_EDB;
    }
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
    PGconn *conn = db_conn(db);
    if (conn == NULL)
        return AB_EDB;
    struct run r;
    run_begin(&r, db, conn);
    /* the acknowledging write of no event, rolled back */
    PGresult *res = run_exec(&r,
                             "BEGIN; SELECT arbiter.ingest_stage_prepare();"
                             " SELECT count(*) FROM arbiter.ingest_raw("
                             "'{}'::text[])",
                             0, NULL);
    ab_status rc = AB_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_report(db, "events probe", res);
        rc = AB_EDB;
    }
    PQclear(res);
    PQclear(run_exec(&r, "ROLLBACK", 0, NULL));
    if (r.failed)
        rc = AB_EDB;
    run_end(&r, "events probe");
    return rc;
}
