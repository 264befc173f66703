/* msprt.c -- the normal-mixture SPRT / asymptotic confidence sequence for
 * the difference (absolute or relative) between two arms.
 *
 * With estimate d, its estimated variance V, null value d0, z = (d - d0) /
 * sqrt(V), effective units per arm t = s2 / V (s2 = V at one unit per arm)
 * and mixing variance tau^2 = rho2 s2, write r = rho2 t = tau^2 / V. The
 * Gaussian likelihood ratio of effect d0 + l against d0 is
 * exp(l S - l^2 / (2 V)) with S = (d - d0) / V; mixing l ~ N(0, tau^2)
 * gives (Robbins 1970; Johari, Pekelis & Walsh 2017, eq. (7))
 *     LR2 = (1 + r)^(-1/2) exp(z^2 r / (2 (1 + r))),
 * and mixing over the half-normal l >= 0 (Howard, Ramdas, McAuliffe &
 * Sekhon 2021, Prop. 6, one-sided normal mixture) gives
 *     LR1 = 2 Phi(z sqrt(r / (1 + r))) (1 + r)^(-1/2)
 *           exp(z^2 r / (2 (1 + r))).
 * Both are nonnegative martingales under the null (asymptotically, with
 * V estimated; Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas 2023), so by
 * Ville's inequality P(exists n: LR_n >= 1/alpha) <= alpha: p = min(1,
 * 1/LR) is an always-valid p-value, and {d0 : LR(d0) < 1/alpha} an
 * always-valid interval. Two-sided it is the asymptotic confidence sequence
 *     d +- sqrt(V) sqrt(2 (1 + r) / r (ln(1/alpha) + ln(1 + r) / 2)).
 * rho2 = (-2 ln alpha + ln(1 - 2 ln alpha)) / n_star minimises the width
 * at t = n_star (Waudby-Smith et al. 2023, sec. 3.2). Relative effect:
 * d = m_t / m_c - 1, V = v_t / (n_t m_c^2) + m_t^2 v_c / (n_c m_c^4)
 * (delta method), s2 likewise with n = 1.
 */
#include "stats/msprt.h"

#include <math.h>

#include <gsl/gsl_sf_erf.h>

void
stats_msprt_state_init(struct stats_msprt_state *st)
{
    st->n_looks = 0;
    st->p_abs = 1;
    st->abs_low = -INFINITY;
    st->abs_high = INFINITY;
    st->p_rel = 1;
    st->rel_low = -INFINITY;
    st->rel_high = INFINITY;
}

ab_status
stats_msprt_rho2(double alpha, double n_star, double *rho2,
                 enum stats_reason *why)
{
    double l;

    if (isnan(alpha) || isnan(n_star)) {
        stats_set_reason(why, STATS_REASON_NOT_FINITE);
        return AB_EINVAL;
    }
    if (!(alpha > 0 && alpha <= 0.5) || !(n_star > 0) || isinf(n_star)) {
        stats_set_reason(why, STATS_REASON_BAD_PARAMETER);
        return AB_EINVAL;
    }
    l = -2 * log(alpha);
    *rho2 = (l + log1p(l)) / n_star;
    return AB_OK;
}

/* log Phi(x), accurate far into the lower tail. */
static double
log_norm_p(double x)
{
    if (x > -5)
        return log(0.5 * erfc(-x * M_SQRT1_2));
    return gsl_sf_log_erfc(-x * M_SQRT1_2) - M_LN2;
}

/* log LR for z >= or < 0 on the scale where large z favours H1. */
static double
log_lr_of(double z, double r, enum stats_side side)
{
    double k = r / (1 + r);
    double v = -0.5 * log1p(r) + 0.5 * z * z * k;

    if (side == STATS_SIDE_TWO)
        return v;
    return v + M_LN2 + log_norm_p(z * sqrt(k));
}

ab_status
stats_msprt_log_lr(double z, double r, enum stats_side side, double *log_lr,
                   enum stats_reason *why)
{
    if (!isfinite(z) || isnan(r)) {
        stats_set_reason(why, STATS_REASON_NOT_FINITE);
        return AB_EINVAL;
    }
    if (!(r > 0) || isinf(r) ||
        (side != STATS_SIDE_TWO && side != STATS_SIDE_GREATER &&
         side != STATS_SIDE_LESS)) {
        stats_set_reason(why, STATS_REASON_BAD_PARAMETER);
        return AB_EINVAL;
    }
    *log_lr = log_lr_of(side == STATS_SIDE_LESS ? -z : z, r, side);
    return AB_OK;
}

static double
z_crit_two(double r, double alpha)
{
    return sqrt(2 * (1 + r) / r * (-log(alpha) + 0.5 * log1p(r)));
}

ab_status
stats_msprt_z_crit(double r, double alpha, enum stats_side side,
                   double *z_crit, enum stats_reason *why)
{
    double lo, hi, target, k, z;

    if (isnan(r) || isnan(alpha)) {
        stats_set_reason(why, STATS_REASON_NOT_FINITE);
        return AB_EINVAL;
    }
    if (!(r > 0) || isinf(r) || !(alpha > 0 && alpha <= 0.5) ||
        (side != STATS_SIDE_TWO && side != STATS_SIDE_GREATER &&
         side != STATS_SIDE_LESS)) {
        stats_set_reason(why, STATS_REASON_BAD_PARAMETER);
        return AB_EINVAL;
    }
    if (side == STATS_SIDE_TWO) {
        *z_crit = z_crit_two(r, alpha);
        return AB_OK;
    }
    /* LR2 <= LR1 <= 2 LR2 for z >= 0 brackets the root; Newton steps
     * inside the bracket, bisection when a step leaves it. */
    lo = z_crit_two(r, 2 * alpha);
    hi = z_crit_two(r, alpha);
    target = -log(alpha);
    k = r / (1 + r);
    z = hi;
    for (int it = 0; it < 200; it++) {
        double g = log_lr_of(z, r, side) - target, dg, y, next;
        if (g == 0)
            break;
        if (g > 0)
            hi = z;
        else
            lo = z;
        y = z * sqrt(k);
        dg = z * k + sqrt(k) * exp(-0.5 * y * y - 0.5 * log(2 * M_PI) -
                                   log_norm_p(y));
        next = z - g / dg;
        if (!(next > lo && next < hi))
            next = 0.5 * (lo + hi);
        if (fabs(next - z) <= 1e-15 * z || hi - lo <= 1e-15 * hi) {
            z = next;
            break;
        }
        z = next;
    }
    if (!isfinite(z)) {
        stats_set_reason(why, STATS_REASON_NO_CONVERGENCE);
        return AB_ENUMERIC;
    }
    *z_crit = z;
    return AB_OK;
}

/* Fill e for estimate d with variance v, per-pair variance s2. */
static ab_status
effect_fill(double d, double v, double s2, double d0, double rho2,
            const struct stats_msprt_opts *o, struct stats_msprt_effect *e,
            double *t_eff)
{
    double se = sqrt(v), t = s2 / v, r = rho2 * t, z, zc, llr;
    enum stats_side side = o->side;
    ab_status rc;

    z = (d - d0) / se;
    if (!isfinite(z) || !isfinite(r) || !(r > 0))
        return AB_ENUMERIC;
    rc = stats_msprt_z_crit(r, o->alpha, side, &zc, NULL);
    if (rc != AB_OK)
        return AB_ENUMERIC;
    llr = log_lr_of(side == STATS_SIDE_LESS ? -z : z, r, side);
    e->estimate = d;
    e->se = se;
    e->null_value = d0;
    e->z = z;
    e->log_lr = llr;
    e->p_value = llr <= 0 ? 1 : exp(-llr);
    e->ci_low = side == STATS_SIDE_LESS ? -INFINITY : d - zc * se;
    e->ci_high = side == STATS_SIDE_GREATER ? INFINITY : d + zc * se;
    *t_eff = t;
    return AB_OK;
}

static int
summary_bad(const struct stats_summary *s, enum stats_reason *why)
{
    if (!isfinite(s->n) || !isfinite(s->mean) || !isfinite(s->var)) {
        *why = STATS_REASON_NOT_FINITE;
        return AB_EINVAL;
    }
    if (s->n < 0 || s->var < 0) {
        *why = STATS_REASON_NEGATIVE;
        return AB_EINVAL;
    }
    if (s->n <= 1) {
        *why = STATS_REASON_FEW_UNITS;
        return AB_ENUMERIC;
    }
    return AB_OK;
}

static ab_status
opts_check(const struct stats_msprt_opts *o, enum stats_reason *why)
{
    if (isnan(o->alpha) || isnan(o->n_star) || !isfinite(o->margin_abs) ||
        !isfinite(o->margin_rel)) {
        *why = STATS_REASON_NOT_FINITE;
        return AB_EINVAL;
    }
    if (!(o->alpha > 0 && o->alpha <= 0.5) || o->n_star < 0 ||
        isinf(o->n_star) || o->margin_abs < 0 || o->margin_rel < 0 ||
        (o->side != STATS_SIDE_TWO && o->side != STATS_SIDE_GREATER &&
         o->side != STATS_SIDE_LESS) ||
        (o->side == STATS_SIDE_TWO &&
         (o->margin_abs != 0 || o->margin_rel != 0))) {
        *why = STATS_REASON_BAD_PARAMETER;
        return AB_EINVAL;
    }
    return AB_OK;
}

static void
fold(struct stats_msprt_effect *e, double *p, double *lo, double *hi,
     double alpha)
{
    *p = fmin(*p, e->p_value);
    *lo = fmax(*lo, e->ci_low);
    *hi = fmin(*hi, e->ci_high);
    e->p_running = *p;
    e->ci_low_running = *lo;
    e->ci_high_running = *hi;
    e->reject = *p <= alpha;
}

ab_status
stats_msprt_test(const struct stats_summary *c, const struct stats_summary *t,
                 const struct stats_msprt_opts *opts,
                 struct stats_msprt_state *state,
                 struct stats_msprt_result *out, enum stats_reason *why)
{
    struct stats_msprt_result res = {0};
    struct stats_msprt_state st;
    enum stats_reason w = STATS_REASON_NONE;
    double n_star, rho2, v, s2, d0, sign, t_rel;
    ab_status rc;

    rc = opts_check(opts, &w);
    if (rc == AB_OK)
        rc = summary_bad(c, &w);
    if (rc == AB_OK)
        rc = summary_bad(t, &w);
    if (rc != AB_OK)
        goto fail;
    n_star = opts->n_star == 0 ? STATS_MSPRT_DEFAULT_N_STAR : opts->n_star;
    (void)stats_msprt_rho2(opts->alpha, n_star, &rho2, NULL);
    res.rho2 = rho2;

    /* GREATER: H0 effect <= -margin; LESS: H0 effect >= +margin */
    sign = opts->side == STATS_SIDE_GREATER ? -1
           : opts->side == STATS_SIDE_LESS  ? 1
                                            : 0;
    v = c->var / c->n + t->var / t->n;
    s2 = c->var + t->var;
    if (!isfinite(v) || !isfinite(s2)) {
        w = STATS_REASON_OVERFLOW;
        rc = AB_ENUMERIC;
        goto fail;
    }
    if (!(v > 0)) {
        w = STATS_REASON_ZERO_VARIANCE;
        rc = AB_ENUMERIC;
        goto fail;
    }
    d0 = sign * opts->margin_abs;
    rc = effect_fill(t->mean - c->mean, v, s2, d0, rho2, opts, &res.abs,
                     &res.t_eff);
    if (rc != AB_OK) {
        w = STATS_REASON_OVERFLOW;
        goto fail;
    }

    res.has_rel = 0;
    res.rel_why = STATS_REASON_NONE;
    if (c->mean == 0) {
        res.rel_why = STATS_REASON_ZERO_CONTROL_MEAN;
    } else {
        double mc2 = c->mean * c->mean, q = t->mean / c->mean;
        double vr = t->var / (t->n * mc2) + q * q * c->var / (c->n * mc2);
        double s2r = t->var / mc2 + q * q * c->var / mc2;
        if (!isfinite(vr) || !isfinite(s2r) || !isfinite(q))
            res.rel_why = STATS_REASON_OVERFLOW;
        else if (!(vr > 0))
            res.rel_why = STATS_REASON_ZERO_VARIANCE;
        else if (effect_fill(q - 1, vr, s2r, sign * opts->margin_rel, rho2,
                             opts, &res.rel, &t_rel) != AB_OK)
            res.rel_why = STATS_REASON_OVERFLOW;
        else
            res.has_rel = 1;
        if (!res.has_rel)
            res.rel = (struct stats_msprt_effect){0};
    }

    if (state != NULL)
        st = *state;
    else
        stats_msprt_state_init(&st);
    st.n_looks++;
    fold(&res.abs, &st.p_abs, &st.abs_low, &st.abs_high, opts->alpha);
    if (res.has_rel)
        fold(&res.rel, &st.p_rel, &st.rel_low, &st.rel_high, opts->alpha);
    res.empty = st.abs_low > st.abs_high ||
                (res.has_rel && st.rel_low > st.rel_high);
    if (state != NULL)
        *state = st;
    *out = res;
    return AB_OK;
fail:
    stats_set_reason(why, w);
    return rc;
}
