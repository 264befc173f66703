/* db_int.h -- private to sql/: the connection and the one execute path.
 * Every file of sql/ runs its statements through db_run() (libpq's own
 * libpq-int.h is the model: the struct is visible only to the library).
 * Nothing outside sql/ includes this header (scripts/check-layers.sh:
 * only sql/ includes libpq-fe.h).
 *
 * The reconnect-and-retry rule, written once in db_run():
 *  - before a statement, a broken connection is reopened (db_ensure);
 *  - when the statement fails AND the connection turned out to be broken
 *    (a database restart between calls), it is run once more on a new
 *    connection;
 *  - never when the session itself matters: inside a transaction
 *    (db_begin .. db_commit) or while a session lock is held for a series
 *    of statements (db->pinned: migrations), a broken connection is an
 *    error, because a new one would run the statement outside the
 *    transaction and its locks;
 *  - never for a statement that asks DB_ONCE (its caller has its own
 *    retry, or the session is its meaning: the events writer spools and
 *    retries whole batches; the leader lock lives in the session).
 */
#ifndef SQL_DB_INT_H
#define SQL_DB_INT_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "sql/db.h"

struct db {
    PGconn *conn;
    char *url;
    int timeout_ms;
    bool in_tx;  /* between db_begin() and db_commit()/db_rollback() */
    bool pinned; /* a session lock spans several statements: no reconnect */
    int deadline_ms; /* > 0: client-side bound (db_open_bounded) */
    bool timed_out;  /* a call gave up at the deadline (db_take_timed_out) */
    bool (*patient)(void *arg); /* db_set_patience */
    void *patient_arg;
};

/* Client-side deadlines (db_open_bounded): the monotonic clock in ms; wait
 * until conn's socket is ready for events (false at the deadline or on an
 * error); drop a connection left in an unknown state (logged as what;
 * timed_out: because the deadline passed, for db_take_timed_out). */
int64_t db_mono_ms(void);
bool db_wait_socket(PGconn *conn, short events, int64_t deadline);
void db_drop(struct db *db, const char *what, bool timed_out);

/* What db_run() accepts as success: one libpq status, or DB_WANT_ANY
 * (PGRES_COMMAND_OK or PGRES_TUPLES_OK: arbitrary SQL). */
#define DB_WANT_ANY (-1)

/* db_run() flags. */
enum {
    DB_RETRY = 0,    /* the default: the rule above */
    DB_ONCE = 1 << 0 /* reconnect before, but never run twice */
};

/* Run 'sql' (n text parameters; n == 0 and params == NULL use the simple
 * protocol, which also runs several statements separated by ';').
 * Answers the result (PQclear() it) whatever its status, so a caller can
 * read the SQLSTATE, or NULL when there was no usable connection. A
 * status other than 'want' is reported to the log as 'what'. */
PGresult *db_run(struct db *db, const char *what, const char *sql, int n,
                 const char *const *params, int want, int flags);

/* The connection itself, reopened first when broken (NULL when the
 * database is unreachable), for what db_run() cannot express: COPY and
 * multi-statement transactions. Nothing run on it is retried. */
PGconn *db_conn(struct db *db);
/* True when res is non-NULL and has the status 'want' (or DB_WANT_ANY). */
bool db_res_ok(const PGresult *res, int want);

/* The SQLSTATE of a failed result ("" when none). */
const char *db_sqlstate(const PGresult *res);

/* Report a failure to the log callback (detail from res or the
 * connection). */
void db_report(struct db *db, const char *what, const PGresult *res);

/* A bigint parameter as text in the caller's buffer (returns b->s), so a
 * statement's parameter list is written in one line:
 *   struct db_i64 id;
 *   const char *p[2] = {db_i64(&id, experiment_id), doc}; */
struct db_i64 {
    char s[24];
};
const char *db_i64(struct db_i64 *b, int64_t v);

/* Column readers for a result row: NULL reads as null_value / NULL. */
int64_t db_get_i64(const PGresult *res, int row, int col, int64_t null_value);
double db_get_f64(const PGresult *res, int row, int col);
char *db_get_str(const PGresult *res, int row, int col); /* new or NULL */

#endif /* SQL_DB_INT_H */
