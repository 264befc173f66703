/* test_counts.c -- two counting processes, mixture e-value. Golden log E
 * values: scipy.integrate.quad of the formula in counts.h
 * (tests/oracle/test_stats_plan.py, log_e_value). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "stats/counts.h"
#include "tests/unit/ab_test.h"

static void
test_counts_golden_quad(void **state)
{
    const struct stats_count_period one[] = { { 200, 30, 0.1 } };
    const struct stats_count_period ramp[] = {
        { 300, 10, 0.01 }, { 250, 40, 0.05 }, { 400, 300, 0.25 } };
    struct stats_counts_result r;
    (void)state;
    assert_int_equal(stats_counts_test(one, 1, 0.5, STATS_SIDE_TWO, &r,
                                       NULL),
                     AB_OK);
    assert_close(r.log_e_value, -0.059346878149379556, 1e-8);
    assert_close(r.p_value, 1.0, 0);
    /* closed-form MLE with one share: (30/0.1) / (200/0.9) = 1.35 */
    assert_close(r.rate_ratio, 1.35, 1e-12);
    assert_int_equal(stats_counts_test(ramp, 3, 0.5, STATS_SIDE_GREATER, &r,
                                       NULL),
                     AB_OK);
    assert_close(r.log_e_value, 69.6327284599541, 1e-9);
    assert_close(r.p_value, exp(-69.6327284599541), 1e-8);
    assert_int_equal(stats_counts_test(ramp, 3, 0.5, STATS_SIDE_LESS, &r,
                                       NULL),
                     AB_OK);
    assert_close(r.log_e_value, -4.5974623856060015, 1e-8);
}

static void
test_counts_no_errors_is_no_evidence(void **state)
{
    const struct stats_count_period none[] = { { 0, 0, 0.2 } };
    struct stats_counts_result r;
    (void)state;
    assert_int_equal(stats_counts_test(none, 1, 0, STATS_SIDE_TWO, &r, NULL),
                     AB_OK);
    assert_true(r.log_e_value == 0 && r.p_value == 1);
}

static void
test_counts_degenerate(void **state)
{
    const struct stats_count_period neg[] = { { -1, 2, 0.2 } };
    const struct stats_count_period share[] = { { 1, 2, 0 } };
    const struct stats_count_period nan_[] = { { 1, NAN, 0.5 } };
    struct stats_counts_result r;
    enum stats_reason why;
    (void)state;
    assert_int_equal(stats_counts_test(neg, 1, 0, 0, &r, &why), AB_EINVAL);
    assert_int_equal(why, STATS_REASON_NEGATIVE);
    assert_int_equal(stats_counts_test(share, 1, 0, 0, &r, &why), AB_EINVAL);
    assert_int_equal(why, STATS_REASON_BAD_PARAMETER);
    assert_int_equal(stats_counts_test(nan_, 1, 0, 0, &r, &why), AB_EINVAL);
    assert_int_equal(why, STATS_REASON_NOT_FINITE);
    assert_int_equal(stats_counts_test(neg, 0, 0, 0, &r, &why), AB_EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_golden_quad),
        cmocka_unit_test(test_counts_no_errors_is_no_evidence),
        cmocka_unit_test(test_counts_degenerate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
