/* test_delta.c -- delta method: ratios and ratio metrics. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "stats/delta.h"
#include "tests/unit/ab_test.h"

static void
test_delta_ratio_formula(void **state)
{
    double r, v;
    (void)state;
    /* a = 2, b = 4, Var a = 0.1, Var b = 0.2, Cov = 0.05:
     * 0.1/16 - 2*2*0.05/64 + 4*0.2/256 = 0.00625 - 0.003125 + 0.003125 */
    assert_int_equal(stats_delta_ratio(2, 0.1, 4, 0.2, 0.05, &r, &v, NULL),
                     AB_OK);
    assert_close(r, 0.5, 1e-15);
    assert_close(v, 0.00625, 1e-14);
}

static void
test_ratio_summary_golden_numpy(void **state)
{
    /* y = {3,5,2,8,6}, x = {1,2,1,3,2}; numpy: R = 24/9,
     * var((y - R x)/mean(x), ddof=1) = 0.08573388203017834 */
    struct stats_ratio_moments m = { 5, 24, 138, 9, 19, 51 };
    struct stats_summary s;
    (void)state;
    assert_int_equal(stats_ratio_summary(&m, &s, NULL), AB_OK);
    assert_close(s.mean, 2.6666666666666665, 1e-15);
    assert_close(s.var, 0.08573388203017834, 1e-12);
}

static void
test_ratio_degenerate(void **state)
{
    struct stats_ratio_moments zero_den = { 5, 24, 138, 0, 0, 0 };
    struct stats_ratio_moments impossible = { 5, 24, 138, 9, 19, 500 };
    struct stats_summary s;
    enum stats_reason why;
    double r, v;
    (void)state;
    assert_int_equal(stats_ratio_summary(&zero_den, &s, &why), AB_ENUMERIC);
    assert_int_equal(why, STATS_REASON_ZERO_CONTROL_MEAN);
    assert_int_equal(stats_ratio_summary(&impossible, &s, &why), AB_EINVAL);
    assert_int_equal(why, STATS_REASON_INCONSISTENT);
    assert_int_equal(stats_delta_ratio(1, 1, 0, 1, 0, &r, &v, &why),
                     AB_ENUMERIC);
    assert_int_equal(why, STATS_REASON_ZERO_CONTROL_MEAN);
    assert_int_equal(stats_delta_ratio(NAN, 1, 1, 1, 0, &r, &v, &why),
                     AB_EINVAL);
    assert_int_equal(why, STATS_REASON_NOT_FINITE);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delta_ratio_formula),
        cmocka_unit_test(test_ratio_summary_golden_numpy),
        cmocka_unit_test(test_ratio_degenerate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
