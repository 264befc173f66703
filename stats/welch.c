/* welch.c -- Welch's unequal-variance t test and the Wald pivot.
 *
 *   effect = m_t - m_c,  se = sqrt(v_t/n_t + v_c/n_c),  t = effect / se,
 *   df = (v_t/n_t + v_c/n_c)^2 /
 *        ((v_t/n_t)^2/(n_t-1) + (v_c/n_c)^2/(n_c-1))
 * (Welch 1947, "The generalization of Student's problem when several
 * different population variances are involved", Biometrika 34:28-35;
 * Satterthwaite 1946). Relative lift uses the delta method (stats/delta.c).
 * Quantiles: gsl_cdf_tdist_Pinv refined by Newton's method on the cdf.
 */
#include "stats/welch.h"

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_randist.h>
#include <math.h>

#include "stats/delta.h"

/* P(T <= x) and its upper tail, normal when df is infinite. */
static double
cdf_lower(double x, double df)
{
    return isinf(df) ? gsl_cdf_ugaussian_P(x) : gsl_cdf_tdist_P(x, df);
}

static double
cdf_upper(double x, double df)
{
    return isinf(df) ? gsl_cdf_ugaussian_Q(x) : gsl_cdf_tdist_Q(x, df);
}

static double
pdf(double x, double df)
{
    return isinf(df) ? gsl_ran_ugaussian_pdf(x) : gsl_ran_tdist_pdf(x, df);
}

double
stats_t_quantile(double p, double df)
{
    double x, q;
    int upper;

    if (!(p > 0 && p < 1) || !(df > 0) || isnan(df))
        return NAN;
    if (isinf(df) || df > 1e12)
        return gsl_cdf_ugaussian_Pinv(p);   /* AS241, ~1e-16 */
    x = gsl_cdf_tdist_Pinv(p, df);
    if (!isfinite(x))
        return NAN;
    /* Newton on the tail that holds the small probability, so the target
     * keeps its relative precision. */
    upper = p > 0.5;
    q = upper ? 1.0 - p : p;
    for (int i = 0; i < 8; i++) {
        double f = upper ? cdf_upper(x, df) - q : cdf_lower(x, df) - q;
        double d = pdf(x, df);
        double step;
        if (!(d > 0))
            break;
        step = upper ? -f / d : f / d;
        x -= step;
        if (fabs(step) <= 1e-15 * fabs(x) + 1e-300)
            break;
    }
    return x;
}

ab_status
stats_wald(double effect, double se, double df, enum stats_side side,
           double alpha, struct stats_result *out, enum stats_reason *why)
{
    struct stats_result r;
    double q;

    if (!isfinite(effect) || !isfinite(se) || isnan(df)) {
        stats_set_reason(why, STATS_REASON_NOT_FINITE);
        return AB_EINVAL;
    }
    if (!(alpha > 0 && alpha < 1) || !(df > 0) || se < 0) {
        stats_set_reason(why, STATS_REASON_BAD_PARAMETER);
        return AB_EINVAL;
    }
    if (se == 0) {
        stats_set_reason(why, STATS_REASON_ZERO_VARIANCE);
        return AB_ENUMERIC;
    }
    r.effect = effect;
    r.se = se;
    r.df = df;
    r.stat = effect / se;
    if (!isfinite(r.stat)) {
        stats_set_reason(why, STATS_REASON_OVERFLOW);
        return AB_ENUMERIC;
    }
    switch (side) {
    case STATS_SIDE_GREATER:
        q = stats_t_quantile(1 - alpha, df);
        r.p_value = cdf_upper(r.stat, df);
        r.ci_low = effect - q * se;
        r.ci_high = INFINITY;
        break;
    case STATS_SIDE_LESS:
        q = stats_t_quantile(1 - alpha, df);
        r.p_value = cdf_lower(r.stat, df);
        r.ci_low = -INFINITY;
        r.ci_high = effect + q * se;
        break;
    case STATS_SIDE_TWO:
    default:
        q = stats_t_quantile(1 - alpha / 2, df);
        r.p_value = 2 * cdf_upper(fabs(r.stat), df);
        if (r.p_value > 1)
            r.p_value = 1;
        r.ci_low = effect - q * se;
        r.ci_high = effect + q * se;
        break;
    }
    if (!isfinite(q) || isnan(r.p_value) || isnan(r.ci_low) ||
        isnan(r.ci_high)) {
        stats_set_reason(why, STATS_REASON_NO_CONVERGENCE);
        return AB_ENUMERIC;
    }
    *out = r;
    return AB_OK;
}

double
stats_welch_df(const struct stats_summary *c, const struct stats_summary *t)
{
    double a = c->var / c->n, b = t->var / t->n;
    double den = a * a / (c->n - 1) + b * b / (t->n - 1);

    if (!(den > 0))
        return NAN;
    return (a + b) * (a + b) / den;
}

ab_status
stats_welch_compare(const struct stats_summary *c,
                    const struct stats_summary *t, enum stats_effect effect,
                    enum stats_side side, double alpha, int use_t,
                    struct stats_result *out, enum stats_reason *why)
{
    double vc, vt, est, var, df = INFINITY;
    ab_status rc;

    if (c->n <= 1 || t->n <= 1) {
        stats_set_reason(why, STATS_REASON_FEW_UNITS);
        return AB_ENUMERIC;
    }
    if (!isfinite(c->mean) || !isfinite(t->mean) || !isfinite(c->var) ||
        !isfinite(t->var)) {
        stats_set_reason(why, STATS_REASON_NOT_FINITE);
        return AB_EINVAL;
    }
    vc = c->var / c->n;     /* variance of each arm's mean */
    vt = t->var / t->n;
    if (vc + vt == 0) {
        stats_set_reason(why, STATS_REASON_ZERO_VARIANCE);
        return AB_ENUMERIC;
    }
    if (use_t) {
        df = stats_welch_df(c, t);
        if (!(df > 0)) {
            stats_set_reason(why, STATS_REASON_ZERO_VARIANCE);
            return AB_ENUMERIC;
        }
    }
    if (effect == STATS_EFFECT_RELATIVE) {
        rc = stats_delta_lift(t->mean - c->mean, vt + vc, c->mean, vc, -vc,
                              &est, &var, why);
        if (rc != AB_OK)
            return rc;
    } else {
        est = t->mean - c->mean;
        var = vt + vc;
    }
    if (!isfinite(est) || !isfinite(var)) {
        stats_set_reason(why, STATS_REASON_OVERFLOW);
        return AB_ENUMERIC;
    }
    return stats_wald(est, sqrt(var), df, side, alpha, out, why);
}

ab_status
stats_welch_test(const struct stats_moments *c, const struct stats_moments *t,
                 enum stats_effect effect, enum stats_side side, double alpha,
                 struct stats_result *out, enum stats_reason *why)
{
    struct stats_summary sc, st;
    ab_status rc;

    rc = stats_moments_summary(c, &sc, why);
    if (rc != AB_OK)
        return rc;
    rc = stats_moments_summary(t, &st, why);
    if (rc != AB_OK)
        return rc;
    return stats_welch_compare(&sc, &st, effect, side, alpha, 1, out, why);
}
