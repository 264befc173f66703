/* test_srm.c -- sample-ratio mismatch. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "stats/srm.h"
#include "tests/unit/ab_test.h"

static void
test_srm_golden_scipy(void **state)
{
    const double counts[] = { 5100, 4900 }, w[] = { 50, 50 };
    const double canary[] = { 9525, 475 }, cw[] = { 95, 5 };
    struct stats_srm s;
    (void)state;
    assert_int_equal(stats_srm_test(counts, w, 2, 0, &s, NULL), AB_OK);
    /* scipy.stats.chisquare([5100, 4900], [5000, 5000]) */
    assert_close(s.chi2, 4.0, 1e-15);
    assert_close(s.p_value, 0.04550026389635842, 1e-12);
    assert_false(s.mismatch);
    assert_int_equal(stats_srm_test(canary, cw, 2, 0, &s, NULL), AB_OK);
    /* scipy.stats.chisquare([9525, 475], [9500, 500]) */
    assert_close(s.chi2, 1.3157894736842106, 1e-14);
    assert_close(s.p_value, 0.25134910881022265, 1e-12);
}

static void
test_srm_units_in_a_zero_weight_arm_is_a_mismatch(void **state)
{
    const double counts[] = { 500, 500, 3 }, w[] = { 50, 50, 0 };
    struct stats_srm s;
    (void)state;
    assert_int_equal(stats_srm_test(counts, w, 3, 0, &s, NULL), AB_OK);
    assert_true(s.p_value == 0 && s.mismatch);
    assert_close(s.df, 1, 0);
}

static void
test_srm_degenerate(void **state)
{
    const double zero[] = { 0, 0 }, w[] = { 1, 1 }, neg[] = { -1, 5 };
    const double one_w[] = { 1, 0 }, frac[] = { 1.5, 2 };
    struct stats_srm s;
    enum stats_reason why;
    (void)state;
    assert_int_equal(stats_srm_test(zero, w, 2, 0, &s, &why), AB_ENUMERIC);
    assert_int_equal(why, STATS_REASON_FEW_UNITS);
    assert_int_equal(stats_srm_test(neg, w, 2, 0, &s, &why), AB_EINVAL);
    assert_int_equal(why, STATS_REASON_NEGATIVE);
    assert_int_equal(stats_srm_test(w, one_w, 2, 0, &s, &why), AB_EINVAL);
    assert_int_equal(why, STATS_REASON_BAD_PARAMETER);
    assert_int_equal(stats_srm_test(frac, w, 2, 0, &s, &why), AB_EINVAL);
    assert_int_equal(why, STATS_REASON_INCONSISTENT);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_srm_golden_scipy),
        cmocka_unit_test(test_srm_units_in_a_zero_weight_arm_is_a_mismatch),
        cmocka_unit_test(test_srm_degenerate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
