/* app.h -- process-wide state of `arbiter serve`: configuration, the
 * current assignment snapshot, the database pool, the exposure writer and
 * the config listener. Handlers reach it through ctx->app.
 */
#ifndef SERVICE_APP_H
#define SERVICE_APP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/experiment.h"
#include "lib/status.h"
#include "service/exposures.h"

struct db;

struct app_config {
    char host[64];
    int port;
    char *database_url;
    /* token lists: each holds one or more tokens separated by ',' or
     * whitespace (api/server.c); NULL or "" when the scope has none */
    char *admin_token;
    char *client_token;
    char *readonly_token; /* results, verdicts, definitions, decisions */
    int log_level;
    int threads;              /* HTTP worker threads */
    size_t conn_memory;       /* libmicrohttpd per-connection memory */
    size_t exposure_queue;    /* max exposures waiting to be written */
    int sticky_timeout_ms;    /* bound on a sticky-store lookup */
    size_t sticky_cache;      /* max units in the sticky cache */
    int reload_interval_ms;   /* backstop reload besides LISTEN/NOTIFY */
    bool migrate_only;
    /* ingestion (service/ingest.c) */
    char *spool_dir;          /* default var/spool/<host>-<port> */
    size_t spool_max;         /* bytes */
    size_t ingest_queue;      /* events waiting for the writer */
    int event_retention_days; /* raw events and idempotency keys */
    /* decision leader (service/leader.c) */
    int tick_ms;              /* leader tick: lock attempts and jobs */
    int decision_tick_ms;     /* rollout decisions (service/rollout_job.c) */
};

/* An immutable set of experiments. Readers hold a reference while they
 * use it; a config change builds a new one and swaps the pointer. It
 * lives in service/ (not core/) because it carries process state: metric
 * counters and a reference count. */
struct snapshot {
    _Atomic long refs;
    int64_t version; /* increases by one per build in this process */
    struct core_experiment **exps; /* sorted by key */
    size_t n;
    _Atomic uint64_t ***counters; /* [exp][arm] assignments_total */
};

struct sticky_cache;   /* service/sticky.c */
struct exposure_writer; /* service/exposures.c */
struct ingest;          /* service/ingest.c */
struct leader;          /* service/leader.c */

struct app {
    struct app_config cfg;
    pthread_mutex_t snap_lock;
    struct snapshot *snap;
    pthread_mutex_t reload_lock;
    int64_t snap_builds;

    pthread_mutex_t pool_lock;
    struct db *pool[64];
    size_t n_pool;
    struct db *sticky_db; /* own connection, bounded statement timeout */
    pthread_mutex_t sticky_db_lock;

    struct sticky_cache *sticky;
    struct db_lender lender; /* this pool, for workers that borrow */
    struct exposure_writer *writer;
    struct ingest *ingest;
    struct leader *leader; /* runs the reweight job while it leads */

    pthread_t listener;
    bool listener_started;
    atomic_bool stopping;

    /* registered metrics */
    _Atomic int64_t m_db_up;
    _Atomic int64_t m_snapshot_version;
    _Atomic int64_t m_snapshot_experiments;
    _Atomic int64_t m_reloads;
    _Atomic int64_t m_reload_errors;
    _Atomic int64_t m_sticky_lookups;
    _Atomic int64_t m_sticky_unavailable;
};

/* Start-up and shutdown of the pieces above (service/app.c). */
ab_status app_init(struct app *app);
void app_start_listener(struct app *app);
void app_shutdown(struct app *app);

/* Reference the current snapshot (never NULL after start-up); release with
 * app_snapshot_release(). */
struct snapshot *app_snapshot_get(struct app *app);
void app_snapshot_release(struct snapshot *s);
/* Binary search by key; NULL when absent. */
struct core_experiment *snapshot_find(const struct snapshot *s,
                                      const char *key, size_t *index);

/* Rebuild the snapshot from the database now (handlers call it after a
 * write, with their own connection, so a caller reads its own writes). */
ab_status app_reload(struct app *app, struct db *db);

/* Borrow a pooled connection (NULL when the database is unreachable);
 * return it with app_db_put(). */
struct db *app_db_get(struct app *app);
void app_db_put(struct app *app, struct db *db);
bool app_db_up(struct app *app);

/* Exposure recording (struct exposure: service/exposures.h): never blocks
 * on the database. */
void app_expose(struct app *app, const struct exposure *x);

/* Sticky store: the arm a unit was first exposed to, or NULL. Looks in the
 * cache, then (bounded by sticky_timeout_ms, skipped while the database is
 * down) in PostgreSQL. *found_db_error is set when the store could not be
 * asked. Result is a new string (free()). */
char *app_sticky_lookup(struct app *app, const struct core_experiment *e,
                        const char *unit, bool *store_unavailable);
void app_sticky_remember(struct app *app, const struct core_experiment *e,
                         const char *unit, const char *arm);

#endif /* SERVICE_APP_H */
