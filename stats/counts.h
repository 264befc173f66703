/* counts.h -- comparing two counting processes (for example the errors of a
 * canary and of the control), valid under continuous monitoring and when
 * the traffic shares change during a ramp. Pure: no I/O, no allocation.
 *
 * Model. Errors of arm a arrive as a Poisson process with intensity
 * lambda_a(s) times that arm's traffic. Conditional on an error occurring
 * at time s, it belongs to the treatment with probability
 *   theta(s) = rho pi(s) / (rho pi(s) + 1 - pi(s)),
 * pi(s) the treatment's traffic share at s, rho = lambda_t / lambda_c the
 * rate ratio (per unit of traffic). Under H0 (rho = 1) theta = pi: each
 * error is a Bernoulli(pi(s)) draw, whatever the (unknown) baseline rate
 * and however pi changes, provided pi(s) is fixed before the error is seen
 * (a ramp schedule is). Errors are grouped in periods of constant share.
 *
 * Mixture e-value (Robbins 1970; Howard et al. 2021; Lindon & Malek 2022,
 * "Anytime-valid inference for multinomial count data", NeurIPS): with
 * u = log rho and x_tk, x_ck the errors of period k,
 *   L(u) = prod_k (theta_k(u)/pi_k)^x_tk ((1-theta_k(u))/(1-pi_k))^x_ck
 *   E    = int L(u) g(u) du,   g = N(0, tau^2)   (TWO)
 *                                 2 N(0, tau^2) on u > 0 (GREATER: the
 *                                 treatment has MORE errors), u < 0 (LESS)
 * E is a nonnegative martingale under H0, so by Ville's inequality
 * P(sup_t E_t >= 1/alpha) <= alpha: p = min(1, 1/E) is an always-valid
 * p-value (take the running minimum across looks).
 */
#ifndef STATS_COUNTS_H
#define STATS_COUNTS_H

#include <stddef.h>

#include "lib/status.h"
#include "stats/common.h"

#define STATS_COUNTS_DEFAULT_TAU 0.5 /* sd of the log rate ratio mixture */

/* Errors of each arm during one period of constant treatment share. */
struct stats_count_period {
    double errors_c, errors_t; /* counts >= 0, integral */
    double share_t;            /* treatment's share of traffic, in (0, 1) */
};

struct stats_counts_result {
    double errors_c, errors_t; /* totals */
    double rate_ratio;   /* maximum likelihood rho; 0 when errors_t == 0,
                            +INFINITY when errors_c == 0 */
    double log_e_value;  /* log E (always finite) */
    double e_value;      /* E, +INFINITY when it overflows */
    double p_value;      /* min(1, 1/E) */
};

/* The test over k >= 1 periods. tau > 0 (0 means the default).
 * Failures: NOT_FINITE, NEGATIVE, INCONSISTENT (non-integral counts),
 * BAD_PARAMETER (share outside (0,1), tau < 0, k == 0), NO_CONVERGENCE.
 * A total of zero errors is fine: E = 1, p = 1. */
ab_status stats_counts_test(const struct stats_count_period *periods,
                            size_t k, double tau, enum stats_side side,
                            struct stats_counts_result *out,
                            enum stats_reason *why);

#endif /* STATS_COUNTS_H */
