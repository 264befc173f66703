/* sticky.c -- the sticky cache (see sticky.h). Keys hash with XXH3-64;
 * each of 64 shards holds capacity/64 entries and evicts the oldest
 * insertion first (FIFO: a unit that is evicted is looked up in PostgreSQL
 * again, so eviction costs a query, never correctness). */
#define _GNU_SOURCE /* pthread_timedjoin_np */
#include "service/sticky.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "core/experiment.h"
#include "lib/clock.h"
#include "lib/status.h"
#include "sql/db.h"

#define N_SHARDS 64

struct entry {
    struct entry *next;       /* hash chain */
    struct entry *fifo_next;  /* insertion order */
    uint64_t hash;
    int64_t experiment_id;
    uint32_t bucket_version;
    char arm[CORE_KEY_MAX + 1];
    char unit[]; /* NUL-terminated */
};

struct shard {
    pthread_mutex_t lock;
    struct entry **table;
    size_t n_buckets, n, cap;
    struct entry *fifo_head, *fifo_tail;
};

/* One question to the store. Owned by the queue while queued, then by
 * whichever side lets go last: the waiter when it got its answer, the
 * lookup thread when the waiter gave up (abandoned). */
struct question {
    struct question *next;
    int64_t experiment_id;
    uint32_t min_bucket_version;
    bool done, abandoned;
    ab_status rc;
    char *arm;
    char unit[]; /* NUL-terminated */
};

struct store {
    pthread_mutex_t lock;
    pthread_cond_t asked;    /* a question was queued, or stopping */
    pthread_cond_t answered; /* some question is done */
    struct question *head, *tail;
    size_t n_queued;
    bool started, stopping;
    char *url;
    int wait_ms;
    int64_t busy_since[STICKY_LOOKUP_THREADS]; /* 0 = idle */
    pthread_t threads[STICKY_LOOKUP_THREADS];
    size_t n_threads;
};

struct sticky_cache {
    struct shard shards[N_SHARDS];
    struct store store;
};

static void store_stop(struct store *st);

static uint64_t
key_hash(int64_t id, const char *unit)
{
    return XXH3_64bits_withSeed(unit, strlen(unit), (uint64_t)id);
}

struct sticky_cache *
sticky_cache_new(size_t capacity)
{
    struct sticky_cache *c = ab_xcalloc(1, sizeof(*c));
    size_t per = capacity / N_SHARDS + 1;
    for (int i = 0; i < N_SHARDS; i++) {
        struct shard *s = &c->shards[i];
        pthread_mutex_init(&s->lock, NULL);
        s->cap = per;
        s->n_buckets = 64;
        while (s->n_buckets < per && s->n_buckets < (1u << 20))
            s->n_buckets <<= 1;
        s->table = ab_xcalloc(s->n_buckets, sizeof(*s->table));
    }
    pthread_mutex_init(&c->store.lock, NULL);
    pthread_cond_init(&c->store.asked, NULL);
    pthread_cond_init(&c->store.answered, NULL);
    return c;
}

void
sticky_cache_free(struct sticky_cache *c)
{
    if (c == NULL)
        return;
    store_stop(&c->store);
    for (int i = 0; i < N_SHARDS; i++) {
        struct shard *s = &c->shards[i];
        struct entry *e = s->fifo_head, *next;
        for (; e; e = next) {
            next = e->fifo_next;
            free(e);
        }
        free(s->table);
        pthread_mutex_destroy(&s->lock);
    }
    free(c);
}

static struct entry **
find(struct shard *s, uint64_t h, int64_t id, const char *unit)
{
    struct entry **pp = &s->table[(h >> 6) & (s->n_buckets - 1)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->hash == h && (*pp)->experiment_id == id &&
            strcmp((*pp)->unit, unit) == 0)
            return pp;
    return pp;
}

int
sticky_cache_get(struct sticky_cache *c, int64_t experiment_id,
                 const char *unit, uint32_t min_bucket_version, char *out,
                 size_t out_len)
{
    uint64_t h = key_hash(experiment_id, unit);
    struct shard *s = &c->shards[h % N_SHARDS];
    int found = 0;
    pthread_mutex_lock(&s->lock);
    struct entry *e = *find(s, h, experiment_id, unit);
    if (e && e->bucket_version >= min_bucket_version) {
        size_t n = strlen(e->arm);
        if (n < out_len) {
            memcpy(out, e->arm, n + 1);
            found = 1;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return found;
}

static void
evict_oldest(struct shard *s)
{
    struct entry *old = s->fifo_head;
    if (old == NULL)
        return;
    s->fifo_head = old->fifo_next;
    if (s->fifo_head == NULL)
        s->fifo_tail = NULL;
    struct entry **pp = find(s, old->hash, old->experiment_id, old->unit);
    if (*pp == old)
        *pp = old->next;
    s->n--;
    free(old);
}

void
sticky_cache_put(struct sticky_cache *c, int64_t experiment_id,
                 const char *unit, const char *arm, uint32_t bucket_version)
{
    size_t ulen = strlen(unit), alen = strlen(arm);
    if (alen > CORE_KEY_MAX)
        return;
    uint64_t h = key_hash(experiment_id, unit);
    struct shard *s = &c->shards[h % N_SHARDS];
    pthread_mutex_lock(&s->lock);
    struct entry **pp = find(s, h, experiment_id, unit);
    if (*pp) { /* the first arm wins, unless it was re-randomized */
        if ((*pp)->bucket_version < bucket_version) {
            memcpy((*pp)->arm, arm, alen + 1);
            (*pp)->bucket_version = bucket_version;
        }
        pthread_mutex_unlock(&s->lock);
        return;
    }
    if (s->n >= s->cap)
        evict_oldest(s);
    pp = find(s, h, experiment_id, unit); /* eviction may move the slot */
    struct entry *e = ab_xmalloc(sizeof(*e) + ulen + 1);
    e->next = NULL;
    e->fifo_next = NULL;
    e->hash = h;
    e->experiment_id = experiment_id;
    e->bucket_version = bucket_version;
    memcpy(e->arm, arm, alen + 1);
    memcpy(e->unit, unit, ulen + 1);
    *pp = e;
    if (s->fifo_tail)
        s->fifo_tail->fifo_next = e;
    else
        s->fifo_head = e;
    s->fifo_tail = e;
    s->n++;
    pthread_mutex_unlock(&s->lock);
}

size_t
sticky_cache_size(struct sticky_cache *c)
{
    size_t n = 0;
    for (int i = 0; i < N_SHARDS; i++) {
        pthread_mutex_lock(&c->shards[i].lock);
        n += c->shards[i].n;
        pthread_mutex_unlock(&c->shards[i].lock);
    }
    return n;
}

/* ---- the store: lookup threads ------------------------------------------ */

struct lookup_arg {
    struct store *st;
    size_t slot;
};

static void
question_free(struct question *q)
{
    free(q->arm);
    free(q);
}

static void *
lookup_main(void *arg)
{
    struct lookup_arg la = *(struct lookup_arg *)arg;
    free(arg);
    struct store *st = la.st;
    struct db *db = NULL;
    /* connect before the first question, so that it does not pay for it
     * (busy meanwhile: a server that never answers counts as stalled) */
    pthread_mutex_lock(&st->lock);
    st->busy_since[la.slot] = ab_now_ms();
    pthread_mutex_unlock(&st->lock);
    if (db_open(st->url, &db) == AB_OK)
        db_set_timeout(db, st->wait_ms);
    pthread_mutex_lock(&st->lock);
    st->busy_since[la.slot] = 0;
    for (;;) {
        while (st->head == NULL && !st->stopping)
            pthread_cond_wait(&st->asked, &st->lock);
        if (st->head == NULL) /* stopping, queue empty */
            break;
        struct question *q = st->head;
        st->head = q->next;
        if (st->head == NULL)
            st->tail = NULL;
        st->n_queued--;
        if (q->abandoned) { /* its waiter gave up before we got to it */
            question_free(q);
            continue;
        }
        st->busy_since[la.slot] = ab_now_ms();
        pthread_mutex_unlock(&st->lock);

        /* blocking libpq, on this thread only: the waiter's deadline is
         * its own (a condition-variable timeout) */
        ab_status rc = AB_EDB;
        char *arm = NULL;
        if (db == NULL && db_open(st->url, &db) == AB_OK)
            db_set_timeout(db, st->wait_ms);
        if (db != NULL)
            rc = db_sticky_get(db, q->experiment_id, q->unit,
                               (int32_t)q->min_bucket_version, &arm);
        if (rc == AB_EDB) { /* reconnect for the next question */
            db_close(db);
            db = NULL;
        }

        pthread_mutex_lock(&st->lock);
        st->busy_since[la.slot] = 0;
        if (q->abandoned) {
            free(arm);
            question_free(q);
        } else {
            q->rc = rc;
            q->arm = arm;
            q->done = true;
            pthread_cond_broadcast(&st->answered);
        }
    }
    pthread_mutex_unlock(&st->lock);
    db_close(db);
    return NULL;
}

/* Under st->lock. */
static void
store_start(struct store *st, const char *url, int wait_ms)
{
    st->started = true;
    st->url = ab_xstrdup(url);
    st->wait_ms = wait_ms > 0 ? wait_ms : 50;
    for (size_t i = 0; i < STICKY_LOOKUP_THREADS; i++) {
        struct lookup_arg *la = ab_xmalloc(sizeof(*la));
        la->st = st;
        la->slot = i;
        if (pthread_create(&st->threads[st->n_threads], NULL, lookup_main,
                           la) != 0) {
            free(la);
            break;
        }
        st->n_threads++;
    }
}

static void
store_stop(struct store *st)
{
    pthread_mutex_lock(&st->lock);
    st->stopping = true;
    pthread_cond_broadcast(&st->asked);
    pthread_mutex_unlock(&st->lock);
    for (size_t i = 0; i < st->n_threads; i++) {
        /* a thread blocked on a stopped server is left behind (the
         * process is exiting); one that answers is joined */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 5;
        if (pthread_timedjoin_np(st->threads[i], NULL, &ts) != 0)
            pthread_detach(st->threads[i]);
    }
    st->n_threads = 0;
    /* anything still queued was abandoned by its waiter */
    pthread_mutex_lock(&st->lock);
    struct question *q = st->head, *next;
    for (; q; q = next) {
        next = q->next;
        question_free(q);
    }
    st->head = st->tail = NULL;
    pthread_mutex_unlock(&st->lock);
    free(st->url);
    st->url = NULL;
}

/* Under st->lock: every lookup thread has been on one question for longer
 * than the wait (the server is stalled or very slow). */
static bool
store_stalled(const struct store *st, int64_t now)
{
    if (st->n_threads == 0)
        return true;
    for (size_t i = 0; i < st->n_threads; i++)
        if (st->busy_since[i] == 0 || now - st->busy_since[i] < st->wait_ms)
            return false;
    return true;
}

void
sticky_store_start(struct sticky_cache *c, const char *database_url,
                   int wait_ms)
{
    pthread_mutex_lock(&c->store.lock);
    if (!c->store.started && !c->store.stopping)
        store_start(&c->store, database_url, wait_ms);
    pthread_mutex_unlock(&c->store.lock);
}

ab_status
sticky_store_get(struct sticky_cache *c, const char *database_url,
                 int wait_ms, int64_t experiment_id, const char *unit,
                 uint32_t min_bucket_version, char **arm)
{
    struct store *st = &c->store;
    int64_t now = ab_now_ms();
    pthread_mutex_lock(&st->lock);
    if (st->stopping) {
        pthread_mutex_unlock(&st->lock);
        return AB_EDB;
    }
    if (!st->started)
        store_start(st, database_url, wait_ms);
    if (store_stalled(st, now) || st->n_queued >= STICKY_QUEUE_MAX) {
        pthread_mutex_unlock(&st->lock);
        return AB_EDB;
    }
    size_t ulen = strlen(unit);
    struct question *q = ab_xcalloc(1, sizeof(*q) + ulen + 1);
    q->experiment_id = experiment_id;
    q->min_bucket_version = min_bucket_version;
    memcpy(q->unit, unit, ulen + 1);
    if (st->tail)
        st->tail->next = q;
    else
        st->head = q;
    st->tail = q;
    st->n_queued++;
    pthread_cond_signal(&st->asked);

    /* the deadline: CLOCK_REALTIME for pthread_cond_timedwait (the
     * condition's default clock) */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    long ns = until.tv_nsec + (long)st->wait_ms * 1000000L;
    until.tv_sec += ns / 1000000000L;
    until.tv_nsec = ns % 1000000000L;
    int err = 0;
    while (!q->done && err != ETIMEDOUT)
        err = pthread_cond_timedwait(&st->answered, &st->lock, &until);
    ab_status rc;
    if (q->done) {
        rc = q->rc;
        if (rc == AB_OK) {
            *arm = q->arm;
            q->arm = NULL;
        }
        question_free(q);
    } else { /* timed out: the lookup thread frees it */
        q->abandoned = true;
        rc = AB_EDB;
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}
