/* multiple.c -- Holm and Benjamini-Hochberg adjusted p-values.
 *
 *   Holm:  adj_(i) = min(1, max_{j<=i} (k - j + 1) p_(j))   (Holm 1979)
 *   BH:    adj_(i) = min(1, min_{j>=i} (k / j) p_(j))        (B&H 1995)
 * with p_(1) <= ... <= p_(k); the same definitions as R's p.adjust.
 * Sorting is an insertion sort of indices (k is arms x metrics: small) and
 * is stable, so ties keep their input order.
 */
#include "stats/multiple.h"

#include <math.h>

static void
sort_indices(const double *p, size_t k, size_t *idx)
{
    for (size_t i = 0; i < k; i++)
        idx[i] = i;
    for (size_t i = 1; i < k; i++) {
        size_t v = idx[i], j = i;
        while (j > 0 && p[idx[j - 1]] > p[v]) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = v;
    }
}

ab_status
stats_p_adjust(const double *p, size_t k, enum stats_correction method,
               double *adj, size_t *work, enum stats_reason *why)
{
    double run;

    for (size_t i = 0; i < k; i++) {
        if (isnan(p[i])) {
            stats_set_reason(why, STATS_REASON_NOT_FINITE);
            return AB_EINVAL;
        }
        if (p[i] < 0 || p[i] > 1) {
            stats_set_reason(why, STATS_REASON_BAD_PARAMETER);
            return AB_EINVAL;
        }
    }
    if (method != STATS_CORR_HOLM && method != STATS_CORR_BH) {
        for (size_t i = 0; i < k; i++)
            adj[i] = p[i];
        return AB_OK;
    }
    sort_indices(p, k, work);
    /* work holds the order. Each pass reads p[work[i]] before it writes
     * adj[work[i]] and never reads that slot again, so adj may alias p. */
    if (method == STATS_CORR_HOLM) {
        run = 0;
        for (size_t i = 0; i < k; i++) {
            double v = (double)(k - i) * p[work[i]];
            if (v > run)
                run = v;
            adj[work[i]] = run > 1 ? 1 : run;
        }
    } else {
        /* descending pass; every p[work[i]] is read before its slot in adj
         * is written, and each slot is written once */
        run = 1;
        for (size_t i = k; i-- > 0;) {
            double v = (double)k / (double)(i + 1) * p[work[i]];
            if (v < run)
                run = v;
            adj[work[i]] = run;
        }
    }
    return AB_OK;
}
