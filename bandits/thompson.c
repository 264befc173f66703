/* thompson.c -- conjugate posteriors and P(arm is best).
 *
 * Beta-Bernoulli: with s successes in n trials and a Beta(alpha, beta)
 * prior the posterior of p is Beta(alpha + s, beta + n - s).
 *
 * Normal with unknown variance (Murphy 2007, "Conjugate Bayesian analysis
 * of the Gaussian distribution", section 6): with prior NIG(mu0, kappa0,
 * a0, b0), n observations of mean xbar and S = sum (x - xbar)^2,
 *     kappa_n = kappa0 + n
 *     mu_n    = (kappa0 mu0 + n xbar) / kappa_n
 *     a_n     = a0 + n / 2
 *     b_n     = b0 + S / 2 + kappa0 n (xbar - mu0)^2 / (2 kappa_n)
 * and the marginal posterior of the mean is Student-t with nu = 2 a_n
 * degrees of freedom, location mu_n and scale sqrt(b_n / (a_n kappa_n))
 * (Murphy eq. 110).
 *
 * Probability that arm k is best (Thompson 1933; Scott 2010, "A modern
 * Bayesian look at the multi-armed bandit", eq. 4):
 *     P_k = int f_k(x) prod_{j != k} F_j(x) dx.
 * Quadrature (BANDIT_PBEST_QUAD) integrates this with the exact pdf and
 * cdf by composite 8-node Gauss-Legendre over arm k's support, split at
 * arm k's mean + {0, +-1, +-2, +-4, +-8} sd and every other arm's mean +
 * {0, +-1.5, +-4} sd, so that each step of another arm's cdf falls on
 * piece boundaries at its own scale; for Student-t the
 * support is cut at the 1e-12 and 1 - 1e-12 quantiles with pieces doubling
 * in width into the tails. Gauss-Hermite (BANDIT_PBEST_GH) replaces every
 * posterior by a normal (for a Beta, a normal for logit p with the exact
 * moments psi(a) - psi(b) and psi'(a) + psi'(b); comparisons of arms are
 * unchanged by the monotone logit) and uses
 *     P_k = pi^{-1/2} sum_i w_i prod_{j != k}
 *           Phi((m_k + sqrt2 s_k x_i - m_j) / s_j)
 * (Abramowitz and Stegun 25.4.46). Monte Carlo (BANDIT_PBEST_MC) counts
 * the argmax of one joint draw from the exact posteriors.
 */
#include "bandits/thompson.h"

#include <math.h>
#include <string.h>

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_sf_psi.h>

#include "bandits/workspace.h"

/* ------------------------------------------------------------------ */
/* posteriors                                                          */
/* ------------------------------------------------------------------ */

ab_status
bandit_posterior_make(const struct bandit_arm *arm, enum bandit_reward reward,
                      const struct bandit_prior *prior,
                      struct bandit_posterior *out)
{
    struct bandit_posterior p;
    double n = arm->n;

    if (!(n >= 0) || !isfinite(n) || !isfinite(arm->sum))
        return AB_EINVAL;
    memset(&p, 0, sizeof(p));
    p.reward = reward;
    if (reward == BANDIT_REWARD_BINARY) {
        if (!(prior->alpha > 0) || !(prior->beta > 0))
            return AB_EINVAL;
        if (arm->sum < 0 || arm->sum > n)
            return AB_EINVAL;
        p.a = prior->alpha + arm->sum;
        p.b = prior->beta + (n - arm->sum);
        p.mean = p.a / (p.a + p.b);
        p.sd = sqrt(p.a * p.b / ((p.a + p.b) * (p.a + p.b) *
                                 (p.a + p.b + 1.0)));
    } else if (reward == BANDIT_REWARD_GAUSSIAN) {
        double xbar = 0, ss = 0, kn, an, bn;
        if (!(prior->kappa0 >= 0) || !(prior->a0 > 0) || !(prior->b0 > 0) ||
            !isfinite(prior->mu0))
            return AB_EINVAL;
        if (prior->kappa0 == 0 && n == 0)
            return AB_EINVAL;
        if (!isfinite(arm->sum_sq))
            return AB_EINVAL;
        if (n > 0) {
            xbar = arm->sum / n;
            ss = arm->sum_sq - arm->sum * xbar;
            /* rounding may push a zero variance slightly negative */
            if (ss < -1e-9 * (fabs(arm->sum_sq) + 1.0))
                return AB_EINVAL;
            if (ss < 0)
                ss = 0;
        }
        kn = prior->kappa0 + n;
        an = prior->a0 + n / 2.0;
        bn = prior->b0 + ss / 2.0 +
             prior->kappa0 * n * (xbar - prior->mu0) * (xbar - prior->mu0) /
                 (2.0 * kn);
        p.loc = (prior->kappa0 * prior->mu0 + n * xbar) / kn;
        p.nu = 2.0 * an;
        p.scale = sqrt(bn / (an * kn));
        p.mean = p.loc;
        /* a t with nu <= 2 has no variance: use the scale for the normal
         * approximation, which is then only a rough one */
        p.sd = p.nu > 2.0 ? p.scale * sqrt(p.nu / (p.nu - 2.0)) : p.scale;
    } else {
        return AB_EINVAL;
    }
    if (!isfinite(p.mean) || !isfinite(p.sd) || !(p.sd > 0))
        return AB_EINVAL;
    *out = p;
    return AB_OK;
}

double
bandit_posterior_draw(const struct bandit_posterior *post, gsl_rng *rng)
{
    if (post->reward == BANDIT_REWARD_BINARY)
        return gsl_ran_beta(rng, post->a, post->b);
    return post->loc + post->scale * gsl_ran_tdist(rng, post->nu);
}

static double
post_pdf(const struct bandit_posterior *p, double x)
{
    if (p->reward == BANDIT_REWARD_BINARY)
        return gsl_ran_beta_pdf(x, p->a, p->b);
    return gsl_ran_tdist_pdf((x - p->loc) / p->scale, p->nu) / p->scale;
}

static double
post_cdf(const struct bandit_posterior *p, double x)
{
    if (p->reward == BANDIT_REWARD_BINARY) {
        if (x <= 0)
            return 0;
        if (x >= 1)
            return 1;
        return gsl_cdf_beta_P(x, p->a, p->b);
    }
    return gsl_cdf_tdist_P((x - p->loc) / p->scale, p->nu);
}

/* ------------------------------------------------------------------ */
/* P(best)                                                             */
/* ------------------------------------------------------------------ */

static ab_status
pbest_mc(const struct bandit_posterior *post, const unsigned char *mask,
         size_t n, size_t draws, gsl_rng *rng, double *counts)
{
    if (rng == NULL || draws == 0)
        return AB_EINVAL;
    for (size_t k = 0; k < n; k++)
        counts[k] = 0;
    for (size_t d = 0; d < draws; d++) {
        size_t best = n;
        double best_x = -INFINITY;
        for (size_t k = 0; k < n; k++) {
            double x;
            if (!mask[k])
                continue;
            x = bandit_posterior_draw(&post[k], rng);
            if (best == n || x > best_x) {
                best = k;
                best_x = x;
            }
        }
        counts[best] += 1.0;
    }
    for (size_t k = 0; k < n; k++)
        counts[k] /= (double)draws;
    return AB_OK;
}

static void
sort_doubles(double *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        double v = a[i];
        size_t j = i;
        while (j > 0 && a[j - 1] > v) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = v;
    }
}

/* int f_k(x) prod_{j != k} F_j(x) dx over [lo, hi] split at 'breaks'. */
static double
quad_one(const struct bandit_posterior *post, const unsigned char *mask,
         size_t n, size_t k, double *breaks, size_t max_breaks,
         gsl_integration_fixed_workspace *gl)
{
    const struct bandit_posterior *pk = &post[k];
    /* arm k's own density is resolved finely, the other arms' cdf steps
     * more coarsely */
    static const double own[] = { 0, -1, 1, -2, 2, -4, 4, -8, 8 };
    static const double other[] = { 0, -1.5, 1.5, -4, 4 };
    double lo, hi, total = 0;
    size_t nb = 0;
    const double *nodes = gsl_integration_fixed_nodes(gl);
    const double *wts = gsl_integration_fixed_weights(gl);
    size_t nn = gsl_integration_fixed_n(gl);

    if (pk->reward == BANDIT_REWARD_BINARY) {
        /* a Beta tail beyond 40 sd holds less than 1e-17 */
        lo = fmax(0.0, pk->mean - 40.0 * pk->sd);
        hi = fmin(1.0, pk->mean + 40.0 * pk->sd);
    } else {
        double t = gsl_cdf_tdist_Qinv(1e-12, pk->nu);
        lo = pk->loc - t * pk->scale;
        hi = pk->loc + t * pk->scale;
        /* heavy tails: pieces doubling in width, in units of the scale */
        for (double c = 16.0; c < t && nb + 2 < max_breaks / 2; c *= 2.0) {
            breaks[nb++] = pk->loc - c * pk->scale;
            breaks[nb++] = pk->loc + c * pk->scale;
        }
    }
    breaks[nb++] = lo;
    breaks[nb++] = hi;
    for (size_t j = 0; j < n; j++) {
        if (!mask[j])
            continue;
        const double *cs = j == k ? own : other;
        size_t ncs = j == k ? AB_ARRAY_LEN(own) : AB_ARRAY_LEN(other);
        for (size_t c = 0; c < ncs && nb < max_breaks; c++) {
            double x = post[j].mean + cs[c] * post[j].sd;
            if (x > lo && x < hi)
                breaks[nb++] = x;
        }
    }
    sort_doubles(breaks, nb);
    for (size_t i = 0; i + 1 < nb; i++) {
        double a = breaks[i], b = breaks[i + 1];
        double mid = 0.5 * (a + b), half = 0.5 * (b - a);
        if (!(half > 0) || a < lo || b > hi)
            continue;
        for (size_t q = 0; q < nn; q++) {
            double x = mid + half * nodes[q];
            double f = post_pdf(pk, x);
            if (!(f > 0))
                continue;
            for (size_t j = 0; j < n && f > 0; j++) {
                const struct bandit_posterior *pj = &post[j];
                if (j == k || !mask[j])
                    continue;
                /* a Beta holds < 1e-17 beyond 40 sd: skip the cdf there */
                if (pj->reward == BANDIT_REWARD_BINARY &&
                    x >= pj->mean + 40.0 * pj->sd)
                    continue;
                if (pj->reward == BANDIT_REWARD_BINARY &&
                    x <= pj->mean - 40.0 * pj->sd) {
                    f = 0;
                    break;
                }
                f *= post_cdf(pj, x);
            }
            total += wts[q] * half * f;
        }
    }
    return total;
}

/* The normal that Gauss-Hermite uses for one posterior: for a Beta, the
 * exact mean and sd of logit(p) (much closer to normal than p itself, and
 * the order of arms is the same on both scales); for a t, its mean and sd.
 * Written into ms[0], ms[1]; AB_ENUMERIC if not finite. */
static ab_status
gh_normal(const struct bandit_posterior *p, double *ms)
{
    if (p->reward == BANDIT_REWARD_BINARY) {
        ms[0] = gsl_sf_psi(p->a) - gsl_sf_psi(p->b);
        ms[1] = sqrt(gsl_sf_psi_1(p->a) + gsl_sf_psi_1(p->b));
    } else {
        ms[0] = p->mean;
        ms[1] = p->sd;
    }
    return isfinite(ms[0]) && isfinite(ms[1]) && ms[1] > 0 ? AB_OK
                                                            : AB_ENUMERIC;
}

/* ms[2j], ms[2j+1]: arm j's normal from gh_normal() */
static double
gh_one(const double *ms, const unsigned char *mask, size_t n, size_t k,
       gsl_integration_fixed_workspace *gh)
{
    const double *nodes = gsl_integration_fixed_nodes(gh);
    const double *wts = gsl_integration_fixed_weights(gh);
    size_t nn = gsl_integration_fixed_n(gh);
    double total = 0;

    for (size_t q = 0; q < nn; q++) {
        double x = ms[2 * k] + M_SQRT2 * ms[2 * k + 1] * nodes[q];
        double f = 1.0;
        for (size_t j = 0; j < n && f > 0; j++) {
            if (j != k && mask[j])
                f *= gsl_cdf_ugaussian_P((x - ms[2 * j]) / ms[2 * j + 1]);
        }
        total += wts[q] * f;
    }
    return total / sqrt(M_PI);
}

ab_status
bandit_pbest(const struct bandit_posterior *post, const unsigned char *mask,
             size_t n, enum bandit_pbest_method method, size_t draws,
             gsl_rng *rng, struct bandit_workspace *ws, double *p_best)
{
    double *r = ws->counts, sum = 0;
    size_t n_in = 0, only = 0;
    ab_status rc;

    if (n == 0 || n > ws->max_arms)
        return AB_EINVAL;
    for (size_t k = 0; k < n; k++) {
        if (mask[k]) {
            n_in++;
            only = k;
        }
    }
    if (n_in == 0)
        return AB_EINVAL;
    if (n_in == 1) {
        for (size_t k = 0; k < n; k++)
            p_best[k] = k == only ? 1.0 : 0.0;
        return AB_OK;
    }
    switch (method) {
    case BANDIT_PBEST_MC:
        rc = pbest_mc(post, mask, n, draws, rng, r);
        if (rc != AB_OK)
            return rc;
        break;
    case BANDIT_PBEST_QUAD:
    case BANDIT_PBEST_GH:
        if (method == BANDIT_PBEST_GH) {
            for (size_t k = 0; k < n; k++) {
                if (!mask[k])
                    continue;
                rc = gh_normal(&post[k], &ws->breaks[2 * k]);
                if (rc != AB_OK)
                    return rc;
            }
        }
        for (size_t k = 0; k < n; k++) {
            if (!mask[k]) {
                r[k] = 0;
                continue;
            }
            if (method == BANDIT_PBEST_QUAD)
                r[k] = quad_one(post, mask, n, k, ws->breaks,
                                BANDIT_MAX_BREAKS(ws->max_arms), ws->gl);
            else
                r[k] = gh_one(ws->breaks, mask, n, k, ws->gh);
            if (!isfinite(r[k]))
                return AB_ENUMERIC;
            if (r[k] < 0)
                r[k] = 0;
        }
        break;
    default:
        return AB_EINVAL;
    }
    for (size_t k = 0; k < n; k++)
        sum += r[k];
    if (!(sum > 0) || !isfinite(sum))
        return AB_ENUMERIC;
    /* the rules integrate each P_k to within ~1e-7; renormalise so the
     * probabilities are a distribution */
    for (size_t k = 0; k < n; k++)
        p_best[k] = r[k] / sum;
    return AB_OK;
}
