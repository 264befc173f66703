/* app.h -- process-wide state of `arbiter serve`: configuration, the
 * current assignment snapshot, the database pool (lent to workers through
 * struct db_lender), the sticky cache and store, the config listener, and
 * the handles of the workers cli/cmd_serve.c starts (exposure writer,
 * ingest, decision leader). Handlers reach it through ctx->app; workers
 * take only what they need (a connection getter, a clock).
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
#include "service/hazard.h"

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
    int commit_timeout_ms;    /* client-side bound of an event commit */
    size_t metrics_label_sets; /* /metrics label sets naming experiments */
    /* decision leader (service/leader.c) */
    int tick_ms;              /* leader tick: lock attempts and jobs */
    int decision_tick_ms;     /* rollout decisions (service/rollout_job.c) */
    /* the fold (service/fold.c) */
    int fold_checkpoint_ms;   /* per-unit values written to unit_metrics */
    int fold_max_age_ms;      /* decisions wait on older statistics */
};

/* One experiment of the snapshot with its assignment counters. Shared by
 * every snapshot that holds it: a reload that changes one experiment makes
 * one new entry and shares the others (service/app.c). */
struct snapshot_entry {
    struct core_experiment *e;
    _Atomic uint64_t **counters; /* [arm] assignments_total */
    char *mark;                  /* the row's change mark (sql/db_snapshot.h) */
    long refs;                   /* snapshots holding it (under reload_lock) */
};

/* An immutable set of experiments, read without a lock: a reader holds it
 * between app_snapshot_get() and app_snapshot_release() (a hazard pointer,
 * service/hazard.h); a config change builds a new one and swaps the
 * pointer, and the old one is freed once no reader holds it. It lives in
 * service/ (not core/) because it carries process state: metric counters.
 * exps[i] == entries[i]->e and counters[i] == entries[i]->counters. */
struct snapshot {
    int64_t version; /* increases by one per build in this process */
    struct core_experiment **exps; /* sorted by key (strcmp) */
    size_t n;
    _Atomic uint64_t ***counters; /* [exp][arm] assignments_total */
    struct snapshot_entry **entries;
};

struct sticky_cache;   /* service/sticky.c */
struct exposure_writer; /* service/exposures.c */
struct ingest;          /* service/ingest.c */
struct leader;          /* service/leader.c */

struct app {
    struct app_config cfg;
    void *_Atomic snap;          /* struct snapshot *, read lock-free */
    pthread_mutex_t reload_lock; /* one snapshot writer at a time */
    int64_t snap_builds;
    struct hazard_retired snap_retired; /* replaced, maybe still read */

    pthread_mutex_t pool_lock;
    struct db *pool[64];
    size_t n_pool;
    struct db *sticky_db; /* own connection, bounded statement timeout */
    pthread_mutex_t sticky_db_lock;

    struct sticky_cache *sticky;
    struct db_lender lender; /* this pool, for workers that borrow */
    struct exposure_writer *writer;
    struct ingest *ingest;
    struct leader *leader; /* runs the leader jobs (fold, event
                              maintenance, bandit reweight, rollout
                              decisions) while it holds the lock */

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

/* The current snapshot (never NULL after start-up), taking no lock;
 * release it on the same thread with app_snapshot_release(). A thread may
 * hold up to HAZARD_PER_THREAD snapshots at once. */
struct snapshot *app_snapshot_get(struct app *app);
void app_snapshot_release(struct snapshot *s);
/* Binary search by key; NULL when absent. */
struct core_experiment *snapshot_find(const struct snapshot *s,
                                      const char *key, size_t *index);

/* Bring the snapshot up to date with the database: fetch every
 * experiment's change mark, then fetch and parse only the experiments
 * that changed, were added or were removed; unchanged ones are shared with
 * the current snapshot. No new snapshot when nothing changed. */
ab_status app_reload(struct app *app, struct db *db);
/* The same for one experiment (handlers call it after a write, with their
 * own connection, so that a caller reads its own writes; the config
 * listener calls it per notification): cost proportional to the change,
 * whatever the number of experiments. */
ab_status app_reload_key(struct app *app, struct db *db, const char *key);

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
 * down) in PostgreSQL. *store_unavailable is set when the store could not
 * be asked. Result is a new string (free()). */
char *app_sticky_lookup(struct app *app, const struct core_experiment *e,
                        const char *unit, bool *store_unavailable);
void app_sticky_remember(struct app *app, const struct core_experiment *e,
                         const char *unit, const char *arm);

#endif /* SERVICE_APP_H */
