/* test_hazard.c -- hazard pointers (service/hazard.h): an object a reader
 * holds is never freed, every retired object is freed once released, and
 * readers racing a writer that swaps and retires thousands of times never
 * see a freed object (run under ASan: a use after free aborts the test).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "service/hazard.h"

#define ALIVE 0x600dcafeu

struct obj {
    _Atomic unsigned magic;
    long serial;
};

static _Atomic long n_freed;

static void
obj_free(void *p)
{
    struct obj *o = p;
    atomic_store(&o->magic, 0xdeadu);
    atomic_fetch_add(&n_freed, 1);
    free(o);
}

static struct obj *
obj_new(long serial)
{
    struct obj *o = calloc(1, sizeof(*o));
    atomic_store(&o->magic, ALIVE);
    o->serial = serial;
    return o;
}

static void
test_held_object_is_kept_until_released(void **state)
{
    (void)state;
    atomic_store(&n_freed, 0);
    void *_Atomic shared = obj_new(1);
    struct hazard_retired r = {.free_fn = obj_free};
    struct obj *held = hazard_acquire(&shared);
    assert_int_equal(held->serial, 1);
    struct obj *nested = hazard_acquire(&shared); /* nested read */
    assert_ptr_equal(nested, held);
    hazard_publish(&shared, obj_new(2), &r);
    assert_int_equal(atomic_load(&n_freed), 0);
    assert_int_equal(hazard_reclaim(&r), 1);
    hazard_release(nested);
    assert_int_equal(hazard_reclaim(&r), 1); /* still held once */
    assert_int_equal(atomic_load(&held->magic), ALIVE);
    hazard_release(held);
    assert_int_equal(hazard_reclaim(&r), 0);
    assert_int_equal(atomic_load(&n_freed), 1);
    struct obj *now = hazard_acquire(&shared);
    assert_int_equal(now->serial, 2);
    hazard_release(now);
    hazard_retired_free_all(&r);
    obj_free(atomic_exchange(&shared, NULL));
}

static void *
hold_and_exit(void *arg)
{
    (void)hazard_acquire(arg); /* never released: the thread ends */
    return NULL;
}

static void
test_thread_end_releases_its_hazards(void **state)
{
    (void)state;
    atomic_store(&n_freed, 0);
    void *_Atomic shared = obj_new(1);
    struct hazard_retired r = {.free_fn = obj_free};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, hold_and_exit, &shared), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    hazard_publish(&shared, obj_new(2), &r);
    assert_int_equal(hazard_reclaim(&r), 0);
    assert_int_equal(atomic_load(&n_freed), 1);
    hazard_retired_free_all(&r);
    obj_free(atomic_exchange(&shared, NULL));
}

struct race {
    void *_Atomic shared;
    atomic_bool stop;
    _Atomic long reads, bad;
};

static void *
reader(void *arg)
{
    struct race *rc = arg;
    long last = 0;
    while (!atomic_load(&rc->stop)) {
        struct obj *o = hazard_acquire(&rc->shared);
        if (atomic_load(&o->magic) != ALIVE || o->serial < last)
            atomic_fetch_add(&rc->bad, 1);
        last = o->serial;
        /* touch it for a while, as a request would */
        for (int i = 0; i < 50; i++)
            if (atomic_load(&o->magic) != ALIVE)
                atomic_fetch_add(&rc->bad, 1);
        hazard_release(o);
        atomic_fetch_add(&rc->reads, 1);
    }
    return NULL;
}

static void
test_readers_racing_a_writer_never_see_a_freed_object(void **state)
{
    (void)state;
    enum { READERS = 3, SWAPS = 20000 };
    atomic_store(&n_freed, 0);
    struct race rc = {.shared = obj_new(0)};
    struct hazard_retired r = {.free_fn = obj_free};
    pthread_t t[READERS];
    for (int i = 0; i < READERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader, &rc), 0);
    size_t most_pending = 0;
    for (long s = 1; s <= SWAPS; s++) {
        hazard_publish(&rc.shared, obj_new(s), &r);
        if (r.n > most_pending)
            most_pending = r.n;
    }
    atomic_store(&rc.stop, true);
    for (int i = 0; i < READERS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(atomic_load(&rc.bad), 0);
    assert_true(atomic_load(&rc.reads) > 0);
    /* at most one object per reader hazard stays pending at a time */
    assert_true(most_pending <= READERS + 1);
    assert_int_equal(hazard_reclaim(&r), 0);
    assert_int_equal(atomic_load(&n_freed), SWAPS);
    hazard_retired_free_all(&r);
    obj_free(atomic_exchange(&rc.shared, NULL));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_held_object_is_kept_until_released),
        cmocka_unit_test(test_thread_end_releases_its_hazards),
        cmocka_unit_test(test_readers_racing_a_writer_never_see_a_freed_object),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
