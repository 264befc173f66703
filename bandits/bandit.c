/* bandit.c -- allocation weights and online choices for every policy, with
 * the service's controls (pinned control, burn-in, warm-up, floor).
 *
 * Policies (K arms, t units so far, P_k = posterior P(arm k is best)):
 *   thompson   w_k = P_k: the probability that Thompson sampling plays k
 *              (Thompson 1933; Chapelle and Li 2011; Scott 2010)
 *   top_two    w_k = beta P_k + (1 - beta) sum_{i != k} P_i P_k / (1 - P_i):
 *              the leader is drawn from P and kept with probability beta,
 *              otherwise the challenger is drawn from P conditioned on
 *              differing from the leader (Russo 2016, "Simple Bayesian
 *              algorithms for best arm identification", COLT, section 3)
 *   ucb1       all mass on argmax UCB1 (Auer, Cesa-Bianchi, Fischer 2002)
 *   kl_ucb     all mass on argmax KL-UCB (Garivier and Cappe 2011)
 *   eps_greedy w_k = eps_t / K + (1 - eps_t) [k = argmax mean], with
 *              eps_t = min(epsilon, c K / t) (Auer et al. 2002, section 3)
 *   uniform    w_k = 1 / K
 * Ties in an argmax share its mass equally.
 *
 * Floor by water-filling: arms whose proportional share would fall below
 * the floor are fixed at it, the remaining mass is spread over the other
 * arms in proportion to their policy weights, repeated until no arm moves
 * (at most K rounds). This is the smallest change that meets the floors
 * while keeping the order of the policy's weights.
 */
#include "bandits/bandit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_integration.h>

#include "bandits/thompson.h"
#include "bandits/ucb.h"
#include "bandits/workspace.h"

void
bandit_config_default(struct bandit_config *cfg, enum bandit_policy policy,
                      enum bandit_reward reward)
{
    /* the fields not named are 0 (no floor, no burn-in, eps decay off) */
    *cfg = (struct bandit_config){
        .policy = policy,
        .reward = reward,
        .control = -1,
        .prior = {.alpha = 1,
                  .beta = 1,
                  .mu0 = 0,
                  .kappa0 = 1e-3,
                  .a0 = 1,
                  .b0 = 1},
        .pbest = BANDIT_PBEST_QUAD,
        .mc_draws = 10000,
        .top_two_beta = 0.5,
        .epsilon = 0.1,
        .ucb_c = 1,
    };
}

ab_status
bandit_config_check(const struct bandit_config *cfg, size_t n_arms)
{
    if ((size_t)cfg->policy >= BANDIT_N_POLICIES)
        return AB_EINVAL;
    if (cfg->reward != BANDIT_REWARD_BINARY &&
        cfg->reward != BANDIT_REWARD_GAUSSIAN)
        return AB_EINVAL;
    if (cfg->pbest != BANDIT_PBEST_MC && cfg->pbest != BANDIT_PBEST_QUAD &&
        cfg->pbest != BANDIT_PBEST_GH)
        return AB_EINVAL;
    if (n_arms == 0 || n_arms > BANDIT_MAX_ARMS)
        return AB_EINVAL;
    if (!(cfg->floor >= 0 && cfg->floor <= 1))
        return AB_EINVAL;
    if (cfg->control < -1 || (cfg->control >= 0 &&
                              (size_t)cfg->control >= n_arms))
        return AB_EINVAL;
    if (!(cfg->control_share >= 0 && cfg->control_share < 1))
        return AB_EINVAL;
    if (!(cfg->burn_in >= 0) || !(cfg->min_units >= 0))
        return AB_EINVAL;
    if (cfg->pbest == BANDIT_PBEST_MC && cfg->mc_draws == 0)
        return AB_EINVAL;
    if (!(cfg->top_two_beta > 0 && cfg->top_two_beta < 1))
        return AB_EINVAL;
    if (!(cfg->epsilon >= 0 && cfg->epsilon <= 1) || !(cfg->epsilon_c >= 0))
        return AB_EINVAL;
    if (!(cfg->ucb_c >= 0) || !(cfg->klucb_c >= 0))
        return AB_EINVAL;
    return AB_OK;
}

/* ------------------------------------------------------------------ */
/* workspace                                                           */
/* ------------------------------------------------------------------ */

ab_status
bandit_workspace_new(size_t max_arms, struct bandit_workspace **out)
{
    struct bandit_workspace *ws;

    if (max_arms == 0 || max_arms > BANDIT_MAX_ARMS)
        return AB_EINVAL;
    ws = ab_xcalloc(1, sizeof(*ws));
    ws->max_arms = max_arms;
    ws->arms = ab_xcalloc(max_arms, sizeof(*ws->arms));
    ws->post = ab_xcalloc(max_arms, sizeof(*ws->post));
    ws->mask_policy = ab_xcalloc(max_arms, 1);
    ws->mask_active = ab_xcalloc(max_arms, 1);
    ws->fixed = ab_xcalloc(max_arms, 1);
    ws->w = ab_xcalloc(max_arms, sizeof(double));
    ws->p = ab_xcalloc(max_arms, sizeof(double));
    ws->q = ab_xcalloc(max_arms, sizeof(double));
    ws->counts = ab_xcalloc(max_arms, sizeof(double));
    ws->breaks = ab_xcalloc(BANDIT_MAX_BREAKS(max_arms), sizeof(double));
    ws->gl = gsl_integration_fixed_alloc(gsl_integration_fixed_legendre,
                                         BANDIT_GL_NODES, -1.0, 1.0, 0, 0);
    ws->gh = gsl_integration_fixed_alloc(gsl_integration_fixed_hermite,
                                         BANDIT_GH_NODES, 0.0, 1.0, 0, 0);
    if (ws->gl == NULL || ws->gh == NULL) {
        bandit_workspace_free(ws);
        return AB_ENUMERIC;
    }
    *out = ws;
    return AB_OK;
}

void
bandit_workspace_free(struct bandit_workspace *ws)
{
    if (ws == NULL)
        return;
    if (ws->gl != NULL)
        gsl_integration_fixed_free(ws->gl);
    if (ws->gh != NULL)
        gsl_integration_fixed_free(ws->gh);
    free(ws->arms);
    free(ws->post);
    free(ws->mask_policy);
    free(ws->mask_active);
    free(ws->fixed);
    free(ws->w);
    free(ws->p);
    free(ws->q);
    free(ws->counts);
    free(ws->breaks);
    free(ws);
}

/* ------------------------------------------------------------------ */
/* shared steps                                                        */
/* ------------------------------------------------------------------ */

struct state {
    size_t n_active;
    double total;  /* units over active arms */
    long pinned;   /* active pinned control, or -1 */
};

/* Mirror the statistics when lower is better, build every active arm's
 * posterior, the active mask and the totals. */
static ab_status
prepare(const struct bandit_arm *arms, size_t n,
        const struct bandit_config *cfg, struct bandit_workspace *ws,
        struct state *st)
{
    struct bandit_prior prior = cfg->prior;
    ab_status rc;

    rc = bandit_config_check(cfg, n);
    if (rc != AB_OK)
        return rc;
    if (ws == NULL || n > ws->max_arms)
        return AB_EINVAL;
    if (cfg->lower_is_better) {
        prior.alpha = cfg->prior.beta;
        prior.beta = cfg->prior.alpha;
        prior.mu0 = -cfg->prior.mu0;
    }
    st->n_active = 0;
    st->total = 0;
    st->pinned = -1;
    for (size_t k = 0; k < n; k++) {
        struct bandit_arm a = arms[k];
        ws->mask_active[k] = a.active != 0;
        ws->mask_policy[k] = 0;
        if (!a.active)
            continue;
        if (cfg->lower_is_better) {
            if (cfg->reward == BANDIT_REWARD_BINARY)
                a.sum = a.n - a.sum;
            else
                a.sum = -a.sum;
        }
        ws->arms[k] = a;
        rc = bandit_posterior_make(&a, cfg->reward, &prior, &ws->post[k]);
        if (rc != AB_OK)
            return rc;
        st->n_active++;
        st->total += a.n;
    }
    if (st->n_active == 0)
        return AB_EINVAL;
    if (cfg->control >= 0 && ws->mask_active[cfg->control])
        st->pinned = cfg->control;
    return AB_OK;
}

static double
explore_rate(const struct bandit_config *cfg, size_t k, double t)
{
    double e = cfg->epsilon;
    if (cfg->epsilon_c > 0)
        e = fmin(e, cfg->epsilon_c * (double)k / fmax(t, 1.0));
    return e;
}

/* empirical mean, or the posterior mean for an arm without data */
static double
greedy_mean(const struct bandit_workspace *ws, size_t k)
{
    if (ws->arms[k].n > 0)
        return ws->arms[k].sum / ws->arms[k].n;
    return ws->post[k].mean;
}

/* The index a deterministic policy maximises (ucb1, kl_ucb, greedy). */
static ab_status
arm_score(const struct bandit_config *cfg, const struct bandit_workspace *ws,
          size_t k, double t, double *out)
{
    switch (cfg->policy) {
    case BANDIT_UCB1:
        return bandit_ucb1_index(&ws->arms[k], cfg->reward, fmax(t, 1.0),
                                 cfg->ucb_c, out);
    case BANDIT_KL_UCB:
        return bandit_klucb_index(&ws->arms[k], cfg->reward, fmax(t, 1.0),
                                  cfg->klucb_c, out);
    default:
        *out = greedy_mean(ws, k);
        return AB_OK;
    }
}

/* Policy weights over mask_policy (n_in arms) into ws->q, summing to 1.
 * ws->p receives P(best) over the same arms for thompson and top_two. */
static ab_status
policy_weights(const struct bandit_config *cfg, size_t n, size_t n_in,
               double t, gsl_rng *rng, struct bandit_workspace *ws)
{
    const unsigned char *m = ws->mask_policy;
    double *q = ws->q;
    ab_status rc;

    for (size_t k = 0; k < n; k++)
        q[k] = 0;
    switch (cfg->policy) {
    case BANDIT_UNIFORM:
        for (size_t k = 0; k < n; k++)
            q[k] = m[k] ? 1.0 / (double)n_in : 0.0;
        return AB_OK;
    case BANDIT_THOMPSON:
    case BANDIT_TOP_TWO: {
        double b = cfg->top_two_beta;
        rc = bandit_pbest(ws->post, m, n, cfg->pbest, cfg->mc_draws, rng, ws,
                          ws->p);
        if (rc != AB_OK)
            return rc;
        if (cfg->policy == BANDIT_THOMPSON) {
            memcpy(q, ws->p, n * sizeof(double));
            return AB_OK;
        }
        if (n_in == 1) {
            memcpy(q, ws->p, n * sizeof(double));
            return AB_OK;
        }
        for (size_t i = 0; i < n; i++) {
            double pi = ws->p[i];
            if (!m[i])
                continue;
            q[i] += b * pi;
            /* challenger law given leader i: P_k / (1 - P_i), k != i;
             * when the leader is (numerically) certain, uniform */
            for (size_t k = 0; k < n; k++) {
                if (k == i || !m[k])
                    continue;
                if (1.0 - pi > 1e-12)
                    q[k] += (1.0 - b) * pi * ws->p[k] / (1.0 - pi);
                else
                    q[k] += (1.0 - b) * pi / (double)(n_in - 1);
            }
        }
        return AB_OK;
    }
    case BANDIT_UCB1:
    case BANDIT_KL_UCB:
    case BANDIT_EPS_GREEDY: {
        double best = -INFINITY, s, e = 0;
        size_t n_best = 0;
        for (size_t k = 0; k < n; k++) {
            if (!m[k])
                continue;
            rc = arm_score(cfg, ws, k, t, &s);
            if (rc != AB_OK)
                return rc;
            ws->counts[k] = s;
            if (n_best == 0 || s > best) {
                best = s;
                n_best = 1;
            } else if (s == best) {
                n_best++;
            }
        }
        if (cfg->policy == BANDIT_EPS_GREEDY)
            e = explore_rate(cfg, n_in, t);
        for (size_t k = 0; k < n; k++) {
            if (!m[k])
                continue;
            q[k] = e / (double)n_in;
            if (ws->counts[k] == best)
                q[k] += (1.0 - e) / (double)n_best;
        }
        return AB_OK;
    }
    }
    return AB_EINVAL;
}

/* Water-filling floor over the arms in 'in' (active, not the control) with
 * total mass 'budget'; 'fixed' is scratch. */
static void
apply_floor(double *w, const unsigned char *in, size_t n, double floor,
            double budget, unsigned char *fixed)
{
    size_t n_in = 0;
    for (size_t k = 0; k < n; k++) {
        fixed[k] = 0;
        n_in += in[k] != 0;
    }
    if (floor <= 0 || n_in == 0)
        return;
    for (size_t round = 0; round <= n_in; round++) {
        size_t n_fixed = 0, n_free = 0;
        double free_w = 0, free_mass;
        int changed = 0;
        for (size_t k = 0; k < n; k++) {
            if (!in[k])
                continue;
            if (fixed[k]) {
                n_fixed++;
            } else {
                n_free++;
                free_w += w[k];
            }
        }
        free_mass = budget - (double)n_fixed * floor;
        for (size_t k = 0; k < n; k++) {
            double v;
            if (!in[k] || fixed[k])
                continue;
            v = free_w > 0 ? w[k] * free_mass / free_w
                           : free_mass / (double)n_free;
            if (v < floor) {
                fixed[k] = 1;
                changed = 1;
            }
        }
        if (changed)
            continue;
        for (size_t k = 0; k < n; k++) {
            if (!in[k])
                continue;
            if (fixed[k])
                w[k] = floor;
            else
                w[k] = free_w > 0 ? w[k] * free_mass / free_w
                                  : free_mass / (double)n_free;
        }
        return;
    }
}

/* ------------------------------------------------------------------ */
/* weights                                                             */
/* ------------------------------------------------------------------ */

ab_status
bandit_weights(const struct bandit_arm *arms, size_t n,
               const struct bandit_config *cfg, gsl_rng *rng,
               struct bandit_workspace *ws, double *weights, double *p_best)
{
    struct state st;
    double budget = 1.0, sum = 0;
    size_t n_other, n_eligible = 0;
    int pbest_done = 0;
    unsigned char *others = ws != NULL ? ws->mask_policy : NULL;
    ab_status rc;

    rc = prepare(arms, n, cfg, ws, &st);
    if (rc != AB_OK)
        return rc;
    for (size_t k = 0; k < n; k++)
        ws->w[k] = 0;
    n_other = st.n_active;
    if (st.pinned >= 0) {
        n_other--;
        if (n_other == 0) {
            ws->w[st.pinned] = 1.0;
            goto out;
        }
        ws->w[st.pinned] = cfg->control_share;
        budget -= cfg->control_share;
    }
    if ((double)n_other * cfg->floor > budget * (1.0 + 1e-12))
        return AB_EINVAL;

    if (st.total < cfg->burn_in) {
        for (size_t k = 0; k < n; k++) {
            if (ws->mask_active[k] && (long)k != st.pinned)
                ws->w[k] = budget / (double)n_other;
        }
    } else {
        double share = budget / (double)n_other, rest = budget;
        for (size_t k = 0; k < n; k++) {
            others[k] = 0;
            if (!ws->mask_active[k] || (long)k == st.pinned)
                continue;
            if (ws->arms[k].n < cfg->min_units) {
                ws->w[k] = share; /* warming up */
                rest -= share;
            } else {
                others[k] = 1;
                n_eligible++;
            }
        }
        if (n_eligible > 0) {
            rc = policy_weights(cfg, n, n_eligible, st.total, rng, ws);
            if (rc != AB_OK)
                return rc;
            for (size_t k = 0; k < n; k++) {
                if (others[k])
                    ws->w[k] = rest * ws->q[k];
            }
            pbest_done = (cfg->policy == BANDIT_THOMPSON ||
                          cfg->policy == BANDIT_TOP_TWO) &&
                         n_eligible == st.n_active;
        }
    }
    for (size_t k = 0; k < n; k++)
        others[k] = ws->mask_active[k] && (long)k != st.pinned;
    apply_floor(ws->w, others, n, cfg->floor, budget, ws->fixed);

    /* rescale the non-control arms to their budget so that rounding never
     * moves the pinned share */
    for (size_t k = 0; k < n; k++) {
        if (others[k])
            sum += ws->w[k];
    }
    if (!(sum > 0) || !isfinite(sum))
        return AB_ENUMERIC;
    for (size_t k = 0; k < n; k++) {
        if (others[k])
            ws->w[k] *= budget / sum;
    }
out:
    sum = 0;
    for (size_t k = 0; k < n; k++)
        sum += ws->w[k];
    if (!(sum > 0) || !isfinite(sum))
        return AB_ENUMERIC;
    if (p_best != NULL && !pbest_done) {
        rc = bandit_pbest(ws->post, ws->mask_active, n, cfg->pbest,
                          cfg->mc_draws, rng, ws, ws->p);
        if (rc != AB_OK)
            return rc;
    }
    for (size_t k = 0; k < n; k++)
        weights[k] = ws->w[k];
    if (p_best != NULL)
        memcpy(p_best, ws->p, n * sizeof(double));
    return AB_OK;
}

/* ------------------------------------------------------------------ */
/* one online choice                                                   */
/* ------------------------------------------------------------------ */

static size_t
random_active(const struct bandit_workspace *ws, size_t n, size_t n_active,
              gsl_rng *rng)
{
    size_t r = (size_t)gsl_rng_uniform_int(rng, n_active);
    for (size_t k = 0; k < n; k++) {
        if (!ws->mask_active[k])
            continue;
        if (r == 0)
            return k;
        r--;
    }
    return 0; /* unreachable: n_active counts the mask */
}

/* one joint posterior draw: the argmax and the runner-up */
static void
draw_top(const struct bandit_workspace *ws, size_t n, gsl_rng *rng,
         size_t *first, size_t *second)
{
    double x1 = -INFINITY, x2 = -INFINITY;
    *first = n;
    *second = n;
    for (size_t k = 0; k < n; k++) {
        double x;
        if (!ws->mask_active[k])
            continue;
        x = bandit_posterior_draw(&ws->post[k], rng);
        if (*first == n || x > x1) {
            *second = *first;
            x2 = x1;
            *first = k;
            x1 = x;
        } else if (*second == n || x > x2) {
            *second = k;
            x2 = x;
        }
    }
}

ab_status
bandit_choose(const struct bandit_arm *arms, size_t n,
              const struct bandit_config *cfg, gsl_rng *rng,
              struct bandit_workspace *ws, size_t *chosen)
{
    struct state st;
    size_t pick = n, first, second;
    double best = 0, s;
    ab_status rc;

    if (rng == NULL)
        return AB_EINVAL;
    rc = prepare(arms, n, cfg, ws, &st);
    if (rc != AB_OK)
        return rc;
    if (st.pinned >= 0 || cfg->floor > 0) {
        double u, acc = 0;
        rc = bandit_weights(arms, n, cfg, rng, ws, ws->w, NULL);
        if (rc != AB_OK)
            return rc;
        u = gsl_rng_uniform(rng);
        for (size_t k = 0; k < n; k++) {
            if (ws->w[k] <= 0)
                continue;
            pick = k;
            acc += ws->w[k];
            if (u < acc)
                break;
        }
        *chosen = pick;
        return AB_OK;
    }
    if (st.total < cfg->burn_in) {
        *chosen = random_active(ws, n, st.n_active, rng);
        return AB_OK;
    }
    for (size_t k = 0; k < n; k++) {
        if (ws->mask_active[k] && ws->arms[k].n < cfg->min_units &&
            (pick == n || ws->arms[k].n < ws->arms[pick].n))
            pick = k;
    }
    if (pick < n) {
        *chosen = pick;
        return AB_OK;
    }
    if (cfg->policy == BANDIT_EPS_GREEDY &&
        gsl_rng_uniform(rng) < explore_rate(cfg, st.n_active, st.total)) {
        *chosen = random_active(ws, n, st.n_active, rng);
        return AB_OK;
    }
    switch (cfg->policy) {
    case BANDIT_UNIFORM:
        pick = random_active(ws, n, st.n_active, rng);
        break;
    case BANDIT_THOMPSON:
        draw_top(ws, n, rng, &pick, &second);
        break;
    case BANDIT_TOP_TWO:
        draw_top(ws, n, rng, &first, &second);
        pick = first;
        if (st.n_active > 1 && gsl_rng_uniform(rng) >= cfg->top_two_beta) {
            size_t c = first;
            for (int tries = 0; tries < 100 && c == first; tries++)
                draw_top(ws, n, rng, &c, &second);
            pick = c != first ? c : second;
        }
        break;
    case BANDIT_EPS_GREEDY:
    case BANDIT_UCB1:
    case BANDIT_KL_UCB:
        for (size_t k = 0; k < n; k++) {
            if (!ws->mask_active[k])
                continue;
            rc = arm_score(cfg, ws, k, st.total, &s);
            if (rc != AB_OK)
                return rc;
            if (pick == n || s > best) {
                pick = k;
                best = s;
            }
        }
        break;
    }
    if (pick >= n)
        return AB_EINTERNAL;
    *chosen = pick;
    return AB_OK;
}
