/* estimate.c -- propensity-corrected arm means under adaptive allocation.
 *
 * Horvitz-Thompson (Horvitz and Thompson 1952, JASA 47, eq. 3): with N
 * units, A_i the arm unit i received with probability p_i (recorded at
 * assignment), the mean outcome the population would show on arm k is
 *     mu_k = E[ (1/N) sum_i 1{A_i = k} Y_i / p_i ],
 * unbiased because E[1{A_i = k} | history] = p_i; the terms are
 * martingale differences, so the variance estimate treats them as
 * uncorrelated (Hadad et al. 2021, PNAS 118, "Confidence intervals for
 * policy evaluation in adaptive experiments", section 2).
 * The Hajek estimator divides by sum 1/p_i instead of N: a ratio, slightly
 * biased in small samples but with a lower variance; its standard error is
 * the delta-method one for a ratio of sums (Sarndal, Swensson and Wretman
 * 1992, "Model assisted survey sampling", 5.7).
 *
 * Per-period (stratified) estimator: inside a period the weights are
 * fixed, so the arm's units are a simple random sample of that period's
 * units and the period mean is unbiased for the period's population mean;
 * weighting periods by their share of all units estimates the population
 * mean (Cochran 1977, "Sampling techniques", eq. 5.1 and 5.6).
 */
#include <math.h>
#include <stddef.h>

#include "bandits/estimate.h"

static int
finite_nonneg(double x)
{
    return isfinite(x) && x >= 0;
}

ab_status
bandit_ipw_mean(const struct bandit_ipw_sums *s, struct bandit_estimate *ht,
                struct bandit_estimate *hajek)
{
    struct bandit_estimate a, b;
    double n = s->n_total, var;

    if (!(n > 0) || !isfinite(n) || !(s->sum_w > 0) ||
        !isfinite(s->sum_w) || !finite_nonneg(s->sum_w2) ||
        !finite_nonneg(s->sum_w2y2) || !isfinite(s->sum_wy) ||
        !isfinite(s->sum_w2y))
        return AB_EINVAL;
    a.mean = s->sum_wy / n;
    var = (s->sum_w2y2 / n - a.mean * a.mean) / n;
    a.se = sqrt(var > 0 ? var : 0);
    b.mean = s->sum_wy / s->sum_w;
    var = (s->sum_w2y2 - 2.0 * b.mean * s->sum_w2y +
           b.mean * b.mean * s->sum_w2) /
          (s->sum_w * s->sum_w);
    b.se = sqrt(var > 0 ? var : 0);
    if (ht != NULL)
        *ht = a;
    if (hajek != NULL)
        *hajek = b;
    return AB_OK;
}

ab_status
bandit_period_mean(const struct bandit_period *periods, size_t n_periods,
                   struct bandit_estimate *out)
{
    double big_n = 0, mean = 0, var = 0;

    for (size_t t = 0; t < n_periods; t++) {
        const struct bandit_period *p = &periods[t];
        if (!finite_nonneg(p->n_total) || !finite_nonneg(p->n) ||
            !isfinite(p->sum) || !finite_nonneg(p->sum_sq) ||
            p->n > p->n_total)
            return AB_EINVAL;
        if (p->n >= 1)
            big_n += p->n_total;
    }
    if (!(big_n > 0))
        return AB_EINVAL;
    for (size_t t = 0; t < n_periods; t++) {
        const struct bandit_period *p = &periods[t];
        double share, ybar;
        if (p->n < 1)
            continue;
        share = p->n_total / big_n;
        ybar = p->sum / p->n;
        mean += share * ybar;
        if (p->n >= 2) {
            double s2 = (p->sum_sq - p->sum * ybar) / (p->n - 1);
            if (s2 > 0)
                var += share * share * s2 / p->n;
        }
    }
    out->mean = mean;
    out->se = sqrt(var);
    return AB_OK;
}
