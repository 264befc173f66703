/* test_quantile_guard.c -- unit tests of core/quantile_guard.c: the
 * verdict rules (both directions, the margin, the closed comparison at
 * bucket edges), merging into the other guardrails' evidence, and the
 * whole chain on sketches: a candidate with a 10 % higher p99 and the same
 * mean (lognormal, sigma 0.3 -> 0.3476) is harmed at 30,000 values per
 * arm, an identical one is not (seeded). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <string.h>

#include "core/quantile_guard.h"
#include "tests/unit/ab_test.h"

static struct stats_quantile_diff
rel(double lo, double hi)
{
    struct stats_quantile_diff d = {0};
    d.rel_low = lo;
    d.rel_high = hi;
    d.rel = (lo + hi) / 2;
    return d;
}

static void
test_verdicts_lower_is_better(void **state)
{
    (void)state;
    struct stats_quantile_diff d;
    d = rel(0.11, 0.3);
    assert_int_equal(core_quantile_guard_verdict(&d, CORE_DECREASE, 0.1),
                     CORE_VERDICT_HARM);
    d = rel(0.1, 0.3); /* the edge: Q_t / Q_c - 1 > 0.1 strictly */
    assert_int_equal(core_quantile_guard_verdict(&d, CORE_DECREASE, 0.1),
                     CORE_VERDICT_HARM);
    d = rel(-0.05, 0.2);
    assert_int_equal(core_quantile_guard_verdict(&d, CORE_DECREASE, 0.1),
                     CORE_VERDICT_OPEN);
    d = rel(-0.05, 0.08);
    assert_int_equal(core_quantile_guard_verdict(&d, CORE_DECREASE, 0.1),
                     CORE_VERDICT_WIN);
    d = rel(0.02, 0.08); /* worse, but within the margin */
    assert_int_equal(core_quantile_guard_verdict(&d, CORE_DECREASE, 0.1),
                     CORE_VERDICT_WIN);
    d = rel(-1, INFINITY); /* nothing known yet */
    assert_int_equal(core_quantile_guard_verdict(&d, CORE_DECREASE, 0),
                     CORE_VERDICT_OPEN);
}

static void
test_verdicts_higher_is_better(void **state)
{
    (void)state;
    struct stats_quantile_diff d;
    d = rel(-0.3, -0.11);
    assert_int_equal(core_quantile_guard_verdict(&d, CORE_INCREASE, 0.1),
                     CORE_VERDICT_HARM);
    d = rel(-0.09, 0.3);
    assert_int_equal(core_quantile_guard_verdict(&d, CORE_INCREASE, 0.1),
                     CORE_VERDICT_WIN);
    d = rel(-0.2, 0.3);
    assert_int_equal(core_quantile_guard_verdict(&d, CORE_INCREASE, 0.1),
                     CORE_VERDICT_OPEN);
}

static void
test_merge(void **state)
{
    (void)state;
    const char *names[] = {"p99", "p95"};
    struct core_rollout_evidence ev;
    enum core_verdict v[2];

    memset(&ev, 0, sizeof(ev));
    ev.guardrails = CORE_VERDICT_NONE;
    v[0] = CORE_VERDICT_NONE;
    core_quantile_guard_merge(&ev, names, v, 1);
    assert_int_equal(ev.guardrails, CORE_VERDICT_NONE);
    v[0] = CORE_VERDICT_WIN;
    core_quantile_guard_merge(&ev, names, v, 1);
    assert_int_equal(ev.guardrails, CORE_VERDICT_WIN);
    v[1] = CORE_VERDICT_OPEN;
    core_quantile_guard_merge(&ev, names, v, 2);
    assert_int_equal(ev.guardrails, CORE_VERDICT_OPEN);
    v[1] = CORE_VERDICT_WIN;
    core_quantile_guard_merge(&ev, names, v, 2); /* OPEN stays OPEN */
    assert_int_equal(ev.guardrails, CORE_VERDICT_OPEN);

    memset(&ev, 0, sizeof(ev));
    ev.guardrails = CORE_VERDICT_WIN;
    v[0] = CORE_VERDICT_OPEN;
    v[1] = CORE_VERDICT_HARM;
    core_quantile_guard_merge(&ev, names, v, 2);
    assert_int_equal(ev.guardrails, CORE_VERDICT_HARM);
    assert_string_equal(ev.failed_guardrail, "p95");
    assert_non_null(strstr(ev.failed_test, "\"p95\""));

    /* another guardrail failed first: its name stays */
    memset(&ev, 0, sizeof(ev));
    ev.guardrails = CORE_VERDICT_HARM;
    strcpy(ev.failed_guardrail, "errors");
    core_quantile_guard_merge(&ev, names, v, 2);
    assert_int_equal(ev.guardrails, CORE_VERDICT_HARM);
    assert_string_equal(ev.failed_guardrail, "errors");
}

#define CAP 4096
static struct stats_ddsketch_bin bc[CAP], bt[CAP];

static enum core_verdict
run(gsl_rng *r, double sigma_t, size_t n)
{
    const double sc = 0.3, mu = log(100);
    double mu_t = mu + (sc * sc - sigma_t * sigma_t) / 2; /* same mean */
    struct stats_ddsketch c, t;
    stats_ddsketch_init(&c, STATS_DDSKETCH_ALPHA, bc, CAP);
    stats_ddsketch_init(&t, STATS_DDSKETCH_ALPHA, bt, CAP);
    for (size_t i = 0; i < n; i++) {
        stats_ddsketch_add(&c, gsl_ran_lognormal(r, mu, sc), 1);
        stats_ddsketch_add(&t, gsl_ran_lognormal(r, mu_t, sigma_t), 1);
    }
    struct stats_quantile_diff d;
    assert_int_equal(stats_quantile_cs(&c, &t, 0.99, 0.02, 5000, &d), AB_OK);
    return core_quantile_guard_verdict(&d, CORE_DECREASE, 0);
}

static void
test_p99_regression_is_harm_and_no_change_is_not(void **state)
{
    (void)state;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 16);
    /* sigma 0.3476: p99 ratio exp(mu_t - mu + 2.3263 (0.3476 - 0.3)) =
     * 1.100 at an equal mean (scipy.optimize.brentq) */
    assert_int_equal(run(r, 0.3475955424341003, 30000), CORE_VERDICT_HARM);
    assert_int_not_equal(run(r, 0.3, 30000), CORE_VERDICT_HARM);
    gsl_rng_free(r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdicts_lower_is_better),
        cmocka_unit_test(test_verdicts_higher_is_better),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_p99_regression_is_harm_and_no_change_is_not),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
