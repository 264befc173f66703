/* test_bayes.c -- normal model and Beta-Binomial. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "stats/bayes.h"
#include "tests/unit/ab_test.h"

static void
test_bayes_normal_flat_prior_golden(void **state)
{
    struct stats_bayes_result b;
    (void)state;
    assert_int_equal(stats_bayes_normal(0.2, 0.1, NULL, STATS_DIR_INCREASE,
                                        STATS_SIDE_TWO, 0.05, &b, NULL),
                     AB_OK);
    /* scipy: norm.cdf(2); -0.2 Phi(-2) + 0.1 phi(2); 0.2 Phi(2) +
     * 0.1 phi(2) */
    assert_close(b.chance_to_win, 0.9772498680518208, 1e-14);
    assert_close(b.risk_treatment, 0.0008490702616829665, 1e-12);
    assert_close(b.risk_control, 0.20084907026168297, 1e-14);
    assert_close(b.ci_low, 0.2 - 1.959963984540054 * 0.1, 1e-14);
    /* lower is better: the same posterior loses */
    assert_int_equal(stats_bayes_normal(0.2, 0.1, NULL, STATS_DIR_DECREASE,
                                        STATS_SIDE_TWO, 0.05, &b, NULL),
                     AB_OK);
    assert_close(b.chance_to_win, 1 - 0.9772498680518208, 1e-12);
    assert_close(b.risk_control, 0.0008490702616829665, 1e-12);
}

static void
test_bayes_normal_proper_prior_shrinks(void **state)
{
    struct stats_bayes_prior p = { 0, 0.1 };
    struct stats_bayes_result b;
    (void)state;
    /* equal precisions: posterior mean halfway, sd 0.1/sqrt(2) */
    assert_int_equal(stats_bayes_normal(0.2, 0.1, &p, STATS_DIR_INCREASE,
                                        STATS_SIDE_TWO, 0.05, &b, NULL),
                     AB_OK);
    assert_close(b.post_mean, 0.1, 1e-15);
    assert_close(b.post_sd, 0.1 / sqrt(2.0), 1e-15);
}

static void
test_bayes_beta_golden_miller(void **state)
{
    struct stats_bayes_result b;
    (void)state;
    assert_int_equal(stats_bayes_beta(100, 1000, 120, 1000, 1, 1,
                                      STATS_EFFECT_ABSOLUTE,
                                      STATS_DIR_INCREASE, STATS_SIDE_TWO,
                                      0.05, &b, NULL),
                     AB_OK);
    /* Miller (2015) closed-form sum, Beta(101,901) vs Beta(121,881) */
    assert_close(b.chance_to_win, 0.9231834389724246, 1e-10);
    assert_close(b.post_mean, 121.0 / 1002 - 101.0 / 1002, 1e-14);
    assert_true(b.ci_low < b.post_mean && b.post_mean < b.ci_high);
    assert_int_equal(stats_bayes_beta(10, 100, 20, 100, 1, 1,
                                      STATS_EFFECT_ABSOLUTE,
                                      STATS_DIR_INCREASE, STATS_SIDE_TWO,
                                      0.05, &b, NULL),
                     AB_OK);
    assert_close(b.chance_to_win, 0.9751730331528115, 1e-10);
}

static void
test_bayes_degenerate(void **state)
{
    struct stats_bayes_result b;
    enum stats_reason why;
    (void)state;
    assert_int_equal(stats_bayes_normal(0.2, 0, NULL, 0, 0, 0.05, &b, &why),
                     AB_ENUMERIC);
    assert_int_equal(why, STATS_REASON_ZERO_VARIANCE);
    assert_int_equal(stats_bayes_normal(NAN, 1, NULL, 0, 0, 0.05, &b, &why),
                     AB_EINVAL);
    assert_int_equal(why, STATS_REASON_NOT_FINITE);
    assert_int_equal(stats_bayes_beta(1, 100, 5, 100, 1, 1,
                                      STATS_EFFECT_RELATIVE, 0, 0, 0.05, &b,
                                      &why),
                     AB_ENUMERIC);
    assert_int_equal(why, STATS_REASON_ZERO_CONTROL_MEAN);
    assert_int_equal(stats_bayes_beta(101, 100, 5, 100, 1, 1, 0, 0, 0, 0.05,
                                      &b, &why),
                     AB_EINVAL);
    assert_int_equal(why, STATS_REASON_INCONSISTENT);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bayes_normal_flat_prior_golden),
        cmocka_unit_test(test_bayes_normal_proper_prior_shrinks),
        cmocka_unit_test(test_bayes_beta_golden_miller),
        cmocka_unit_test(test_bayes_degenerate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
