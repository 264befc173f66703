/* counts.c -- two counting processes, conditional binomial on the traffic
 * share, mixture e-value (see counts.h for the model).
 *
 *   theta_k(u) = logistic(u + logit pi_k)
 *   l(u) = sum_k x_tk log(theta_k/pi_k) + x_ck log((1-theta_k)/(1-pi_k))
 *   l'(u) = sum_k x_tk - n_k theta_k,  l''(u) = -sum_k n_k theta_k (1-theta_k)
 *   E = int exp(l(u)) g(u) du
 * l is concave (a logistic log-likelihood) and g log-concave, so the
 * integrand is unimodal: find its mode by Newton's method, then integrate
 * exp(h(u) - h(mode)) with GSL QAGS over mode -/+ 40 curvature widths.
 * (Lindon & Malek 2022; Howard, Ramdas, McAuliffe & Sekhon 2021, Ann.
 * Statist. 49:1055, section 3; Ville 1939.)
 */
#include "stats/counts.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_integration.h>
#include <math.h>

#define QUAD_LIMIT 256

struct cp {
    const struct stats_count_period *p;
    size_t k;
    double tau, lognorm, shift;
    double lo, hi;             /* support of the mixing density */
};

/* log(1 + e^x) without overflow */
static double
softplus(double x)
{
    return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

/* l(u), l'(u), l''(u) */
static void
loglik(const struct cp *c, double u, double *l, double *d1, double *d2)
{
    double a = 0, b = 0, h = 0;

    for (size_t i = 0; i < c->k; i++) {
        double pi = c->p[i].share_t, eta = log(pi / (1 - pi));
        double xt = c->p[i].errors_t, xc = c->p[i].errors_c;
        double th = 1 / (1 + exp(-(u + eta)));
        /* log theta = -softplus(-(u+eta)), log pi = -softplus(-eta) */
        if (xt > 0)
            a += xt * (softplus(-eta) - softplus(-(u + eta)));
        if (xc > 0)
            a += xc * (softplus(eta) - softplus(u + eta));
        b += xt - (xt + xc) * th;
        h -= (xt + xc) * th * (1 - th);
    }
    *l = a;
    if (d1 != NULL)
        *d1 = b;
    if (d2 != NULL)
        *d2 = h;
}

/* log of the mixing density, up to the constant c->lognorm */
static double
logprior(const struct cp *c, double u)
{
    return -0.5 * (u / c->tau) * (u / c->tau);
}

static double
integrand(double u, void *arg)
{
    const struct cp *c = arg;
    double l;

    loglik(c, u, &l, NULL, NULL);
    return exp(l + logprior(c, u) - c->shift);
}

/* Each period finite, counts whole and non-negative, share in (0, 1);
 * the totals into r. AB_EINVAL (with the reason) otherwise. */
static ab_status
check_periods(const struct stats_count_period *periods, size_t k,
              struct stats_counts_result *r, enum stats_reason *why)
{
    for (size_t i = 0; i < k; i++) {
        const struct stats_count_period *p = &periods[i];
        if (!isfinite(p->errors_c) || !isfinite(p->errors_t) ||
            !isfinite(p->share_t)) {
            stats_set_reason(why, STATS_REASON_NOT_FINITE);
            return AB_EINVAL;
        }
        if (p->errors_c < 0 || p->errors_t < 0) {
            stats_set_reason(why, STATS_REASON_NEGATIVE);
            return AB_EINVAL;
        }
        if (p->errors_c != floor(p->errors_c) ||
            p->errors_t != floor(p->errors_t)) {
            stats_set_reason(why, STATS_REASON_INCONSISTENT);
            return AB_EINVAL;
        }
        if (!(p->share_t > 0 && p->share_t < 1)) {
            stats_set_reason(why, STATS_REASON_BAD_PARAMETER);
            return AB_EINVAL;
        }
        r->errors_c += p->errors_c;
        r->errors_t += p->errors_t;
    }
    return AB_OK;
}

/* Maximum likelihood log rate ratio (Newton on l; l concave), for counts
 * on both sides. */
static double
mle_log_ratio(const struct cp *c)
{
    double u, l, d1, d2;

    u = 0;
    for (int i = 0; i < 200; i++) {
        double step;
        loglik(c, u, &l, &d1, &d2);
        step = d1 / d2;
        if (!isfinite(step))
            break;
        if (step > 5)
            step = 5;
        if (step < -5)
            step = -5;
        u -= step;
        if (fabs(step) < 1e-14 * (1 + fabs(u)))
            break;
    }
    return u;
}

/* Mode of l + log g on the support (concave: Newton, clamped). */
static double
posterior_mode(const struct cp *c, double tau)
{
    double u, l, d1, d2;

    u = 0;
    for (int i = 0; i < 200; i++) {
        double g1, g2, step;
        loglik(c, u, &l, &d1, &d2);
        g1 = d1 - u / (tau * tau);
        g2 = d2 - 1 / (tau * tau);
        step = g1 / g2;
        if (step > 2)
            step = 2;
        if (step < -2)
            step = -2;
        u -= step;
        if (u < c->lo)
            u = c->lo;
        if (u > c->hi)
            u = c->hi;
        if (fabs(step) < 1e-13 * (1 + fabs(u)))
            break;
    }
    return u;
}

ab_status
stats_counts_test(const struct stats_count_period *periods, size_t k,
                  double tau, enum stats_side side,
                  struct stats_counts_result *out, enum stats_reason *why)
{
    struct cp c = {periods, k, 0, 0, 0, -INFINITY, INFINITY};
    struct stats_counts_result r = {0, 0, 0, 0, 0, 0};
    double u, l, d1, d2, hmode, width, lo, hi, val, err;
    gsl_integration_workspace w;
    double alist[QUAD_LIMIT], blist[QUAD_LIMIT], rlist[QUAD_LIMIT],
        elist[QUAD_LIMIT];
    size_t order[QUAD_LIMIT], level[QUAD_LIMIT];
    gsl_function f = {integrand, &c};
    int st;

    if (tau == 0)
        tau = STATS_COUNTS_DEFAULT_TAU;
    if (k == 0 || !(tau > 0) || !isfinite(tau)) {
        stats_set_reason(why, STATS_REASON_BAD_PARAMETER);
        return AB_EINVAL;
    }
    if (check_periods(periods, k, &r, why) != AB_OK)
        return AB_EINVAL;
    if (!isfinite(r.errors_c + r.errors_t)) {
        stats_set_reason(why, STATS_REASON_OVERFLOW);
        return AB_ENUMERIC;
    }
    c.tau = tau;
    if (side == STATS_SIDE_GREATER)
        c.lo = 0;
    else if (side == STATS_SIDE_LESS)
        c.hi = 0;
    /* log of the normalising constant of g: N(0,tau^2), doubled when
     * truncated to a half line */
    c.lognorm = -log(tau) - 0.5 * log(2 * M_PI) +
                (side == STATS_SIDE_TWO ? 0 : log(2.0));

    /* Maximum likelihood rate ratio (Newton on l; l concave). */
    if (r.errors_t == 0) {
        r.rate_ratio = 0;
    } else if (r.errors_c == 0) {
        r.rate_ratio = INFINITY;
    } else {
        r.rate_ratio = exp(mle_log_ratio(&c));
    }
    if (r.errors_c + r.errors_t == 0) {
        r.log_e_value = 0;
        r.e_value = 1;
        r.p_value = 1;
        *out = r;
        return AB_OK;
    }

    u = posterior_mode(&c, tau);
    loglik(&c, u, &l, &d1, &d2);
    hmode = -(d2 - 1 / (tau * tau));
    c.shift = l + logprior(&c, u);
    width = 40 / sqrt(hmode);
    lo = u - width;
    hi = u + width;
    if (lo < c.lo)
        lo = c.lo;
    if (hi > c.hi)
        hi = c.hi;

    w.limit = QUAD_LIMIT;
    w.size = w.nrmax = w.i = w.maximum_level = 0;
    w.alist = alist;
    w.blist = blist;
    w.rlist = rlist;
    w.elist = elist;
    w.order = order;
    w.level = level;
    st = gsl_integration_qags(&f, lo, hi, 0, 1e-12, QUAD_LIMIT, &w, &val,
                              &err);
    if (st == GSL_EROUND || st == GSL_EMAXITER)
        st = GSL_SUCCESS;
    if (st != GSL_SUCCESS || !(val > 0) || !isfinite(val)) {
        stats_set_reason(why, STATS_REASON_NO_CONVERGENCE);
        return AB_ENUMERIC;
    }
    r.log_e_value = c.shift + log(val) + c.lognorm;
    if (!isfinite(r.log_e_value)) {
        stats_set_reason(why, STATS_REASON_OVERFLOW);
        return AB_ENUMERIC;
    }
    r.e_value = exp(r.log_e_value);
    r.p_value = r.log_e_value <= 0 ? 1 : exp(-r.log_e_value);
    *out = r;
    return AB_OK;
}
