/* srm.h -- sample-ratio mismatch: Pearson's chi-square goodness-of-fit
 * test of the observed units per arm against the configured weights.
 * Pure: no I/O, no allocation.
 */
#ifndef STATS_SRM_H
#define STATS_SRM_H

#include <stddef.h>

#include "lib/status.h"
#include "stats/common.h"

/* p < this blocks any promotion (DESIGN.md, "Health checks"). */
#define STATS_SRM_THRESHOLD 0.001

struct stats_srm {
    double chi2;      /* sum (O - E)^2 / E */
    double df;        /* arms with weight > 0, minus 1 */
    double p_value;   /* upper tail of chi-square(df) */
    int mismatch;     /* p_value < threshold */
};

/* counts[i]: units observed in arm i; weights[i] >= 0: configured share
 * (any scale: percent or fractions), k arms. E_i = N w_i / sum w.
 * An arm with weight 0 must have no units (else mismatch, p = 0).
 * threshold in (0, 1) (0 means STATS_SRM_THRESHOLD).
 * Failures: NOT_FINITE, NEGATIVE, INCONSISTENT (non-integral count),
 * BAD_PARAMETER (k < 2 weighted arms, all weights 0, threshold),
 * FEW_UNITS (no units at all). (Pearson 1900; Fabijan et al. 2019,
 * "Diagnosing sample ratio mismatch in online controlled experiments",
 * KDD.) */
ab_status stats_srm_test(const double *counts, const double *weights,
                         size_t k, double threshold, struct stats_srm *out,
                         enum stats_reason *why);

#endif /* STATS_SRM_H */
