/* test_sticky_cache.c -- the in-memory sticky cache (service/sticky.h):
 * the first arm wins, a newer bucket version re-randomizes, experiments
 * are separate, the capacity holds (FIFO eviction: the oldest entries go,
 * the newest stay), and eight threads at once lose nothing they should
 * keep. The store behind it (PostgreSQL with a deadline) is
 * test_sticky_store's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "service/sticky.h"

static void
test_first_arm_wins(void **state)
{
    (void)state;
    struct sticky_cache *c = sticky_cache_new(1000);
    char arm[65];
    assert_int_equal(sticky_cache_get(c, 1, "u1", 1, arm, sizeof(arm)), 0);
    sticky_cache_put(c, 1, "u1", "treatment", 1);
    sticky_cache_put(c, 1, "u1", "control", 1); /* later: ignored */
    assert_int_equal(sticky_cache_get(c, 1, "u1", 1, arm, sizeof(arm)), 1);
    assert_string_equal(arm, "treatment");
    assert_int_equal(sticky_cache_get(c, 1, "u2", 1, arm, sizeof(arm)), 0);
    assert_int_equal(sticky_cache_size(c), 1);
    sticky_cache_free(c);
}

static void
test_bucket_versions(void **state)
{
    (void)state;
    struct sticky_cache *c = sticky_cache_new(1000);
    char arm[65];
    sticky_cache_put(c, 7, "u", "a", 1);
    /* an experiment re-randomized to version 2 does not see version 1 */
    assert_int_equal(sticky_cache_get(c, 7, "u", 2, arm, sizeof(arm)), 0);
    sticky_cache_put(c, 7, "u", "b", 2); /* newer version replaces */
    assert_int_equal(sticky_cache_get(c, 7, "u", 2, arm, sizeof(arm)), 1);
    assert_string_equal(arm, "b");
    sticky_cache_put(c, 7, "u", "c", 1); /* older version never does */
    assert_int_equal(sticky_cache_get(c, 7, "u", 1, arm, sizeof(arm)), 1);
    assert_string_equal(arm, "b");
    assert_int_equal(sticky_cache_get(c, 7, "u", 3, arm, sizeof(arm)), 0);
    assert_int_equal(sticky_cache_size(c), 1);
    sticky_cache_free(c);
}

static void
test_experiments_and_limits(void **state)
{
    (void)state;
    struct sticky_cache *c = sticky_cache_new(1000);
    char arm[65], tiny[3];
    sticky_cache_put(c, 1, "u", "one", 1);
    sticky_cache_put(c, 2, "u", "two", 1);
    assert_int_equal(sticky_cache_get(c, 1, "u", 1, arm, sizeof(arm)), 1);
    assert_string_equal(arm, "one");
    assert_int_equal(sticky_cache_get(c, 2, "u", 1, arm, sizeof(arm)), 1);
    assert_string_equal(arm, "two");
    /* an arm that does not fit the caller's buffer is not found */
    assert_int_equal(sticky_cache_get(c, 1, "u", 1, tiny, sizeof(tiny)), 0);
    /* arm names are at most 64 bytes (CORE_KEY_MAX): a longer one is
     * not kept */
    char long_arm[80];
    memset(long_arm, 'x', 65);
    long_arm[65] = '\0';
    sticky_cache_put(c, 3, "u", long_arm, 1);
    assert_int_equal(sticky_cache_get(c, 3, "u", 1, arm, sizeof(arm)), 0);
    memset(long_arm, 'y', 64);
    long_arm[64] = '\0';
    sticky_cache_put(c, 3, "u", long_arm, 1);
    assert_int_equal(sticky_cache_get(c, 3, "u", 1, arm, sizeof(arm)), 1);
    assert_string_equal(arm, long_arm);
    sticky_cache_free(c);
}

/* 64 shards of capacity/64 + 1 entries each: 100,000 units through a cache
 * of 6,400 keep exactly 6,464; the newest 1,000 are all there, the first
 * 1,000 all evicted (FIFO per shard). */
static void
test_capacity_evicts_oldest(void **state)
{
    (void)state;
    struct sticky_cache *c = sticky_cache_new(6400);
    char unit[32], arm[65];
    for (int i = 0; i < 100000; i++) {
        snprintf(unit, sizeof(unit), "unit-%d", i);
        sticky_cache_put(c, 1, unit, i % 2 ? "b" : "a", 1);
    }
    /* ~1,560 units reach each shard: every one is full at 6400/64 + 1 */
    assert_int_equal(sticky_cache_size(c), 64 * 101);
    for (int i = 0; i < 1000; i++) {
        snprintf(unit, sizeof(unit), "unit-%d", i);
        assert_int_equal(sticky_cache_get(c, 1, unit, 1, arm, sizeof(arm)),
                         0);
        snprintf(unit, sizeof(unit), "unit-%d", 99999 - i);
        assert_int_equal(sticky_cache_get(c, 1, unit, 1, arm, sizeof(arm)),
                         1);
        assert_string_equal(arm, (99999 - i) % 2 ? "b" : "a");
    }
    sticky_cache_free(c);
}

struct worker {
    struct sticky_cache *c;
    int id;
    int wrong;
};

static void *
work(void *arg)
{
    struct worker *w = arg;
    char unit[32], arm[65], want[16];
    for (int i = 0; i < 20000; i++) {
        snprintf(unit, sizeof(unit), "u%d", i % 500);
        snprintf(want, sizeof(want), "t%d", w->id);
        sticky_cache_put(w->c, w->id, unit, want, 1);
        if (sticky_cache_get(w->c, w->id, unit, 1, arm, sizeof(arm)) != 1 ||
            strcmp(arm, want) != 0)
            w->wrong++;
    }
    return NULL;
}

/* Eight threads, each its own experiment, 500 units: no lost or crossed
 * entry while they share shards (ASan and the mutexes under test). */
static void
test_threads_share_shards(void **state)
{
    (void)state;
    struct sticky_cache *c = sticky_cache_new(100000);
    pthread_t t[8];
    struct worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (struct worker){c, i + 1, 0};
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].wrong, 0);
    }
    assert_int_equal(sticky_cache_size(c), 8 * 500);
    sticky_cache_free(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_arm_wins),
        cmocka_unit_test(test_bucket_versions),
        cmocka_unit_test(test_experiments_and_limits),
        cmocka_unit_test(test_capacity_evicts_oldest),
        cmocka_unit_test(test_threads_share_shards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
