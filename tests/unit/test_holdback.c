/* test_holdback.c -- unit tests of core/holdback.c, the watch after
 * promotion: the baseline is subtracted, the test is the one-sided mSPRT of
 * stats/msprt.c on the increments, and by simulation (seeded, 1,000
 * holdbacks of 60 looks each, 2 % of 5,000 new units per look on the
 * previous version) a holdback whose benefit holds is flagged at most at
 * the stated rate alpha = 5 %, and a reversal after promotion (conversion
 * 10 % -> 8 %, or latency +5 %) is flagged.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <string.h>

#include "core/holdback.h"
#include "tests/unit/ab_test.h"

static struct core_arm arms[2] = {{"v1", "", 20000, true},
                                  {"v2", "", 980000, false}};
static struct core_metric metrics[3] = {
    {"conv", CORE_METRIC_BINARY, CORE_INCREASE, CORE_ROLE_PRIMARY, NULL, 0, {0}},
    {"latency", CORE_METRIC_MEAN, CORE_DECREASE, CORE_ROLE_GUARDRAIL, NULL, 0, {0}},
    {"clicks", CORE_METRIC_MEAN, CORE_INCREASE, CORE_ROLE_SECONDARY, NULL, 0, {0}}};

static void
experiment(struct core_experiment *e)
{
    memset(e, 0, sizeof(*e));
    e->key = "exp";
    e->arms = arms;
    e->n_arms = 2;
    e->control = 0;
    e->metrics = metrics;
    e->n_metrics = 3;
}

static const struct core_holdback_config cfg = {20000, 3600, 0.05, 5000,
                                                100};

static struct core_eval_stats *
at(struct core_eval_stats *s, size_t m, size_t a)
{
    return &s[m * CORE_EVAL_MAX_ARMS + a];
}

/* Add n units: binary with rate p (metric 0), normal(mu, sd) (metric 1),
 * sufficient statistics drawn exactly (sum ~ N(n mu, n sd^2), the sum of
 * squared deviations ~ sd^2 chi2(n - 1), independent). */
static void
add_units(gsl_rng *rng, struct core_eval_stats *s, size_t arm, double n,
          double p, double mu, double sd)
{
    struct core_eval_stats *b = at(s, 0, arm), *l = at(s, 1, arm);
    double k = (double)gsl_ran_binomial(rng, p, (unsigned)n);
    b->n += n;
    b->sum += k;
    b->sum_sq += k;
    double sum = n * mu + sd * sqrt(n) * gsl_ran_gaussian(rng, 1.0);
    double ss = sd * sd * gsl_ran_chisq(rng, n - 1);
    l->n += n;
    l->sum += sum;
    l->sum_sq += ss + sum * sum / n;
    l->units_with_events += n;
}

static void
test_baseline_is_subtracted(void **state)
{
    (void)state;
    struct core_experiment e;
    experiment(&e);
    static struct core_eval_stats base[CORE_EVAL_MAX_METRICS *
                                       CORE_EVAL_MAX_ARMS],
        now[CORE_EVAL_MAX_METRICS * CORE_EVAL_MAX_ARMS];
    memset(base, 0, sizeof(base));
    /* the canary: v2 much better on conversion (12 % vs 10 %) */
    *at(base, 0, 0) = (struct core_eval_stats){5000, 500, 500, 0, 0, 0, 0};
    *at(base, 0, 1) = (struct core_eval_stats){20000, 2400, 2400, 0, 0, 0, 0};
    memcpy(now, base, sizeof(now));
    /* after: v2 worse (8 % vs 10 %) on 2,000 / 20,000 new units */
    at(now, 0, 0)->n += 2000;
    at(now, 0, 0)->sum += 200;
    at(now, 0, 0)->sum_sq += 200;
    at(now, 0, 1)->n += 20000;
    at(now, 0, 1)->sum += 1600;
    at(now, 0, 1)->sum_sq += 1600;
    struct core_holdback_tests t;
    core_holdback_tests_init(&t);
    struct core_holdback_result r;
    assert_int_equal(core_holdback_evaluate(&e, &cfg, 0, 1, now, base, 0,
                                            1000, &t, &r),
                     AB_OK);
    assert_int_equal(r.n_lines, 2); /* secondary metrics are not watched */
    assert_close(r.alpha_each, 0.025, 1e-15);
    const struct core_holdback_line *l = &r.lines[0];
    assert_true(l->tested);
    assert_close(l->n_previous, 2000, 0);
    assert_close(l->mean_previous, 0.10, 1e-12);
    assert_close(l->mean_promoted, 0.08, 1e-12);
    assert_close(l->effect, -0.02, 1e-9);
    /* the same test, called directly on the increments (pooled p) */
    double p = 1800.0 / 22000.0;
    struct stats_summary a = {2000, 0.1, p * (1 - p)},
                         b = {20000, 0.08, p * (1 - p)};
    struct stats_msprt_opts o = {0.025, 5000, STATS_SIDE_LESS, 0, 0};
    struct stats_msprt_result want;
    assert_int_equal(stats_msprt_test(&a, &b, &o, NULL, &want, NULL), AB_OK);
    assert_close(l->p_running, want.abs.p_running, 1e-12);
    assert_close(l->ci_high, want.abs.ci_high_running, 1e-12);
    assert_true(l->reversed);
    assert_int_equal(r.verdict, CORE_HOLDBACK_REVERSED);
    assert_true(r.new_alert);
    assert_int_equal(r.reversed_metric, 0);
    /* the latch: the alert is raised once, the verdict stays */
    assert_int_equal(core_holdback_evaluate(&e, &cfg, 0, 1, now, base, 0,
                                            2000, &t, &r),
                     AB_OK);
    assert_int_equal(r.verdict, CORE_HOLDBACK_REVERSED);
    assert_false(r.new_alert);
    /* without the baseline the canary's data hides the reversal */
    core_holdback_tests_init(&t);
    assert_int_equal(core_holdback_evaluate(&e, &cfg, 0, 1, now, NULL, 0,
                                            1000, &t, &r),
                     AB_OK);
    assert_false(r.lines[0].reversed);
}

static void
test_period_ends_and_few_units_wait(void **state)
{
    (void)state;
    struct core_experiment e;
    experiment(&e);
    static struct core_eval_stats now[CORE_EVAL_MAX_METRICS *
                                      CORE_EVAL_MAX_ARMS];
    memset(now, 0, sizeof(now));
    *at(now, 0, 0) = (struct core_eval_stats){50, 5, 5, 0, 0, 0, 0};
    *at(now, 0, 1) = (struct core_eval_stats){2450, 245, 245, 0, 0, 0, 0};
    struct core_holdback_tests t;
    core_holdback_tests_init(&t);
    struct core_holdback_result r;
    assert_int_equal(core_holdback_evaluate(&e, &cfg, 0, 1, now, NULL,
                                            1000, 1000 + 3599999, &t, &r),
                     AB_OK);
    assert_false(r.lines[0].tested); /* 50 < min_units */
    assert_int_equal(r.verdict, CORE_HOLDBACK_HOLDING);
    assert_int_equal(core_holdback_evaluate(&e, &cfg, 0, 1, now, NULL,
                                            1000, 1000 + 3600000, &t, &r),
                     AB_OK);
    assert_int_equal(r.verdict, CORE_HOLDBACK_ENDED);
    struct core_holdback_config bad = cfg;
    bad.share = 0;
    assert_int_equal(core_holdback_evaluate(&e, &bad, 0, 1, now, NULL, 0, 0,
                                            &t, &r),
                     AB_EINVAL);
    assert_int_equal(core_holdback_evaluate(&e, &cfg, 1, 1, now, NULL, 0, 0,
                                            &t, &r),
                     AB_EINVAL);
}

/* One holdback of 60 looks; true when flagged. conv_after / lat_after:
 * the promoted arm's conversion and latency mean after promotion (the
 * previous version: 10 %, 100 ms, sd 20). */
static bool
holdback_flagged(gsl_rng *rng, double conv_after, double lat_after)
{
    struct core_experiment e;
    experiment(&e);
    static struct core_eval_stats base[CORE_EVAL_MAX_METRICS *
                                       CORE_EVAL_MAX_ARMS],
        now[CORE_EVAL_MAX_METRICS * CORE_EVAL_MAX_ARMS];
    memset(base, 0, sizeof(base));
    /* the canary's data: the promoted arm was better */
    add_units(rng, base, 0, 10000, 0.10, 100, 20);
    add_units(rng, base, 1, 10000, 0.12, 95, 20);
    memcpy(now, base, sizeof(now));
    struct core_holdback_tests t;
    core_holdback_tests_init(&t);
    for (int look = 1; look <= 60; look++) {
        add_units(rng, now, 0, 100, 0.10, 100, 20);
        add_units(rng, now, 1, 4900, conv_after, lat_after, 20);
        struct core_holdback_result r;
        assert_int_equal(core_holdback_evaluate(&e, &cfg, 0, 1, now, base, 0,
                                                look * 60000LL, &t, &r),
                         AB_OK);
        if (r.verdict == CORE_HOLDBACK_REVERSED)
            return true;
    }
    return false;
}

/* No reversal (the promoted arm is exactly as good as the previous
 * version: the boundary of the null): at most alpha = 5 % of 1,000
 * holdbacks flagged, plus 3 Monte Carlo standard errors (0.021). */
static void
test_holding_benefit_false_alarm_rate(void **state)
{
    (void)state;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 1605);
    int flagged = 0;
    for (int run = 0; run < 1000; run++)
        flagged += holdback_flagged(rng, 0.10, 100);
    gsl_rng_free(rng);
    print_message("holding: %d of 1000 holdbacks flagged (alpha 0.05)\n",
                  flagged);
    assert_true(flagged <= 50 + 21);
}

/* Reversals: conversion 10 % -> 8 % (at least 95 % flagged), latency
 * 100 -> 105 ms (at least 95 % flagged). */
static void
test_reversal_is_flagged(void **state)
{
    (void)state;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 1606);
    int conv = 0, lat = 0;
    for (int run = 0; run < 1000; run++) {
        conv += holdback_flagged(rng, 0.08, 100);
        lat += holdback_flagged(rng, 0.10, 105);
    }
    gsl_rng_free(rng);
    print_message("reversed: conversion %d, latency %d of 1000 flagged\n",
                  conv, lat);
    assert_true(conv >= 950);
    assert_true(lat >= 950);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_baseline_is_subtracted),
        cmocka_unit_test(test_period_ends_and_few_units_wait),
        cmocka_unit_test(test_holding_benefit_false_alarm_rate),
        cmocka_unit_test(test_reversal_is_flagged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
