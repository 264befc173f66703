/* test_bandit_apportion.c -- shares to millionths (Hamilton's largest
 * remainder), the publish-worthy change test and the per-version rng
 * seed (bandits/alloc.h). Expected millionths are worked by hand from the
 * quotas; the seeds are "do not update" goldens: every published weights
 * version records its rng_seed, and recomputing an old version must give
 * the same number. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "bandits/alloc.h"
#include "bandits/bandit.h"
#include "tests/unit/ab_test.h"

static uint32_t
total(const uint32_t *m, size_t n)
{
    uint32_t t = 0;
    for (size_t k = 0; k < n; k++)
        t += m[k];
    return t;
}

static void
test_thirds_remainder_to_lowest_index(void **state)
{
    /* quotas 333333.33 each: one millionth left, ties go to index 0 */
    const double w[3] = {1, 1, 1};
    uint32_t m[3];
    (void)state;
    assert_int_equal(bandit_to_millionths(w, 3, m), AB_OK);
    assert_int_equal(m[0], 333334);
    assert_int_equal(m[1], 333333);
    assert_int_equal(m[2], 333333);
}

static void
test_largest_fractional_parts_win(void **state)
{
    /* quotas 142857.142857, 285714.285714, 571428.571428 (1:2:4): floors
     * sum to 999999; the largest fraction (.571) takes the millionth */
    const double w[3] = {1, 2, 4};
    uint32_t m[3];
    (void)state;
    assert_int_equal(bandit_to_millionths(w, 3, m), AB_OK);
    assert_int_equal(m[0], 142857);
    assert_int_equal(m[1], 285714);
    assert_int_equal(m[2], 571429);
}

static void
test_unnormalised_shares_and_zeros(void **state)
{
    const double w[4] = {0, 30, 0, 10}; /* 75 % and 25 % */
    uint32_t m[4];
    (void)state;
    assert_int_equal(bandit_to_millionths(w, 4, m), AB_OK);
    assert_int_equal(m[0], 0);
    assert_int_equal(m[1], 750000);
    assert_int_equal(m[2], 0);
    assert_int_equal(m[3], 250000);
}

static void
test_always_sums_to_a_million(void **state)
{
    double w[BANDIT_MAX_ARMS];
    uint32_t m[BANDIT_MAX_ARMS];
    (void)state;
    for (size_t n = 1; n <= BANDIT_MAX_ARMS; n += 17) {
        for (size_t k = 0; k < n; k++)
            w[k] = 1.0 / (double)(k + 3) + 1e-9 * (double)k;
        assert_int_equal(bandit_to_millionths(w, n, m), AB_OK);
        assert_int_equal(total(m, n), BANDIT_MILLIONTHS);
        /* each within one millionth of its quota */
        double sum = 0;
        for (size_t k = 0; k < n; k++)
            sum += w[k];
        for (size_t k = 0; k < n; k++)
            assert_near((double)m[k], 1e6 * w[k] / sum, 1.0);
    }
}

static void
test_bad_shares_are_refused(void **state)
{
    uint32_t m[3] = {7, 7, 7};
    const double neg[3] = {1, -0.1, 1}, zero[3] = {0, 0, 0};
    const double inf[3] = {1, INFINITY, 1}, nan_[3] = {1, NAN, 1};
    (void)state;
    assert_int_equal(bandit_to_millionths(neg, 3, m), AB_EINVAL);
    assert_int_equal(bandit_to_millionths(zero, 3, m), AB_EINVAL);
    assert_int_equal(bandit_to_millionths(inf, 3, m), AB_EINVAL);
    assert_int_equal(bandit_to_millionths(nan_, 3, m), AB_EINVAL);
    assert_int_equal(bandit_to_millionths(neg, 0, m), AB_EINVAL);
    assert_int_equal(m[0], 7); /* untouched */
}

static void
test_one_millionth_is_not_a_change(void **state)
{
    const uint32_t a[3] = {333334, 333333, 333333};
    const uint32_t b[3] = {333333, 333333, 333334};
    const uint32_t c[3] = {333336, 333332, 333332};
    (void)state;
    assert_false(bandit_weights_changed(a, b, 3));
    assert_false(bandit_weights_changed(a, a, 3));
    assert_true(bandit_weights_changed(a, c, 3));
    assert_true(bandit_weights_changed(c, a, 3));
}

static void
test_rng_seed_golden_do_not_update(void **state)
{
    /* splitmix64 (Steele, Lea and Flood 2014) of the reference
     * implementation (Vigna, prng.di.unimi.it/splitmix64.c), composed as
     * in alloc.h and computed independently in Python:
     *   M = 2**64 - 1
     *   def sm(x):
     *       x = (x + 0x9e3779b97f4a7c15) & M
     *       x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & M
     *       x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & M
     *       return x ^ (x >> 31)
     *   seed = sm((s & M) ^ sm(v & M)) & 0xffffffff */
    (void)state;
    assert_int_equal(bandit_rng_seed(0, 1), 1949917470u);
    assert_int_equal(bandit_rng_seed(42, 7), 3743846332u);
    assert_int_equal(bandit_rng_seed(-1, 2), 3469357485u);
    assert_true(bandit_rng_seed(42, 7) != bandit_rng_seed(42, 8));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thirds_remainder_to_lowest_index),
        cmocka_unit_test(test_largest_fractional_parts_win),
        cmocka_unit_test(test_unnormalised_shares_and_zeros),
        cmocka_unit_test(test_always_sums_to_a_million),
        cmocka_unit_test(test_bad_shares_are_refused),
        cmocka_unit_test(test_one_millionth_is_not_a_change),
        cmocka_unit_test(test_rng_seed_golden_do_not_update),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
