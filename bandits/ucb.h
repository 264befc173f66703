/* ucb.h -- optimistic indices: UCB1 and KL-UCB. Pure: no I/O, no
 * allocation. Indices are for "higher is better" statistics (bandit.c
 * mirrors lower-is-better metrics before calling). An arm without data
 * (and, for Gaussian rewards, with fewer than 2 units) has index +inf so
 * that it is played first. */
#ifndef BANDITS_UCB_H
#define BANDITS_UCB_H

#include "bandits/bandit.h"
#include "lib/status.h"

/* Bernoulli relative entropy kl(p, q) = p ln(p/q) + (1-p) ln((1-p)/(1-q)),
 * with 0 ln 0 = 0; +inf when q is 0 or 1 and p differs. */
double bandit_kl_bernoulli(double p, double q);

/* UCB1 index after t total plays (Auer, Cesa-Bianchi, Fischer 2002, fig. 1):
 *   binary:   mean + sqrt(2 c ln t / n)
 *   gaussian: mean + sd_hat sqrt(2 c ln t / n), sd_hat the sample sd
 * (the sub-Gaussian form of UCB1 with the variance estimated).
 * AB_EINVAL: t < 1, c < 0, impossible statistics. */
ab_status bandit_ucb1_index(const struct bandit_arm *arm,
                            enum bandit_reward reward, double t, double c,
                            double *out);

/* KL-UCB index (Garivier and Cappe 2011, eq. 2):
 *   max { q >= mean : n kl(mean, q) <= ln t + c ln ln t }
 * binary: Bernoulli kl, solved by bisection to 1e-10;
 * gaussian: kl = (mean - q)^2 / (2 sd_hat^2), so the index is
 *   mean + sd_hat sqrt(2 (ln t + c ln ln t) / n).
 * ln ln t is taken as 0 for t < e. Errors as bandit_ucb1_index(). */
ab_status bandit_klucb_index(const struct bandit_arm *arm,
                             enum bandit_reward reward, double t, double c,
                             double *out);

#endif /* BANDITS_UCB_H */
