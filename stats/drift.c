/* drift.c -- PSI and the sequential two-sample KS test of drift.h; the
 * formulas and their references are in the header.
 */
#include "stats/drift.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double
stats_drift_alpha_look(double alpha, uint64_t look)
{
    double k = look > 0 ? (double)look : 1.0;
    return alpha * 6.0 / (M_PI * M_PI * k * k);
}

double
stats_drift_ks_p(double d, double n_r, double n_c)
{
    if (!(d > 0))
        return 1.0;
    double m = n_r * n_c / (n_r + n_c);
    double sm = sqrt(m);
    double lambda = sm * d;
    if (lambda < 1.18) {
        /* the dual series converges fast here (Marsaglia, Tsang & Wang
         * 2003, eq. 2): P(K <= l) = sqrt(2 pi) / l
         * sum_(k>=1) exp(-(2k - 1)^2 pi^2 / (8 l^2)) */
        if (lambda < 0.05)
            return 1.0; /* P(K <= 0.05) < 1e-200 */
        double cdf = 0;
        for (int k = 1; k <= 50; k++) {
            double t = (2.0 * k - 1) * M_PI / lambda;
            cdf += exp(-t * t / 8.0);
        }
        cdf *= sqrt(2.0 * M_PI) / lambda;
        return cdf > 1 ? 0 : 1.0 - cdf;
    }
    double sum = 0, sign = 1;
    for (int k = 1; k <= 100; k++) {
        double term = exp(-2.0 * k * k * lambda * lambda);
        sum += sign * term;
        if (term < 1e-17 * sum)
            break;
        sign = -sign;
    }
    double p = 2.0 * sum;
    return p < 0 ? 0 : p > 1 ? 1 : p;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Linear interpolation between order statistics (type 7). */
static double
quantile7(const double *s, size_t n, double q)
{
    double h = (double)(n - 1) * q;
    size_t lo = (size_t)floor(h);
    if (lo + 1 >= n)
        return s[n - 1];
    return s[lo] + (h - (double)lo) * (s[lo + 1] - s[lo]);
}

/* Number of sorted values <= x. */
static size_t
count_le(const double *s, size_t n, double x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s[mid] <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* sup |F_r - F_c| over every observed value (the ECDFs jump only there). */
static double
ks_statistic(const double *r, size_t nr, const double *c, size_t nc)
{
    size_t i = 0, j = 0;
    double d = 0;
    while (i < nr || j < nc) {
        double x = j >= nc || (i < nr && r[i] <= c[j]) ? r[i] : c[j];
        while (i < nr && r[i] <= x)
            i++;
        while (j < nc && c[j] <= x)
            j++;
        double diff = fabs((double)i / (double)nr - (double)j / (double)nc);
        if (diff > d)
            d = diff;
    }
    return d;
}

static void
psi(const double *r, size_t nr, const double *c, size_t nc, size_t bins,
    struct stats_drift_result *out)
{
    size_t n_edges = 0;
    for (size_t k = 1; k < bins; k++) {
        double e = quantile7(r, nr, (double)k / (double)bins);
        if (n_edges == 0 || e > out->edges[n_edges - 1])
            out->edges[n_edges++] = e;
    }
    out->bins = n_edges + 1;
    size_t prev_r = 0, prev_c = 0;
    double sum = 0, b = (double)out->bins;
    for (size_t i = 0; i < out->bins; i++) {
        size_t cr = i < n_edges ? count_le(r, nr, out->edges[i]) : nr;
        size_t cc = i < n_edges ? count_le(c, nc, out->edges[i]) : nc;
        double kr = (double)(cr - prev_r), kc = (double)(cc - prev_c);
        prev_r = cr;
        prev_c = cc;
        out->ref_share[i] = kr / (double)nr;
        out->cur_share[i] = kc / (double)nc;
        double q = (kr + 0.5) / ((double)nr + 0.5 * b);
        double p = (kc + 0.5) / ((double)nc + 0.5 * b);
        sum += (p - q) * log(p / q);
    }
    out->psi = sum;
}

ab_status
stats_drift_compare(double *ref, size_t n_ref, double *cur, size_t n_cur,
                    const struct stats_drift_opts *o,
                    struct stats_drift_result *out)
{
    if (ref == NULL || cur == NULL || o == NULL || out == NULL ||
        n_ref < 2 || n_cur < 2 || o->bins < 2 ||
        o->bins > STATS_DRIFT_MAX_BINS || !(o->alpha > 0 && o->alpha <= 0.5) ||
        o->look == 0)
        return AB_EINVAL;
    for (size_t i = 0; i < n_ref; i++)
        if (!isfinite(ref[i]))
            return AB_EINVAL;
    for (size_t i = 0; i < n_cur; i++)
        if (!isfinite(cur[i]))
            return AB_EINVAL;
    qsort(ref, n_ref, sizeof(*ref), cmp_double);
    qsort(cur, n_cur, sizeof(*cur), cmp_double);
    struct stats_drift_result r;
    memset(&r, 0, sizeof(r));
    psi(ref, n_ref, cur, n_cur, o->bins, &r);
    r.ks_d = ks_statistic(ref, n_ref, cur, n_cur);
    r.ks_p = stats_drift_ks_p(r.ks_d, (double)n_ref, (double)n_cur);
    r.alpha_look = stats_drift_alpha_look(o->alpha, o->look);
    r.drift = r.ks_p <= r.alpha_look;
    *out = r;
    return AB_OK;
}
