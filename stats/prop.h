/* prop.h -- comparing two conversion rates. Pure: no I/O, no allocation. */
#ifndef STATS_PROP_H
#define STATS_PROP_H

#include "lib/status.h"
#include "stats/common.h"

/* One arm of a binary metric: units that converted out of trials units. */
struct stats_prop {
    double successes, trials;
};

/* Two-proportion z test of t against c.
 * ABSOLUTE: effect = p_t - p_c. The statistic uses the pooled standard
 *   error sqrt(p(1-p)(1/n_t + 1/n_c)), p = (x_t + x_c)/(n_t + n_c) (the
 *   classical test, statsmodels proportions_ztest); the interval uses the
 *   unpooled (Wald) one sqrt(p_t q_t/n_t + p_c q_c/n_c) (statsmodels
 *   confint_proportions_2indep(method="wald")), which is out->se.
 * RELATIVE: effect = p_t/p_c - 1, delta method on the unpooled variances;
 *   statistic effect/se, interval effect -/+ z se.
 * Failures: NEGATIVE (negative counts), INCONSISTENT (successes > trials or
 * not integral), FEW_UNITS (an arm with < 2 trials), ZERO_VARIANCE (both
 * rates 0 or both 1), ZERO_CONTROL_MEAN (RELATIVE with p_c = 0),
 * BAD_PARAMETER (alpha). Writes *out only on AB_OK. */
ab_status stats_prop_ztest(const struct stats_prop *c,
                           const struct stats_prop *t,
                           enum stats_effect effect, enum stats_side side,
                           double alpha, struct stats_result *out,
                           enum stats_reason *why);

/* Validate one arm (the checks above) without testing anything. */
ab_status stats_prop_check(const struct stats_prop *a,
                           enum stats_reason *why);

#endif /* STATS_PROP_H */
