/* bayes.c -- Bayesian comparisons: normal model on the effect, and the
 * Beta-Binomial model for conversion rates.
 *
 * Normal model (Gelman et al., Bayesian Data Analysis, 3rd ed., 2.5):
 *   est | effect ~ N(effect, se^2), effect ~ N(m0, s0^2) (or flat)
 *   effect | est ~ N(mu, s^2), 1/s^2 = 1/se^2 + 1/s0^2,
 *   mu = s^2 (est/se^2 + m0/s0^2)
 *   P(effect > 0) = Phi(mu/s);  E[max(0, X)] = mu Phi(mu/s) + s phi(mu/s).
 *
 * Beta-Binomial (Gelman et al. 2.4; Stucchio 2015, "Bayesian A/B testing
 * at VWO"; Miller 2015, "Formulas for Bayesian A/B testing"):
 *   p ~ Beta(a0 + x, b0 + n - x) per arm, independent
 *   P(p_t > p_c)        = int_0^1 f_t(y) F_c(y) dy
 *   E[max(0, p_c - p_t)] = int_0^1 f_t(y) (m_c Q_c+(y) - y Q_c(y)) dy,
 *                          Q_c+ the upper tail of Beta(a_c + 1, b_c)
 *   quantiles of p_t - p_c and p_t / p_c - 1 by the Illinois method
 *   (stats/root.h) on
 *   int f_c(x) F_t(x + d) dx and int f_c(x) F_t((1 + d) x) dx.
 * Integrals: GSL QAG, 31-point Gauss-Kronrod (Piessens et al., QUADPACK,
 * 1983) with a workspace on the stack, over the window where the
 * integrating density lives (mean -/+ 40 sd, clipped to [0, 1]: a Beta
 * with a small parameter has an exponential, not a Gaussian, tail, so 12 sd
 * would drop ~1e-8 of the mass of Beta(2, 56)), relative error 1e-11.
 */
#include "stats/bayes.h"

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_integration.h>
#include <gsl/gsl_randist.h>
#include <math.h>

#include "stats/prop.h"
#include "stats/root.h"

/* ---- normal model -------------------------------------------------- */

/* E[max(0, X)] for X ~ N(m, s^2). */
static double
positive_part(double m, double s)
{
    double z = m / s;
    return m * gsl_cdf_ugaussian_P(z) + s * gsl_ran_ugaussian_pdf(z);
}

static void
interval_normal(double m, double s, enum stats_side side, double alpha,
                double *lo, double *hi)
{
    if (side == STATS_SIDE_TWO) {
        double q = gsl_cdf_ugaussian_Pinv(1 - alpha / 2);
        *lo = m - q * s;
        *hi = m + q * s;
    } else if (side == STATS_SIDE_GREATER) {
        *lo = m - gsl_cdf_ugaussian_Pinv(1 - alpha) * s;
        *hi = INFINITY;
    } else {
        *lo = -INFINITY;
        *hi = m + gsl_cdf_ugaussian_Pinv(1 - alpha) * s;
    }
}

ab_status
stats_bayes_normal(double est, double se,
                   const struct stats_bayes_prior *prior,
                   enum stats_direction dir, enum stats_side side,
                   double alpha, struct stats_bayes_result *out,
                   enum stats_reason *why)
{
    struct stats_bayes_result r;
    double prec, m, s, sgn = dir == STATS_DIR_DECREASE ? -1 : 1;

    if (!isfinite(est) || !isfinite(se) ||
        (prior != NULL && (!isfinite(prior->mean) || !isfinite(prior->sd)))) {
        stats_set_reason(why, STATS_REASON_NOT_FINITE);
        return AB_EINVAL;
    }
    if (!(alpha > 0 && alpha < 1) || se < 0 ||
        (prior != NULL && !(prior->sd > 0))) {
        stats_set_reason(why, STATS_REASON_BAD_PARAMETER);
        return AB_EINVAL;
    }
    if (se == 0) {
        stats_set_reason(why, STATS_REASON_ZERO_VARIANCE);
        return AB_ENUMERIC;
    }
    if (prior == NULL) {
        m = est;
        s = se;
    } else {
        double wl = 1 / (se * se), wp = 1 / (prior->sd * prior->sd);
        prec = wl + wp;
        m = (est * wl + prior->mean * wp) / prec;
        s = 1 / sqrt(prec);
    }
    if (!isfinite(m) || !(s > 0)) {
        stats_set_reason(why, STATS_REASON_OVERFLOW);
        return AB_ENUMERIC;
    }
    r.post_mean = m;
    r.post_sd = s;
    interval_normal(m, s, side, alpha, &r.ci_low, &r.ci_high);
    r.chance_to_win = gsl_cdf_ugaussian_P(sgn * m / s);
    r.risk_control = positive_part(sgn * m, s);
    r.risk_treatment = positive_part(-sgn * m, s);
    *out = r;
    return AB_OK;
}

/* ---- Beta-Binomial ------------------------------------------------- */

#define QUAD_LIMIT 256

struct quad {
    gsl_integration_workspace w;
    double alist[QUAD_LIMIT], blist[QUAD_LIMIT];
    double rlist[QUAD_LIMIT], elist[QUAD_LIMIT];
    size_t order[QUAD_LIMIT], level[QUAD_LIMIT];
};

static void
quad_init(struct quad *q)
{
    q->w.limit = QUAD_LIMIT;
    q->w.size = 0;
    q->w.nrmax = 0;
    q->w.i = 0;
    q->w.maximum_level = 0;
    q->w.alist = q->alist;
    q->w.blist = q->blist;
    q->w.rlist = q->rlist;
    q->w.elist = q->elist;
    q->w.order = q->order;
    q->w.level = q->level;
}

struct beta2 {
    double ac, bc, at, bt;   /* posterior parameters */
    double mc, mt;           /* posterior means */
    double d;                /* shift for the quantile integrals */
    int which;               /* integrand selector */
};

enum { I_WIN, I_LOSE, I_LOSS_T, I_LOSS_C, I_CDF_DIFF, I_CDF_RATIO };

static double
integrand(double y, void *arg)
{
    const struct beta2 *b = arg;
    double v;

    switch (b->which) {
    case I_WIN:     /* f_t(y) F_c(y): P(p_c < p_t) */
        return gsl_ran_beta_pdf(y, b->at, b->bt) *
               gsl_cdf_beta_P(y, b->ac, b->bc);
    case I_LOSE:    /* f_t(y) Q_c(y): P(p_c > p_t) */
        return gsl_ran_beta_pdf(y, b->at, b->bt) *
               gsl_cdf_beta_Q(y, b->ac, b->bc);
    case I_LOSS_T:  /* f_t(y) E[(p_c - y)^+] */
        v = b->mc * gsl_cdf_beta_Q(y, b->ac + 1, b->bc) -
            y * gsl_cdf_beta_Q(y, b->ac, b->bc);
        return v > 0 ? gsl_ran_beta_pdf(y, b->at, b->bt) * v : 0;
    case I_LOSS_C:  /* f_c(y) E[(p_t - y)^+] */
        v = b->mt * gsl_cdf_beta_Q(y, b->at + 1, b->bt) -
            y * gsl_cdf_beta_Q(y, b->at, b->bt);
        return v > 0 ? gsl_ran_beta_pdf(y, b->ac, b->bc) * v : 0;
    case I_CDF_DIFF: /* f_c(x) F_t(x + d) */
        v = y + b->d;
        if (v <= 0)
            return 0;
        return gsl_ran_beta_pdf(y, b->ac, b->bc) *
               (v >= 1 ? 1 : gsl_cdf_beta_P(v, b->at, b->bt));
    case I_CDF_RATIO: /* f_c(x) F_t((1 + d) x) */
    default:
        v = (1 + b->d) * y;
        if (v <= 0)
            return 0;
        return gsl_ran_beta_pdf(y, b->ac, b->bc) *
               (v >= 1 ? 1 : gsl_cdf_beta_P(v, b->at, b->bt));
    }
}

static double
beta_sd(double a, double b)
{
    return sqrt(a * b / ((a + b) * (a + b) * (a + b + 1)));
}

/* Integrate 'which' against the density of the arm (a, b) over the window
 * where that density lives. */
static int
integrate(struct beta2 *b, int which, double a, double bb, double *val)
{
    struct quad q;
    gsl_function f = { integrand, b };
    double m = a / (a + bb), s = beta_sd(a, bb), lo, hi, err;
    int st;

    lo = m - 40 * s;
    hi = m + 40 * s;
    if (lo < 0)
        lo = 0;
    if (hi > 1)
        hi = 1;
    b->which = which;
    quad_init(&q);
    st = gsl_integration_qag(&f, lo, hi, 1e-16, 1e-11, QUAD_LIMIT,
                             GSL_INTEG_GAUSS61, &q.w, val, &err);
    if (st == GSL_EROUND || st == GSL_EMAXITER)
        st = GSL_SUCCESS;   /* accuracy limited by doubles: keep value */
    return st == GSL_SUCCESS && isfinite(*val) ? 0 : -1;
}

/* P(effect <= d) minus the target probability, for stats/root.h. */
struct qroot {
    struct beta2 *b;
    int which;
    double target;
    int failed;
};

static double
cdf_minus(double d, void *arg)
{
    struct qroot *r = arg;
    double v;

    r->b->d = d;
    if (integrate(r->b, r->which, r->b->ac, r->b->bc, &v) != 0) {
        r->failed = 1;
        return 0;
    }
    return v - r->target;
}

static double
cdf_or_nan(double d, void *arg)
{
    double v = cdf_minus(d, arg);
    return ((struct qroot *)arg)->failed ? NAN : v;
}

static int
effect_quantile(struct beta2 *b, int which, double p, double mean, double sd,
                double *out)
{
    struct qroot r = { b, which, p, 0 };
    double lo, hi, flo = 0, fhi = 0, floor_ = -1;
    double ceil_ = which == I_CDF_DIFF ? 1 : INFINITY;

    /* start from the normal approximation of the quantile, a narrow
     * bracket: the Illinois steps (stats/root.h) then converge in a few
     * evaluations */
    {
        double z = gsl_cdf_ugaussian_Pinv(p);
        lo = mean + (z - 0.5) * sd;
        hi = mean + (z + 0.5) * sd;
    }
    if (lo < floor_)
        lo = floor_;
    if (hi > ceil_)
        hi = ceil_;
    /* widen until the root is bracketed */
    for (int i = 0; i < 60; i++) {
        flo = cdf_minus(lo, &r);
        fhi = cdf_minus(hi, &r);
        if (r.failed)
            return -1;
        if (flo <= 0 && fhi >= 0)
            break;
        if (flo > 0)
            lo = fmax(floor_, lo - (hi - lo) * (1 << (i < 20 ? i : 20)));
        if (fhi < 0)
            hi = fmin(ceil_, hi + (hi - lo) * (1 << (i < 20 ? i : 20)));
    }
    if (flo > 0 || fhi < 0)
        return -1;
    /* the integrals are good to ~1e-11 relative: ask no more of the root
     * than its bracket or its residual can tell */
    const struct stats_root_tol tol = {.x_abs = 1e-16,
                                       .x_rel = 1e-12,
                                       .f_abs = 1e-14 * p,
                                       .max_iter = 200,
                                       .strict = true};
    return stats_root_illinois(cdf_or_nan, &r, lo, hi, flo, fhi, &tol, out) ==
                   AB_OK
               ? 0
               : -1;
}

ab_status
stats_bayes_beta(double x_c, double n_c, double x_t, double n_t, double a0,
                 double b0, enum stats_effect effect,
                 enum stats_direction dir, enum stats_side side, double alpha,
                 struct stats_bayes_result *out, enum stats_reason *why)
{
    struct stats_prop pc = { x_c, n_c }, pt = { x_t, n_t };
    struct stats_bayes_result r;
    struct beta2 b;
    double win, lose, loss_t, loss_c, vc, vt, lo_p, hi_p;
    int which;
    ab_status rc;

    rc = stats_prop_check(&pc, why);
    if (rc != AB_OK)
        return rc;
    rc = stats_prop_check(&pt, why);
    if (rc != AB_OK)
        return rc;
    if (!isfinite(a0) || !isfinite(b0) || !(a0 > 0) || !(b0 > 0) ||
        !(alpha > 0 && alpha < 1)) {
        stats_set_reason(why, STATS_REASON_BAD_PARAMETER);
        return AB_EINVAL;
    }
    b.ac = a0 + x_c;
    b.bc = b0 + n_c - x_c;
    b.at = a0 + x_t;
    b.bt = b0 + n_t - x_t;
    b.mc = b.ac / (b.ac + b.bc);
    b.mt = b.at / (b.at + b.bt);
    b.d = 0;
    vc = beta_sd(b.ac, b.bc);
    vt = beta_sd(b.at, b.bt);

    if (effect == STATS_EFFECT_RELATIVE) {
        double einv, einv2, e2t;
        if (!(b.ac > 2)) {
            stats_set_reason(why, STATS_REASON_ZERO_CONTROL_MEAN);
            return AB_ENUMERIC;
        }
        einv = (b.ac + b.bc - 1) / (b.ac - 1);
        einv2 = einv * (b.ac + b.bc - 2) / (b.ac - 2);
        e2t = b.mt * (b.at + 1) / (b.at + b.bt + 1);
        r.post_mean = b.mt * einv - 1;
        r.post_sd = sqrt(fmax(0, e2t * einv2 - b.mt * b.mt * einv * einv));
        which = I_CDF_RATIO;
    } else {
        r.post_mean = b.mt - b.mc;
        r.post_sd = sqrt(vc * vc + vt * vt);
        which = I_CDF_DIFF;
    }

    /* Integrate the smaller tail, derive the other: keeps relative
     * precision of a small chance to win. */
    if (b.mt >= b.mc) {
        if (integrate(&b, I_LOSE, b.at, b.bt, &lose) != 0)
            goto fail;
        win = 1 - lose;
    } else {
        if (integrate(&b, I_WIN, b.at, b.bt, &win) != 0)
            goto fail;
        lose = 1 - win;
    }
    if (integrate(&b, I_LOSS_T, b.at, b.bt, &loss_t) != 0 ||
        integrate(&b, I_LOSS_C, b.ac, b.bc, &loss_c) != 0)
        goto fail;
    /* loss_t = E[(p_c - p_t)^+], loss_c = E[(p_t - p_c)^+] */
    if (dir == STATS_DIR_DECREASE) {
        r.chance_to_win = lose;
        r.risk_treatment = loss_c;
        r.risk_control = loss_t;
    } else {
        r.chance_to_win = win;
        r.risk_treatment = loss_t;
        r.risk_control = loss_c;
    }

    lo_p = side == STATS_SIDE_TWO ? alpha / 2 : alpha;
    hi_p = side == STATS_SIDE_TWO ? 1 - alpha / 2 : 1 - alpha;
    r.ci_low = -INFINITY;
    r.ci_high = INFINITY;
    if (side != STATS_SIDE_LESS &&
        effect_quantile(&b, which, lo_p, r.post_mean, r.post_sd,
                        &r.ci_low) != 0)
        goto fail;
    if (side != STATS_SIDE_GREATER &&
        effect_quantile(&b, which, hi_p, r.post_mean, r.post_sd,
                        &r.ci_high) != 0)
        goto fail;
    if (!isfinite(r.post_mean) || !isfinite(r.post_sd) ||
        !isfinite(r.chance_to_win)) {
        stats_set_reason(why, STATS_REASON_OVERFLOW);
        return AB_ENUMERIC;
    }
    *out = r;
    return AB_OK;
fail:
    stats_set_reason(why, STATS_REASON_NO_CONVERGENCE);
    return AB_ENUMERIC;
}
