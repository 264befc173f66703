/* exposures.c -- asynchronous, batched, coalescing exposure writer (see
 * exposures.h).
 *
 *   assign threads --push--> [queue: array, mutex]  --swap-->  writer thread
 *        writer: sort by (experiment, unit), merge duplicates into pending,
 *        upsert pending in chunks of CHUNK rows; on failure keep pending
 *        and retry with backoff.
 */
#include "service/exposures.h"
#include "lib/clock.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/status.h"
#include "sql/db.h"

#define CHUNK 5000
#define FLUSH_MS 200

struct item {
    int64_t experiment_id;
    char *unit; /* owned */
    char *arm;  /* owned */
    int32_t bucket_version;
    int64_t weights_version;
    double propensity;
    int64_t first_ms, last_ms, count;
};

struct exposure_writer {
    struct db_lender lender;
    size_t limit;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct item *queue;
    size_t n_queue, cap_queue;
    bool stop;
    int stop_timeout_ms;
    pthread_t thread;

    struct item *pending; /* writer thread only */
    size_t n_pending, cap_pending;

    _Atomic int64_t m_depth;
    _Atomic int64_t m_written;
    _Atomic int64_t m_dropped;
    _Atomic int64_t m_errors;
};

static void
item_free(struct item *it)
{
    free(it->unit);
    free(it->arm);
}

void
exposure_writer_push(struct exposure_writer *w, const struct exposure *x)
{
    struct item it = {
        .experiment_id = x->experiment_id,
        .unit = ab_xstrdup(x->unit),
        .arm = ab_xstrdup(x->arm),
        .bucket_version = x->bucket_version,
        .weights_version = x->weights_version,
        .propensity = x->propensity,
        .first_ms = x->ts_ms,
        .last_ms = x->ts_ms,
        .count = 1,
    };
    pthread_mutex_lock(&w->lock);
    size_t depth = w->n_queue + (size_t)atomic_load(&w->m_depth);
    if (w->n_queue >= w->limit || depth >= 2 * w->limit) {
        pthread_mutex_unlock(&w->lock);
        atomic_fetch_add(&w->m_dropped, 1);
        item_free(&it);
        return;
    }
    if (w->n_queue == w->cap_queue) {
        w->cap_queue = w->cap_queue ? w->cap_queue * 2 : 1024;
        w->queue = ab_xrealloc(w->queue, w->cap_queue * sizeof(*w->queue));
    }
    w->queue[w->n_queue++] = it;
    if (w->n_queue == CHUNK)
        pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static int
item_cmp(const void *a, const void *b)
{
    const struct item *x = a, *y = b;
    if (x->experiment_id != y->experiment_id)
        return x->experiment_id < y->experiment_id ? -1 : 1;
    int c = strcmp(x->unit, y->unit);
    if (c != 0)
        return c;
    /* the earliest exposure first: its arm is the one that is kept */
    return (x->first_ms > y->first_ms) - (x->first_ms < y->first_ms);
}

/* Two exposures of one unit under different bucket versions: the higher
 * version re-randomized the unit, so its exposure replaces the other (as
 * the upsert in sql/db.c does with the stored row); exposures under the
 * lower version are superseded and not counted. */
static void
merge_versions(struct item *keep, struct item *it)
{
    int64_t last_ms = keep->last_ms > it->last_ms ? keep->last_ms : it->last_ms;
    if (it->bucket_version > keep->bucket_version) {
        char *unit = keep->unit, *arm = keep->arm;
        *keep = *it;
        it->unit = unit; /* freed by the caller with it */
        it->arm = arm;
    }
    keep->last_ms = last_ms;
}

/* Move batch into pending, merging equal (experiment, unit). */
static void
merge_into_pending(struct exposure_writer *w, struct item *batch, size_t n)
{
    size_t total = w->n_pending + n;
    if (total > w->cap_pending) {
        w->cap_pending = total * 2;
        w->pending = ab_xrealloc(w->pending,
                                 w->cap_pending * sizeof(*w->pending));
    }
    memcpy(w->pending + w->n_pending, batch, n * sizeof(*batch));
    qsort(w->pending, total, sizeof(*w->pending), item_cmp);
    size_t out = 0;
    for (size_t i = 0; i < total; i++) {
        struct item *it = &w->pending[i];
        if (out > 0) {
            struct item *last = &w->pending[out - 1];
            if (last->experiment_id == it->experiment_id &&
                strcmp(last->unit, it->unit) == 0) {
                if (it->bucket_version != last->bucket_version) {
                    merge_versions(last, it);
                    item_free(it);
                    continue;
                }
                if (it->first_ms < last->first_ms)
                    last->first_ms = it->first_ms;
                if (it->last_ms > last->last_ms)
                    last->last_ms = it->last_ms;
                last->count += it->count;
                item_free(it);
                continue;
            }
        }
        w->pending[out++] = *it;
    }
    w->n_pending = out;
    atomic_store(&w->m_depth, (int64_t)out);
}

/* Write pending in chunks; returns false when the database failed (what
 * was written is removed from pending, the rest stays). */
static bool
write_pending(struct exposure_writer *w)
{
    size_t done = 0;
    bool ok = true;
    struct db *db = w->lender.get(w->lender.ctx);
    if (db == NULL)
        return w->n_pending == 0;
    struct db_exposure *rows = ab_xmalloc(CHUNK * sizeof(*rows));
    while (done < w->n_pending) {
        size_t n = w->n_pending - done;
        if (n > CHUNK)
            n = CHUNK;
        for (size_t i = 0; i < n; i++) {
            struct item *it = &w->pending[done + i];
            rows[i] = (struct db_exposure){
                it->experiment_id, it->unit,          it->arm,
                it->bucket_version, it->weights_version, it->propensity,
                it->first_ms,       it->last_ms,       it->count};
        }
        if (db_exposures_write(db, rows, n) != AB_OK) {
            atomic_fetch_add(&w->m_errors, 1);
            ok = false;
            break;
        }
        for (size_t i = 0; i < n; i++)
            item_free(&w->pending[done + i]);
        done += n;
        atomic_fetch_add(&w->m_written, (int64_t)n);
    }
    free(rows);
    w->lender.put(w->lender.ctx, db);
    memmove(w->pending, w->pending + done,
            (w->n_pending - done) * sizeof(*w->pending));
    w->n_pending -= done;
    atomic_store(&w->m_depth, (int64_t)w->n_pending);
    return ok;
}

static void
deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *
writer_main(void *arg)
{
    struct exposure_writer *w = arg;
    int backoff_ms = FLUSH_MS;
    int64_t stop_deadline = 0;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        if (!w->stop && w->n_queue < CHUNK) {
            struct timespec ts;
            deadline_in(&ts, w->n_pending ? backoff_ms : FLUSH_MS);
            pthread_cond_timedwait(&w->cond, &w->lock, &ts);
        }
        struct item *batch = w->queue;
        size_t n = w->n_queue;
        bool stop = w->stop;
        w->queue = NULL;
        w->n_queue = w->cap_queue = 0;
        pthread_mutex_unlock(&w->lock);

        if (n)
            merge_into_pending(w, batch, n);
        free(batch);
        if (stop && stop_deadline == 0)
            stop_deadline = ab_now_ms() + w->stop_timeout_ms;
        if (w->n_pending) {
            if (write_pending(w))
                backoff_ms = FLUSH_MS;
            else if (backoff_ms < 5000)
                backoff_ms *= 2;
        }
        if (stop) {
            pthread_mutex_lock(&w->lock);
            bool empty = w->n_queue == 0;
            pthread_mutex_unlock(&w->lock);
            if ((empty && w->n_pending == 0) || ab_now_ms() > stop_deadline)
                break;
            if (w->n_pending) {
                struct timespec ts = {0, 100 * 1000000L};
                nanosleep(&ts, NULL);
            }
        }
    }
    if (w->n_pending) {
        log_json(LOG_ERROR, "exposures not written at shutdown",
                 json_pack("{s:I}", "count", (json_int_t)w->n_pending));
    }
    return NULL;
}

struct exposure_writer *
exposure_writer_new(const struct db_lender *lender, size_t limit)
{
    struct exposure_writer *w = ab_xcalloc(1, sizeof(*w));
    w->lender = *lender;
    w->limit = limit ? limit : 1;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    metrics_register("arbiter_exposure_queue_depth",
                     "Exposures coalesced and waiting to be written.",
                     METRICS_GAUGE, &w->m_depth);
    metrics_register("arbiter_exposures_written_total",
                     "Coalesced exposure rows upserted into PostgreSQL.",
                     METRICS_COUNTER, &w->m_written);
    metrics_register("arbiter_exposures_dropped_total",
                     "Exposures dropped because the queue was full.",
                     METRICS_COUNTER, &w->m_dropped);
    metrics_register("arbiter_exposure_write_errors_total",
                     "Failed exposure batch writes (retried).",
                     METRICS_COUNTER, &w->m_errors);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0)
        abort();
    return w;
}

void
exposure_writer_stop(struct exposure_writer *w, int timeout_ms)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    w->stop_timeout_ms = timeout_ms;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    for (size_t i = 0; i < w->n_pending; i++)
        item_free(&w->pending[i]);
    for (size_t i = 0; i < w->n_queue; i++)
        item_free(&w->queue[i]);
    free(w->pending);
    free(w->queue);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    free(w);
}
