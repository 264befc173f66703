/* db.c -- the libpq layer: connections, migrations, experiments, exposures,
 * LISTEN/NOTIFY. See db.h for the contract.
 *
 * Statements use PQexecParams with text parameters; nothing is built by
 * string concatenation except array literals (sql/pgarray.h escapes them).
 */
#include "sql/db_int.h"
#include "sql/pgarray.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static db_log_fn *logger;

void
db_set_logger(db_log_fn *fn)
{
    logger = fn;
}

void
db_report(struct db *db, const char *what, const PGresult *res)
{
    const char *detail = res ? PQresultErrorMessage(res) : NULL;
    if (detail == NULL || *detail == '\0')
        detail = db->conn ? PQerrorMessage(db->conn) : "no connection";
    if (logger)
        logger(what, detail);
}

static void
notice_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* ---- client-side deadlines (issue 14) -------------------------------------
 *
 * A stopped server (SIGSTOP, a frozen VM) accepts TCP connections and never
 * answers: connect_timeout and statement_timeout cannot fire, and a blocking
 * libpq call waits for as long as the stall lasts. A connection opened with
 * db_open_bounded() is driven without blocking: every wait is a poll() on
 * the socket that ends at a deadline on the monotonic clock. */

int64_t
db_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool
db_wait_socket(PGconn *conn, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - db_mono_ms();
        if (left <= 0)
            return false;
        struct pollfd pfd = {.fd = PQsocket(conn), .events = events};
        if (pfd.fd < 0)
            return false;
        int r = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
        if (r > 0)
            return true;
        if (r < 0 && errno != EINTR)
            return false;
    }
}

/* The connection is in an unknown state after a missed deadline (a query
 * half sent or unanswered): drop it. The server rolls back an open
 * transaction when it sees the connection closed -- unless it had already
 * received the COMMIT, which it then completes (the caller's retry must be
 * idempotent: db_events_write's batch ids are). */
void
db_drop(struct db *db, const char *what, bool timed_out)
{
    db->timed_out = timed_out;
    if (logger)
        logger(what, timed_out ? "client-side deadline passed; connection "
                                 "dropped"
                               : "connection failed; dropped");
    if (db->conn)
        PQfinish(db->conn);
    db->conn = NULL;
}

static ab_status
connect_bounded(struct db *db, const char *const *keys,
                const char *const *vals)
{
    db->conn = PQconnectStartParams(keys, vals, 1);
    if (db->conn == NULL || PQstatus(db->conn) == CONNECTION_BAD) {
        db_report(db, "connect", NULL);
        return AB_EDB;
    }
    int64_t deadline = db_mono_ms() + db->deadline_ms;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED) {
            db_report(db, "connect", NULL);
            return AB_EDB;
        }
        short ev = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
        if (!db_wait_socket(db->conn, ev, deadline)) {
            db_drop(db, "connect", db_mono_ms() >= deadline);
            return AB_EDB;
        }
        st = PQconnectPoll(db->conn);
    }
    return AB_OK;
}

static ab_status
connect_now(struct db *db)
{
    if (db->conn)
        PQfinish(db->conn);
    db->conn = NULL;
    if (db->deadline_ms > 0) {
        /* the statement timeout rides in the startup packet: no round
         * trip outside the deadline; JIT off (see below) */
        char opt[64];
        snprintf(opt, sizeof(opt), "-c statement_timeout=%d -c jit=off",
                 db->timeout_ms > 0 ? db->timeout_ms : 0);
        const char *keys[] = {"dbname", "keepalives", "keepalives_idle",
                              "application_name", "options", NULL};
        const char *vals[] = {db->url, "1", "10", "arbiter", opt, NULL};
        ab_status rc = connect_bounded(db, keys, vals);
        if (rc == AB_OK)
            PQsetNoticeProcessor(db->conn, notice_quiet, NULL);
        return rc;
    }
    /* connect_timeout bounds a dead server; keepalives notice a dead peer.
     * JIT off: the views read per decision (arm_stats over metric_defs
     * and experiment_arms, whose set-returning functions the planner
     * estimates at 100 rows each) cross jit_above_cost with a handful of
     * rows to read; compiling took 130-200 ms of a 10 ms read
     * (tests/e2e/test_attribution.py, ReadCost). */
    const char *keys[] = {"dbname", "connect_timeout", "keepalives",
                          "keepalives_idle", "application_name", "options",
                          NULL};
    const char *vals[] = {db->url, "3", "1", "10", "arbiter", "-c jit=off",
                          NULL};
    db->conn = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(db->conn) != CONNECTION_OK) {
        db_report(db, "connect", NULL);
        return AB_EDB;
    }
    PQsetNoticeProcessor(db->conn, notice_quiet, NULL);
    if (db->timeout_ms > 0)
        return db_set_timeout(db, db->timeout_ms);
    return AB_OK;
}

ab_status
db_open(const char *url, struct db **out)
{
    return db_open_bounded(url, 0, 0, out);
}

ab_status
db_open_bounded(const char *url, int deadline_ms, int timeout_ms,
                struct db **out)
{
    struct db *db = ab_xcalloc(1, sizeof(*db));
    db->url = ab_xstrdup(url);
    db->deadline_ms = deadline_ms;
    db->timeout_ms = timeout_ms;
    ab_status rc = connect_now(db);
    if (rc != AB_OK) {
        db_close(db);
        return rc;
    }
    *out = db;
    return AB_OK;
}

void
db_close(struct db *db)
{
    if (db == NULL)
        return;
    if (db->conn)
        PQfinish(db->conn);
    free(db->url);
    free(db);
}

ab_status
db_ensure(struct db *db)
{
    if (db->conn && PQstatus(db->conn) == CONNECTION_OK)
        return AB_OK;
    return connect_now(db);
}

/* ---- the one execute path (db_int.h states the rule) ------------------ */

bool
db_res_ok(const PGresult *res, int want)
{
    if (res == NULL)
        return false;
    ExecStatusType st = PQresultStatus(res);
    if (want == DB_WANT_ANY)
        return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    return (int)st == want;
}

const char *
db_sqlstate(const PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}

static bool
conn_ok(const struct db *db)
{
    return db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK;
}

PGresult *
db_run(struct db *db, const char *what, const char *sql, int n,
       const char *const *params, int want, int flags)
{
    /* the session matters: a new connection would be outside it */
    bool session = db->in_tx || db->pinned;
    int attempts = (session || (flags & DB_ONCE)) ? 1 : 2;
    for (int attempt = 0; attempt < attempts; attempt++) {
        if (session ? !conn_ok(db) : db_ensure(db) != AB_OK)
            return NULL;
        PGresult *res =
            n == 0 && params == NULL
                ? PQexec(db->conn, sql)
                : PQexecParams(db->conn, sql, n, NULL, params, NULL, NULL, 0);
        if (db_res_ok(res, want))
            return res;
        if (conn_ok(db) || attempt + 1 == attempts) {
            db_report(db, what, res);
            return res; /* caller inspects the SQLSTATE */
        }
        PQclear(res);
    }
    return NULL;
}

/* ---- column readers -------------------------------------------------------- */

const char *
db_i64(struct db_i64 *b, int64_t v)
{
    snprintf(b->s, sizeof(b->s), "%lld", (long long)v);
    return b->s;
}

int64_t
db_get_i64(const PGresult *res, int row, int col, int64_t null_value)
{
    if (PQgetisnull(res, row, col))
        return null_value;
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

double
db_get_f64(const PGresult *res, int row, int col)
{
    return strtod(PQgetvalue(res, row, col), NULL);
}

char *
db_get_str(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return NULL;
    return ab_xstrdup(PQgetvalue(res, row, col));
}

/* One row of one text column: a JSON document. SQL NULL reads as the
 * JSON document "null" (a scalar subquery that found no row). */
ab_status
db_text(struct db *db, const char *what, const char *sql, int n,
        const char *const *params, char **out)
{
    PGresult *res = db_run(db, what, sql, n, params, PGRES_TUPLES_OK, DB_RETRY);
    ab_status rc = AB_OK;
    if (!db_res_ok(res, PGRES_TUPLES_OK) || PQntuples(res) != 1)
        rc = AB_EDB;
    else
        *out =
            ab_xstrdup(PQgetisnull(res, 0, 0) ? "null" : PQgetvalue(res, 0, 0));
    PQclear(res);
    return rc;
}

/* A statement whose rows nobody reads. */
static ab_status
exec_simple(struct db *db, const char *what, const char *sql, int flags)
{
    PGresult *res = db_run(db, what, sql, 0, NULL, DB_WANT_ANY, flags);
    ab_status rc = db_res_ok(res, DB_WANT_ANY) ? AB_OK : AB_EDB;
    PQclear(res);
    return rc;
}

ab_status
db_exec(struct db *db, const char *sql)
{
    return exec_simple(db, "exec", sql, DB_RETRY);
}

ab_status
db_ping(struct db *db)
{
    return exec_simple(db, "ping", "SELECT 1", DB_RETRY);
}

void
db_set_deadline(struct db *db, int ms)
{
    db->deadline_ms = ms;
}

void
db_set_patience(struct db *db, bool (*patient)(void *arg), void *arg)
{
    db->patient = patient;
    db->patient_arg = arg;
}

bool
db_take_timed_out(struct db *db)
{
    bool t = db->timed_out;
    db->timed_out = false;
    return t;
}

ab_status
db_set_timeout(struct db *db, int ms)
{
    char buf[64];
    db->timeout_ms = ms;
    if (!conn_ok(db)) /* called by connect_now(): never reconnect here */
        return AB_EDB;
    snprintf(buf, sizeof(buf), "SET statement_timeout = %d", ms);
    return exec_simple(db, "set timeout", buf, DB_ONCE);
}

/* ---- migrations -------------------------------------------------------- */

/* Bootstrap that every version shares: the schema and the ledger. */
static const char bootstrap_sql[] =
    "CREATE SCHEMA IF NOT EXISTS arbiter;"
    "CREATE TABLE IF NOT EXISTS arbiter.schema_migrations ("
    "  version integer PRIMARY KEY, name text NOT NULL,"
    "  applied_at timestamptz NOT NULL DEFAULT now())";

/* Serializes concurrent migrators (any constant, same in every build). */
#define MIGRATE_LOCK "7243519"

ab_status
db_migrate(struct db *db, const struct db_migration *m, size_t n,
           int *applied, int *schema_version)
{
    ab_status rc = AB_OK;
    int done = 0, current = 0;
    PGresult *res = NULL;

    if (db_ensure(db) != AB_OK)
        return AB_EDB;
    if (exec_simple(db, "migrate lock",
                    "SELECT pg_advisory_lock(" MIGRATE_LOCK ")",
                    DB_ONCE) != AB_OK)
        return AB_EDB;
    db->pinned = true; /* the lock is this session's: never reconnect */
    rc = exec_simple(db, "migrate bootstrap", bootstrap_sql, DB_ONCE);
    if (rc != AB_OK)
        goto done;
    res = db_run(db, "migrate version",
                 "SELECT coalesce(max(version), 0) "
                 "FROM arbiter.schema_migrations",
                 0, NULL, PGRES_TUPLES_OK, DB_ONCE);
    if (!db_res_ok(res, PGRES_TUPLES_OK)) {
        rc = AB_EDB;
        goto done;
    }
    current = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    res = NULL;
    if (n > 0 && current > m[n - 1].version) {
        rc = AB_ECONFLICT; /* a newer arbiter migrated this database */
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (m[i].version <= current)
            continue;
        char ver[16];
        snprintf(ver, sizeof(ver), "%d", m[i].version);
        const char *params[2] = {ver, m[i].name};
        rc = exec_simple(db, "migrate begin", "BEGIN", DB_ONCE);
        if (rc != AB_OK)
            goto done;
        if (exec_simple(db, m[i].name, m[i].sql, DB_ONCE) != AB_OK) {
            exec_simple(db, "migrate rollback", "ROLLBACK", DB_ONCE);
            rc = AB_EDB;
            goto done;
        }
        res = db_run(db, "migrate record",
                     "INSERT INTO arbiter.schema_migrations"
                     " (version, name) VALUES ($1::int, $2)",
                     2, params, PGRES_COMMAND_OK, DB_ONCE);
        if (!db_res_ok(res, PGRES_COMMAND_OK) ||
            exec_simple(db, "migrate commit", "COMMIT", DB_ONCE) != AB_OK) {
            exec_simple(db, "migrate rollback", "ROLLBACK", DB_ONCE);
            rc = AB_EDB;
            goto done;
        }
        PQclear(res);
        res = NULL;
        current = m[i].version;
        done++;
    }
done:
    PQclear(res);
    exec_simple(db, "migrate unlock",
                "SELECT pg_advisory_unlock(" MIGRATE_LOCK ")", DB_ONCE);
    db->pinned = false;
    if (rc == AB_OK || rc == AB_ECONFLICT) {
        if (applied)
            *applied = done;
        if (schema_version)
            *schema_version = current;
    }
    return rc;
}

/* ---- transactions -------------------------------------------------------- */

ab_status
db_begin(struct db *db)
{
    if (db->in_tx || db_ensure(db) != AB_OK)
        return AB_EDB;
    ab_status rc = exec_simple(db, "begin", "BEGIN", DB_ONCE);
    if (rc == AB_OK)
        db->in_tx = true;
    return rc;
}

ab_status
db_commit(struct db *db)
{
    if (!db->in_tx)
        return AB_EDB;
    /* run while in_tx: a broken connection must not be reopened for it */
    PGresult *res =
        db_run(db, "commit", "COMMIT", 0, NULL, PGRES_COMMAND_OK, DB_ONCE);
    db->in_tx = false;
    /* COMMIT of a failed transaction "succeeds" as ROLLBACK */
    ab_status rc = db_res_ok(res, PGRES_COMMAND_OK) &&
                           strcmp(PQcmdStatus(res), "COMMIT") == 0
                       ? AB_OK
                       : AB_EDB;
    if (rc != AB_OK && db_res_ok(res, PGRES_COMMAND_OK))
        db_report(db, "commit", res);
    PQclear(res);
    return rc;
}

void
db_rollback(struct db *db)
{
    if (!db->in_tx)
        return;
    exec_simple(db, "rollback", "ROLLBACK", DB_ONCE);
    db->in_tx = false;
}

/* Any constant pair, distinct from MIGRATE_LOCK's single key. */
#define LAYER_LOCK_CLASS "7243520"

ab_status
db_layer_lock(struct db *db, const char *layer)
{
    if (!db->in_tx)
        return AB_EDB;
    const char *params[1] = {layer};
    PGresult *res = db_run(db, "layer lock",
                           "SELECT pg_advisory_xact_lock(" LAYER_LOCK_CLASS
                           ", hashtext($1))",
                           1, params, PGRES_TUPLES_OK, DB_RETRY);
    ab_status rc = db_res_ok(res, PGRES_TUPLES_OK) ? AB_OK : AB_EDB;
    PQclear(res);
    return rc;
}

/* ---- experiments ------------------------------------------------------- */

#define EXP_COLS                                                              \
    "id, key, definition::text, state, version, weights_version,"            \
    " to_char(created_at AT TIME ZONE 'UTC',"                                \
    "         'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"                         \
    " to_char(updated_at AT TIME ZONE 'UTC',"                                \
    "         'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

void
db_experiment_clear(struct db_experiment *e)
{
    if (e == NULL)
        return;
    free(e->key);
    free(e->definition);
    free(e->state);
    free(e->created_at);
    free(e->updated_at);
    memset(e, 0, sizeof(*e));
}

void
db_experiment_list_free(struct db_experiment *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        db_experiment_clear(&list[i]);
    free(list);
}

static void
row_to_experiment(PGresult *res, int row, struct db_experiment *e)
{
    e->id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    e->key = ab_xstrdup(PQgetvalue(res, row, 1));
    e->definition = ab_xstrdup(PQgetvalue(res, row, 2));
    e->state = ab_xstrdup(PQgetvalue(res, row, 3));
    e->version = strtoll(PQgetvalue(res, row, 4), NULL, 10);
    e->weights_version = strtoll(PQgetvalue(res, row, 5), NULL, 10);
    e->created_at = ab_xstrdup(PQgetvalue(res, row, 6));
    e->updated_at = ab_xstrdup(PQgetvalue(res, row, 7));
}

/* The experiment a statement returned (then PQclear()s it): AB_EDB when
 * it failed, 'none' when it returned no row. */
static ab_status
one_experiment(PGresult *res, ab_status none, struct db_experiment *out)
{
    ab_status rc = AB_OK;
    if (!db_res_ok(res, PGRES_TUPLES_OK))
        rc = AB_EDB;
    else if (PQntuples(res) == 0)
        rc = none;
    else
        row_to_experiment(res, 0, out);
    PQclear(res);
    return rc;
}

ab_status
db_experiment_list(struct db *db, struct db_experiment **out, size_t *n_out)
{
    PGresult *res = db_run(db, "experiment list",
                           "SELECT " EXP_COLS " FROM arbiter.experiments"
                           " ORDER BY key",
                           0, NULL, PGRES_TUPLES_OK, DB_RETRY);
    if (!db_res_ok(res, PGRES_TUPLES_OK)) {
        PQclear(res);
        return AB_EDB;
    }
    size_t n = (size_t)PQntuples(res);
    struct db_experiment *list = ab_xcalloc(n ? n : 1, sizeof(*list));
    for (size_t i = 0; i < n; i++)
        row_to_experiment(res, (int)i, &list[i]);
    PQclear(res);
    *out = list;
    *n_out = n;
    return AB_OK;
}

ab_status
db_experiment_get(struct db *db, const char *key, struct db_experiment *out)
{
    const char *params[1] = {key};
    PGresult *res = db_run(db, "experiment get",
                           "SELECT " EXP_COLS " FROM arbiter.experiments"
                           " WHERE key = $1",
                           1, params, PGRES_TUPLES_OK, DB_RETRY);
    return one_experiment(res, AB_ENOTFOUND, out);
}

/* One statement: insert the row, its first weights version, the 'create'
 * decision, and the notification -- atomic by construction. */
static const char insert_sql[] =
    "WITH e AS ("
    "  INSERT INTO arbiter.experiments (key, definition)"
    "  VALUES ($1, $2::jsonb) RETURNING *),"
    " w AS (INSERT INTO arbiter.weights_history"
    "  (experiment_id, weights_version, weights, source)"
    "  SELECT id, 1, $3::jsonb, 'create' FROM e),"
    " d AS (INSERT INTO arbiter.decision_log"
    "  (experiment_id, action, from_state, to_state, actor)"
    "  SELECT id, 'create', NULL, 'draft', 'admin' FROM e),"
    " n AS (SELECT pg_notify('" DB_CONFIG_CHANNEL "', $1))"
    " SELECT " EXP_COLS " FROM e, n";

ab_status
db_experiment_insert(struct db *db, const char *key, const char *definition,
                     const char *weights, struct db_experiment *out)
{
    const char *params[3] = {key, definition, weights};
    PGresult *res = db_run(db, "experiment insert", insert_sql, 3, params,
                           PGRES_TUPLES_OK, DB_RETRY);
    ab_status rc = AB_OK;
    if (!db_res_ok(res, PGRES_TUPLES_OK))
        rc = strcmp(db_sqlstate(res), "23505") == 0 ? AB_ECONFLICT : AB_EDB;
    else
        row_to_experiment(res, 0, out);
    PQclear(res);
    return rc;
}

static const char update_sql[] =
    "WITH e AS ("
    "  UPDATE arbiter.experiments SET definition = $3::jsonb,"
    "    version = version + 1, updated_at = now(),"
    "    weights_version = weights_version + ($4::jsonb IS NOT NULL)::int"
    "  WHERE key = $1 AND version = $2::bigint RETURNING *),"
    " w AS (INSERT INTO arbiter.weights_history"
    "  (experiment_id, weights_version, weights, source)"
    "  SELECT id, weights_version, $4::jsonb, 'patch' FROM e"
    "  WHERE $4::jsonb IS NOT NULL),"
    " d AS (INSERT INTO arbiter.decision_log"
    "  (experiment_id, action, from_state, to_state, actor, details)"
    "  SELECT id, 'patch', state, state, 'admin', coalesce($5::jsonb, '{}')"
    "  FROM e),"
    " n AS (SELECT pg_notify('" DB_CONFIG_CHANNEL "', $1))"
    " SELECT " EXP_COLS " FROM e, n";

ab_status
db_experiment_update(struct db *db, const char *key, int64_t expect_version,
                     const char *definition, const char *weights,
                     const char *details, struct db_experiment *out)
{
    char ver[32];
    snprintf(ver, sizeof(ver), "%lld", (long long)expect_version);
    const char *params[5] = {key, ver, definition, weights, details};
    PGresult *res = db_run(db, "experiment update", update_sql, 5, params,
                           PGRES_TUPLES_OK, DB_RETRY);
    /* no row: changed since it was read, or gone */
    return one_experiment(res, AB_ECONFLICT, out);
}

static const char transition_sql[] =
    "WITH old AS (SELECT id, state FROM arbiter.experiments WHERE key = $1"
    "             FOR UPDATE),"
    " e AS ("
    "  UPDATE arbiter.experiments x SET state = $3, version = version + 1,"
    "    updated_at = now(),"
    "    started_at = CASE WHEN $3 = 'running' THEN"
    "                 coalesce(started_at, now()) ELSE started_at END,"
    "    stopped_at = CASE WHEN $3 = 'stopped' THEN now() ELSE stopped_at END"
    "  FROM old WHERE x.id = old.id"
    "   AND old.state = ANY (string_to_array($2, ',')) RETURNING x.*),"
    " d AS (INSERT INTO arbiter.decision_log"
    "  (experiment_id, action, from_state, to_state, actor, reason)"
    "  SELECT e.id, $4, old.state, $3, $5, coalesce($6, '') FROM e, old),"
    " n AS (SELECT pg_notify('" DB_CONFIG_CHANNEL "', $1) FROM e)"
    " SELECT " EXP_COLS ", (SELECT state FROM old)"
    " FROM e, n UNION ALL"
    " SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, state"
    " FROM old WHERE NOT EXISTS (SELECT 1 FROM e)";

ab_status
db_experiment_transition(struct db *db, const char *key, const char *from,
                         const char *to, const char *action,
                         const char *actor, const char *reason,
                         struct db_experiment *out)
{
    const char *params[6] = {key, from, to, action, actor, reason};
    PGresult *res = db_run(db, "experiment transition", transition_sql, 6,
                           params, PGRES_TUPLES_OK, DB_RETRY);
    ab_status rc = AB_OK;
    if (!db_res_ok(res, PGRES_TUPLES_OK))
        rc = AB_EDB;
    else if (PQntuples(res) == 0)
        rc = AB_ENOTFOUND;
    else if (PQgetisnull(res, 0, 0))
        rc = AB_ECONFLICT; /* exists, but not in a 'from' state */
    else
        row_to_experiment(res, 0, out);
    PQclear(res);
    return rc;
}

ab_status
db_decisions_json(struct db *db, const char *key, char **out)
{
    const char *params[1] = {key};
    return db_text(
        db, "decisions",
        "SELECT coalesce(json_agg(json_build_object("
        " 'id', d.id, 'at', to_char(d.at AT TIME ZONE 'UTC',"
        "  'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
        " 'action', d.action, 'from_state', d.from_state,"
        " 'to_state', d.to_state, 'actor', d.actor, 'reason', d.reason,"
        " 'details', d.details) ORDER BY d.id), '[]')::text"
        " FROM arbiter.decision_log d JOIN arbiter.experiments e"
        " ON e.id = d.experiment_id WHERE e.key = $1",
        1, params, out);
}

/* ---- exposures --------------------------------------------------------- */

/* The row of a unit describes its exposure under the newest bucket
 * version it was seen with: the arm of its first exposure under that
 * version is kept (the sticky store), later exposures only add counts.
 * An exposure under a higher bucket_version (re-randomized on purpose,
 * DESIGN.md "Versions") replaces the row, and the per-arm totals move the
 * unit and its exposures from the old arm to the new one; exposures
 * under a lower version than the row's (an instance that has not reloaded
 * yet) belong to a superseded randomization and are not counted. So the
 * totals always equal a recomputation over the rows:
 *
 *   totals(e, arm) = (count(*), sum(count)) of exposure_units(e, arm)
 *
 * 'old' locks the rows this batch touches, so the arm and count it reads
 * are the ones the upsert replaces (and another instance writing the same
 * unit waits). The upsert's one-time filter on 'old' makes PostgreSQL
 * read and lock it before the first row is written: a row already
 * updated by this statement would otherwise be skipped by FOR UPDATE. */
#define NEWER "excluded.bucket_version > x.bucket_version"
#define OLDER "excluded.bucket_version < x.bucket_version"
static const char exposures_sql[] =
    "WITH input AS ("
    "  SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[],"
    "    $4::int[], $5::bigint[], $6::float8[], $7::bigint[], $8::bigint[],"
    "    $9::bigint[]) AS t(experiment_id, unit, arm, bucket_version,"
    "    weights_version, propensity, first_ms, last_ms, count)"
    "  ORDER BY experiment_id, unit),"
    " old AS ("
    "  SELECT x.experiment_id, x.unit, x.arm, x.bucket_version, x.count"
    "  FROM arbiter.exposure_units x JOIN input i USING (experiment_id, unit)"
    "  ORDER BY x.experiment_id, x.unit FOR UPDATE OF x),"
    " up AS ("
    "  INSERT INTO arbiter.exposure_units AS x (experiment_id, unit, arm,"
    "    bucket_version, weights_version, propensity, first_seen, last_seen,"
    "    count)"
    "  SELECT experiment_id, unit, arm, bucket_version, weights_version,"
    "    propensity, to_timestamp(first_ms / 1000.0),"
    "    to_timestamp(last_ms / 1000.0), count FROM input"
    "  WHERE (SELECT count(*) FROM old) >= 0" /* lock before the upsert */
    "  ON CONFLICT (experiment_id, unit) DO UPDATE SET"
    "    arm = CASE WHEN " NEWER " THEN excluded.arm ELSE x.arm END,"
    "    weights_version = CASE WHEN " NEWER
    "      THEN excluded.weights_version ELSE x.weights_version END,"
    "    propensity = CASE WHEN " NEWER
    "      THEN excluded.propensity ELSE x.propensity END,"
    "    first_seen = CASE WHEN " NEWER " THEN excluded.first_seen"
    "      ELSE least(x.first_seen, excluded.first_seen) END,"
    "    last_seen = greatest(x.last_seen, excluded.last_seen),"
    "    count = CASE WHEN " NEWER " THEN excluded.count"
    "      WHEN " OLDER " THEN x.count ELSE x.count + excluded.count END,"
    "    bucket_version = greatest(x.bucket_version, excluded.bucket_version)"
    "  RETURNING x.experiment_id, x.unit, x.arm, x.bucket_version,"
    "    (xmax = 0) AS inserted),"
    " delta AS ("
    "  SELECT up.experiment_id, up.arm,"
    "    (up.inserted OR coalesce(o.bucket_version < up.bucket_version,"
    "     false))::int AS units,"
    "    CASE WHEN i.bucket_version < up.bucket_version THEN 0"
    "      ELSE i.count END AS exposures"
    "  FROM up JOIN input i USING (experiment_id, unit)"
    "  LEFT JOIN old o USING (experiment_id, unit)"
    "  UNION ALL"
    "  SELECT o.experiment_id, o.arm, -1, -o.count"
    "  FROM old o JOIN up USING (experiment_id, unit)"
    "  WHERE o.bucket_version < up.bucket_version),"
    " agg AS ("
    "  SELECT experiment_id, arm, sum(units) AS units,"
    "    sum(exposures) AS exposures"
    "  FROM delta GROUP BY 1, 2 ORDER BY 1, 2)"
    " INSERT INTO arbiter.exposure_arm_totals AS t"
    "  (experiment_id, arm, units, exposures)"
    " SELECT experiment_id, arm, units, exposures FROM agg"
    " ON CONFLICT (experiment_id, arm) DO UPDATE SET"
    "  units = t.units + excluded.units,"
    "  exposures = t.exposures + excluded.exposures";
#undef NEWER
#undef OLDER

enum { X_EXP, X_UNIT, X_ARM, X_BUCKET, X_WEIGHTS, X_PROP, X_FIRST, X_LAST,
       X_COUNT, N_X };

ab_status
db_exposures_write(struct db *db, const struct db_exposure *rows, size_t n)
{
    struct pgarray a[N_X];
    for (int k = 0; k < N_X; k++)
        pgarray_begin(&a[k]);
    for (size_t i = 0; i < n; i++) {
        const struct db_exposure *r = &rows[i];
        pgarray_int(&a[X_EXP], r->experiment_id);
        pgarray_text(&a[X_UNIT], r->unit);
        pgarray_text(&a[X_ARM], r->arm);
        pgarray_int(&a[X_BUCKET], r->bucket_version);
        pgarray_int(&a[X_WEIGHTS], r->weights_version);
        pgarray_double(&a[X_PROP], r->propensity);
        pgarray_int(&a[X_FIRST], r->first_ms);
        pgarray_int(&a[X_LAST], r->last_ms);
        pgarray_int(&a[X_COUNT], r->count);
    }
    const char *params[N_X];
    for (int k = 0; k < N_X; k++)
        params[k] = pgarray_end(&a[k]);
    PGresult *res = db_run(db, "exposures write", exposures_sql, N_X, params,
                           PGRES_COMMAND_OK, DB_RETRY);
    ab_status rc = db_res_ok(res, PGRES_COMMAND_OK) ? AB_OK : AB_EDB;
    PQclear(res);
    for (int k = 0; k < N_X; k++)
        free(a[k].p);
    return rc;
}

ab_status
db_sticky_get(struct db *db, int64_t experiment_id, const char *unit,
              int32_t min_bucket_version, char **arm)
{
    char id[32], mbv[16];
    snprintf(id, sizeof(id), "%lld", (long long)experiment_id);
    snprintf(mbv, sizeof(mbv), "%d", (int)min_bucket_version);
    const char *params[3] = {id, unit, mbv};
    PGresult *res = db_run(db, "sticky get",
                           "SELECT arm FROM arbiter.exposure_units"
                           " WHERE experiment_id = $1::bigint AND unit = $2"
                           " AND bucket_version >= $3::int",
                           3, params, PGRES_TUPLES_OK, DB_RETRY);
    ab_status rc = AB_OK;
    if (!db_res_ok(res, PGRES_TUPLES_OK))
        rc = AB_EDB;
    else if (PQntuples(res) == 0)
        rc = AB_ENOTFOUND;
    else
        *arm = ab_xstrdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return rc;
}

/* ---- change notification ----------------------------------------------- */

ab_status
db_listen(struct db *db, const char *channel)
{
    if (db_ensure(db) != AB_OK)
        return AB_EDB;
    char *ident = PQescapeIdentifier(db->conn, channel, strlen(channel));
    if (ident == NULL)
        return AB_EDB;
    char sql[256];
    snprintf(sql, sizeof(sql), "LISTEN %s", ident);
    PQfreemem(ident);
    return exec_simple(db, "listen", sql, DB_ONCE);
}

/* Hand every notification received to fn (when given) and free it; *got
 * true when there was one. */
static void
drain_notifies(struct db *db, bool *got,
               void (*fn)(void *arg, const char *payload), void *arg)
{
    for (;;) {
        PGnotify *note = PQnotifies(db->conn);
        if (note == NULL)
            return;
        *got = true;
        if (fn)
            fn(arg, note->extra ? note->extra : "");
        PQfreemem(note);
    }
}

ab_status
db_wait_notify(struct db *db, int timeout_ms, bool *got)
{
    return db_wait_notify_payloads(db, timeout_ms, got, NULL, NULL);
}

ab_status
db_wait_notify_payloads(struct db *db, int timeout_ms, bool *got,
                        void (*fn)(void *arg, const char *payload), void *arg)
{
    *got = false;
    if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK)
        return AB_EDB;
    drain_notifies(db, got, fn, arg);
    if (*got)
        return AB_OK;
    struct pollfd pfd = {.fd = PQsocket(db->conn), .events = POLLIN};
    if (pfd.fd < 0)
        return AB_EDB;
    int r = poll(&pfd, 1, timeout_ms);
    if (r < 0)
        return errno == EINTR ? AB_OK : AB_EDB;
    if (r == 0)
        return AB_OK;
    if (!PQconsumeInput(db->conn) || PQstatus(db->conn) != CONNECTION_OK) {
        db_report(db, "listen", NULL);
        return AB_EDB;
    }
    drain_notifies(db, got, fn, arg);
    return AB_OK;
}

ab_status
db_exposure_counts_json(struct db *db, const char *key, char **out)
{
    const char *params[1] = {key};
    return db_text(
        db, "exposure counts",
        "SELECT coalesce(json_agg(json_build_object('arm', t.arm,"
        " 'units', t.units, 'exposures', t.exposures) ORDER BY t.arm),"
        " '[]')::text FROM arbiter.exposure_arm_totals t"
        " JOIN arbiter.experiments e ON e.id = t.experiment_id"
        " WHERE e.key = $1",
        1, params, out);
}

PGconn *
db_conn(struct db *db)
{
    return db_ensure(db) == AB_OK ? db->conn : NULL;
}
