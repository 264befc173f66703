/* paired.c -- paired comparisons of two models (see paired.h).
 *
 * Clopper & Pearson (1934): for k successes in n trials the exact 1 - a
 *   interval is [B(a/2; k, n-k+1), B(1-a/2; k+1, n-k)], B the beta
 *   quantile, with 0 for k = 0 and 1 for k = n.
 * McNemar (1947); exact form: Agresti, Categorical Data Analysis (2002),
 *   sec. 10.1.1, p = min(1, 2 P(X <= min(b, c))) for X ~ Bin(b + c, 1/2);
 *   chi-square form with Edwards' continuity correction (|b - c| - 1)^2 /
 *   (b + c), as statsmodels' mcnemar(exact=False, correction=True)
 *   computes it.
 * Paired t: Student (1908); the confidence sequence is the normal mixture
 *   of Robbins (1970) in the parametrisation of stats/msprt.h (Howard et
 *   al. 2021, sec. 3.5; Waudby-Smith et al. 2023, sec. 3.2), applied to
 *   the one-sample mean of the per-request differences: its effective
 *   sample size is n and its per-unit variance the variance of d.
 * Wilcoxon (1945) signed-rank; normal approximation with the tie
 *   correction of Lehmann, Nonparametrics (1975), sec. 3.2:
 *   mean n(n+1)/4, variance (n(n+1)(2n+1) - sum t(t^2-1)/2) / 24.
 */
#include "stats/paired.h"

#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdlib.h>

#include "stats/msprt.h"

ab_status
stats_paired_agreement(uint64_t agree, uint64_t n, double alpha,
                       struct stats_agreement *out)
{
    if (n == 0 || agree > n || !(alpha > 0 && alpha < 1))
        return AB_EINVAL;
    double k = (double)agree, nn = (double)n;
    double lo = agree == 0 ? 0.0 : gsl_cdf_beta_Pinv(alpha / 2, k, nn - k + 1);
    double hi = agree == n ? 1.0 : gsl_cdf_beta_Qinv(alpha / 2, k + 1, nn - k);
    if (!isfinite(lo) || !isfinite(hi))
        return AB_ENUMERIC;
    out->rate = k / nn;
    out->ci_low = lo;
    out->ci_high = hi;
    return AB_OK;
}

ab_status
stats_binom_p_greater(uint64_t k, uint64_t n, double p0, double *p)
{
    if (k > n || !(p0 >= 0 && p0 <= 1) || n > UINT32_MAX)
        return AB_EINVAL;
    /* gsl_cdf_binomial_Q(k - 1) = P(X > k - 1) = P(X >= k) */
    double x = k == 0 ? 1.0
                      : gsl_cdf_binomial_Q((unsigned)(k - 1), p0, (unsigned)n);
    if (!isfinite(x))
        return AB_ENUMERIC;
    *p = x;
    return AB_OK;
}

const char *
stats_mcnemar_method_name(enum stats_mcnemar_method m)
{
    return m == STATS_MCNEMAR_EXACT ? "exact_binomial" : "chi_square";
}

ab_status
stats_mcnemar(uint64_t b, uint64_t c, struct stats_mcnemar *out)
{
    uint64_t m = b + c;
    if (m == 0)
        return AB_ENUMERIC;
    if (m > UINT32_MAX)
        return AB_EINVAL;
    double low = (double)(b < c ? b : c);
    double pe = 2 * gsl_cdf_binomial_P((unsigned)low, 0.5, (unsigned)m);
    double diff = fabs((double)b - (double)c) - 1;
    double chi2 = diff * diff / (double)m;
    double pc = gsl_cdf_chisq_Q(chi2, 1);
    if (!isfinite(pe) || !isfinite(pc))
        return AB_ENUMERIC;
    out->b = (double)b;
    out->c = (double)c;
    out->p_exact = pe < 1 ? pe : 1;
    out->chi2 = chi2;
    out->p_chi2 = pc;
    out->method = m < STATS_MCNEMAR_EXACT_BELOW ? STATS_MCNEMAR_EXACT
                                                : STATS_MCNEMAR_CHI2;
    out->p_value =
        out->method == STATS_MCNEMAR_EXACT ? out->p_exact : out->p_chi2;
    return AB_OK;
}

ab_status
stats_paired_mean(const struct stats_summary *d, double alpha, double n_star,
                  struct stats_paired_mean *out)
{
    if (!isfinite(d->n) || !isfinite(d->mean) || !isfinite(d->var) ||
        d->n < 0 || d->var < 0 || !(alpha > 0 && alpha <= 0.5) ||
        n_star < 0 || !isfinite(n_star))
        return AB_EINVAL;
    if (d->n < 2 || d->var == 0)
        return AB_ENUMERIC;
    double rho2, z_crit;
    if (stats_msprt_rho2(alpha, n_star > 0 ? n_star : STATS_MSPRT_DEFAULT_N_STAR,
                         &rho2, NULL) != AB_OK ||
        stats_msprt_z_crit(rho2 * d->n, alpha, STATS_SIDE_TWO, &z_crit,
                           NULL) != AB_OK)
        return AB_EINVAL;
    double sd = sqrt(d->var), se = sd / sqrt(d->n);
    double t = d->mean / se, df = d->n - 1;
    double p = 2 * gsl_cdf_tdist_Q(fabs(t), df);
    if (!isfinite(p) || !isfinite(t))
        return AB_ENUMERIC;
    out->n = d->n;
    out->mean = d->mean;
    out->sd = sd;
    out->se = se;
    out->t = t;
    out->df = df;
    out->p_value = p < 1 ? p : 1;
    out->cs_low = d->mean - z_crit * se;
    out->cs_high = d->mean + z_crit * se;
    return AB_OK;
}

double
stats_quantile_sorted(const double *sorted, size_t n, double q)
{
    if (n == 0)
        return NAN;
    double h = (double)(n - 1) * q;
    size_t lo = (size_t)floor(h);
    if (lo >= n - 1)
        return sorted[n - 1];
    double frac = h - (double)lo;
    return sorted[lo] + frac * (sorted[lo + 1] - sorted[lo]);
}

static int
by_magnitude(const void *a, const void *b)
{
    double x = fabs(*(const double *)a), y = fabs(*(const double *)b);
    return (x > y) - (x < y);
}

ab_status
stats_wilcoxon(const double *d, size_t n, double *work,
               struct stats_wilcoxon *out)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(d[i]))
            return AB_EINVAL;
        if (d[i] != 0)
            work[m++] = d[i];
    }
    if (m < 2)
        return AB_ENUMERIC;
    qsort(work, m, sizeof(*work), by_magnitude);
    double r_plus = 0, r_minus = 0, ties = 0;
    for (size_t i = 0; i < m;) {
        size_t j = i;
        while (j + 1 < m && fabs(work[j + 1]) == fabs(work[i]))
            j++;
        double t = (double)(j - i + 1);
        double rank = ((double)i + (double)j) / 2 + 1; /* average rank */
        for (size_t k = i; k <= j; k++) {
            if (work[k] > 0)
                r_plus += rank;
            else
                r_minus += rank;
        }
        if (t > 1)
            ties += t * (t * t - 1);
        i = j + 1;
    }
    double nn = (double)m;
    double mean = nn * (nn + 1) * 0.25;
    double var = (nn * (nn + 1) * (2 * nn + 1) - 0.5 * ties) / 24;
    if (!(var > 0))
        return AB_ENUMERIC;
    double stat = r_plus < r_minus ? r_plus : r_minus;
    double z = (stat - mean) / sqrt(var);
    out->n_used = nn;
    out->r_plus = r_plus;
    out->r_minus = r_minus;
    out->statistic = stat;
    out->z = z;
    out->p_value = 2 * gsl_cdf_ugaussian_Q(fabs(z));
    return AB_OK;
}
