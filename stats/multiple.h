/* multiple.h -- adjusting a family of p-values: Holm (family-wise error)
 * and Benjamini-Hochberg (false discovery rate). Pure: no I/O, no
 * allocation (the caller passes an index workspace).
 */
#ifndef STATS_MULTIPLE_H
#define STATS_MULTIPLE_H

#include <stddef.h>

#include "lib/status.h"
#include "stats/common.h"

enum stats_correction {
    STATS_CORR_NONE = 0,
    STATS_CORR_HOLM,
    STATS_CORR_BH
};

/* Adjusted p-values for k p-values p[0..k-1] (each in [0,1]); adj may be
 * the same array as p. work: k size_t, caller-owned (the sort order).
 * HOLM (Holm 1979, Scand. J. Statist. 6:65), sorted ascending p_(1..k):
 *   adj_(i) = min(1, max_{j <= i} (k - j + 1) p_(j))
 * BH (Benjamini & Hochberg 1995, JRSS B 57:289):
 *   adj_(i) = min(1, min_{j >= i} k p_(j) / j)
 * NONE copies p. Both agree with R p.adjust and statsmodels multipletests.
 * AB_EINVAL: a p-value NaN or outside [0,1] (NOT_FINITE / BAD_PARAMETER). */
ab_status stats_p_adjust(const double *p, size_t k,
                         enum stats_correction method, double *adj,
                         size_t *work, enum stats_reason *why);

#endif /* STATS_MULTIPLE_H */
