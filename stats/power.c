/* power.c -- sample size for a minimum detectable effect.
 *
 * Fixed horizon (normal approximation; Chow, Shao & Wang 2008, 3.2):
 *   power(n) = Phi(D - z) + Phi(-D - z),  D = mde / se(n),
 *   se(n)^2 = sd_c^2/n + sd_t^2/(ratio n),  z = z_{1-alpha/2}
 * solved for n by the Illinois method on log n (stats/root.h) (power is increasing in
 * n); one-sided is closed form.
 * Sequential: the same with the mSPRT critical value c(rho2 t_eff)
 * (stats/msprt.h; Johari, Pekelis & Walsh 2017, section 4) in place of z,
 * and Wald's first-order approximation D(n) = c(r(n)) for E[N]
 * (Wald 1947, Sequential Analysis, ch. 3).
 */
#include "stats/power.h"

#include <gsl/gsl_cdf.h>
#include <math.h>

#include "stats/msprt.h"
#include "stats/root.h"

static ab_status
check(const struct stats_power_plan *p, double *ratio, enum stats_reason *why)
{
    if (!isfinite(p->sd_c) || !isfinite(p->sd_t) || !isfinite(p->mde) ||
        !isfinite(p->alpha) || !isfinite(p->power) || !isfinite(p->ratio)) {
        stats_set_reason(why, STATS_REASON_NOT_FINITE);
        return AB_EINVAL;
    }
    if (p->sd_c < 0 || p->sd_t < 0) {
        stats_set_reason(why, STATS_REASON_NEGATIVE);
        return AB_EINVAL;
    }
    *ratio = p->ratio == 0 ? 1 : p->ratio;
    if (!(p->alpha > 0 && p->alpha < 1) || !(p->power > p->alpha) ||
        !(p->power < 1) || p->mde == 0 || !(*ratio > 0) ||
        (p->side == STATS_SIDE_GREATER && p->mde < 0) ||
        (p->side == STATS_SIDE_LESS && p->mde > 0)) {
        stats_set_reason(why, STATS_REASON_BAD_PARAMETER);
        return AB_EINVAL;
    }
    if (p->sd_c == 0 && p->sd_t == 0) {
        stats_set_reason(why, STATS_REASON_ZERO_VARIANCE);
        return AB_ENUMERIC;
    }
    return AB_OK;
}

/* Rejection probability of a look whose critical |z| is c, when the mean
 * of z is D. */
static double
reject_prob(double d, double c, enum stats_side side)
{
    switch (side) {
    case STATS_SIDE_GREATER: return gsl_cdf_ugaussian_Q(c - d);
    case STATS_SIDE_LESS: return gsl_cdf_ugaussian_Q(c + d);
    case STATS_SIDE_TWO:
    default:
        return gsl_cdf_ugaussian_Q(c - d) + gsl_cdf_ugaussian_P(-c - d);
    }
}

static double
drift(const struct stats_power_plan *p, double ratio, double n)
{
    return p->mde / sqrt((p->sd_c * p->sd_c + p->sd_t * p->sd_t / ratio) / n);
}

ab_status
stats_power_fixed(const struct stats_power_plan *p, double n_c,
                  double *power, enum stats_reason *why)
{
    double ratio, z;
    ab_status rc = check(p, &ratio, why);

    if (rc != AB_OK)
        return rc;
    if (!(n_c > 0) || !isfinite(n_c)) {
        stats_set_reason(why, STATS_REASON_BAD_PARAMETER);
        return AB_EINVAL;
    }
    z = gsl_cdf_ugaussian_Qinv(p->side == STATS_SIDE_TWO ? p->alpha / 2
                                                          : p->alpha);
    *power = reject_prob(drift(p, ratio, n_c), z, p->side);
    return AB_OK;
}

/* Solve f(log n) = 0 for an increasing f: bracket, then stats/root.h. */
struct solve {
    const struct stats_power_plan *p;
    double ratio, rho2;
    int mode; /* 0 fixed power, 1 msprt power, 2 msprt drift = boundary */
};

static double
crit(const struct solve *s, double n)
{
    double ratio = s->ratio, c;
    const struct stats_power_plan *p = s->p;
    double s2 = p->sd_c * p->sd_c + p->sd_t * p->sd_t;
    double teff = s2 / (p->sd_c * p->sd_c + p->sd_t * p->sd_t / ratio) * n;

    if (s->mode == 0)
        return gsl_cdf_ugaussian_Qinv(p->side == STATS_SIDE_TWO
                                          ? p->alpha / 2
                                          : p->alpha);
    if (stats_msprt_z_crit(s->rho2 * teff, p->alpha, p->side, &c, NULL) !=
        AB_OK)
        return NAN;
    return c;
}

static double
objective(const struct solve *s, double logn)
{
    double n = exp(logn), d = drift(s->p, s->ratio, n), c = crit(s, n);

    if (s->mode == 2)
        return fabs(d) - c;
    return reject_prob(d, c, s->p->side) - s->p->power;
}

static double
objective_fn(double logn, void *arg)
{
    return objective(arg, logn);
}

/* Bracket the root on log n (steps of 2 outward from the guess), then
 * refine it (stats/root.h) to 1e-13 in log n. */
static int
solve_n(const struct solve *s, double guess, double *n)
{
    static const struct stats_root_tol tol = {.x_abs = 1e-13,
                                              .x_rel = 0,
                                              .f_abs = 0,
                                              .max_iter = 300,
                                              .strict = false};
    double lo = log(guess) - 1, hi = log(guess) + 1, flo = NAN, fhi = NAN;

    for (int i = 0; i < 200; i++) {
        flo = objective(s, lo);
        if (isnan(flo))
            return -1;
        if (flo < 0)
            break;
        lo -= 2;
    }
    for (int i = 0; i < 200; i++) {
        fhi = objective(s, hi);
        if (isnan(fhi))
            return -1;
        if (fhi > 0)
            break;
        hi += 2;
    }
    if (!(flo < 0 && fhi > 0))
        return -1;
    double logn;
    if (stats_root_illinois(objective_fn, (void *)s, lo, hi, flo, fhi, &tol,
                            &logn) != AB_OK)
        return -1;
    *n = exp(logn);
    return isfinite(*n) ? 0 : -1;
}

ab_status
stats_power_n_fixed(const struct stats_power_plan *p, double *n_c,
                    enum stats_reason *why)
{
    double ratio, za, zb, v, n0;
    struct solve s;
    ab_status rc = check(p, &ratio, why);

    if (rc != AB_OK)
        return rc;
    za = gsl_cdf_ugaussian_Qinv(p->side == STATS_SIDE_TWO ? p->alpha / 2
                                                           : p->alpha);
    zb = gsl_cdf_ugaussian_Pinv(p->power);
    v = p->sd_c * p->sd_c + p->sd_t * p->sd_t / ratio;
    n0 = (za + zb) * (za + zb) * v / (p->mde * p->mde);
    if (p->side != STATS_SIDE_TWO) {
        if (!isfinite(n0) || !(n0 > 0)) {
            stats_set_reason(why, STATS_REASON_OVERFLOW);
            return AB_ENUMERIC;
        }
        *n_c = n0;
        return AB_OK;
    }
    s.p = p;
    s.ratio = ratio;
    s.rho2 = 0;
    s.mode = 0;
    if (!(n0 > 0) || !isfinite(n0) || solve_n(&s, n0, n_c) != 0) {
        stats_set_reason(why, STATS_REASON_NO_CONVERGENCE);
        return AB_ENUMERIC;
    }
    return AB_OK;
}

ab_status
stats_power_n_msprt(const struct stats_power_plan *p, double n_star,
                    double *n_power, double *n_expected,
                    enum stats_reason *why)
{
    double ratio, np, ne, n0;
    struct solve s;
    ab_status rc = check(p, &ratio, why);

    if (rc != AB_OK)
        return rc;
    if (n_star == 0)
        n_star = STATS_MSPRT_DEFAULT_N_STAR;
    s.p = p;
    s.ratio = ratio;
    rc = stats_msprt_rho2(p->alpha, n_star, &s.rho2, why);
    if (rc != AB_OK)
        return rc;
    rc = stats_power_n_fixed(p, &n0, why);
    if (rc != AB_OK)
        return rc;
    s.mode = 1;
    if (solve_n(&s, n0, &np) != 0) {
        stats_set_reason(why, STATS_REASON_NO_CONVERGENCE);
        return AB_ENUMERIC;
    }
    s.mode = 2;
    if (solve_n(&s, n0, &ne) != 0) {
        stats_set_reason(why, STATS_REASON_NO_CONVERGENCE);
        return AB_ENUMERIC;
    }
    *n_power = np;
    *n_expected = ne;
    return AB_OK;
}
