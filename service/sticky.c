/* sticky.c -- the sticky cache (see sticky.h). Keys hash with XXH3-64;
 * each of 64 shards holds capacity/64 entries and evicts the oldest
 * insertion first (FIFO: a unit that is evicted is looked up in PostgreSQL
 * again, so eviction costs a query, never correctness). */
#include "service/sticky.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "core/experiment.h"
#include "lib/status.h"

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

struct sticky_cache {
    struct shard shards[N_SHARDS];
};

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
    return c;
}

void
sticky_cache_free(struct sticky_cache *c)
{
    if (c == NULL)
        return;
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
