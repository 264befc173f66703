/* test_bandit_estimate.c -- bandits/estimate.c: inverse-propensity and
 * per-period arm means, by hand and by simulation of an adaptive
 * experiment in which the naive arm mean is biased.
 *
 * Hand values were computed in Python from the definitions (the unit-level
 * sums, not the closed forms in estimate.c):
 *   HT  = sum y/p / N,  se^2 = (sum (y/p)^2 / N - HT^2) / N
 *   Hajek = sum y/p / sum 1/p, se^2 = sum ((y - m)/p)^2 / (sum 1/p)^2
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include <gsl/gsl_errno.h>
#include <gsl/gsl_rng.h>

#include "bandits/bandit.h"
#include "bandits/estimate.h"
#include "tests/unit/ab_test.h"

static void
add_unit(struct bandit_ipw_sums *s, double y, double p)
{
    s->sum_w += 1 / p;
    s->sum_wy += y / p;
    s->sum_w2 += 1 / (p * p);
    s->sum_w2y += y / (p * p);
    s->sum_w2y2 += y * y / (p * p);
}

static void
test_ipw_by_hand(void **state)
{
    (void)state;
    struct bandit_ipw_sums s = { 10, 0, 0, 0, 0, 0 };
    struct bandit_estimate ht, hj, keep = { -1, -1 };

    add_unit(&s, 1, 0.5);
    add_unit(&s, 0, 0.25);
    add_unit(&s, 2, 0.8);
    assert_int_equal(bandit_ipw_mean(&s, &ht, &hj), AB_OK);
    assert_near(ht.mean, 0.45, 1e-15);
    assert_near(ht.se, 0.286792607994, 1e-11);
    assert_near(hj.mean, 0.620689655172, 1e-11);
    assert_near(hj.se, 0.429854878581, 1e-11);

    s.n_total = 0;
    assert_int_equal(bandit_ipw_mean(&s, &keep, NULL), AB_EINVAL);
    assert_near(keep.mean, -1, 0);
    s.n_total = 10;
    s.sum_w = 0;
    assert_int_equal(bandit_ipw_mean(&s, NULL, &keep), AB_EINVAL);
}

static void
test_period_mean_by_hand(void **state)
{
    (void)state;
    /* (100/400) 0.3 + (300/400) 0.4; the empty period does not count */
    struct bandit_period p[3] = {
        { 100, 10, 3, 3 }, { 300, 50, 20, 20 }, { 50, 0, 0, 0 }
    };
    struct bandit_estimate e;
    assert_int_equal(bandit_period_mean(p, 3, &e), AB_OK);
    assert_near(e.mean, 0.375, 1e-15);
    assert_near(e.se, 0.064910980382, 1e-11);
    p[0].n = 0;
    p[1].n = 0;
    assert_int_equal(bandit_period_mean(p, 3, &e), AB_EINVAL);
    p[0].n = 200; /* more units than the period had */
    assert_int_equal(bandit_period_mean(p, 3, &e), AB_EINVAL);
}

/* An adaptive experiment: 2 Bernoulli arms, 4 periods of 500 units with a
 * common upward trend (rates 0.05, 0.15, 0.25, 0.35, arm 1 +0.05 on top);
 * Thompson sampling with a 0.1 floor reweights after each period, so arm 1
 * gets more of the later, better periods. The target is each arm's mean
 * over the whole population (the average of its four period rates). Over
 * 400 replications (seed 11) the naive means are biased by many standard
 * errors (measured: arm 0 -0.075, z = -81; arm 1 +0.019, z = 25); HT,
 * Hajek and the per-period mean are within 4 standard errors of the truth
 * (measured |z| <= 1.44, |bias| <= 0.002). */
static void
test_adaptive_allocation_bias(void **state)
{
    (void)state;
    enum { REPS = 400, PERIODS = 4, PER = 500 };
    static const double base[PERIODS] = { 0.05, 0.15, 0.25, 0.35 };
    static const double delta[2] = { 0.0, 0.05 };
    double err[4][2] = { { 0 } }, err2[4][2] = { { 0 } };
    struct bandit_workspace *ws;
    struct bandit_config cfg;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);

    gsl_set_error_handler_off();
    gsl_rng_set(rng, 11);
    assert_int_equal(bandit_workspace_new(2, &ws), AB_OK);
    bandit_config_default(&cfg, BANDIT_THOMPSON, BANDIT_REWARD_BINARY);
    cfg.floor = 0.1;

    for (int r = 0; r < REPS; r++) {
        struct bandit_arm arms[2] = { { 0, 0, 0, 1 }, { 0, 0, 0, 1 } };
        struct bandit_ipw_sums ipw[2] = { { PERIODS * PER, 0, 0, 0, 0, 0 },
                                          { PERIODS * PER, 0, 0, 0, 0, 0 } };
        struct bandit_period per[2][PERIODS];
        double w[2] = { 0.5, 0.5 };
        memset(per, 0, sizeof(per));
        for (int t = 0; t < PERIODS; t++) {
            if (t > 0)
                assert_int_equal(bandit_weights(arms, 2, &cfg, rng, ws, w,
                                                NULL),
                                 AB_OK);
            for (int i = 0; i < PER; i++) {
                int k = gsl_rng_uniform(rng) < w[0] ? 0 : 1;
                double y = gsl_rng_uniform(rng) < base[t] + delta[k];
                arms[k].n += 1;
                arms[k].sum += y;
                arms[k].sum_sq += y;
                add_unit(&ipw[k], y, w[k]);
                per[k][t].n += 1;
                per[k][t].sum += y;
                per[k][t].sum_sq += y;
            }
            per[0][t].n_total = per[1][t].n_total = PER;
        }
        for (int k = 0; k < 2; k++) {
            struct bandit_estimate ht, hj, pm;
            double truth = 0.2 + delta[k], e[4];
            assert_int_equal(bandit_ipw_mean(&ipw[k], &ht, &hj), AB_OK);
            assert_int_equal(bandit_period_mean(per[k], PERIODS, &pm),
                             AB_OK);
            e[0] = arms[k].sum / arms[k].n - truth;
            e[1] = ht.mean - truth;
            e[2] = hj.mean - truth;
            e[3] = pm.mean - truth;
            for (int j = 0; j < 4; j++) {
                err[j][k] += e[j];
                err2[j][k] += e[j] * e[j];
            }
        }
    }
    for (int k = 0; k < 2; k++) {
        double z[4];
        for (int j = 0; j < 4; j++) {
            double m = err[j][k] / REPS;
            double sd = sqrt((err2[j][k] / REPS - m * m) * REPS /
                             (REPS - 1));
            z[j] = m / (sd / sqrt((double)REPS));
        }
        if (k == 1)
            assert_true(z[0] > 6); /* naive: biased */
        else
            assert_true(z[0] < -6);
        for (int j = 1; j < 4; j++)
            assert_true(fabs(z[j]) < 4);
    }
    bandit_workspace_free(ws);
    gsl_rng_free(rng);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipw_by_hand),
        cmocka_unit_test(test_period_mean_by_hand),
        cmocka_unit_test(test_adaptive_allocation_bias),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
