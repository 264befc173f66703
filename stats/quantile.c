/* quantile.c -- quantile differences from sketches: order-statistic
 * standard errors (Price & Bonett 2002) for the fixed horizon, the beta-
 * binomial confidence sequence of Howard & Ramdas (2022, sec. 3) for the
 * always-valid bounds; formulas in quantile.h. */
#include "stats/quantile.h"

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_sf_gamma.h>
#include <math.h>

#define Z0 1.959963984540054 /* Phi^-1(0.975): the rank bandwidth */

/* ---- fixed horizon ------------------------------------------------------ */

struct arm_est {
    double point, se;   /* sketch-widened standard error */
    double low, high;   /* the point estimate's sketch bounds */
};

static ab_status
arm_fixed(const struct stats_ddsketch *s, double q, struct arm_est *out)
{
    double n = (double)s->n;
    double h = Z0 * sqrt(n * q * (1 - q));
    double l = floor(n * q - h), u = ceil(n * q + h) + 1;
    if (!(l >= 1 && u <= n))
        return AB_ENOTFOUND;
    double ll, lh, ul, uh, x, xl, xh;
    double k = ceil(q * n) < 1 ? 1 : ceil(q * n);
    if (stats_ddsketch_rank_bounds(s, (uint64_t)l, &ll, &lh) != AB_OK ||
        stats_ddsketch_rank_bounds(s, (uint64_t)u, &ul, &uh) != AB_OK ||
        stats_ddsketch_rank_bounds(s, (uint64_t)k, &xl, &xh) != AB_OK ||
        stats_ddsketch_quantile(s, q, &x) != AB_OK)
        return AB_EINVAL;
    /* the exact spread X_(u) - X_(l) is at most this (bucket edges) */
    double spread = uh - ll;
    out->point = x;
    out->low = xl;
    out->high = xh;
    out->se = sqrt(q * (1 - q) / n) * n * spread / (u - l);
    return AB_OK;
}

ab_status
stats_quantile_fixed(const struct stats_ddsketch *control,
                     const struct stats_ddsketch *treatment, double q,
                     double alpha, struct stats_quantile_diff *out)
{
    if (!(q > 0 && q < 1) || !(alpha > 0 && alpha < 1))
        return AB_EINVAL;
    struct arm_est c, t;
    ab_status rc = arm_fixed(control, q, &c);
    if (rc == AB_OK)
        rc = arm_fixed(treatment, q, &t);
    if (rc != AB_OK)
        return rc;
    if (!(c.low > 0 && t.low > 0))
        return AB_ENUMERIC;
    double z = gsl_cdf_ugaussian_Pinv(1 - alpha / 2);
    double se = sqrt(c.se * c.se + t.se * t.se);
    out->q_control = c.point;
    out->q_treatment = t.point;
    out->diff = t.point - c.point;
    out->diff_low = t.low - c.high - z * se;
    out->diff_high = t.high - c.low + z * se;
    /* log scale: the point bounds are the bucket edges; the relative
     * standard errors use the lower edges */
    double sel = sqrt(pow(t.se / t.low, 2) + pow(c.se / c.low, 2));
    out->rel = t.point / c.point - 1;
    out->rel_low = exp(log(t.low / c.high) - z * sel) - 1;
    out->rel_high = exp(log(t.high / c.low) + z * sel) - 1;
    return AB_OK;
}

/* ---- confidence sequence ------------------------------------------------ */

/* ln M_t(s) of the beta-binomial mixture (see quantile.h) */
static double
log_mix(double t, double s, double q, double r)
{
    double a = q * r, b = (1 - q) * r;
    return gsl_sf_lnbeta(a + s, b + t - s) - gsl_sf_lnbeta(a, b) -
           s * log(q) - (t - s) * log1p(-q);
}

void
stats_quantile_cs_ranks(uint64_t t, double q, double alpha, double r,
                        uint64_t *s_lo, uint64_t *s_hi)
{
    double thr = log(1 / alpha), tt = (double)t;
    /* ln M is convex in s with its minimum near the posterior mode; the
     * sublevel set {ln M < thr} is an interval around it */
    uint64_t m = (uint64_t)floor(q * tt);
    if (m > t)
        m = t;
    if (!(log_mix(tt, (double)m, q, r) < thr)) {
        /* cannot happen for thr >= 0 (M < 1 at the mode); be safe */
        *s_lo = 0;
        *s_hi = t;
        return;
    }
    uint64_t lo = 0, hi = m; /* first s in [0, m] with ln M < thr */
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (log_mix(tt, (double)mid, q, r) < thr)
            hi = mid;
        else
            lo = mid + 1;
    }
    *s_lo = lo;
    lo = m;
    hi = t; /* last s in [m, t] with ln M < thr */
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo + 1) / 2;
        if (log_mix(tt, (double)mid, q, r) < thr)
            lo = mid;
        else
            hi = mid - 1;
    }
    *s_hi = lo;
}

ab_status
stats_quantile_cs_arm(const struct stats_ddsketch *s, double q, double alpha,
                      double r, double *low, double *high)
{
    if (!(q > 0 && q < 1) || !(alpha > 0 && alpha < 1) || !(r > 0) ||
        s->n == 0)
        return AB_EINVAL;
    uint64_t s_lo, s_hi;
    stats_quantile_cs_ranks(s->n, q, alpha, r, &s_lo, &s_hi);
    double lo, hi;
    *low = 0;
    *high = INFINITY;
    if (s_lo >= 1 && stats_ddsketch_rank_bounds(s, s_lo, &lo, &hi) == AB_OK)
        *low = lo; /* Q(q) >= X_(s_lo) > lo (open unless 0) */
    if (s_hi + 1 <= s->n &&
        stats_ddsketch_rank_bounds(s, s_hi + 1, &lo, &hi) == AB_OK)
        *high = hi; /* Q(q) <= X_(s_hi + 1) <= hi */
    return AB_OK;
}

ab_status
stats_quantile_cs(const struct stats_ddsketch *control,
                  const struct stats_ddsketch *treatment, double q,
                  double alpha, double r, struct stats_quantile_diff *out)
{
    double cl, ch, tl, th;
    ab_status rc = stats_quantile_cs_arm(control, q, alpha / 2, r, &cl, &ch);
    if (rc == AB_OK)
        rc = stats_quantile_cs_arm(treatment, q, alpha / 2, r, &tl, &th);
    if (rc != AB_OK)
        return rc;
    double qc, qt;
    if (stats_ddsketch_quantile(control, q, &qc) != AB_OK ||
        stats_ddsketch_quantile(treatment, q, &qt) != AB_OK)
        return AB_EINVAL;
    out->q_control = qc;
    out->q_treatment = qt;
    out->diff = qt - qc;
    out->diff_low = tl - ch; /* -inf when ch is +inf */
    out->diff_high = th - cl;
    out->rel = qc > 0 ? qt / qc - 1 : NAN;
    out->rel_low = isfinite(ch) && ch > 0 ? tl / ch - 1 : -1;
    out->rel_high = cl > 0 ? th / cl - 1 : INFINITY;
    return AB_OK;
}
