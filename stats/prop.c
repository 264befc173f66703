/* prop.c -- two-proportion z test.
 *
 *   z = (p_t - p_c) / sqrt(p (1 - p) (1/n_t + 1/n_c)),
 *   p = (x_t + x_c) / (n_t + n_c)            (pooled, under H0: p_t = p_c)
 *   CI: (p_t - p_c) -/+ z_{1-alpha/2} sqrt(p_t q_t / n_t + p_c q_c / n_c)
 * (Agresti, Categorical Data Analysis, 3rd ed., section 3.1.3 (Wald
 * interval) and 3.2 (score-type pooled test); Fleiss, Levin & Paik,
 * Statistical Methods for Rates and Proportions, 3rd ed., ch. 2).
 * Relative lift: p_t/p_c - 1 with Var ~= p_t q_t/(n_t p_c^2) +
 * p_t^2 p_c q_c/(n_c p_c^4) (delta method, stats/delta.c).
 */
#include "stats/prop.h"

#include <math.h>

#include "stats/delta.h"
#include "stats/welch.h"

ab_status
stats_prop_check(const struct stats_prop *a, enum stats_reason *why)
{
    if (!isfinite(a->successes) || !isfinite(a->trials)) {
        stats_set_reason(why, STATS_REASON_NOT_FINITE);
        return AB_EINVAL;
    }
    if (a->successes < 0 || a->trials < 0) {
        stats_set_reason(why, STATS_REASON_NEGATIVE);
        return AB_EINVAL;
    }
    if (a->successes > a->trials || a->successes != floor(a->successes) ||
        a->trials != floor(a->trials)) {
        stats_set_reason(why, STATS_REASON_INCONSISTENT);
        return AB_EINVAL;
    }
    if (a->trials < 2) {
        stats_set_reason(why, STATS_REASON_FEW_UNITS);
        return AB_ENUMERIC;
    }
    return AB_OK;
}

ab_status
stats_prop_ztest(const struct stats_prop *c, const struct stats_prop *t,
                 enum stats_effect effect, enum stats_side side, double alpha,
                 struct stats_result *out, enum stats_reason *why)
{
    double pc, pt, vc, vt, est, var, pooled, se0;
    struct stats_result r;
    ab_status rc;

    rc = stats_prop_check(c, why);
    if (rc != AB_OK)
        return rc;
    rc = stats_prop_check(t, why);
    if (rc != AB_OK)
        return rc;
    pc = c->successes / c->trials;
    pt = t->successes / t->trials;
    vc = pc * (1 - pc) / c->trials;
    vt = pt * (1 - pt) / t->trials;
    if (effect == STATS_EFFECT_RELATIVE) {
        rc = stats_delta_lift(pt - pc, vt + vc, pc, vc, -vc, &est, &var,
                              why);
        if (rc != AB_OK)
            return rc;
        return stats_wald(est, sqrt(var), INFINITY, side, alpha, out, why);
    }
    /* Absolute: interval on the unpooled se, statistic on the pooled one. */
    pooled = (c->successes + t->successes) / (c->trials + t->trials);
    se0 = sqrt(pooled * (1 - pooled) * (1 / c->trials + 1 / t->trials));
    if (!(se0 > 0)) {
        stats_set_reason(why, STATS_REASON_ZERO_VARIANCE);
        return AB_ENUMERIC;
    }
    if (vc + vt == 0) {
        /* Interval degenerate (0/n vs n/n): report the pooled se so the
         * interval is still informative; the test is exact on se0. */
        var = se0 * se0;
    } else {
        var = vc + vt;
    }
    rc = stats_wald(pt - pc, sqrt(var), INFINITY, side, alpha, &r, why);
    if (rc != AB_OK)
        return rc;
    {
        struct stats_result p;
        rc = stats_wald(pt - pc, se0, INFINITY, side, alpha, &p, why);
        if (rc != AB_OK)
            return rc;
        r.stat = p.stat;
        r.p_value = p.p_value;
    }
    *out = r;
    return AB_OK;
}
