/* srm.c -- sample-ratio mismatch by Pearson's chi-square test.
 *
 *   E_i = N w_i / sum_j w_j,  chi2 = sum_i (O_i - E_i)^2 / E_i,
 *   p = P(chi-square(k - 1) >= chi2)
 * (Pearson 1900, Phil. Mag. 50:157; Fabijan et al. 2019, KDD, section 3).
 */
#include "stats/srm.h"

#include <gsl/gsl_cdf.h>
#include <math.h>

ab_status
stats_srm_test(const double *counts, const double *weights, size_t k,
               double threshold, struct stats_srm *out,
               enum stats_reason *why)
{
    double n = 0, wsum = 0, chi2 = 0;
    size_t used = 0;
    int impossible = 0;
    struct stats_srm r;

    if (threshold == 0)
        threshold = STATS_SRM_THRESHOLD;
    if (!(threshold > 0 && threshold < 1)) {
        stats_set_reason(why, STATS_REASON_BAD_PARAMETER);
        return AB_EINVAL;
    }
    for (size_t i = 0; i < k; i++) {
        if (!isfinite(counts[i]) || !isfinite(weights[i])) {
            stats_set_reason(why, STATS_REASON_NOT_FINITE);
            return AB_EINVAL;
        }
        if (counts[i] < 0 || weights[i] < 0) {
            stats_set_reason(why, STATS_REASON_NEGATIVE);
            return AB_EINVAL;
        }
        if (counts[i] != floor(counts[i])) {
            stats_set_reason(why, STATS_REASON_INCONSISTENT);
            return AB_EINVAL;
        }
        n += counts[i];
        wsum += weights[i];
        if (weights[i] > 0)
            used++;
    }
    if (used < 2 || !(wsum > 0) || !isfinite(wsum)) {
        stats_set_reason(why, STATS_REASON_BAD_PARAMETER);
        return AB_EINVAL;
    }
    if (!isfinite(n)) {
        stats_set_reason(why, STATS_REASON_OVERFLOW);
        return AB_ENUMERIC;
    }
    if (n == 0) {
        stats_set_reason(why, STATS_REASON_FEW_UNITS);
        return AB_ENUMERIC;
    }
    for (size_t i = 0; i < k; i++) {
        double e = n * (weights[i] / wsum), d;
        if (weights[i] == 0) {
            if (counts[i] > 0)
                impossible = 1;
            continue;
        }
        d = counts[i] - e;
        chi2 += d * d / e;
    }
    if (!isfinite(chi2)) {
        stats_set_reason(why, STATS_REASON_OVERFLOW);
        return AB_ENUMERIC;
    }
    r.chi2 = chi2;
    r.df = (double)(used - 1);
    r.p_value = impossible ? 0 : gsl_cdf_chisq_Q(chi2, r.df);
    r.mismatch = r.p_value < threshold;
    *out = r;
    return AB_OK;
}
