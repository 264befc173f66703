/* app.c -- process state of `arbiter serve` (see app.h): the snapshot and
 * its swap, the connection pool, the sticky store, the config listener.
 *
 * Snapshot reads take no lock: app->snap is an atomic pointer read under a
 * hazard pointer (service/hazard.h), so an assignment writes no cache line
 * that another thread writes (the old scheme took a global mutex and
 * bumped a shared reference count on every read). Writers (reloads) are
 * serialized by reload_lock, build the new snapshot beside the old one and
 * publish it with one atomic exchange; the old one is freed once no reader
 * holds it (at the next publish, or by the listener's periodic reclaim).
 *
 * Reloads are proportional to the change. A snapshot is a sorted array of
 * pointers to shared entries (experiment + counters + change mark); a new
 * snapshot copies the array (n pointers, a few microseconds for thousands
 * of experiments) and makes entries only for the experiments whose row
 * changed: parsing a definition and registering its counters, the costly
 * part, happens once per change, not once per experiment per reload.
 */
#include "service/app.h"
#include "lib/clock.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>

#include "codec/experiment_json.h"
#include "core/assign.h"
#include "service/exposures.h"
#include "service/listen.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "service/sticky.h"
#include "sql/db.h"
#include "sql/db_snapshot.h"

/* ---- snapshot ----------------------------------------------------------- */

static void
entry_unref(struct snapshot_entry *x)
{
    if (--x->refs > 0)
        return;
    free(x->counters);
    core_experiment_free(x->e);
    free(x->mark);
    free(x);
}

static void
snapshot_free(void *p)
{
    struct snapshot *s = p;
    for (size_t i = 0; i < s->n; i++)
        entry_unref(s->entries[i]);
    free(s->entries);
    free(s->counters);
    free(s->exps);
    free(s);
}

/* An empty snapshot with room for n experiments. */
static struct snapshot *
snapshot_alloc(size_t n)
{
    struct snapshot *s = ab_xcalloc(1, sizeof(*s));
    s->exps = ab_xcalloc(n ? n : 1, sizeof(*s->exps));
    s->counters = ab_xcalloc(n ? n : 1, sizeof(*s->counters));
    s->entries = ab_xcalloc(n ? n : 1, sizeof(*s->entries));
    return s;
}

static void
snapshot_push(struct snapshot *s, struct snapshot_entry *x)
{
    size_t i = s->n++;
    s->entries[i] = x;
    s->exps[i] = x->e;
    s->counters[i] = x->counters;
    x->refs++;
}

struct snapshot *
app_snapshot_get(struct app *app)
{
    return hazard_acquire(&app->snap);
}

void
app_snapshot_release(struct snapshot *s)
{
    hazard_release(s);
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
    if (index)
        *index = lo; /* where it would go */
    return NULL;
}

/* The snapshot in use; only for the writer (under reload_lock), which is
 * the only thread that frees snapshots. */
static struct snapshot *
current(struct app *app)
{
    return atomic_load(&app->snap);
}

static void
publish(struct app *app, struct snapshot *s)
{
    s->version = ++app->snap_builds;
    hazard_publish(&app->snap, s, &app->snap_retired);
    atomic_store(&app->m_snapshot_version, s->version);
    atomic_store(&app->m_snapshot_experiments, (int64_t)s->n);
}

/* A new entry for a stored row: NULL (logged) when its definition does not
 * parse. Derives the hash seeds and finds the counters once, here. */
static struct snapshot_entry *
entry_from_row(const struct db_snapshot_row *row)
{
    char err[256];
    struct core_experiment *e = NULL;
    json_error_t jerr;
    json_t *doc = json_loads(row->definition, 0, &jerr);
    if (doc == NULL ||
        api_experiment_parse(doc, &e, err, sizeof(err)) != AB_OK) {
        log_msg(LOG_ERROR, "stored definition does not parse", "experiment",
                row->key, "error", doc ? err : jerr.text, NULL);
        json_decref(doc);
        return NULL;
    }
    json_decref(doc);
    e->id = row->id;
    e->version = row->version;
    e->weights_version = row->weights_version;
    if (core_state_parse(row->state, &e->state) != AB_OK)
        e->state = CORE_STATE_DRAFT;
    /* promoted / rolled-back experiments: the arm they serve */
    e->served_arm = SIZE_MAX;
    for (size_t a = 0; row->served_arm && a < e->n_arms; a++)
        if (strcmp(e->arms[a].name, row->served_arm) == 0)
            e->served_arm = a;
    core_assign_prepare(e);
    struct snapshot_entry *x = ab_xcalloc(1, sizeof(*x));
    x->e = e;
    x->mark = ab_xstrdup(row->mark);
    x->counters = ab_xcalloc(e->n_arms ? e->n_arms : 1, sizeof(*x->counters));
    /* the experiment's own label set first, then its arms' (the label-set
     * limit admits or folds them in this order, lib/metrics.h) */
    (void)metrics_experiment_labelled(e->key);
    for (size_t a = 0; a < e->n_arms; a++)
        x->counters[a] = metrics_assign_counter(e->key, e->arms[a].name);
    return x;
}

static bool
entry_is(const struct snapshot_entry *x, int64_t id, const char *mark)
{
    return x->e->id == id && strcmp(x->mark, mark) == 0;
}

static int
mark_cmp(const void *a, const void *b)
{
    const struct db_snapshot_mark *x = a, *y = b;
    return strcmp(x->key, y->key);
}

static struct db_snapshot_mark *
mark_find(struct db_snapshot_mark *m, size_t n, const char *key)
{
    struct db_snapshot_mark want = {.key = (char *)key};
    return bsearch(&want, m, n, sizeof(*m), mark_cmp);
}

static ab_status
reload_all(struct app *app, struct db *db)
{
    struct db_snapshot_mark *marks = NULL;
    size_t n = 0;
    if (db_snapshot_marks(db, &marks, &n) != AB_OK)
        return AB_EDB;
    /* byte order, as snapshot_find() searches (not the database's
     * collation) */
    qsort(marks, n, sizeof(*marks), mark_cmp);
    struct snapshot *cur = current(app);
    struct snapshot_entry **slot = ab_xcalloc(n ? n : 1, sizeof(*slot));
    int64_t *fetch = ab_xmalloc((n ? n : 1) * sizeof(*fetch));
    size_t n_fetch = 0, kept = 0, j = 0;
    for (size_t i = 0; i < n; i++) {
        while (j < cur->n && strcmp(cur->exps[j]->key, marks[i].key) < 0)
            j++;
        if (j < cur->n && entry_is(cur->entries[j], marks[i].id,
                                   marks[i].mark)) {
            slot[i] = cur->entries[j];
            kept++;
        } else
            fetch[n_fetch++] = marks[i].id;
    }
    ab_status rc = AB_OK;
    if (n_fetch == 0 && kept == cur->n)
        goto done; /* nothing changed */
    struct db_snapshot_row *rows = NULL;
    size_t n_rows = 0;
    if (n_fetch &&
        db_snapshot_rows_by_id(db, fetch, n_fetch, &rows, &n_rows) != AB_OK) {
        rc = AB_EDB;
        goto done;
    }
    for (size_t r = 0; r < n_rows; r++) {
        struct db_snapshot_mark *m = mark_find(marks, n, rows[r].key);
        if (m == NULL || slot[m - marks] != NULL)
            continue; /* renamed or re-created since the marks were read */
        slot[m - marks] = entry_from_row(&rows[r]);
    }
    db_snapshot_rows_free(rows, n_rows);
    struct snapshot *s = snapshot_alloc(n);
    for (size_t i = 0; i < n; i++)
        if (slot[i])
            snapshot_push(s, slot[i]);
    publish(app, s);
done:
    free(fetch);
    free(slot);
    db_snapshot_marks_free(marks, n);
    return rc;
}

ab_status
app_reload(struct app *app, struct db *db)
{
    pthread_mutex_lock(&app->reload_lock);
    ab_status rc = reload_all(app, db);
    pthread_mutex_unlock(&app->reload_lock);
    atomic_fetch_add(rc == AB_OK ? &app->m_reloads : &app->m_reload_errors,
                     1);
    return rc;
}

static ab_status
reload_key(struct app *app, struct db *db, const char *key)
{
    struct db_snapshot_row row = {0};
    ab_status rc = db_snapshot_row_by_key(db, key, &row);
    if (rc != AB_OK && rc != AB_ENOTFOUND)
        return rc;
    struct snapshot *cur = current(app);
    size_t at;
    bool present = snapshot_find(cur, key, &at) != NULL;
    if (rc == AB_OK && present && entry_is(cur->entries[at], row.id, row.mark)) {
        db_snapshot_row_clear(&row);
        return AB_OK; /* already up to date */
    }
    struct snapshot_entry *x = rc == AB_OK ? entry_from_row(&row) : NULL;
    db_snapshot_row_clear(&row);
    if (x == NULL && !present)
        return AB_OK; /* gone, or does not parse, and not in the snapshot */
    struct snapshot *s = snapshot_alloc(cur->n + 1);
    for (size_t i = 0; i < at; i++)
        snapshot_push(s, cur->entries[i]);
    if (x)
        snapshot_push(s, x);
    for (size_t i = at + (present ? 1 : 0); i < cur->n; i++)
        snapshot_push(s, cur->entries[i]);
    publish(app, s);
    return AB_OK;
}

ab_status
app_reload_key(struct app *app, struct db *db, const char *key)
{
    pthread_mutex_lock(&app->reload_lock);
    ab_status rc = reload_key(app, db, key);
    pthread_mutex_unlock(&app->reload_lock);
    atomic_fetch_add(rc == AB_OK ? &app->m_reloads : &app->m_reload_errors,
                     1);
    return rc;
}

/* Free the replaced snapshots that no reader holds any more. */
static void
snapshot_reclaim(struct app *app)
{
    pthread_mutex_lock(&app->reload_lock);
    hazard_reclaim(&app->snap_retired);
    pthread_mutex_unlock(&app->reload_lock);
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

/* Keys named by the notifications of one wait (each notification names
 * the experiment it changed); past NOTE_KEYS, or for a payload that names
 * nothing, the whole snapshot is brought up to date instead. */
#define NOTE_KEYS 64
struct notes {
    char keys[NOTE_KEYS][CORE_KEY_MAX + 1];
    size_t n;
    bool all;
};

/* The config listener's state between callbacks (listener_main). */
struct listener {
    struct app *app;
    struct notes nt;
    int64_t last_reload;
};

static void
note_cb(void *arg, const char *payload)
{
    struct notes *nt = &((struct listener *)arg)->nt;
    size_t len = strlen(payload);
    if (len == 0 || len > CORE_KEY_MAX || nt->n == NOTE_KEYS) {
        nt->all = true;
        return;
    }
    for (size_t i = 0; i < nt->n; i++)
        if (strcmp(nt->keys[i], payload) == 0)
            return;
    memcpy(nt->keys[nt->n++], payload, len + 1);
}

static ab_status
listener_connected(void *arg, struct db *db)
{
    struct listener *ls = arg;
    ls->nt.n = 0;
    ls->nt.all = false;
    ls->last_reload = ab_now_ms();
    return app_reload(ls->app, db);
}

/* Reload the experiment each notification names, or the whole snapshot
 * (changed rows only) when they named too many or reload_interval_ms
 * passed (the backstop); then free the snapshots no reader holds. */
static ab_status
listener_woke(void *arg, struct db *db, bool got)
{
    (void)got; /* the notes say what changed */
    struct listener *ls = arg;
    struct app *app = ls->app;
    int64_t now = ab_now_ms();
    ab_status rc = AB_OK;
    if (ls->nt.all || now - ls->last_reload >= app->cfg.reload_interval_ms) {
        rc = app_reload(app, db);
        ls->last_reload = now;
    } else {
        for (size_t i = 0; rc == AB_OK && i < ls->nt.n; i++)
            rc = app_reload_key(app, db, ls->nt.keys[i]);
    }
    ls->nt.n = 0;
    ls->nt.all = false;
    if (rc == AB_OK)
        snapshot_reclaim(app);
    return rc;
}

/* arbiter_db_up and its log lines. */
static void
listener_reachable(void *arg, enum listen_event ev)
{
    struct app *app = ((struct listener *)arg)->app;
    switch (ev) {
    case LISTEN_CONNECTED:
        if (!atomic_exchange(&app->m_db_up, 1))
            log_msg(LOG_INFO, "database reachable", NULL);
        break;
    case LISTEN_CONNECT_FAILED:
        if (atomic_exchange(&app->m_db_up, 0))
            log_msg(LOG_WARN, "database unreachable", NULL);
        break;
    case LISTEN_LOST:
        atomic_store(&app->m_db_up, 0);
        log_msg(LOG_WARN, "database connection lost", NULL);
        break;
    case LISTEN_WAKE_FAILED: atomic_store(&app->m_db_up, 0); break;
    }
}

/* LISTEN on the config channel (service/listen.h) and keep the snapshot
 * up to date; tracks whether the database is up. */
static void *
listener_main(void *arg)
{
    /* named, for top -H and /proc/PID/task/TID/comm (bench/assign_cpu.sh) */
    prctl(PR_SET_NAME, "ab-listener", 0, 0, 0);
    struct app *app = arg;
    static const char *const channels[] = {DB_CONFIG_CHANNEL};
    struct listener *ls = ab_xcalloc(1, sizeof(*ls)); /* 4 KiB of notes */
    ls->app = app;
    const struct listen_loop loop = {
        .database_url = app->cfg.database_url,
        .channels = channels,
        .n_channels = 1,
        .stopping = &app->stopping,
        .arg = ls,
        .connected = listener_connected,
        .payload = note_cb,
        .woke = listener_woke,
        .reachable = listener_reachable,
    };
    listen_run(&loop);
    free(ls);
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
    pthread_mutex_init(&app->reload_lock, NULL);
    pthread_mutex_init(&app->pool_lock, NULL);
    pthread_mutex_init(&app->sticky_db_lock, NULL);
    atomic_store(&app->snap, snapshot_alloc(0));
    app->snap_retired.free_fn = snapshot_free;
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
    /* no reader runs any more: the HTTP server has stopped */
    hazard_retired_free_all(&app->snap_retired);
    snapshot_free(atomic_exchange(&app->snap, NULL));
}
