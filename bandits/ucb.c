/* ucb.c -- UCB1 and KL-UCB indices.
 *
 * UCB1 (Auer, Cesa-Bianchi and Fischer 2002, "Finite-time analysis of the
 * multiarmed bandit problem", Machine Learning 47, figure 1) plays
 *     argmax_k  xbar_k + sqrt(2 ln t / n_k),
 * with regret O(sum_k ln t / Delta_k). We scale the bonus by c (c = 1 is
 * the paper's index) and, for Gaussian rewards, by the sample standard
 * deviation, the usual sub-Gaussian form.
 *
 * KL-UCB (Garivier and Cappe 2011, "The KL-UCB algorithm for bounded
 * stochastic bandits and beyond", COLT, eq. 2) plays
 *     argmax_k  max { q : n_k kl(xbar_k, q) <= ln t + c ln ln t },
 * which for Bernoulli rewards matches the Lai-Robbins lower bound
 * asymptotically. kl(p, q) is increasing in q on [p, 1], so bisection
 * finds the index.
 */
#include "bandits/ucb.h"

#include <math.h>

double
bandit_kl_bernoulli(double p, double q)
{
    double r = 0;
    if (p > 0) {
        if (q <= 0)
            return INFINITY;
        r += p * log(p / q);
    }
    if (p < 1) {
        if (q >= 1)
            return INFINITY;
        r += (1 - p) * log((1 - p) / (1 - q));
    }
    return r;
}

/* mean and sample sd of an arm; AB_EINVAL on impossible statistics */
static ab_status
arm_moments(const struct bandit_arm *arm, enum bandit_reward reward,
            double *mean, double *sd)
{
    double n = arm->n;
    if (!(n >= 0) || !isfinite(n) || !isfinite(arm->sum))
        return AB_EINVAL;
    if (reward == BANDIT_REWARD_BINARY) {
        if (arm->sum < 0 || arm->sum > n)
            return AB_EINVAL;
        *mean = n > 0 ? arm->sum / n : 0;
        *sd = 0;
        return AB_OK;
    }
    if (reward != BANDIT_REWARD_GAUSSIAN || !isfinite(arm->sum_sq))
        return AB_EINVAL;
    *mean = n > 0 ? arm->sum / n : 0;
    *sd = 0;
    if (n >= 2) {
        double ss = arm->sum_sq - arm->sum * *mean;
        if (ss < -1e-9 * (fabs(arm->sum_sq) + 1.0))
            return AB_EINVAL;
        *sd = ss > 0 ? sqrt(ss / (n - 1)) : 0;
    }
    return AB_OK;
}

/* What both indices check first: the arguments, the arm's moments, and
 * an arm too new to rank (index +infinity, written to *out; otherwise
 * *out is set to 0). */
static ab_status
index_start(const struct bandit_arm *arm, enum bandit_reward reward,
            double t, double c, double *mean, double *sd, double *out)
{
    if (!(t >= 1) || !(c >= 0))
        return AB_EINVAL;
    ab_status rc = arm_moments(arm, reward, mean, sd);
    if (rc != AB_OK)
        return rc;
    *out = arm->n < 1 || (reward == BANDIT_REWARD_GAUSSIAN && arm->n < 2)
               ? INFINITY
               : 0;
    return AB_OK;
}

ab_status
bandit_ucb1_index(const struct bandit_arm *arm, enum bandit_reward reward,
                  double t, double c, double *out)
{
    double mean, sd;
    ab_status rc;

    rc = index_start(arm, reward, t, c, &mean, &sd, out);
    if (rc != AB_OK || isinf(*out))
        return rc;
    if (reward == BANDIT_REWARD_BINARY)
        *out = mean + sqrt(2.0 * c * log(t) / arm->n);
    else
        *out = mean + sd * sqrt(2.0 * c * log(t) / arm->n);
    return AB_OK;
}

ab_status
bandit_klucb_index(const struct bandit_arm *arm, enum bandit_reward reward,
                   double t, double c, double *out)
{
    double mean, sd, level, lo, hi;
    ab_status rc;

    rc = index_start(arm, reward, t, c, &mean, &sd, out);
    if (rc != AB_OK || isinf(*out))
        return rc;
    level = log(t) + (t > M_E ? c * log(log(t)) : 0.0);
    if (reward == BANDIT_REWARD_GAUSSIAN) {
        *out = mean + sd * sqrt(2.0 * level / arm->n);
        return AB_OK;
    }
    level /= arm->n;
    lo = mean;
    hi = 1.0;
    for (int i = 0; i < 100 && hi - lo > 1e-10; i++) {
        double mid = 0.5 * (lo + hi);
        if (bandit_kl_bernoulli(mean, mid) > level)
            hi = mid;
        else
            lo = mid;
    }
    *out = lo;
    return AB_OK;
}
