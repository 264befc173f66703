/* test_quantile.c -- unit tests of stats/ddsketch.c and stats/quantile.c.
 *
 * Sketch: every rank's value within the documented relative error of the
 * exact order statistic (sorted data: the oracle), over several
 * distributions with heavy tails (lognormal sigma 2, Pareto shape 1.1 and
 * 0.8 -- the latter has no mean), zeros and negatives (the clamp rule);
 * merge = sketch of the union, bucket for bucket.
 *
 * Intervals: coverage by simulation (seeded gsl_rng mt19937, 1,000 runs per
 * scenario) of the true difference of quantiles, known in closed form:
 * lognormal Q(q) = exp(mu + sigma Phi^-1(q)), Pareto Q(q) = xm (1-q)^(-1/k).
 *   fixed horizon: coverage within 3 Monte Carlo standard errors of 0.95
 *   sequence: running coverage (every look of a run covers) >= 0.95
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "stats/ddsketch.h"
#include "stats/quantile.h"
#include "tests/unit/ab_test.h"

#define CAP 16384

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

enum dist { LOGNORMAL, PARETO, PARETO_NOMEAN, EXPONENTIAL, UNIFORM, ZEROS };

static double
draw(gsl_rng *r, enum dist d)
{
    switch (d) {
    case LOGNORMAL: return gsl_ran_lognormal(r, 0, 2);
    case PARETO: return gsl_ran_pareto(r, 1.1, 1);
    case PARETO_NOMEAN: return gsl_ran_pareto(r, 0.8, 0.001);
    case EXPONENTIAL: return gsl_ran_exponential(r, 50);
    case UNIFORM: return gsl_rng_uniform(r) * 1e-6;
    case ZEROS: {
        double u = gsl_rng_uniform(r);
        return u < 0.2 ? 0 : (u < 0.25 ? -3 : gsl_ran_lognormal(r, 3, 1));
    }
    }
    return 0;
}

static struct stats_ddsketch_bin bins_a[CAP], bins_b[CAP], bins_u[CAP];

/* Every rank of n values of d within alpha of the exact order statistic. */
static void
check_error_bound(gsl_rng *r, enum dist d, size_t n, double alpha)
{
    double *x = malloc(n * sizeof(*x));
    struct stats_ddsketch s;
    assert_int_equal(stats_ddsketch_init(&s, alpha, bins_a, CAP), AB_OK);
    for (size_t i = 0; i < n; i++) {
        x[i] = draw(r, d);
        assert_int_equal(stats_ddsketch_add(&s, x[i], 1), AB_OK);
        if (x[i] < 0)
            x[i] = 0; /* the documented clamp */
    }
    qsort(x, n, sizeof(*x), cmp_double);
    assert_int_equal(s.n, n);
    double worst = 0;
    for (size_t k = 1; k <= n; k++) {
        double v;
        assert_int_equal(stats_ddsketch_at_rank(&s, k, &v), AB_OK);
        double want = x[k - 1], lo, hi;
        /* the sharp form: X_(k) lies in its bucket (lo, hi] */
        assert_int_equal(stats_ddsketch_rank_bounds(&s, k, &lo, &hi), AB_OK);
        assert_true(want == 0 ? lo == 0 && hi == 0
                              : lo < want * (1 + 1e-12) &&
                                    want <= hi * (1 + 1e-12));
        if (want == 0) {
            assert_true(v == 0);
            continue;
        }
        double err = fabs(v - want) / want;
        if (err > worst)
            worst = err;
    }
    /* the bound, up to the rounding of exp/log (a few ulps) */
    assert_true(worst <= alpha * (1 + 1e-9));
    for (double q = 0.01; q < 1; q += 0.01) {
        double v;
        size_t k = (size_t)ceil(q * (double)n);
        assert_int_equal(stats_ddsketch_quantile(&s, q, &v), AB_OK);
        assert_true(fabs(v - x[k - 1]) <= alpha * x[k - 1] * (1 + 1e-9));
    }
    free(x);
}

static void
test_sketch_error_within_bound(void **state)
{
    gsl_rng *r = *state;
    const enum dist ds[] = { LOGNORMAL, PARETO, PARETO_NOMEAN, EXPONENTIAL,
                             UNIFORM, ZEROS };
    for (size_t i = 0; i < AB_ARRAY_LEN(ds); i++) {
        check_error_bound(r, ds[i], 20000, 0.01);
        check_error_bound(r, ds[i], 5000, 0.05);
    }
}

/* Boundaries: gamma^i belongs to bucket i, just above it to i + 1. */
static void
test_sketch_bucket_boundaries(void **state)
{
    (void)state;
    struct stats_ddsketch s;
    assert_int_equal(stats_ddsketch_init(&s, 0.01, bins_a, CAP), AB_OK);
    assert_int_equal(stats_ddsketch_index(s.ln_gamma, 1.0), 0);
    assert_int_equal(stats_ddsketch_index(s.ln_gamma, nextafter(1.0, 2)), 1);
    assert_int_equal(stats_ddsketch_index(s.ln_gamma, 0.0),
                     STATS_DDSKETCH_ZERO);
    assert_int_equal(stats_ddsketch_index(s.ln_gamma, -1.0),
                     STATS_DDSKETCH_ZERO);
    for (int i = -2000; i <= 2000; i += 7) {
        double b = exp(i * s.ln_gamma);
        /* within one ulp of a boundary the index may go either way; the
         * representative is then still within alpha (1 + 1e-12) */
        int32_t k = stats_ddsketch_index(s.ln_gamma, b);
        assert_true(k == i || k == i + 1);
        double v = stats_ddsketch_value(&s, k);
        assert_true(fabs(v - b) <= 0.01 * b * (1 + 1e-9));
        assert_int_equal(stats_ddsketch_index(s.ln_gamma, b * 1.000001),
                         i + 1);
        assert_int_equal(stats_ddsketch_index(s.ln_gamma, b * 0.999999), i);
    }
    /* the extremes PostgreSQL can store stay far inside int32 */
    assert_true(stats_ddsketch_index(s.ln_gamma, 1e154) < 20000);
    assert_true(stats_ddsketch_index(s.ln_gamma, 5e-324) > -40000);
}

static void
test_sketch_merge_is_sketch_of_union(void **state)
{
    gsl_rng *r = *state;
    struct stats_ddsketch a, b, u;
    assert_int_equal(stats_ddsketch_init(&a, 0.01, bins_a, CAP), AB_OK);
    assert_int_equal(stats_ddsketch_init(&b, 0.01, bins_b, CAP), AB_OK);
    assert_int_equal(stats_ddsketch_init(&u, 0.01, bins_u, CAP), AB_OK);
    for (int i = 0; i < 30000; i++) {
        double x = draw(r, i % 3 ? LOGNORMAL : ZEROS);
        assert_int_equal(stats_ddsketch_add(i % 2 ? &a : &b, x, 1), AB_OK);
        assert_int_equal(stats_ddsketch_add(&u, x, 1), AB_OK);
    }
    assert_int_equal(stats_ddsketch_merge(&a, &b), AB_OK);
    assert_int_equal(a.n, u.n);
    assert_int_equal(a.n_bins, u.n_bins);
    for (size_t i = 0; i < u.n_bins; i++) {
        assert_int_equal(a.bins[i].index, u.bins[i].index);
        assert_int_equal(a.bins[i].count, u.bins[i].count);
    }
    struct stats_ddsketch other;
    assert_int_equal(stats_ddsketch_init(&other, 0.02, bins_b, CAP), AB_OK);
    assert_int_equal(stats_ddsketch_merge(&a, &other), AB_EINVAL);
}

static void
test_sketch_bad_input(void **state)
{
    (void)state;
    struct stats_ddsketch s;
    struct stats_ddsketch_bin two[2];
    double v;
    assert_int_equal(stats_ddsketch_init(&s, 0, two, 2), AB_EINVAL);
    assert_int_equal(stats_ddsketch_init(&s, 1, two, 2), AB_EINVAL);
    assert_int_equal(stats_ddsketch_init(&s, 0.01, two, 0), AB_EINVAL);
    assert_int_equal(stats_ddsketch_init(&s, 0.01, two, 2), AB_OK);
    assert_int_equal(stats_ddsketch_quantile(&s, 0.5, &v), AB_EINVAL);
    assert_int_equal(stats_ddsketch_add(&s, 1, 1), AB_OK);
    assert_int_equal(stats_ddsketch_add(&s, 10, 1), AB_OK);
    assert_int_equal(stats_ddsketch_add(&s, 1, 5), AB_OK);
    assert_int_equal(stats_ddsketch_add(&s, 100, 1), AB_ETOOBIG);
    assert_int_equal(s.n, 7);
    assert_int_equal(stats_ddsketch_quantile(&s, 0, &v), AB_EINVAL);
    assert_int_equal(stats_ddsketch_quantile(&s, 1, &v), AB_EINVAL);
    assert_int_equal(stats_ddsketch_at_rank(&s, 8, &v), AB_EINVAL);
    assert_int_equal(stats_ddsketch_at_rank(&s, 7, &v), AB_OK);
    assert_true(fabs(v - 10) <= 0.1);
}

/* ---- interval coverage -------------------------------------------------- */

struct scenario {
    enum dist d;   /* LOGNORMAL (mu, sigma) or PARETO (k, xm) */
    double p1, p2; /* control parameters */
    double t1, t2; /* treatment parameters */
    double q;
    size_t n_c, n_t;
};

static double
sc_draw(gsl_rng *r, const struct scenario *sc, int treat)
{
    double a = treat ? sc->t1 : sc->p1, b = treat ? sc->t2 : sc->p2;
    if (sc->d == LOGNORMAL)
        return gsl_ran_lognormal(r, a, b);
    return gsl_ran_pareto(r, a, b);
}

static double
sc_quantile(const struct scenario *sc, int treat)
{
    double a = treat ? sc->t1 : sc->p1, b = treat ? sc->t2 : sc->p2;
    if (sc->d == LOGNORMAL)
        return exp(a + b * gsl_cdf_ugaussian_Pinv(sc->q));
    return b * pow(1 - sc->q, -1 / a);
}

static const struct scenario scenarios[] = {
    /* p99 latency: control lognormal(3, 0.5), candidate 10 % slower tail
     * with the mean held (sigma 0.55, mu lowered) */
    { LOGNORMAL, 3, 0.5, 3 - (0.55 * 0.55 - 0.25) / 2, 0.55, 0.99, 3000,
      3000 },
    /* p95, unequal arms (a canary step), heavy tail */
    { PARETO, 1.5, 10, 1.5, 11, 0.95, 4000, 1000 },
    /* the median, no difference */
    { LOGNORMAL, 0, 2, 0, 2, 0.5, 500, 500 },
};

/* Two sketches of the same data per run: a fine one (alpha 0.001: the
 * method's own coverage, which must be within 3 Monte Carlo standard
 * errors of the level) and the stored one (STATS_DDSKETCH_ALPHA = 1 %:
 * the sketch error folded into the bounds makes it conservative, so its
 * coverage must be >= the level minus the Monte Carlo error). */
static void
test_fixed_coverage(void **state)
{
    gsl_rng *r = *state;
    const int runs = 1000;
    const double level = 0.95;
    const double mc = 3 * sqrt(level * (1 - level) / runs);
    static struct stats_ddsketch_bin fc[CAP], ft[CAP];
    for (size_t k = 0; k < AB_ARRAY_LEN(scenarios); k++) {
        const struct scenario *sc = &scenarios[k];
        double qc = sc_quantile(sc, 0), qt = sc_quantile(sc, 1);
        int cover[2] = {0, 0}, cover_rel[2] = {0, 0};
        for (int run = 0; run < runs; run++) {
            struct stats_ddsketch s[2][2];
            for (int f = 0; f < 2; f++) {
                double a = f ? STATS_DDSKETCH_ALPHA : 0.001;
                stats_ddsketch_init(&s[f][0], a, f ? bins_a : fc, CAP);
                stats_ddsketch_init(&s[f][1], a, f ? bins_b : ft, CAP);
            }
            for (int arm = 0; arm < 2; arm++)
                for (size_t i = 0; i < (arm ? sc->n_t : sc->n_c); i++) {
                    double x = sc_draw(r, sc, arm);
                    assert_int_equal(stats_ddsketch_add(&s[0][arm], x, 1),
                                     AB_OK);
                    assert_int_equal(stats_ddsketch_add(&s[1][arm], x, 1),
                                     AB_OK);
                }
            for (int f = 0; f < 2; f++) {
                struct stats_quantile_diff out;
                assert_int_equal(stats_quantile_fixed(&s[f][0], &s[f][1],
                                                      sc->q, 1 - level, &out),
                                 AB_OK);
                cover[f] += out.diff_low <= qt - qc && qt - qc <= out.diff_high;
                cover_rel[f] += out.rel_low <= qt / qc - 1 &&
                                qt / qc - 1 <= out.rel_high;
            }
        }
        print_message("fixed scenario %zu: coverage %.3f (relative %.3f) "
                      "with alpha 0.001; %.3f (%.3f) with the stored 1 %%\n",
                      k, cover[0] / (double)runs, cover_rel[0] / (double)runs,
                      cover[1] / (double)runs, cover_rel[1] / (double)runs);
        assert_true(fabs(cover[0] / (double)runs - level) <= mc);
        assert_true(fabs(cover_rel[0] / (double)runs - level) <= mc);
        assert_true(cover[1] / (double)runs >= level - mc);
        assert_true(cover_rel[1] / (double)runs >= level - mc);
    }
}

/* Looks at t = 100, 150, ... (x1.5) up to n_max per arm; a run covers when
 * every look's interval holds the truth (running coverage). */
static void
test_sequence_running_coverage(void **state)
{
    gsl_rng *r = *state;
    const int runs = 1000;
    const double alpha = 0.05;
    for (size_t k = 0; k < AB_ARRAY_LEN(scenarios); k++) {
        const struct scenario *sc = &scenarios[k];
        double qc = sc_quantile(sc, 0), qt = sc_quantile(sc, 1);
        int cover = 0, looks = 0;
        double width = 0;
        for (int run = 0; run < runs; run++) {
            struct stats_ddsketch c, t;
            stats_ddsketch_init(&c, STATS_DDSKETCH_ALPHA, bins_a, CAP);
            stats_ddsketch_init(&t, STATS_DDSKETCH_ALPHA, bins_b, CAP);
            bool all = true;
            size_t next = 100;
            while (next <= 2 * sc->n_c) {
                size_t nt = next * sc->n_t / sc->n_c;
                while (c.n < next)
                    stats_ddsketch_add(&c, sc_draw(r, sc, 0), 1);
                while (t.n < nt)
                    stats_ddsketch_add(&t, sc_draw(r, sc, 1), 1);
                struct stats_quantile_diff out;
                assert_int_equal(stats_quantile_cs(&c, &t, sc->q, alpha, 5000,
                                                   &out),
                                 AB_OK);
                if (!(out.diff_low <= qt - qc && qt - qc <= out.diff_high &&
                      out.rel_low <= qt / qc - 1 &&
                      qt / qc - 1 <= out.rel_high))
                    all = false;
                looks++;
                next = next * 3 / 2;
                if (run == 0 && next > 2 * sc->n_c)
                    width = out.rel_high - out.rel_low;
            }
            cover += all;
        }
        print_message("sequence scenario %zu: running coverage %.3f over "
                      "%d looks; last relative width %.3f\n",
                      k, cover / (double)runs, looks / runs, width);
        assert_true(cover / (double)runs >= 1 - alpha);
    }
}

/* The ranks of the sequence against a direct scan of ln M (independent
 * of the bisection), and the shape of the bounds. */
static void
test_sequence_ranks(void **state)
{
    (void)state;
    const double qs[] = { 0.5, 0.95, 0.99 };
    const uint64_t ts[] = { 1, 10, 100, 1000, 25000 };
    for (size_t i = 0; i < AB_ARRAY_LEN(qs); i++)
        for (size_t j = 0; j < AB_ARRAY_LEN(ts); j++) {
            double q = qs[i], r = 5000, t = (double)ts[j];
            uint64_t lo, hi, want_lo = UINT64_MAX, want_hi = 0;
            stats_quantile_cs_ranks(ts[j], q, 0.025, r, &lo, &hi);
            for (uint64_t s = 0; s <= ts[j]; s++) {
                double a = q * r, b = (1 - q) * r;
                double lm = lgamma(a + s) + lgamma(b + t - s) -
                            lgamma(a + b + t) - lgamma(a) - lgamma(b) +
                            lgamma(a + b) - s * log(q) - (t - s) * log1p(-q);
                if (lm < log(1 / 0.025)) {
                    if (s < want_lo)
                        want_lo = s;
                    want_hi = s;
                }
            }
            assert_int_equal(lo, want_lo);
            assert_int_equal(hi, want_hi);
        }
}

static int
setup(void **state)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 42);
    *state = r;
    return 0;
}

static int
teardown(void **state)
{
    gsl_rng_free(*state);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sketch_error_within_bound),
        cmocka_unit_test(test_sketch_bucket_boundaries),
        cmocka_unit_test(test_sketch_merge_is_sketch_of_union),
        cmocka_unit_test(test_sketch_bad_input),
        cmocka_unit_test(test_sequence_ranks),
        cmocka_unit_test(test_fixed_coverage),
        cmocka_unit_test(test_sequence_running_coverage),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
