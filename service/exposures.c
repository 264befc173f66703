/* exposures.c -- asynchronous, batched, coalescing exposure writer (see
 * exposures.h).
 *
 *   HTTP thread 1 --push--> [ring 1] --.
 *   HTTP thread 2 --push--> [ring 2] ---+--drain--> writer thread
 *                                        coalesce into pending (hash table
 *                                        on (experiment, unit)); every
 *                                        FLUSH_MS: sort, upsert in chunks
 *                                        of CHUNK rows; on failure keep
 *                                        pending and retry with backoff.
 *
 * A ring is a power-of-two byte buffer with two free-running byte counters:
 * head (written only by its HTTP thread) and tail (written only by the
 * writer). The producer writes a record at head, then publishes it with a
 * release store of head; the consumer reads head with an acquire load,
 * copies the records out, then frees the space with a release store of
 * tail (Lamport's single-producer single-consumer queue; Herlihy & Shavit,
 * "The Art of Multiprocessor Programming", 2nd ed., section 10.7). A record
 * never wraps: when it does not fit before the end, a pad record fills the
 * rest and the record starts at offset 0.
 *
 *   record, 8-byte aligned:
 *   +-----+--------+-------+------+----+-------+----+----+----------+------+-----+
 *   | len |unit_len|arm_len| pad? | bv | (0)   | id | wv | ts_ms    | prop | unit, arm bytes |
 *   | u32 | u16    | u8    | u8   |i32 | u32   |i64 |i64 | i64      | f64  | (no NUL)        |
 *   +-----+--------+-------+------+----+-------+----+----+----------+------+-----------------+
 *
 * A ring belongs to one writer and one thread; the thread's end (a
 * pthread key destructor) or the writer's stop, whichever is last, frees
 * it. The writer drains every ring every DRAIN_MS (polling: the producer
 * never signals, so the hot path makes no system call).
 */
#include "service/exposures.h"
#include "lib/clock.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>
#include <sys/prctl.h>

#include "core/experiment.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/status.h"
#include "sql/db.h"

#define CHUNK 5000
#define FLUSH_MS 200
#define DRAIN_MS 5
#define RING_MIN 4096
#define RING_MAX (2u << 20) /* 2 MiB: ~29,000 short records */

struct rec {
    uint32_t len; /* bytes of the record, header included, multiple of 8 */
    uint16_t unit_len;
    uint8_t arm_len;
    uint8_t is_pad;
    int32_t bucket_version;
    uint32_t zero;
    int64_t experiment_id;
    int64_t weights_version;
    int64_t ts_ms;
    double propensity;
    /* unit bytes, then arm bytes */
};

struct ring {
    _Alignas(64) _Atomic uint64_t head; /* producer */
    uint64_t cached_tail;               /* producer's last view of tail */
    uint64_t pushed;                    /* records published (producer) */
    _Alignas(64) _Atomic uint64_t tail; /* writer */
    _Atomic uint64_t taken;             /* records drained (writer) */
    _Alignas(64) unsigned char *buf;
    size_t size; /* power of two */
    _Atomic int refs; /* producer thread + writer */
    struct ring *next; /* writer's list, under rings_lock */
    struct exposure_writer *owner;
};

struct item {
    int64_t experiment_id;
    char *unit; /* owned */
    char *arm;  /* owned */
    uint64_t hash;
    struct exposure_tally t;
};

struct exposure_writer {
    struct db_lender lender;
    size_t limit;
    size_t ring_size;
    uint64_t gen; /* tells this writer's rings from a stopped writer's */
    pthread_mutex_t lock; /* stop flag and the writer's sleep */
    pthread_cond_t cond;
    bool stop;
    int stop_timeout_ms;
    pthread_t thread;
    pthread_mutex_t rings_lock; /* the ring list (new threads, drains) */
    struct ring *rings;

    /* writer thread only: coalesced exposures and their index */
    struct item *pending;
    size_t n_pending, cap_pending;
    uint32_t *index; /* open addressing: pending index + 1, 0 empty */
    size_t index_cap; /* power of two, > 2 * n_pending */

    _Atomic int64_t m_depth;
    _Atomic int64_t m_written;
    _Atomic int64_t m_dropped;
    _Atomic int64_t m_errors;
};

/* ---- producer side (HTTP threads) ----------------------------------------- */

static _Atomic uint64_t writer_gens;
static pthread_key_t ring_key;
static pthread_once_t ring_once = PTHREAD_ONCE_INIT;
static _Thread_local struct ring *my_ring;
static _Thread_local uint64_t my_gen;

static void
ring_unref(struct ring *r)
{
    if (atomic_fetch_sub(&r->refs, 1) == 1) {
        free(r->buf);
        free(r);
    }
}

/* The thread ends: the writer drains what is left, then frees the ring. */
static void
ring_thread_end(void *arg)
{
    ring_unref(arg);
}

static void
make_key(void)
{
    if (pthread_key_create(&ring_key, ring_thread_end) != 0)
        abort();
}

static struct ring *
thread_ring(struct exposure_writer *w)
{
    if (my_ring != NULL && my_gen == w->gen)
        return my_ring;
    pthread_once(&ring_once, make_key);
    if (my_ring != NULL) /* a ring of a writer that was stopped */
        ring_unref(my_ring);
    struct ring *r = ab_xcalloc(1, sizeof(*r));
    r->size = w->ring_size;
    r->buf = ab_xcalloc(1, r->size);
    atomic_store(&r->refs, 2);
    r->owner = w;
    pthread_mutex_lock(&w->rings_lock);
    r->next = w->rings;
    w->rings = r;
    pthread_mutex_unlock(&w->rings_lock);
    my_ring = r;
    my_gen = w->gen;
    pthread_setspecific(ring_key, r);
    return r;
}

static size_t
align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

void
exposure_writer_push(struct exposure_writer *w, const struct exposure *x)
{
    struct ring *r = thread_ring(w);
    size_t unit_len = strlen(x->unit), arm_len = strlen(x->arm);
    if (unit_len > CORE_UNIT_MAX || arm_len > CORE_KEY_MAX) {
        atomic_fetch_add_explicit(&w->m_dropped, 1, memory_order_relaxed);
        return;
    }
    /* the bound on exposures waiting: coalesced units plus this ring's
     * records (other threads' rings are not counted here: the writer
     * drops new units past the limit when it drains them) */
    uint64_t waiting =
        (uint64_t)atomic_load_explicit(&w->m_depth, memory_order_relaxed) +
        (r->pushed - atomic_load_explicit(&r->taken, memory_order_relaxed));
    if (waiting >= w->limit) {
        atomic_fetch_add_explicit(&w->m_dropped, 1, memory_order_relaxed);
        return;
    }
    size_t need = align8(sizeof(struct rec) + unit_len + arm_len);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    size_t off = (size_t)(head & (r->size - 1));
    size_t room = r->size - off; /* before the end; a multiple of 8 */
    size_t total = need <= room ? need : room + need;
    if (head + total - r->cached_tail > r->size) {
        r->cached_tail = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (head + total - r->cached_tail > r->size) {
            atomic_fetch_add_explicit(&w->m_dropped, 1, memory_order_relaxed);
            return;
        }
    }
    if (need > room) {
        struct rec pad = {.len = (uint32_t)room, .is_pad = 1};
        memcpy(r->buf + off, &pad, sizeof(uint32_t) * 2); /* len, flags */
        off = 0;
    }
    struct rec h = {
        .len = (uint32_t)need,
        .unit_len = (uint16_t)unit_len,
        .arm_len = (uint8_t)arm_len,
        .bucket_version = x->bucket_version,
        .experiment_id = x->experiment_id,
        .weights_version = x->weights_version,
        .ts_ms = x->ts_ms,
        .propensity = x->propensity,
    };
    unsigned char *p = r->buf + off;
    memcpy(p, &h, sizeof(h));
    memcpy(p + sizeof(h), x->unit, unit_len);
    memcpy(p + sizeof(h) + unit_len, x->arm, arm_len);
    atomic_store_explicit(&r->head, head + total, memory_order_release);
    r->pushed++;
}

/* ---- writer side: coalescing -------------------------------------------- */

static void
item_free(struct item *it)
{
    free(it->unit);
    free(it->arm);
}

static uint64_t
key_hash(int64_t experiment_id, const char *unit, size_t len)
{
    return XXH3_64bits_withSeed(unit, len, (uint64_t)experiment_id);
}

static void
index_rebuild(struct exposure_writer *w, size_t want)
{
    size_t cap = w->index_cap ? w->index_cap : 1024;
    while (cap < 2 * want + 2)
        cap *= 2;
    if (cap != w->index_cap) {
        free(w->index);
        w->index = ab_xmalloc(cap * sizeof(*w->index));
        w->index_cap = cap;
    }
    memset(w->index, 0, cap * sizeof(*w->index));
    for (size_t i = 0; i < w->n_pending; i++) {
        size_t b = w->pending[i].hash & (cap - 1);
        while (w->index[b])
            b = (b + 1) & (cap - 1);
        w->index[b] = (uint32_t)(i + 1);
    }
}

/* The pending item of (experiment, unit), or the empty index slot where
 * it goes (*found false). */
static uint32_t *
index_find(struct exposure_writer *w, int64_t experiment_id, const char *unit,
           size_t len, uint64_t hash, bool *found)
{
    size_t b = hash & (w->index_cap - 1);
    for (;; b = (b + 1) & (w->index_cap - 1)) {
        uint32_t i = w->index[b];
        if (i == 0) {
            *found = false;
            return &w->index[b];
        }
        struct item *it = &w->pending[i - 1];
        if (it->hash == hash && it->experiment_id == experiment_id &&
            strlen(it->unit) == len && memcmp(it->unit, unit, len) == 0) {
            *found = true;
            return &w->index[b];
        }
    }
}

enum exposure_merge
exposure_merge(struct exposure_tally *t, const struct exposure *x)
{
    if (x->ts_ms > t->last_ms)
        t->last_ms = x->ts_ms;
    if (x->bucket_version < t->bucket_version)
        return EXPOSURE_SUPERSEDED;
    if (x->bucket_version > t->bucket_version) {
        t->bucket_version = x->bucket_version;
        t->count = 0;
        t->first_ms = INT64_MAX; /* this exposure's, just below */
    }
    enum exposure_merge m = EXPOSURE_COUNTED;
    if (x->ts_ms < t->first_ms) {
        t->first_ms = x->ts_ms;
        t->weights_version = x->weights_version;
        t->propensity = x->propensity;
        m = EXPOSURE_FIRST;
    }
    t->count++;
    return m;
}

/* One exposure into pending (the rule: exposure_merge()). */
static void
coalesce(struct exposure_writer *w, const struct rec *h, const char *unit,
         const char *arm)
{
    uint64_t hash = key_hash(h->experiment_id, unit, h->unit_len);
    if (w->index_cap < 2 * w->n_pending + 2)
        index_rebuild(w, w->n_pending + 1);
    bool found;
    uint32_t *slot =
        index_find(w, h->experiment_id, unit, h->unit_len, hash, &found);
    if (found) {
        struct item *it = &w->pending[*slot - 1];
        const struct exposure x = {.bucket_version = h->bucket_version,
                                   .weights_version = h->weights_version,
                                   .propensity = h->propensity,
                                   .ts_ms = h->ts_ms};
        if (exposure_merge(&it->t, &x) == EXPOSURE_FIRST &&
            (strlen(it->arm) != h->arm_len ||
             memcmp(it->arm, arm, h->arm_len) != 0)) {
            free(it->arm); /* the earliest exposure's arm is kept */
            it->arm = ab_xmalloc((size_t)h->arm_len + 1);
            memcpy(it->arm, arm, h->arm_len);
            it->arm[h->arm_len] = '\0';
        }
        return;
    }
    if (w->n_pending >= w->limit) {
        atomic_fetch_add_explicit(&w->m_dropped, 1, memory_order_relaxed);
        return;
    }
    if (w->n_pending == w->cap_pending) {
        w->cap_pending = w->cap_pending ? 2 * w->cap_pending : 1024;
        w->pending =
            ab_xrealloc(w->pending, w->cap_pending * sizeof(*w->pending));
    }
    struct item *it = &w->pending[w->n_pending++];
    *it = (struct item){
        .experiment_id = h->experiment_id,
        .unit = ab_xmalloc((size_t)h->unit_len + 1),
        .arm = ab_xmalloc((size_t)h->arm_len + 1),
        .hash = hash,
        .t = {.bucket_version = h->bucket_version,
              .weights_version = h->weights_version,
              .propensity = h->propensity,
              .first_ms = h->ts_ms,
              .last_ms = h->ts_ms,
              .count = 1},
    };
    memcpy(it->unit, unit, h->unit_len);
    it->unit[h->unit_len] = '\0';
    memcpy(it->arm, arm, h->arm_len);
    it->arm[h->arm_len] = '\0';
    *slot = (uint32_t)w->n_pending;
}

/* Copy everything published in r into pending; returns the records read. */
static size_t
drain_ring(struct exposure_writer *w, struct ring *r)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    size_t n = 0;
    while (tail < head) {
        const unsigned char *p = r->buf + (tail & (r->size - 1));
        struct rec h;
        memcpy(&h, p, sizeof(uint32_t) * 2);
        if (!h.is_pad) {
            memcpy(&h, p, sizeof(h));
            const char *unit = (const char *)p + sizeof(h);
            coalesce(w, &h, unit, unit + h.unit_len);
            n++;
        }
        tail += h.len;
    }
    /* m_depth first: a producer never sees these records in neither */
    atomic_store(&w->m_depth, (int64_t)w->n_pending);
    atomic_store_explicit(&r->tail, tail, memory_order_release);
    atomic_fetch_add_explicit(&r->taken, n, memory_order_release);
    return n;
}

/* Drain every ring; frees the rings whose thread has ended. */
static size_t
drain_all(struct exposure_writer *w)
{
    size_t n = 0;
    pthread_mutex_lock(&w->rings_lock);
    struct ring **pp = &w->rings;
    while (*pp) {
        struct ring *r = *pp;
        n += drain_ring(w, r);
        if (atomic_load(&r->refs) == 1) { /* only the writer's reference */
            n += drain_ring(w, r);
            *pp = r->next;
            ring_unref(r);
            continue;
        }
        pp = &r->next;
    }
    pthread_mutex_unlock(&w->rings_lock);
    atomic_store(&w->m_depth, (int64_t)w->n_pending);
    return n;
}

/* ---- writer side: upserts ----------------------------------------------- */

static int
item_cmp(const void *a, const void *b)
{
    const struct item *x = a, *y = b;
    if (x->experiment_id != y->experiment_id)
        return x->experiment_id < y->experiment_id ? -1 : 1;
    return strcmp(x->unit, y->unit);
}

/* Write pending in chunks, sorted by (experiment, unit): every instance
 * locks rows in one order, so two writers never deadlock. Returns false
 * when the database failed (what was written is removed from pending, the
 * rest stays). */
static bool
write_pending(struct exposure_writer *w)
{
    size_t done = 0;
    bool ok = true;
    struct db *db = w->lender.get(w->lender.ctx);
    if (db == NULL)
        return w->n_pending == 0;
    qsort(w->pending, w->n_pending, sizeof(*w->pending), item_cmp);
    struct db_exposure *rows = ab_xmalloc(CHUNK * sizeof(*rows));
    while (done < w->n_pending) {
        size_t n = w->n_pending - done;
        if (n > CHUNK)
            n = CHUNK;
        for (size_t i = 0; i < n; i++) {
            struct item *it = &w->pending[done + i];
            rows[i] = (struct db_exposure){
                it->experiment_id,    it->unit,
                it->arm,              it->t.bucket_version,
                it->t.weights_version, it->t.propensity,
                it->t.first_ms,       it->t.last_ms,
                it->t.count};
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
    index_rebuild(w, w->n_pending); /* sorted and shifted: new positions */
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
    /* named, for top -H and /proc/PID/task/TID/comm (bench/assign_cpu.sh) */
    prctl(PR_SET_NAME, "ab-exposures", 0, 0, 0);
    struct exposure_writer *w = arg;
    int backoff_ms = FLUSH_MS;
    int64_t stop_deadline = 0;
    int64_t next_write = ab_now_ms() + FLUSH_MS;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        if (!w->stop) {
            struct timespec ts;
            deadline_in(&ts, DRAIN_MS);
            pthread_cond_timedwait(&w->cond, &w->lock, &ts);
        }
        bool stop = w->stop;
        pthread_mutex_unlock(&w->lock);

        drain_all(w);
        int64_t now = ab_now_ms();
        if (stop && stop_deadline == 0)
            stop_deadline = now + w->stop_timeout_ms;
        if (w->n_pending &&
            (now >= next_write || w->n_pending >= CHUNK || stop)) {
            if (write_pending(w))
                backoff_ms = FLUSH_MS;
            else if (backoff_ms < 5000)
                backoff_ms *= 2;
            next_write = ab_now_ms() + (w->n_pending ? backoff_ms : FLUSH_MS);
        } else if (w->n_pending == 0 && now >= next_write)
            next_write = now + FLUSH_MS;
        if (stop) {
            drain_all(w);
            if (w->n_pending == 0 || ab_now_ms() > stop_deadline)
                break;
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
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
    if (w->limit > UINT32_MAX - 1)
        w->limit = UINT32_MAX - 1; /* the index holds 32-bit positions */
    /* a ring holds about as many short records as the limit, within
     * [RING_MIN, RING_MAX] bytes */
    w->ring_size = RING_MIN;
    while (w->ring_size < RING_MAX && w->ring_size / 64 < w->limit)
        w->ring_size *= 2;
    w->gen = atomic_fetch_add(&writer_gens, 1) + 1;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    pthread_mutex_init(&w->rings_lock, NULL);
    index_rebuild(w, 0);
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
    free(w->pending);
    free(w->index);
    struct ring *r = w->rings, *next;
    for (; r; r = next) {
        next = r->next;
        ring_unref(r);
    }
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->rings_lock);
    free(w);
}
