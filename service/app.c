/* app.c -- process state of `arbiter serve` (see app.h): the snapshot and
 * its swap, the connection pool, the sticky store, the config listener.
 *
 * Snapshot swap: readers take snap_lock only to copy the pointer and bump
 * its reference count (a few nanoseconds, never across I/O); the builder
 * makes the new snapshot without the lock and swaps under it. The old one
 * is freed by whichever reader releases it last.
 */
#include "service/app.h"
#include "lib/clock.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/experiment_json.h"
#include "service/exposures.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "service/sticky.h"
#include "sql/db.h"
#include "sql/db_rollout.h"

/* ---- snapshot ----------------------------------------------------------- */

static void
snapshot_free(struct snapshot *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->counters[i]);
        core_experiment_free(s->exps[i]);
    }
    free(s->counters);
    free(s->exps);
    free(s);
}

struct snapshot *
app_snapshot_get(struct app *app)
{
    pthread_mutex_lock(&app->snap_lock);
    struct snapshot *s = app->snap;
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&app->snap_lock);
    return s;
}

void
app_snapshot_release(struct snapshot *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        snapshot_free(s);
}

struct core_experiment *
snapshot_find(const struct snapshot *s, const char *key, size_t *index)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key, s->exps[mid]->key);
        if (c == 0) {
            if (index)
                *index = mid;
            return s->exps[mid];
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static void
swap_in(struct app *app, struct snapshot *s)
{
    pthread_mutex_lock(&app->snap_lock);
    struct snapshot *old = app->snap;
    app->snap = s;
    pthread_mutex_unlock(&app->snap_lock);
    atomic_store(&app->m_snapshot_version, s->version);
    atomic_store(&app->m_snapshot_experiments, (int64_t)s->n);
    app_snapshot_release(old);
}

ab_status
app_reload(struct app *app, struct db *db)
{
    struct db_experiment *rows = NULL;
    size_t n = 0;
    pthread_mutex_lock(&app->reload_lock);
    ab_status rc = db_experiment_list(db, &rows, &n);
    if (rc != AB_OK) {
        pthread_mutex_unlock(&app->reload_lock);
        atomic_fetch_add(&app->m_reload_errors, 1);
        return rc;
    }
    /* promoted / rolled-back experiments: the arm they serve */
    char *served_text = NULL;
    json_t *served = NULL;
    if (db_served_arms_json(db, &served_text) == AB_OK)
        served = json_loads(served_text, 0, NULL);
    free(served_text);
    struct snapshot *s = ab_xcalloc(1, sizeof(*s));
    s->exps = ab_xcalloc(n ? n : 1, sizeof(*s->exps));
    s->counters = ab_xcalloc(n ? n : 1, sizeof(*s->counters));
    for (size_t i = 0; i < n; i++) {
        char err[256];
        struct core_experiment *e = NULL;
        json_error_t jerr;
        json_t *doc = json_loads(rows[i].definition, 0, &jerr);
        if (doc == NULL ||
            api_experiment_parse(doc, &e, err, sizeof(err)) != AB_OK) {
            log_msg(LOG_ERROR, "stored definition does not parse",
                    "experiment", rows[i].key, "error",
                    doc ? err : jerr.text, NULL);
            json_decref(doc);
            continue;
        }
        json_decref(doc);
        e->id = rows[i].id;
        e->version = rows[i].version;
        e->weights_version = rows[i].weights_version;
        if (core_state_parse(rows[i].state, &e->state) != AB_OK)
            e->state = CORE_STATE_DRAFT;
        e->served_arm = SIZE_MAX;
        const char *arm = json_string_value(json_object_get(served, e->key));
        for (size_t a = 0; arm && a < e->n_arms; a++)
            if (strcmp(e->arms[a].name, arm) == 0)
                e->served_arm = a;
        size_t k = s->n++;
        s->exps[k] = e;
        s->counters[k] = ab_xcalloc(e->n_arms, sizeof(*s->counters[k]));
        for (size_t a = 0; a < e->n_arms; a++)
            s->counters[k][a] = metrics_assign_counter(e->key, e->arms[a].name);
    }
    db_experiment_list_free(rows, n);
    json_decref(served);
    atomic_store(&s->refs, 1);
    s->version = ++app->snap_builds;
    swap_in(app, s);
    pthread_mutex_unlock(&app->reload_lock);
    atomic_fetch_add(&app->m_reloads, 1);
    return AB_OK;
}

/* ---- connection pool ---------------------------------------------------- */

bool
app_db_up(struct app *app)
{
    return atomic_load(&app->m_db_up) != 0;
}

struct db *
app_db_get(struct app *app)
{
    struct db *db = NULL;
    pthread_mutex_lock(&app->pool_lock);
    if (app->n_pool)
        db = app->pool[--app->n_pool];
    pthread_mutex_unlock(&app->pool_lock);
    if (db) {
        if (db_ensure(db) == AB_OK)
            return db;
        db_close(db);
        return NULL;
    }
    if (db_open(app->cfg.database_url, &db) != AB_OK)
        return NULL;
    return db;
}

void
app_db_put(struct app *app, struct db *db)
{
    if (db == NULL)
        return;
    pthread_mutex_lock(&app->pool_lock);
    if (app->n_pool < AB_ARRAY_LEN(app->pool)) {
        app->pool[app->n_pool++] = db;
        db = NULL;
    }
    pthread_mutex_unlock(&app->pool_lock);
    db_close(db);
}

/* ---- sticky store ------------------------------------------------------- */

void
app_sticky_remember(struct app *app, const struct core_experiment *e,
                    const char *unit, const char *arm)
{
    sticky_cache_put(app->sticky, e->id, unit, arm, e->bucket_version);
}

char *
app_sticky_lookup(struct app *app, const struct core_experiment *e,
                  const char *unit, bool *store_unavailable)
{
    char arm[CORE_KEY_MAX + 1];
    *store_unavailable = false;
    if (sticky_cache_get(app->sticky, e->id, unit, e->min_bucket_version, arm,
                         sizeof(arm)))
        return ab_xstrdup(arm);
    /* Until the weights or the bucket version change, the hash gives every
     * unit the arm it was first given: no need to ask the store. */
    if (e->weights_version <= 1 && e->bucket_version <= 1)
        return NULL;
    if (!app_db_up(app)) {
        *store_unavailable = true;
        return NULL;
    }
    /* never on this thread: a bounded wait for the store's lookup threads
     * (service/sticky.h), whatever state the server is in */
    char *found = NULL;
    ab_status rc = sticky_store_get(app->sticky, app->cfg.database_url,
                                    app->cfg.sticky_timeout_ms, e->id, unit,
                                    e->min_bucket_version, &found);
    atomic_fetch_add(&app->m_sticky_lookups, 1);
    if (rc == AB_OK) {
        /* the store answered for versions >= min_bucket_version */
        sticky_cache_put(app->sticky, e->id, unit, found,
                         e->min_bucket_version);
        return found;
    }
    if (rc != AB_ENOTFOUND) {
        *store_unavailable = true;
        atomic_fetch_add(&app->m_sticky_unavailable, 1);
    }
    return NULL;
}

void
app_expose(struct app *app, const struct exposure *x)
{
    exposure_writer_push(app->writer, x);
}

/* ---- config listener ------------------------------------------------------ */

/* LISTEN on the config channel; reload on every notification, and every
 * reload_interval_ms as a backstop. Tracks whether the database is up. */
static void *
listener_main(void *arg)
{
    struct app *app = arg;
    struct db *db = NULL;
    int64_t last_reload = ab_now_ms();
    int backoff_ms = 200;
    while (!atomic_load(&app->stopping)) {
        if (db == NULL) {
            if (db_open(app->cfg.database_url, &db) != AB_OK ||
                db_listen(db, DB_CONFIG_CHANNEL) != AB_OK ||
                app_reload(app, db) != AB_OK) {
                db_close(db);
                db = NULL;
                if (atomic_exchange(&app->m_db_up, 0))
                    log_msg(LOG_WARN, "database unreachable", NULL);
                struct timespec ts = {backoff_ms / 1000,
                                      (backoff_ms % 1000) * 1000000L};
                nanosleep(&ts, NULL);
                if (backoff_ms < 2000)
                    backoff_ms *= 2;
                continue;
            }
            backoff_ms = 200;
            last_reload = ab_now_ms();
            if (!atomic_exchange(&app->m_db_up, 1))
                log_msg(LOG_INFO, "database reachable", NULL);
        }
        bool got = false;
        if (db_wait_notify(db, 250, &got) != AB_OK) {
            db_close(db);
            db = NULL;
            atomic_store(&app->m_db_up, 0);
            log_msg(LOG_WARN, "database connection lost", NULL);
            continue;
        }
        int64_t now = ab_now_ms();
        if (got || now - last_reload >= app->cfg.reload_interval_ms) {
            if (app_reload(app, db) != AB_OK) {
                db_close(db);
                db = NULL;
                atomic_store(&app->m_db_up, 0);
                continue;
            }
            last_reload = now;
        }
    }
    db_close(db);
    return NULL;
}

/* ---- start-up and shutdown ----------------------------------------------- */

static struct db *
lend_get(void *ctx)
{
    return app_db_get(ctx);
}

static void
lend_put(void *ctx, struct db *db)
{
    app_db_put(ctx, db);
}

ab_status
app_init(struct app *app)
{
    pthread_mutex_init(&app->snap_lock, NULL);
    pthread_mutex_init(&app->reload_lock, NULL);
    pthread_mutex_init(&app->pool_lock, NULL);
    pthread_mutex_init(&app->sticky_db_lock, NULL);
    struct snapshot *empty = ab_xcalloc(1, sizeof(*empty));
    empty->exps = ab_xcalloc(1, sizeof(*empty->exps));
    empty->counters = ab_xcalloc(1, sizeof(*empty->counters));
    atomic_store(&empty->refs, 1);
    app->snap = empty;
    app->sticky = sticky_cache_new(app->cfg.sticky_cache);
    metrics_register("arbiter_db_up",
                     "1 when the config listener reaches PostgreSQL.",
                     METRICS_GAUGE, &app->m_db_up);
    metrics_register("arbiter_snapshot_version",
                     "Build number of the assignment snapshot in use.",
                     METRICS_GAUGE, &app->m_snapshot_version);
    metrics_register("arbiter_snapshot_experiments",
                     "Experiments in the assignment snapshot.", METRICS_GAUGE,
                     &app->m_snapshot_experiments);
    metrics_register("arbiter_snapshot_reloads_total",
                     "Snapshot rebuilds from PostgreSQL.", METRICS_COUNTER,
                     &app->m_reloads);
    metrics_register("arbiter_snapshot_reload_errors_total",
                     "Snapshot rebuilds that failed (old snapshot kept).",
                     METRICS_COUNTER, &app->m_reload_errors);
    metrics_register("arbiter_sticky_lookups_total",
                     "Sticky-store lookups that went to PostgreSQL.",
                     METRICS_COUNTER, &app->m_sticky_lookups);
    metrics_register("arbiter_sticky_unavailable_total",
                     "Sticky lookups answered by hash because the store was "
                     "unreachable or slow.",
                     METRICS_COUNTER, &app->m_sticky_unavailable);
    app->lender = (struct db_lender){lend_get, lend_put, app};
    app->writer = exposure_writer_new(&app->lender, app->cfg.exposure_queue);
    return AB_OK;
}

void
app_start_listener(struct app *app)
{
    if (pthread_create(&app->listener, NULL, listener_main, app) != 0)
        abort();
    app->listener_started = true;
}

void
app_shutdown(struct app *app)
{
    atomic_store(&app->stopping, true);
    if (app->listener_started)
        pthread_join(app->listener, NULL);
    exposure_writer_stop(app->writer, 10000);
    app->writer = NULL;
    sticky_cache_free(app->sticky);
    db_close(app->sticky_db);
    for (size_t i = 0; i < app->n_pool; i++)
        db_close(app->pool[i]);
    app->n_pool = 0;
    app_snapshot_release(app->snap);
    app->snap = NULL;
}
