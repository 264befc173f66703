/* cuped.c -- CUPED with theta pooled across arms.
 *
 *   theta = sum_a S_xy,a / sum_a S_xx,a     (within-arm co-moments)
 *   y'    = y - theta (x - xbar)
 *   mean' = ybar_a - theta (xbar_a - xbar)
 *   var'  = s_yy - 2 theta s_xy + theta^2 s_xx          (per unit)
 * then Welch's test on the adjusted arms; relative lift over the unadjusted
 * control mean by the delta method.
 * (Deng, Xu, Kohavi & Walker 2013, WSDM, sections 3.2-3.3; the pooled
 * within-arm slope is the ANCOVA slope, Yang & Tsiatis 2001, Statistics in
 * Medicine 20:3117.)
 */
#include "stats/cuped.h"

#include <math.h>

#include "stats/delta.h"
#include "stats/welch.h"

/* Summaries of y and x and the within-arm co-moment S_xy of one arm. */
static ab_status
arm_moments(const struct stats_cuped_moments *m, struct stats_summary *sy,
            struct stats_summary *sx, double *sxy, enum stats_reason *why)
{
    struct stats_moments my = { m->n, m->sum, m->sum_sq };
    struct stats_moments mx = { m->n, m->pre_sum, m->pre_sum_sq };
    ab_status rc;

    if (!isfinite(m->pre_cross_sum))
        return stats_fail(why, STATS_REASON_NOT_FINITE, AB_EINVAL);
    rc = stats_moments_summary(&my, sy, why);
    if (rc != AB_OK)
        return rc;
    rc = stats_moments_summary(&mx, sx, why);
    if (rc != AB_OK)
        return rc;
    *sxy = m->pre_cross_sum - m->sum * sx->mean;   /* co-moment, not / (n-1) */
    if (!isfinite(*sxy))
        return stats_fail(why, STATS_REASON_OVERFLOW, AB_ENUMERIC);
    {
        double syy = sy->var * (m->n - 1), sxx = sx->var * (m->n - 1);
        if (*sxy * *sxy > syy * sxx * (1 + 1e-9) + 1e-300)
            return stats_fail(why, STATS_REASON_INCONSISTENT, AB_EINVAL);
    }
    return AB_OK;
}

ab_status
stats_cuped_theta(const struct stats_cuped_moments *arms, size_t k,
                  double *theta, enum stats_reason *why)
{
    double num = 0, den = 0;

    if (k == 0)
        return stats_fail(why, STATS_REASON_BAD_PARAMETER, AB_EINVAL);
    for (size_t i = 0; i < k; i++) {
        struct stats_summary sy, sx;
        double sxy;
        ab_status rc = arm_moments(&arms[i], &sy, &sx, &sxy, why);
        if (rc != AB_OK)
            return rc;
        num += sxy;
        den += sx.var * (arms[i].n - 1);
    }
    if (!isfinite(num) || !isfinite(den))
        return stats_fail(why, STATS_REASON_OVERFLOW, AB_ENUMERIC);
    *theta = den > 0 ? num / den : 0;
    return AB_OK;
}

ab_status
stats_cuped_pre_mean(const struct stats_cuped_moments *arms, size_t k,
                     double *xbar, enum stats_reason *why)
{
    double n = 0, s = 0;

    for (size_t i = 0; i < k; i++) {
        n += arms[i].n;
        s += arms[i].pre_sum;
    }
    if (!isfinite(n) || !isfinite(s))
        return stats_fail(why, STATS_REASON_NOT_FINITE, AB_EINVAL);
    if (!(n > 0))
        return stats_fail(why, STATS_REASON_FEW_UNITS, AB_ENUMERIC);
    *xbar = s / n;
    return AB_OK;
}

ab_status
stats_cuped_summary(const struct stats_cuped_moments *m, double theta,
                    double xbar, struct stats_cuped_summary *out,
                    enum stats_reason *why)
{
    struct stats_summary sy, sx;
    double sxy, cxy, v;
    ab_status rc;

    if (!isfinite(theta) || !isfinite(xbar))
        return stats_fail(why, STATS_REASON_NOT_FINITE, AB_EINVAL);
    rc = arm_moments(m, &sy, &sx, &sxy, why);
    if (rc != AB_OK)
        return rc;
    cxy = sxy / (m->n - 1);
    v = sy.var - 2 * theta * cxy + theta * theta * sx.var;
    if (!isfinite(v))
        return stats_fail(why, STATS_REASON_OVERFLOW, AB_ENUMERIC);
    if (v < 0)
        v = 0;
    out->raw = sy;
    out->adj.n = m->n;
    out->adj.mean = sy.mean - theta * (sx.mean - xbar);
    out->adj.var = v;
    out->cov_adj_raw = sy.var - theta * cxy;
    return AB_OK;
}

ab_status
stats_cuped_compare(const struct stats_cuped_summary *c,
                    const struct stats_cuped_summary *t,
                    enum stats_effect effect, enum stats_side side,
                    double alpha, int use_t, struct stats_result *out,
                    enum stats_reason *why)
{
    double vc, vt, d, est, var, df = INFINITY;
    ab_status rc;

    if (effect != STATS_EFFECT_RELATIVE)
        return stats_welch_compare(&c->adj, &t->adj, effect, side, alpha,
                                   use_t, out, why);
    if (c->adj.n <= 1 || t->adj.n <= 1)
        return stats_fail(why, STATS_REASON_FEW_UNITS, AB_ENUMERIC);
    vc = c->adj.var / c->adj.n;
    vt = t->adj.var / t->adj.n;
    if (vc + vt == 0)
        return stats_fail(why, STATS_REASON_ZERO_VARIANCE, AB_ENUMERIC);
    if (use_t) {
        df = stats_welch_df(&c->adj, &t->adj);
        if (!(df > 0))
            return stats_fail(why, STATS_REASON_ZERO_VARIANCE, AB_ENUMERIC);
    }
    d = t->adj.mean - c->adj.mean;
    rc = stats_delta_lift(d, vt + vc, c->raw.mean, c->raw.var / c->raw.n,
                          -c->cov_adj_raw / c->raw.n, &est, &var, why);
    if (rc != AB_OK)
        return rc;
    return stats_wald(est, sqrt(var), df, side, alpha, out, why);
}
