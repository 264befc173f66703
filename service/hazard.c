/* hazard.c -- hazard pointers (see hazard.h).
 *
 * Why it is safe (all accesses below the dashed line are seq_cst, so they
 * fall in one total order S):
 *
 *   reader:  p = load(src); store(slot, p); q = load(src); q == p ? use p
 *   writer:  old = exchange(src, new); ... load(every slot) ... free(old)?
 *
 * If the writer's scan misses the reader's store(slot, old), that store
 * comes after the scan in S, so the reader's second load(src) comes after
 * the exchange and returns new != old: the reader retries and never uses
 * old. If the scan sees it, old is kept. (Michael 2004, section 3.)
 */
#include "service/hazard.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/status.h"

struct slot {
    void *_Atomic hp[HAZARD_PER_THREAD];
    atomic_bool used;
    struct slot *next; /* immutable once published */
};

static struct slot *_Atomic slots; /* every slot ever made; never freed */
static _Thread_local struct slot *mine;
static pthread_key_t slot_key;
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;

/* The thread ends: its slot goes back for another thread. */
static void
slot_release(void *arg)
{
    struct slot *s = arg;
    for (size_t i = 0; i < HAZARD_PER_THREAD; i++)
        atomic_store(&s->hp[i], NULL);
    atomic_store(&s->used, false);
}

static void
make_key(void)
{
    if (pthread_key_create(&slot_key, slot_release) != 0)
        abort();
}

static struct slot *
my_slot(void)
{
    if (mine != NULL)
        return mine;
    pthread_once(&slot_once, make_key);
    struct slot *s;
    for (s = atomic_load(&slots); s; s = s->next) {
        bool free_slot = false;
        if (!atomic_load(&s->used) &&
            atomic_compare_exchange_strong(&s->used, &free_slot, true))
            break;
    }
    if (s == NULL) {
        s = ab_xcalloc(1, sizeof(*s));
        atomic_store(&s->used, true);
        struct slot *head = atomic_load(&slots);
        do
            s->next = head;
        while (!atomic_compare_exchange_weak(&slots, &head, s));
    }
    pthread_setspecific(slot_key, s);
    mine = s;
    return s;
}

void *
hazard_acquire(void *_Atomic *src)
{
    struct slot *s = my_slot();
    size_t k = 0;
    while (k < HAZARD_PER_THREAD &&
           atomic_load_explicit(&s->hp[k], memory_order_relaxed) != NULL)
        k++;
    if (k == HAZARD_PER_THREAD)
        abort(); /* more nested reads than slots: a bug */
    void *p = atomic_load_explicit(src, memory_order_acquire);
    for (;;) {
        atomic_store(&s->hp[k], p);
        void *q = atomic_load(src);
        if (q == p)
            return p;
        p = q;
    }
}

void
hazard_release(const void *p)
{
    struct slot *s = mine;
    if (s == NULL || p == NULL)
        return;
    for (size_t k = HAZARD_PER_THREAD; k-- > 0;)
        if (atomic_load_explicit(&s->hp[k], memory_order_relaxed) == p) {
            atomic_store_explicit(&s->hp[k], NULL, memory_order_release);
            return;
        }
}

static bool
held(const void *p)
{
    for (struct slot *s = atomic_load(&slots); s; s = s->next)
        for (size_t k = 0; k < HAZARD_PER_THREAD; k++)
            if (atomic_load(&s->hp[k]) == p)
                return true;
    return false;
}

size_t
hazard_reclaim(struct hazard_retired *r)
{
    size_t out = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (held(r->items[i]))
            r->items[out++] = r->items[i];
        else
            r->free_fn(r->items[i]);
    }
    r->n = out;
    return out;
}

void
hazard_publish(void *_Atomic *src, void *p, struct hazard_retired *r)
{
    void *old = atomic_exchange(src, p);
    if (old != NULL) {
        if (r->n == r->cap) {
            r->cap = r->cap ? 2 * r->cap : 8;
            r->items = ab_xrealloc(r->items, r->cap * sizeof(*r->items));
        }
        r->items[r->n++] = old;
    }
    hazard_reclaim(r);
}

void
hazard_retired_free_all(struct hazard_retired *r)
{
    for (size_t i = 0; i < r->n; i++)
        r->free_fn(r->items[i]);
    free(r->items);
    memset(r, 0, sizeof(*r));
}
