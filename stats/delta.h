/* delta.h -- the delta method: relative lift and ratio metrics.
 * Pure: no I/O, no allocation.
 *
 * First-order Taylor expansion of g(A, B) = A / B around the means
 * (Casella & Berger, Statistical Inference, 2nd ed., section 5.5.4;
 * Deng, Knoblich, Lu 2018, "Applying the delta method in metric analytics",
 * KDD, section 3):
 *   Var(A/B) ~= Var(A)/B^2 - 2 A Cov(A,B)/B^3 + A^2 Var(B)/B^4
 */
#ifndef STATS_DELTA_H
#define STATS_DELTA_H

#include "lib/status.h"
#include "stats/common.h"

/* ratio = a/b and its delta-method variance (formula above).
 * AB_ENUMERIC: b == 0 (ZERO_CONTROL_MEAN) or an overflow; AB_EINVAL:
 * non-finite input or a negative variance. */
ab_status stats_delta_ratio(double a, double var_a, double b, double var_b,
                            double cov_ab, double *ratio, double *var,
                            enum stats_reason *why);

/* Relative lift of a difference d (treatment minus control, variance
 * var_d) over the control mean m_c (variance var_mc), with
 * cov_dm = Cov(d, m_c):  lift = d / m_c, variance by the formula above.
 * Without CUPED, d = m_t - m_c and cov_dm = -var_mc. */
ab_status stats_delta_lift(double d, double var_d, double m_c, double var_mc,
                           double cov_dm, double *lift, double *var,
                           enum stats_reason *why);

/* Per-arm sufficient statistics of a ratio metric, clustered by unit:
 * per unit a numerator y and a denominator x (for example the sum of
 * latencies and the number of requests of one user). */
struct stats_ratio_moments {
    double n;                      /* units */
    double num_sum, num_sum_sq;    /* sum y, sum y^2 */
    double den_sum, den_sum_sq;    /* sum x, sum x^2 */
    double cross_sum;              /* sum x*y */
};

/* Summary of a ratio metric R = sum y / sum x as a stats_summary whose
 * mean is R and whose var is the linearised per-unit variance
 *   var = (s_yy - 2 R s_xy + R^2 s_xx) / mean_x^2
 * (sample variances/covariance with divisor n-1), so var/n is the delta
 * method variance of R (Deng et al. 2018, eq. 5). Failures: as
 * stats_moments_summary, ZERO_CONTROL_MEAN when sum x == 0. */
ab_status stats_ratio_summary(const struct stats_ratio_moments *m,
                              struct stats_summary *out,
                              enum stats_reason *why);

#endif /* STATS_DELTA_H */
