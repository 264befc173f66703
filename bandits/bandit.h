/* bandit.h -- adaptive allocation policies for multi-armed experiments.
 *
 * Pure: numbers in, numbers out. Randomness comes in as a gsl_rng, scratch
 * memory as a struct bandit_workspace made once by the caller; the policy
 * calls never allocate, print or touch globals.
 *
 * The service's reweight job calls bandit_weights() on a cadence with the
 * per-arm sufficient statistics and publishes the weights into the
 * assignment snapshot; `arbiter simulate` calls bandit_choose() for fully
 * online allocation (one unit at a time) and bandit_weights() for batched
 * allocation.
 *
 *   policy       weights written by bandit_weights()
 *   ----------   ---------------------------------------------------------
 *   uniform      1/K                                   (baseline)
 *   thompson     P(arm is best | data)                 (Thompson 1933)
 *   top_two      beta*P_k + (1-beta)*sum_{i!=k} P_i P_k/(1-P_i)
 *                the law of top-two Thompson sampling  (Russo 2016)
 *   ucb1         all mass on argmax UCB1 index         (Auer et al. 2002)
 *   kl_ucb       all mass on argmax KL-UCB index       (Garivier, Cappe 2011)
 *   eps_greedy   1-eps_t on the best mean, eps_t/K each (Auer et al. 2002)
 *
 * Controls, applied in this order by bandit_weights():
 *   retired arms (active == 0) get weight 0 and never count;
 *   a pinned control arm gets exactly control_share;
 *   burn-in: until the active arms hold burn_in units in total, the
 *     non-control arms split the rest equally;
 *   warm-up: a non-control arm with fewer than min_units units (a new arm
 *     added while running, or every arm before the first reweight) gets
 *     its equal share (1-control_share)/K'; the policy shares what is left
 *     among the warm arms;
 *   floor: every active non-control arm gets at least 'floor' (absolute
 *     share of traffic), taken proportionally from the arms above it.
 *   lower_is_better: the policy sees rewards mirrored (binary: failures
 *     become successes; continuous: rewards negated), so "best" means
 *     smallest mean everywhere, p_best included.
 */
#ifndef BANDITS_BANDIT_H
#define BANDITS_BANDIT_H

#include <stddef.h>

#include <gsl/gsl_rng.h>

#include "lib/status.h"

enum bandit_reward {
    BANDIT_REWARD_BINARY = 0, /* 0/1 outcomes: Beta-Bernoulli */
    BANDIT_REWARD_GAUSSIAN    /* real outcomes: Normal, unknown variance */
};

enum bandit_policy {
    BANDIT_UNIFORM = 0,
    BANDIT_THOMPSON,
    BANDIT_TOP_TWO,
    BANDIT_UCB1,
    BANDIT_KL_UCB,
    BANDIT_EPS_GREEDY
};
#define BANDIT_N_POLICIES (BANDIT_EPS_GREEDY + 1)

/* How P(arm is best) is computed (see bandits/thompson.h). */
enum bandit_pbest_method {
    BANDIT_PBEST_MC = 0, /* Monte Carlo draws from the exact posteriors */
    BANDIT_PBEST_QUAD,   /* composite Gauss-Legendre, exact pdf and cdf */
    BANDIT_PBEST_GH      /* Gauss-Hermite on normal approximations */
};

/* Sufficient statistics of one arm. For binary rewards 'sum' is the number
 * of successes and sum_sq is ignored. */
struct bandit_arm {
    double n;      /* units with an outcome */
    double sum;    /* sum of rewards */
    double sum_sq; /* sum of squared rewards */
    int active;    /* 0: retired, weight 0 */
};

/* Conjugate priors. Binary: Beta(alpha, beta). Gaussian: Normal-Inverse-
 * Gamma (mu0, kappa0, a0, b0): mean | var ~ N(mu0, var/kappa0),
 * var ~ InvGamma(a0, b0). b0/a0 is a prior guess of the reward variance. */
struct bandit_prior {
    double alpha, beta;
    double mu0, kappa0, a0, b0;
};

struct bandit_config {
    enum bandit_policy policy;
    enum bandit_reward reward;
    int lower_is_better;     /* 1: smaller mean is better */
    double floor;            /* minimum weight per active arm, [0, 1/K] */
    long control;            /* index of a pinned control arm, or -1 */
    double control_share;    /* its fixed weight, [0, 1) */
    double burn_in;          /* equal split until this many units in all */
    double min_units;        /* units an arm needs before it is reweighted */
    struct bandit_prior prior;
    enum bandit_pbest_method pbest; /* for thompson, top_two and p_best */
    size_t mc_draws;         /* draws for BANDIT_PBEST_MC */
    double top_two_beta;     /* P(play the leader) in top-two, (0, 1) */
    double epsilon;          /* eps-greedy: eps_t = min(epsilon, c K / t) */
    double epsilon_c;        /* c above; 0 keeps eps_t = epsilon */
    double ucb_c;            /* UCB1 index mean + sqrt(2 c ln t / n) */
    double klucb_c;          /* KL-UCB level ln t + c ln ln t */
};

/* Defaults: no floor, no control, no burn-in, min_units 0, Beta(1,1),
 * NIG(0, 1e-3, 1, 1), quadrature p_best, 10000 MC draws, top-two beta 0.5,
 * epsilon 0.1 with no decay, ucb_c 1, klucb_c 0 (the value Garivier and
 * Cappe use in their experiments). */
void bandit_config_default(struct bandit_config *cfg,
                           enum bandit_policy policy,
                           enum bandit_reward reward);

/* AB_EINVAL when a field is out of range for n_arms arms. */
ab_status bandit_config_check(const struct bandit_config *cfg,
                              size_t n_arms);

/* The policies' names ("thompson", "top_two", ...) live in ONE table, the
 * model's (codec/experiment_json.c, over enum core_bandit_policy, which
 * lists them in this order); service/reweight.h maps one enum onto the
 * other. */

/* Scratch memory for up to max_arms arms and the quadrature rules. Made
 * once (this allocates); stores a new workspace in *out; release with
 * bandit_workspace_free() (NULL is a no-op). AB_EINVAL: max_arms is 0 or
 * above BANDIT_MAX_ARMS. AB_ENUMERIC: GSL could not build a rule. */
#define BANDIT_MAX_ARMS 256
struct bandit_workspace;
ab_status bandit_workspace_new(size_t max_arms, struct bandit_workspace **out);
void bandit_workspace_free(struct bandit_workspace *ws);

/* New allocation weights (summing to 1) for n_arms arms into weights[], and,
 * when p_best is not NULL, the posterior probability that each arm is best
 * (0 for retired arms) into p_best[] by cfg->pbest. Both arrays are
 * caller-owned with n_arms entries and written only on AB_OK.
 * AB_EINVAL: bad config, no active arm, n_arms above the workspace,
 * impossible statistics (n < 0, successes > n, sum_sq below sum^2/n).
 * AB_ENUMERIC: a quadrature produced a non-finite value. */
ab_status bandit_weights(const struct bandit_arm *arms, size_t n_arms,
                         const struct bandit_config *cfg, gsl_rng *rng,
                         struct bandit_workspace *ws, double *weights,
                         double *p_best);

/* One online decision: the arm the next unit gets. Burn-in picks uniformly
 * among active arms, warm-up picks the warming arm with the fewest units,
 * then thompson draws one sample per arm, top_two resamples for a
 * challenger (up to 100 times, then takes the runner-up of the last draw),
 * ucb1 / kl_ucb take the largest index (lowest position on ties), eps_greedy
 * explores with probability eps_t. With a floor or a pinned control the arm
 * is drawn from bandit_weights() instead. '*chosen' is written only on
 * AB_OK; errors as bandit_weights(). */
ab_status bandit_choose(const struct bandit_arm *arms, size_t n_arms,
                        const struct bandit_config *cfg, gsl_rng *rng,
                        struct bandit_workspace *ws, size_t *chosen);

#endif /* BANDITS_BANDIT_H */
