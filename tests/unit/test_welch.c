/* test_welch.c -- Welch's t test, the Wald pivot and t quantiles.
 * Golden values carry their source; degenerate inputs give a status and a
 * reason. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "stats/welch.h"
#include "tests/unit/ab_test.h"

/* c = {1,2,3,4}, t = {2,3,5,7,8} as sufficient statistics */
static const struct stats_moments C4 = { 4, 10, 30 };
static const struct stats_moments T5 = { 5, 25, 151 };

static void
test_welch_golden_small_samples(void **state)
{
    struct stats_result r;
    (void)state;
    assert_int_equal(stats_welch_test(&C4, &T5, STATS_EFFECT_ABSOLUTE,
                                      STATS_SIDE_TWO, 0.05, &r, NULL),
                     AB_OK);
    /* scipy 1.10 ttest_ind(t, c, equal_var=False) */
    assert_close(r.stat, 1.9080819424304414, 1e-12);
    assert_close(r.p_value, 0.10391956185821301, 1e-10);
    /* statsmodels dof_satt(); interval from mpmath (40 digits) */
    assert_close(r.df, 6.1347340015420200463, 1e-12);
    assert_close(r.ci_low, -0.68899291687031606231, 1e-12);
    assert_close(r.ci_high, 5.6889929168703160623, 1e-12);
}

static void
test_welch_one_sided_interval_is_half_open(void **state)
{
    struct stats_result r;
    (void)state;
    assert_int_equal(stats_welch_test(&C4, &T5, STATS_EFFECT_ABSOLUTE,
                                      STATS_SIDE_GREATER, 0.05, &r, NULL),
                     AB_OK);
    /* scipy ttest_ind(..., alternative="greater"): half the two-sided p */
    assert_close(r.p_value, 0.10391956185821301 / 2, 1e-10);
    assert_true(isinf(r.ci_high) && r.ci_high > 0);
    assert_true(isfinite(r.ci_low));
}

static void
test_t_quantile_matches_mpmath(void **state)
{
    (void)state;
    /* mpmath 1.2.1, 40 digits, findroot on the regularised betainc */
    assert_close(stats_t_quantile(0.975, 6), 2.4469118511449699711, 1e-14);
    assert_close(stats_t_quantile(0.975, 100.5), 1.9838506553357997992,
                 1e-14);
    assert_close(stats_t_quantile(0.025, 6), -2.4469118511449699711, 1e-14);
    assert_close(stats_t_quantile(0.975, INFINITY), 1.959963984540054,
                 1e-15);
    assert_true(isnan(stats_t_quantile(0, 5)));
    assert_true(isnan(stats_t_quantile(0.5, -1)));
}

static void
test_welch_degenerate_inputs_have_reasons(void **state)
{
    struct stats_result r;
    enum stats_reason why = STATS_REASON_NONE;
    struct stats_moments one = { 1, 3, 9 }, flat = { 3, 6, 12 },
                         neg = { -3, 1, 1 }, nan_ = { 3, NAN, 1 },
                         big = { 3, 1e200, 1e300 }, zero = { 4, 0, 8 },
                         bad = { 3, 6, 1 };
    (void)state;
    assert_int_equal(stats_welch_test(&one, &T5, 0, 0, 0.05, &r, &why),
                     AB_ENUMERIC);
    assert_int_equal(why, STATS_REASON_FEW_UNITS);
    assert_int_equal(stats_welch_test(&flat, &flat, 0, 0, 0.05, &r, &why),
                     AB_ENUMERIC);
    assert_int_equal(why, STATS_REASON_ZERO_VARIANCE);
    assert_int_equal(stats_welch_test(&neg, &T5, 0, 0, 0.05, &r, &why),
                     AB_EINVAL);
    assert_int_equal(why, STATS_REASON_NEGATIVE);
    assert_int_equal(stats_welch_test(&nan_, &T5, 0, 0, 0.05, &r, &why),
                     AB_EINVAL);
    assert_int_equal(why, STATS_REASON_NOT_FINITE);
    assert_int_equal(stats_welch_test(&big, &T5, 0, 0, 0.05, &r, &why),
                     AB_ENUMERIC);
    assert_int_equal(why, STATS_REASON_OVERFLOW);
    assert_int_equal(stats_welch_test(&bad, &T5, 0, 0, 0.05, &r, &why),
                     AB_EINVAL);
    assert_int_equal(why, STATS_REASON_INCONSISTENT);
    assert_int_equal(stats_welch_test(&zero, &T5, STATS_EFFECT_RELATIVE, 0,
                                      0.05, &r, &why),
                     AB_ENUMERIC);
    assert_int_equal(why, STATS_REASON_ZERO_CONTROL_MEAN);
    assert_int_equal(stats_welch_test(&C4, &T5, 0, 0, 1.5, &r, &why),
                     AB_EINVAL);
    assert_int_equal(why, STATS_REASON_BAD_PARAMETER);
}

static void
test_welch_relative_lift_delta_method(void **state)
{
    struct stats_result r;
    (void)state;
    assert_int_equal(stats_welch_test(&C4, &T5, STATS_EFFECT_RELATIVE,
                                      STATS_SIDE_TWO, 0.05, &r, NULL),
                     AB_OK);
    /* m_c = 2.5, m_t = 5, v_c/n_c = (5/3)/4, v_t/n_t = 6.5/5:
     * lift = 1, var = 1.3/6.25 + 25 (5/12)/39.0625 = 0.48666... */
    assert_close(r.effect, 1.0, 1e-15);
    assert_close(r.se, sqrt(1.3 / 6.25 + 25.0 * (5.0 / 12.0) / 39.0625),
                 1e-14);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_welch_golden_small_samples),
        cmocka_unit_test(test_welch_one_sided_interval_is_half_open),
        cmocka_unit_test(test_t_quantile_matches_mpmath),
        cmocka_unit_test(test_welch_degenerate_inputs_have_reasons),
        cmocka_unit_test(test_welch_relative_lift_delta_method),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
