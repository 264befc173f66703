/* db.h -- the only door to PostgreSQL (sql/ is the only folder that
 * includes libpq-fe.h, through its private sql/db_int.h). One struct db is one connection, used by one thread
 * at a time. Every call returns AB_EDB when the database fails or is
 * unreachable; the detail goes to the log callback, never to the caller.
 */
#ifndef SQL_DB_H
#define SQL_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/status.h"

struct db;

/* Where db.c reports errors (set once at start-up; default: silent). */
typedef void db_log_fn(const char *what, const char *detail);
void db_set_logger(db_log_fn *fn);

/* Connect; stores a new handle in *out (release with db_close()). The URL
 * is a libpq connection string or URI. AB_EDB when unreachable. */
ab_status db_open(const char *url, struct db **out);
void db_close(struct db *db);
/* Reconnect when the connection is bad; AB_OK if it is (now) usable. */
ab_status db_ensure(struct db *db);
ab_status db_ping(struct db *db);
/* Per-statement timeout for this connection (0: none). */
ab_status db_set_timeout(struct db *db, int ms);

/* A connection whose waits are bounded on the client side (issue 14): the
 * connect, and every db_events_write() and db_events_probe() on it, give
 * up after deadline_ms even when the server is stopped and never answers
 * (a server-side statement_timeout cannot fire then); the connection is
 * dropped and the call answers AB_EDB. timeout_ms is the server-side
 * statement_timeout (0: none), sent with the connect. Release with
 * db_close(). deadline_ms 0 is db_open(). */
ab_status db_open_bounded(const char *url, int deadline_ms, int timeout_ms,
                          struct db **out);
/* Change the client-side bound of later calls (ms > 0). */
void db_set_deadline(struct db *db, int ms);
/* Past the client-side deadline of a db_events_write(), keep waiting in
 * 50 ms slices while patient(arg) answers true (NULL: give up at the
 * deadline). For a caller nobody is waiting on while it waits (the spool
 * replay of acknowledged events, while no new request is held up). */
void db_set_patience(struct db *db, bool (*patient)(void *arg), void *arg);
/* True once after a call gave up at its client-side deadline. */
bool db_take_timed_out(struct db *db);

/* ---- migrations -------------------------------------------------------- */
struct db_migration {
    int version;
    const char *name;
    const char *sql;
};
/* Apply pending migrations in order, each in its own transaction, under an
 * advisory lock (several processes may start at once). *applied gets the
 * number applied now. AB_ECONFLICT when the database has a migration newer
 * than any we know (we refuse to run against it). */
ab_status db_migrate(struct db *db, const struct db_migration *m, size_t n,
                     int *applied, int *schema_version);

/* ---- transactions ------------------------------------------------------ */
/* BEGIN / COMMIT / ROLLBACK on this connection. Inside a transaction no
 * statement is retried on a new connection (it would run outside the
 * transaction). db_commit() is AB_OK only when the transaction committed;
 * after any other answer it is over (rolled back). A connection goes back
 * to the pool only outside a transaction. */
ab_status db_begin(struct db *db);
ab_status db_commit(struct db *db);
void db_rollback(struct db *db);
/* Inside a transaction: wait for, and hold until its end, the lock that
 * serializes writers of one layer (pg_advisory_xact_lock). */
ab_status db_layer_lock(struct db *db, const char *layer);

/* ---- experiments ------------------------------------------------------- */
struct db_experiment {
    int64_t id;
    char *key;
    char *definition; /* canonical definition JSON */
    char *state;      /* draft | running | paused | stopped */
    int64_t version;
    int64_t weights_version;
    char *created_at, *updated_at; /* RFC 3339 */
};
void db_experiment_clear(struct db_experiment *e);
void db_experiment_list_free(struct db_experiment *list, size_t n);

/* All experiments, ordered by key. */
ab_status db_experiment_list(struct db *db, struct db_experiment **out,
                             size_t *n_out);
/* AB_ENOTFOUND when there is no such key. */
ab_status db_experiment_get(struct db *db, const char *key,
                            struct db_experiment *out);
/* Insert a draft; records weights version 1 and a 'create' decision, and
 * notifies every instance. AB_ECONFLICT when the key exists. */
ab_status db_experiment_insert(struct db *db, const char *key,
                               const char *definition, const char *weights,
                               struct db_experiment *out);
/* Replace the definition if the row is still at expect_version
 * (AB_ECONFLICT otherwise). weights != NULL: the weights changed, raise
 * weights_version and record them. Records a 'patch' decision. */
ab_status db_experiment_update(struct db *db, const char *key,
                               int64_t expect_version, const char *definition,
                               const char *weights, const char *details,
                               struct db_experiment *out);
/* Move from one of the 'from' states (comma separated) to 'to', recording
 * the decision with actor and reason. AB_ENOTFOUND, or AB_ECONFLICT when the
 * current state is not one of 'from'. */
ab_status db_experiment_transition(struct db *db, const char *key,
                                   const char *from, const char *to,
                                   const char *action, const char *actor,
                                   const char *reason,
                                   struct db_experiment *out);

/* Decisions of one experiment, newest last, as a JSON array text (new
 * string, free()). */
ab_status db_decisions_json(struct db *db, const char *key, char **out);

/* ---- exposures --------------------------------------------------------- */
struct db_exposure {
    int64_t experiment_id;
    const char *unit;
    const char *arm;
    int32_t bucket_version;
    int64_t weights_version;
    double propensity;
    int64_t first_ms, last_ms; /* epoch milliseconds */
    int64_t count;
};
/* Upsert a batch (unique per (experiment_id, unit)): keeps the first arm
 * under the row's bucket version, widens first/last seen, adds counts; an
 * exposure under a higher bucket version (re-randomized) replaces the row
 * and moves the unit between arms in the per-arm totals, which always
 * equal a recomputation over the rows. One statement, one transaction. */
ab_status db_exposures_write(struct db *db, const struct db_exposure *rows,
                             size_t n);
/* Per-arm exposure totals of one experiment as a JSON array text:
 * [{"arm","units","exposures"}] (new string, free()). */
ab_status db_exposure_counts_json(struct db *db, const char *key,
                                  char **out);
/* The arm of a unit's first exposure, or AB_ENOTFOUND. *arm is a new
 * string (free()). */
ab_status db_sticky_get(struct db *db, int64_t experiment_id, const char *unit,
                        int32_t min_bucket_version, char **arm);

/* ---- change notification ----------------------------------------------- */
#define DB_CONFIG_CHANNEL "arbiter_config"
ab_status db_listen(struct db *db, const char *channel);
/* Wait up to timeout_ms for a notification. *got is true when one (or
 * more: they are drained) arrived. AB_EDB when the connection broke. */
ab_status db_wait_notify(struct db *db, int timeout_ms, bool *got);
/* The same, handing each notification's payload to fn (an experiment key
 * for every notification arbiter sends); *got as above. */
ab_status db_wait_notify_payloads(struct db *db, int timeout_ms, bool *got,
                                  void (*fn)(void *arg, const char *payload),
                                  void *arg);

/* A query returning one row of one text column (JSON documents built by
 * PostgreSQL): a new string in *out (free()); SQL NULL reads as "null".
 * AB_EDB otherwise. (The other files of sql/ run statements through the
 * private sql/db_int.h.) */
ab_status db_text(struct db *db, const char *what, const char *sql, int n,
                  const char *const *params, char **out);

/* Run arbitrary SQL returning nothing (tests, tooling). */
ab_status db_exec(struct db *db, const char *sql);

/* A connection lender: how a worker borrows a pooled connection without
 * knowing the process that owns the pool. get() answers NULL when the
 * database is unreachable; every non-NULL connection goes back by put(). */
struct db_lender {
    struct db *(*get)(void *ctx);
    void (*put)(void *ctx, struct db *db);
    void *ctx;
};

#endif /* SQL_DB_H */
