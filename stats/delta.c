/* delta.c -- delta-method variances of ratios: relative lift and ratio
 * metrics clustered by unit.
 *
 *   Var(A/B) ~= Var(A)/B^2 - 2 A Cov(A,B)/B^3 + A^2 Var(B)/B^4
 * (Casella & Berger 2002, section 5.5.4; Deng, Knoblich & Lu 2018,
 * "Applying the delta method in metric analytics: a practical guide with
 * novel ideas", KDD '18, sections 2-3). For a ratio metric
 * R = sum y / sum x over n units, Var(R) ~= (s_yy - 2 R s_xy + R^2 s_xx) /
 * (n mean_x^2).
 */
#include "stats/delta.h"

#include <math.h>

ab_status
stats_delta_ratio(double a, double var_a, double b, double var_b,
                  double cov_ab, double *ratio, double *var,
                  enum stats_reason *why)
{
    double r, v;

    if (!isfinite(a) || !isfinite(b) || !isfinite(var_a) ||
        !isfinite(var_b) || !isfinite(cov_ab)) {
        stats_set_reason(why, STATS_REASON_NOT_FINITE);
        return AB_EINVAL;
    }
    if (var_a < 0 || var_b < 0) {
        stats_set_reason(why, STATS_REASON_NEGATIVE);
        return AB_EINVAL;
    }
    if (b == 0) {
        stats_set_reason(why, STATS_REASON_ZERO_CONTROL_MEAN);
        return AB_ENUMERIC;
    }
    r = a / b;
    /* (var_a - 2 r cov + r^2 var_b) / b^2: the same formula, factored so
     * that large means do not overflow b^4. */
    v = (var_a - 2 * r * cov_ab + r * r * var_b) / (b * b);
    if (!isfinite(r) || !isfinite(v)) {
        stats_set_reason(why, STATS_REASON_OVERFLOW);
        return AB_ENUMERIC;
    }
    if (v < 0)      /* rounding, or a covariance beyond Cauchy-Schwarz */
        v = 0;
    *ratio = r;
    *var = v;
    return AB_OK;
}

ab_status
stats_delta_lift(double d, double var_d, double m_c, double var_mc,
                 double cov_dm, double *lift, double *var,
                 enum stats_reason *why)
{
    return stats_delta_ratio(d, var_d, m_c, var_mc, cov_dm, lift, var, why);
}

ab_status
stats_ratio_summary(const struct stats_ratio_moments *m,
                    struct stats_summary *out, enum stats_reason *why)
{
    struct stats_moments my = { m->n, m->num_sum, m->num_sum_sq };
    struct stats_moments mx = { m->n, m->den_sum, m->den_sum_sq };
    struct stats_summary sy, sx;
    double sxy, r, v;
    ab_status rc;

    if (!isfinite(m->cross_sum)) {
        stats_set_reason(why, STATS_REASON_NOT_FINITE);
        return AB_EINVAL;
    }
    rc = stats_moments_summary(&my, &sy, why);
    if (rc != AB_OK)
        return rc;
    rc = stats_moments_summary(&mx, &sx, why);
    if (rc != AB_OK)
        return rc;
    if (sx.mean == 0) {
        stats_set_reason(why, STATS_REASON_ZERO_CONTROL_MEAN);
        return AB_ENUMERIC;
    }
    sxy = (m->cross_sum - m->num_sum * sx.mean) / (m->n - 1);
    /* Cauchy-Schwarz, with room for rounding. */
    if (sxy * sxy > sx.var * sy.var * (1 + 1e-9) + 1e-300) {
        stats_set_reason(why, STATS_REASON_INCONSISTENT);
        return AB_EINVAL;
    }
    r = m->num_sum / m->den_sum;
    v = (sy.var - 2 * r * sxy + r * r * sx.var) / (sx.mean * sx.mean);
    if (!isfinite(r) || !isfinite(v)) {
        stats_set_reason(why, STATS_REASON_OVERFLOW);
        return AB_ENUMERIC;
    }
    if (v < 0)
        v = 0;
    out->n = m->n;
    out->mean = r;
    out->var = v;
    return AB_OK;
}
