/* test_prop.c -- two-proportion z test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "stats/prop.h"
#include "tests/unit/ab_test.h"

static void
test_prop_golden_statsmodels(void **state)
{
    struct stats_prop c = { 100, 1000 }, t = { 120, 1000 };
    struct stats_result r;
    (void)state;
    assert_int_equal(stats_prop_ztest(&c, &t, STATS_EFFECT_ABSOLUTE,
                                      STATS_SIDE_TWO, 0.05, &r, NULL),
                     AB_OK);
    /* statsmodels 0.13.5 proportions_ztest([120,100],[1000,1000]) */
    assert_close(r.stat, 1.4293008498232314, 1e-12);
    assert_close(r.p_value, 0.1529177818639462, 1e-11);
    /* confint_proportions_2indep(120,1000,100,1000,method="wald") */
    assert_close(r.ci_low, -0.007411481998019949, 1e-10);
    assert_close(r.ci_high, 0.04741148199801993, 1e-11);
    assert_int_equal(stats_prop_ztest(&c, &t, STATS_EFFECT_ABSOLUTE,
                                      STATS_SIDE_GREATER, 0.05, &r, NULL),
                     AB_OK);
    /* proportions_ztest(..., alternative="larger") */
    assert_close(r.p_value, 0.0764588909319731, 1e-11);
}

static void
test_prop_degenerate(void **state)
{
    struct stats_prop none = { 0, 100 }, over = { 5, 4 }, one = { 1, 1 },
                      ok = { 10, 100 }, neg = { -1, 10 };
    struct stats_result r;
    enum stats_reason why;
    (void)state;
    assert_int_equal(stats_prop_ztest(&none, &none, 0, 0, 0.05, &r, &why),
                     AB_ENUMERIC);
    assert_int_equal(why, STATS_REASON_ZERO_VARIANCE);
    assert_int_equal(stats_prop_ztest(&over, &ok, 0, 0, 0.05, &r, &why),
                     AB_EINVAL);
    assert_int_equal(why, STATS_REASON_INCONSISTENT);
    assert_int_equal(stats_prop_ztest(&one, &ok, 0, 0, 0.05, &r, &why),
                     AB_ENUMERIC);
    assert_int_equal(why, STATS_REASON_FEW_UNITS);
    assert_int_equal(stats_prop_ztest(&neg, &ok, 0, 0, 0.05, &r, &why),
                     AB_EINVAL);
    assert_int_equal(why, STATS_REASON_NEGATIVE);
    assert_int_equal(stats_prop_ztest(&none, &ok, STATS_EFFECT_RELATIVE, 0,
                                      0.05, &r, &why),
                     AB_ENUMERIC);
    assert_int_equal(why, STATS_REASON_ZERO_CONTROL_MEAN);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prop_golden_statsmodels),
        cmocka_unit_test(test_prop_degenerate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
