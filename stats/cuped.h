/* cuped.h -- CUPED: variance reduction with a pre-period covariate, theta
 * pooled across arms. Pure: no I/O, no allocation.
 *
 * Per unit y (metric) and x (the same metric, or another, measured before
 * the experiment). The adjusted metric is
 *   y' = y - theta (x - xbar),  theta = sum_arms S_xy / sum_arms S_xx
 * where S_xy, S_xx are within-arm co-moments (the pooled within-arm least
 * squares slope, i.e. the slope of the ANCOVA y ~ arm + x) and xbar is the
 * grand mean of x over all arms (it cancels in every difference).
 * (Deng, Xu, Kohavi, Walker 2013, "Improving the sensitivity of online
 * controlled experiments by utilizing pre-experiment data", WSDM, section
 * 3.3.)
 */
#ifndef STATS_CUPED_H
#define STATS_CUPED_H

#include <stddef.h>

#include "lib/status.h"
#include "stats/common.h"

struct stats_cuped_moments {
    double n, sum, sum_sq;                   /* y: the metric */
    double pre_sum, pre_sum_sq, pre_cross_sum; /* sum x, sum x^2, sum x*y */
};

/* One arm after adjustment. adj: mean and per-unit variance of y'
 * (s_yy - 2 theta s_xy + theta^2 s_xx); raw: of y; cov_adj_raw: per-unit
 * covariance of y' and y (s_yy - theta s_xy), used by the relative lift. */
struct stats_cuped_summary {
    struct stats_summary adj, raw;
    double cov_adj_raw;
};

/* theta pooled over k >= 1 arms (formula above). theta = 0 when every
 * arm's covariate is constant (nothing to adjust on). Failures: those of
 * stats_moments_summary on y or x of any arm, NOT_FINITE (cross sum),
 * INCONSISTENT (covariance beyond Cauchy-Schwarz). */
ab_status stats_cuped_theta(const struct stats_cuped_moments *arms, size_t k,
                            double *theta, enum stats_reason *why);

/* Grand mean of x over k arms (sum of pre_sum / sum of n). */
ab_status stats_cuped_pre_mean(const struct stats_cuped_moments *arms,
                               size_t k, double *xbar,
                               enum stats_reason *why);

/* Adjust one arm with theta and the grand covariate mean xbar. */
ab_status stats_cuped_summary(const struct stats_cuped_moments *m,
                              double theta, double xbar,
                              struct stats_cuped_summary *out,
                              enum stats_reason *why);

/* Compare adjusted treatment t with adjusted control c.
 * ABSOLUTE: effect = m'_t - m'_c, se^2 = v'_t/n_t + v'_c/n_c.
 * RELATIVE: effect = (m'_t - m'_c) / m_c, relative to the UNADJUSTED
 *   control mean m_c, by the delta method with
 *   Cov(m'_t - m'_c, m_c) = -cov_adj_raw_c / n_c.
 * use_t: Welch t with the df of the adjusted variances, else normal.
 * Failures: as stats_welch_compare. */
ab_status stats_cuped_compare(const struct stats_cuped_summary *c,
                              const struct stats_cuped_summary *t,
                              enum stats_effect effect, enum stats_side side,
                              double alpha, int use_t,
                              struct stats_result *out,
                              enum stats_reason *why);

#endif /* STATS_CUPED_H */
