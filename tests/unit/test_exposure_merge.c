/* test_exposure_merge.c -- the exposure writer's merge rule
 * (service/exposures.h, exposure_merge): per (experiment, unit) the
 * earliest exposure of the highest bucket version wins, counts of that
 * version add up, last_ms is the latest of all; and the tally is the same
 * in every arrival order (threads interleave). The writer thread and the
 * database are not started.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <string.h>

#include "service/exposures.h"

struct ex {
    int32_t bv;
    int64_t wv;
    double prop;
    int64_t ts;
    const char *arm;
};

/* The tally (and the arm the writer keeps) after exposures e[order[i]]. */
static struct exposure_tally
merge_all(const struct ex *e, const size_t *order, size_t n,
          const char **arm)
{
    const struct ex *f = &e[order[0]];
    struct exposure_tally t = {f->bv, f->wv, f->prop, f->ts, f->ts, 1};
    *arm = f->arm;
    for (size_t i = 1; i < n; i++) {
        const struct ex *x = &e[order[i]];
        const struct exposure xp = {.arm = x->arm,
                                    .bucket_version = x->bv,
                                    .weights_version = x->wv,
                                    .propensity = x->prop,
                                    .ts_ms = x->ts};
        if (exposure_merge(&t, &xp) == EXPOSURE_FIRST)
            *arm = x->arm;
    }
    return t;
}

static void
test_earliest_of_a_version_wins(void **state)
{
    (void)state;
    const struct ex e[] = {{1, 3, 0.5, 2000, "b"}, {1, 2, 0.25, 1000, "a"},
                           {1, 4, 0.75, 3000, "c"}};
    const size_t order[] = {0, 1, 2};
    const char *arm;
    struct exposure_tally t = merge_all(e, order, 3, &arm);
    assert_string_equal(arm, "a");
    assert_int_equal(t.bucket_version, 1);
    assert_int_equal(t.weights_version, 2);
    assert_true(t.propensity == 0.25);
    assert_int_equal(t.first_ms, 1000);
    assert_int_equal(t.last_ms, 3000);
    assert_int_equal(t.count, 3);
}

static void
test_higher_bucket_version_replaces(void **state)
{
    (void)state;
    struct exposure_tally t = {1, 1, 0.5, 1000, 1000, 5};
    const struct exposure newer = {.bucket_version = 2,
                                   .weights_version = 9,
                                   .propensity = 0.1,
                                   .ts_ms = 5000};
    assert_int_equal(exposure_merge(&t, &newer), EXPOSURE_FIRST);
    assert_int_equal(t.bucket_version, 2);
    assert_int_equal(t.count, 1); /* version 1's five are superseded */
    assert_int_equal(t.first_ms, 5000);
    assert_int_equal(t.weights_version, 9);
    const struct exposure older = {.bucket_version = 1,
                                   .weights_version = 1,
                                   .propensity = 0.5,
                                   .ts_ms = 9000};
    assert_int_equal(exposure_merge(&t, &older), EXPOSURE_SUPERSEDED);
    assert_int_equal(t.bucket_version, 2);
    assert_int_equal(t.count, 1);
    assert_int_equal(t.first_ms, 5000);
    assert_int_equal(t.last_ms, 9000); /* last_ms is the latest of all */
    const struct exposure later = {.bucket_version = 2,
                                   .weights_version = 10,
                                   .propensity = 0.2,
                                   .ts_ms = 6000};
    assert_int_equal(exposure_merge(&t, &later), EXPOSURE_COUNTED);
    assert_int_equal(t.count, 2);
    assert_int_equal(t.weights_version, 9);
}

/* Every one of the 720 orders of six exposures over two bucket versions
 * gives the same tally and arm. */
static void
test_every_arrival_order_agrees(void **state)
{
    (void)state;
    const struct ex e[] = {
        {1, 1, 0.5, 1000, "a"}, {2, 5, 0.3, 4000, "d"},
        {1, 2, 0.4, 500, "b"},  {2, 6, 0.2, 3500, "c"},
        {2, 7, 0.1, 9000, "e"}, {1, 3, 0.6, 9500, "f"},
    };
    size_t order[6] = {0, 1, 2, 3, 4, 5}, c[6] = {0};
    const char *arm;
    struct exposure_tally want = merge_all(e, order, 6, &arm);
    assert_string_equal(arm, "c");
    assert_int_equal(want.bucket_version, 2);
    assert_int_equal(want.first_ms, 3500);
    assert_int_equal(want.last_ms, 9500);
    assert_int_equal(want.count, 3);
    assert_int_equal(want.weights_version, 6);
    int seen = 1;
    /* Heap's algorithm, iterative */
    for (size_t i = 1; i < 6;) {
        if (c[i] < i) {
            size_t j = i % 2 ? c[i] : 0, tmp = order[j];
            order[j] = order[i];
            order[i] = tmp;
            struct exposure_tally t = merge_all(e, order, 6, &arm);
            assert_string_equal(arm, "c");
            assert_int_equal(t.bucket_version, want.bucket_version);
            assert_int_equal(t.weights_version, want.weights_version);
            assert_true(t.propensity == want.propensity);
            assert_int_equal(t.first_ms, want.first_ms);
            assert_int_equal(t.last_ms, want.last_ms);
            assert_int_equal(t.count, want.count);
            seen++;
            c[i]++;
            i = 1;
        } else {
            c[i] = 0;
            i++;
        }
    }
    assert_int_equal(seen, 720);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_earliest_of_a_version_wins),
        cmocka_unit_test(test_higher_bucket_version_replaces),
        cmocka_unit_test(test_every_arrival_order_agrees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
