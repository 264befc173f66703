/* welch.h -- Welch's t test (unequal variances, fractional degrees of
 * freedom) and the Wald pivot shared by every fixed-horizon method.
 * Pure: no I/O, no allocation; results go to caller-owned structs.
 */
#ifndef STATS_WELCH_H
#define STATS_WELCH_H

#include "lib/status.h"
#include "stats/common.h"

/* Quantile of Student's t with df degrees of freedom (df = INFINITY: the
 * standard normal). gsl_cdf_tdist_Pinv is good to about 1e-9; this refines
 * it with Newton steps on gsl_cdf_tdist_P/Q to about 1e-14 relative.
 * Returns NAN only for p outside (0,1) or df <= 0. */
double stats_t_quantile(double p, double df);

/* Wald pivot: stat = effect/se, compared with t(df) (df = INFINITY: normal).
 *   TWO:     p = 2 Q(|stat|),  ci = effect -/+ q(1-alpha/2) se
 *   GREATER: p = Q(stat),      ci = [effect - q(1-alpha) se, +INFINITY)
 *   LESS:    p = P(stat),      ci = (-INFINITY, effect + q(1-alpha) se]
 * AB_EINVAL: alpha not in (0,1), df <= 0 or non-finite inputs
 * (BAD_PARAMETER / NOT_FINITE); AB_ENUMERIC: se == 0 (ZERO_VARIANCE).
 * Writes *out only on AB_OK, *why (may be NULL) only on failure. */
ab_status stats_wald(double effect, double se, double df, enum stats_side side,
                     double alpha, struct stats_result *out,
                     enum stats_reason *why);

/* Welch-Satterthwaite degrees of freedom of var_c/n_c + var_t/n_t:
 *   df = (a + b)^2 / (a^2/(n_c-1) + b^2/(n_t-1)),  a = v_c/n_c, b = v_t/n_t
 * (Welch 1947, Biometrika 34:28). Requires n > 1 and a + b > 0. */
double stats_welch_df(const struct stats_summary *c,
                      const struct stats_summary *t);

/* Compare treatment t with control c (means in metric units).
 *   ABSOLUTE: effect = m_t - m_c, se^2 = v_t/n_t + v_c/n_c
 *   RELATIVE: effect = m_t/m_c - 1, delta method (see stats/delta.h):
 *             se^2 = v_t/(n_t m_c^2) + m_t^2 v_c/(n_c m_c^4)
 * use_t != 0: the pivot is t with Welch df (Welch's test); use_t == 0: the
 * normal (a z test on the same standard error). For summaries of ratio
 * metrics or CUPED-adjusted metrics, var is the linearised per-unit
 * variance, so the same formulas apply.
 * Failures: those of stats_wald, ZERO_CONTROL_MEAN for RELATIVE with m_c = 0,
 * FEW_UNITS when an n <= 1. */
ab_status stats_welch_compare(const struct stats_summary *c,
                              const struct stats_summary *t,
                              enum stats_effect effect, enum stats_side side,
                              double alpha, int use_t,
                              struct stats_result *out,
                              enum stats_reason *why);

/* Convenience: stats_moments_summary() on both arms, then
 * stats_welch_compare() with use_t = 1. */
ab_status stats_welch_test(const struct stats_moments *c,
                           const struct stats_moments *t,
                           enum stats_effect effect, enum stats_side side,
                           double alpha, struct stats_result *out,
                           enum stats_reason *why);

#endif /* STATS_WELCH_H */
