/* bayes.h -- Bayesian comparison of a treatment with a control: a normal
 * model on the effect (lift) with an improper flat prior or a proper normal
 * one, and the Beta-Binomial model for conversion metrics. Chance to beat
 * control, credible interval and expected loss ("risk") of choosing either
 * arm. Pure: no I/O, no allocation, deterministic (no sampling: every
 * number is closed form or a 1-D adaptive quadrature, GSL QAG).
 */
#ifndef STATS_BAYES_H
#define STATS_BAYES_H

#include "lib/status.h"
#include "stats/common.h"

/* Normal prior on the effect, in the units of the effect (absolute metric
 * units, or a fraction for a relative effect). */
struct stats_bayes_prior {
    double mean, sd;   /* sd > 0 */
};

/* Posterior summary. 'better' is the direction that is good for the metric
 * (INCREASE: effect > 0). chance_to_win = P(treatment better | data);
 * risk_treatment = E[loss of shipping treatment] = E[max(0, -s*effect)],
 * risk_control = E[max(0, s*effect)], s = +1 (INCREASE) or -1 (DECREASE),
 * in the units of the effect. Interval: equal-tailed 1-alpha (TWO), or the
 * one-sided 1-alpha bound (GREATER: [lo, +inf), LESS: (-inf, hi]). */
struct stats_bayes_result {
    double post_mean, post_sd;
    double ci_low, ci_high;
    double chance_to_win;
    double risk_control, risk_treatment;
};

/* Normal model: the effect estimate est with standard error se is
 * N(effect, se^2); the prior is N(mean, sd^2), or flat when prior == NULL:
 *   precision = 1/se^2 + 1/sd^2,  post_mean = (est/se^2 + mean/sd^2) /
 *   precision,  post_sd = precision^-1/2
 * (Gelman et al., Bayesian Data Analysis, 3rd ed., section 2.5; the
 * GrowthBook engine's "normal approximation with prior on the lift").
 * Expected loss of a N(m, s^2) quantity: E[max(0,X)] = m Phi(m/s) +
 * s phi(m/s). Failures: NOT_FINITE, BAD_PARAMETER (alpha, prior sd <= 0),
 * ZERO_VARIANCE (se == 0). */
ab_status stats_bayes_normal(double est, double se,
                             const struct stats_bayes_prior *prior,
                             enum stats_direction dir, enum stats_side side,
                             double alpha, struct stats_bayes_result *out,
                             enum stats_reason *why);

/* Beta-Binomial: p_arm ~ Beta(a0 + x, b0 + n - x) independently (a0 = b0 =
 * 1 is the uniform prior). Effect ABSOLUTE: p_t - p_c; RELATIVE: p_t/p_c -
 * 1 (needs a0 + x_c > 2 for a finite posterior sd). post_mean, post_sd:
 * exact posterior moments of the effect; interval: quantiles of the exact
 * posterior of the effect, by root finding on
 *   P(p_t - p_c <= d) = int f_c(x) F_t(x + d) dx,
 *   P(p_t / p_c <= 1 + d) = int f_c(x) F_t((1 + d) x) dx;
 * chance_to_win = P(p_t > p_c) = int f_t(x) F_c(x) dx (or P(p_t < p_c)
 * for DECREASE); risks in absolute units (probability points), by
 *   E[max(0, p_c - p_t)] = E[p_c] P(B_c+ > p_t) - E[p_t] P(p_c > B_t+),
 * B+ = Beta(a + 1, b) (Stucchio 2015, "Bayesian A/B testing at VWO",
 * appendix; Miller 2015 for the closed form used by the oracle). Failures:
 * those of stats_prop_check, BAD_PARAMETER (prior a0, b0 <= 0, alpha),
 * NO_CONVERGENCE. */
ab_status stats_bayes_beta(double x_c, double n_c, double x_t, double n_t,
                           double a0, double b0, enum stats_effect effect,
                           enum stats_direction dir, enum stats_side side,
                           double alpha, struct stats_bayes_result *out,
                           enum stats_reason *why);

#endif /* STATS_BAYES_H */
