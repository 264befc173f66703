/* test_shadow.c -- core/shadow.c: the paired checks and the shadow
 * decision. Links core/shadow.o, stats/paired.o, stats/msprt.o,
 * lib/status.o, GSL and cmocka only (purity by link). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gsl/gsl_errno.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <stdio.h>
#include <string.h>

#include "core/shadow.h"
#include "tests/unit/ab_test.h"

struct fixture {
    struct core_shadow_config c;
    struct core_shadow_summary s;
    struct core_shadow_analysis a;
    char reason[160];
    double work[16];
};

static struct fixture f;

static enum core_shadow_verdict
run(void)
{
    core_shadow_analyze(&f.c, 0.05, 0.02, 5000, &f.s, f.work, &f.a);
    return core_shadow_decide(&f.c, &f.s, &f.a, f.reason, sizeof(f.reason));
}

/* n pairs, all answered, identical outputs and latencies 100 ms. */
static void
identical(double n)
{
    core_shadow_config_default(&f.c);
    memset(&f.s, 0, sizeof(f.s));
    f.s.n_pairs = f.s.n_compared = f.s.n_agree = f.s.n_latency = n;
    f.s.n_units = n / 2;
    f.s.lat_control_mean = f.s.lat_candidate_mean = 100;
    f.s.lat_diff_mean = 0;
    f.s.lat_diff_var = 4;
}

static void
test_no_pairs_is_silent(void **state)
{
    (void)state;
    identical(0);
    assert_int_equal(run(), CORE_SHADOW_NO_DATA);
}

static void
test_fewer_than_min_pairs_waits(void **state)
{
    (void)state;
    identical(99);
    assert_int_equal(run(), CORE_SHADOW_WAITING);
    assert_non_null(strstr(f.reason, "100 pairs"));
}

static void
test_identical_candidate_holds(void **state)
{
    (void)state;
    identical(100);
    assert_int_equal(run(), CORE_SHADOW_HOLDING);
    /* no disagreement at all: the interval is the point 0 */
    assert_true(f.a.disagreement.tested);
    assert_true(f.a.disagreement.safe);
    assert_near(f.a.disagreement.mean.cs_high, 0, 0);
    assert_true(f.a.latency.safe);
    assert_near(f.a.latency.limit, 5, 1e-12);
}

static void
test_five_percent_disagreement_stops(void **state)
{
    (void)state;
    identical(1000);
    f.s.n_agree = 950;
    assert_int_equal(run(), CORE_SHADOW_REGRESSED);
    assert_non_null(strstr(f.reason, "paired check disagreement"));
    /* the normal-mixture bounds at rollback_alpha / 4 = 0.005, n* 5000,
     * var = n p (1 - p) / (n - 1): Python, the closed form of
     * tests/oracle/test_stats_paired.py */
    assert_close(f.a.disagreement.mean.cs_low, 0.022047450644470782, 1e-9);
    assert_close(f.a.disagreement.mean.cs_high, 0.07795254935552923, 1e-9);
    /* the Clopper-Pearson interval is reported beside it */
    assert_true(f.a.has_agreement);
    assert_close(f.a.agreement.rate, 0.95, 1e-15);
}

static void
test_small_disagreement_waits_for_proof(void **state)
{
    (void)state;
    identical(200);
    f.s.n_agree = 198; /* 1 %: neither harmful nor yet proven below 2 % */
    assert_int_equal(run(), CORE_SHADOW_WAITING);
    assert_non_null(strstr(f.reason, "disagreement"));
    identical(200000);
    f.s.n_agree = 198000;
    assert_int_equal(run(), CORE_SHADOW_HOLDING);
}

static void
test_ten_percent_slower_stops(void **state)
{
    (void)state;
    identical(200);
    f.s.lat_candidate_mean = 110;
    f.s.lat_diff_mean = 10;
    f.s.lat_diff_var = 9;
    assert_int_equal(run(), CORE_SHADOW_REGRESSED);
    assert_non_null(strstr(f.reason, "paired check latency"));
    assert_true(f.a.latency.mean.cs_low > 5);
}

static void
test_more_errors_stop(void **state)
{
    (void)state;
    identical(400);
    f.s.err_candidate = f.s.err_only_candidate = 40;
    f.s.n_compared = f.s.n_agree = 360;
    assert_int_equal(run(), CORE_SHADOW_REGRESSED);
    assert_non_null(strstr(f.reason, "paired check errors"));
}

static void
test_accuracy_drop_stops_and_mcnemar_is_reported(void **state)
{
    (void)state;
    identical(1000);
    f.s.n_agree = 985;
    f.s.n_labelled = 1000;
    f.s.both_right = 800;
    f.s.only_control_right = 15;
    f.s.only_candidate_right = 0;
    f.c.max_disagreement = 0.5;
    /* 1.5 % less accurate in 1000: not yet significant, always valid */
    assert_int_equal(run(), CORE_SHADOW_HOLDING);
    assert_true(f.a.has_mcnemar);
    assert_int_equal(f.a.mcnemar.method, STATS_MCNEMAR_EXACT);
    /* scipy.stats.binomtest(0, 15, 0.5).pvalue = 2 / 2^15 */
    assert_close(f.a.mcnemar.p_value, 6.103515625e-05, 1e-12);
    f.s.only_control_right = 40;
    f.s.both_right = 775;
    assert_int_equal(run(), CORE_SHADOW_REGRESSED);
    assert_non_null(strstr(f.reason, "paired check accuracy"));
    assert_int_equal(f.a.mcnemar.method, STATS_MCNEMAR_CHI2);
    /* statsmodels mcnemar([[800, 40], [0, 160]], exact=False,
     * correction=True): 38.025, 6.984393061522137e-10 */
    assert_close(f.a.mcnemar.chi2, 38.025, 1e-12);
    assert_close(f.a.mcnemar.p_value, 6.984393061522137e-10, 1e-9);
}

static void
test_thresholds_are_configurable(void **state)
{
    (void)state;
    identical(1000);
    f.s.n_agree = 950;
    f.c.max_disagreement = 0.10;
    assert_int_equal(run(), CORE_SHADOW_HOLDING);
    identical(200);
    f.s.lat_diff_mean = 10;
    f.s.lat_diff_var = 9;
    f.c.max_latency_increase = 0.2;
    assert_int_equal(run(), CORE_SHADOW_HOLDING);
}

/* A candidate exactly at both limits (disagreement 2 %, latency +5 % of
 * 100 ms), looked at every 50 pairs from 100 to 5000: the checks are
 * always valid, so each stops such a shadow with probability at most
 * rollback_alpha / 4 = 0.005 however often it looks. 1000 seeded shadows;
 * the bound plus 3 Monte Carlo standard errors (0.0067). (2000 shadows
 * gave 0 and 2 false stops.) */
static void
test_false_stop_rate_at_the_limits(void **state)
{
    (void)state;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 42);
    const int runs = 1000;
    int stop_dis = 0, stop_lat = 0;
    for (int r = 0; r < runs; r++) {
        identical(0);
        double sum = 0, sum_sq = 0, disagree = 0;
        bool dis = false, lat = false;
        for (int n = 50; n <= 5000 && !(dis && lat); n += 50) {
            disagree += gsl_ran_binomial(rng, 0.02, 50);
            for (int i = 0; i < 50; i++) {
                double d = 5 + gsl_ran_gaussian(rng, 3);
                sum += d;
                sum_sq += d * d;
            }
            f.s.n_pairs = f.s.n_compared = f.s.n_latency = n;
            f.s.n_agree = n - disagree;
            f.s.lat_diff_mean = sum / n;
            f.s.lat_diff_var = (sum_sq - sum * sum / n) / (n - 1);
            core_shadow_analyze(&f.c, 0.05, 0.02, 5000, &f.s, f.work, &f.a);
            dis |= f.a.disagreement.harm;
            lat |= f.a.latency.harm;
        }
        stop_dis += dis;
        stop_lat += lat;
    }
    gsl_rng_free(rng);
    print_message("false stops at the limits: disagreement %d, latency %d "
                  "of %d\n", stop_dis, stop_lat, runs);
    assert_true(stop_dis <= 0.0117 * runs);
    assert_true(stop_lat <= 0.0117 * runs);
}

int
main(void)
{
    gsl_set_error_handler_off();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_pairs_is_silent),
        cmocka_unit_test(test_fewer_than_min_pairs_waits),
        cmocka_unit_test(test_identical_candidate_holds),
        cmocka_unit_test(test_five_percent_disagreement_stops),
        cmocka_unit_test(test_small_disagreement_waits_for_proof),
        cmocka_unit_test(test_ten_percent_slower_stops),
        cmocka_unit_test(test_more_errors_stop),
        cmocka_unit_test(test_accuracy_drop_stops_and_mcnemar_is_reported),
        cmocka_unit_test(test_thresholds_are_configurable),
        cmocka_unit_test(test_false_stop_rate_at_the_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
