/* thompson.h -- conjugate posteriors of arm means and the probability that
 * each arm is best. Pure: no I/O, no allocation (scratch comes from the
 * caller's struct bandit_workspace), randomness only through a gsl_rng.
 *
 * Binary rewards: Beta(alpha + s, beta + n - s).
 * Gaussian rewards, unknown variance: Normal-Inverse-Gamma update; the
 * marginal posterior of the mean is a Student-t (Murphy 2007, "Conjugate
 * Bayesian analysis of the Gaussian distribution", eqs. 85-89 and 110).
 *
 * P(k is best) = int f_k(x) prod_{j != k} F_j(x) dx, computed three ways:
 *   BANDIT_PBEST_MC    draws from the exact posteriors, counts the argmax;
 *                      standard error sqrt(p (1 - p) / draws) <= 0.5/sqrt(D)
 *   BANDIT_PBEST_QUAD  the integral above with the EXACT Beta / Student-t
 *                      pdf and cdf, composite Gauss-Legendre (8 nodes per
 *                      piece) with breakpoints at arm k's mean +-
 *                      {0,1,2,4,8} sd, the other arms' mean +- {0,1.5,4}
 *                      sd (and doubling steps into heavy t tails);
 *                      largest error against scipy's adaptive quad over
 *                      24 random problems 1.7e-8 (tests/oracle/
 *                      test_bandits.py). Cost grows as K^3: about 70 ms
 *                      for 10 Beta arms, 13 ms for 10 t arms (-O2)
 *   BANDIT_PBEST_GH    64-node Gauss-Hermite on NORMAL approximations:
 *                      of logit(p) for Beta posteriors (mean psi(a) -
 *                      psi(b), variance psi'(a) + psi'(b), the exact
 *                      moments), of the mean for Student-t (same mean and
 *                      sd); exact only in the large-sample limit
 */
#ifndef BANDITS_THOMPSON_H
#define BANDITS_THOMPSON_H

#include <stddef.h>

#include <gsl/gsl_rng.h>

#include "bandits/bandit.h"
#include "lib/status.h"

/* The posterior of one arm's mean (already mirrored if lower is better). */
struct bandit_posterior {
    enum bandit_reward reward;
    double a, b;            /* Beta(a, b) (binary) */
    double loc, scale, nu;  /* Student-t(nu) location and scale (gaussian) */
    double mean, sd;        /* its mean and standard deviation */
};

/* Posterior of 'arm' under 'prior'. AB_EINVAL: n < 0, successes outside
 * [0, n], sum_sq below sum^2/n beyond rounding, a prior parameter not
 * positive (kappa0 may be 0 only when n > 0). */
ab_status bandit_posterior_make(const struct bandit_arm *arm,
                                enum bandit_reward reward,
                                const struct bandit_prior *prior,
                                struct bandit_posterior *out);

/* One draw of the arm's mean from its posterior. */
double bandit_posterior_draw(const struct bandit_posterior *post,
                             gsl_rng *rng);

/* P(arm k is best) among the arms with mask[k] != 0 into p_best[k] (0 for
 * the others). 'draws' is used by BANDIT_PBEST_MC only, rng likewise (may
 * be NULL for the deterministic methods). n must not exceed the
 * workspace's max_arms; at least one arm must be in the mask.
 * p_best is written only on AB_OK; AB_ENUMERIC on a non-finite integral. */
ab_status bandit_pbest(const struct bandit_posterior *post,
                       const unsigned char *mask, size_t n,
                       enum bandit_pbest_method method, size_t draws,
                       gsl_rng *rng, struct bandit_workspace *ws,
                       double *p_best);

#endif /* BANDITS_THOMPSON_H */
