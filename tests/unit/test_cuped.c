/* test_cuped.c -- CUPED with theta pooled across arms. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "stats/cuped.h"
#include "tests/unit/ab_test.h"

/* control y = {10,12,9,11,14}, x = {9,11,9,10,12};
 * treatment y = {13,12,15,11,16,14}, x = {10,10,12,9,13,11} */
static const struct stats_cuped_moments ARMS[2] = {
    { 5, 56, 642, 51, 527, 581 },
    { 6, 81, 1111, 65, 715, 891 },
};

static void
test_cuped_golden_statsmodels_ols(void **state)
{
    struct stats_cuped_summary c, t;
    struct stats_result r;
    double theta, xbar;
    (void)state;
    assert_int_equal(stats_cuped_theta(ARMS, 2, &theta, NULL), AB_OK);
    /* statsmodels OLS(y, [arm dummies, x]).params[-1] */
    assert_close(theta, 1.3213610586011337, 1e-12);
    assert_int_equal(stats_cuped_pre_mean(ARMS, 2, &xbar, NULL), AB_OK);
    assert_close(xbar, 116.0 / 11.0, 1e-15);
    assert_int_equal(stats_cuped_summary(&ARMS[0], theta, xbar, &c, NULL),
                     AB_OK);
    assert_int_equal(stats_cuped_summary(&ARMS[1], theta, xbar, &t, NULL),
                     AB_OK);
    /* numpy: mean of y - theta (x - xbar) per arm */
    assert_close(c.adj.mean, 11.65647018388039, 1e-12);
    assert_close(t.adj.mean, 13.119608180099673, 1e-12);
    assert_int_equal(stats_cuped_compare(&c, &t, STATS_EFFECT_ABSOLUTE,
                                         STATS_SIDE_TWO, 0.05, 1, &r, NULL),
                     AB_OK);
    /* scipy ttest_ind(adj_t, adj_c, equal_var=False).pvalue */
    assert_close(r.p_value, 0.0003823267821150249, 1e-9);
}

static void
test_cuped_constant_covariate_means_no_adjustment(void **state)
{
    struct stats_cuped_moments flat[2] = { { 5, 56, 642, 10, 20, 112 },
                                           { 6, 81, 1111, 12, 24, 162 } };
    double theta;
    (void)state;
    assert_int_equal(stats_cuped_theta(flat, 2, &theta, NULL), AB_OK);
    assert_true(theta == 0);
}

static void
test_cuped_degenerate(void **state)
{
    struct stats_cuped_moments one[1] = { { 1, 5, 25, 1, 1, 5 } };
    struct stats_cuped_moments bad[1] = { { 5, 56, 642, 51, 527, 5000 } };
    double theta;
    enum stats_reason why;
    (void)state;
    assert_int_equal(stats_cuped_theta(one, 1, &theta, &why), AB_ENUMERIC);
    assert_int_equal(why, STATS_REASON_FEW_UNITS);
    assert_int_equal(stats_cuped_theta(bad, 1, &theta, &why), AB_EINVAL);
    assert_int_equal(why, STATS_REASON_INCONSISTENT);
    assert_int_equal(stats_cuped_theta(one, 0, &theta, &why), AB_EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cuped_golden_statsmodels_ols),
        cmocka_unit_test(test_cuped_constant_covariate_means_no_adjustment),
        cmocka_unit_test(test_cuped_degenerate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
