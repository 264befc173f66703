/* power.h -- planning: the sample size per arm that detects a minimum
 * detectable effect (MDE) with a given power, for a fixed-horizon test and
 * for the always-valid mSPRT (stats/msprt.h), and the expected sample size
 * to a decision. Pure: no I/O, no allocation.
 *
 * Units: sd_c, sd_t and mde in metric units (for a relative MDE pass
 * mde = lift * control mean; for a conversion rate p pass
 * sd = sqrt(p (1 - p)) at the control rate and at p + mde). Sample sizes
 * are units in the CONTROL arm, as real numbers (round up to plan); the
 * treatment arm has ratio * n_c.
 */
#ifndef STATS_POWER_H
#define STATS_POWER_H

#include "lib/status.h"
#include "stats/common.h"

struct stats_power_plan {
    double sd_c, sd_t; /* per-unit standard deviations, >= 0, not both 0 */
    double mde;        /* effect to detect, treatment minus control, != 0 */
    double alpha;      /* (0, 1) */
    double power;      /* (alpha, 1) for TWO/in the direction of mde */
    enum stats_side side;
    double ratio;      /* n_t / n_c > 0 (0 means 1) */
};

/* Power of the fixed-horizon z test with n_c control units:
 *   se = sqrt(sd_c^2/n_c + sd_t^2/(ratio n_c)),  D = mde / se
 *   TWO:     Phi(D - z_{1-alpha/2}) + Phi(-D - z_{1-alpha/2})
 *   GREATER: Phi(D - z_{1-alpha}),  LESS: Phi(-D - z_{1-alpha})
 * (Chow, Shao & Wang, Sample Size Calculations in Clinical Research,
 * 2nd ed., 3.2; the same as statsmodels NormalIndPower.power). */
ab_status stats_power_fixed(const struct stats_power_plan *p, double n_c,
                            double *power, enum stats_reason *why);

/* Smallest n_c with stats_power_fixed(n_c) = p->power (the two-sided
 * power includes the far tail, so it is solved numerically, to 1e-12
 * relative; one-sided is the closed form (z_{1-alpha} + z_power)^2
 * (sd_c^2 + sd_t^2/ratio) / mde^2). BAD_PARAMETER when the MDE points
 * away from a one-sided alternative or power <= alpha. */
ab_status stats_power_n_fixed(const struct stats_power_plan *p, double *n_c,
                              enum stats_reason *why);

/* Sequential (mSPRT of stats/msprt.h tuned for n_star units per arm; 0
 * means STATS_MSPRT_DEFAULT_N_STAR). With t_eff = (sd_c^2 + sd_t^2) / (
 * sd_c^2 + sd_t^2/ratio) n_c, r = rho2 t_eff, critical |z| = c(r):
 *   n_power:    smallest n_c at which ONE analysis rejects with
 *               probability p->power, i.e. power(n) = Phi(D(n) - c) +
 *               Phi(-D(n) - c) (TWO; one-sided: one term). Monitoring
 *               continuously only adds chances to reject, so this is a
 *               safe (conservative) sample size for the sequential test.
 *   n_expected: expected n_c to a rejection under mde, by Wald's first-
 *               order (drift) approximation: the n_c at which the mean
 *               of z, D(n), reaches the boundary c(r(n)). It ignores
 *               overshoot and noise, so it is an approximation (compare
 *               the simulated table of docs/operating_characteristics.md).
 * The fixed-horizon expected sample size to a decision is n itself. */
ab_status stats_power_n_msprt(const struct stats_power_plan *p,
                              double n_star, double *n_power,
                              double *n_expected, enum stats_reason *why);

#endif /* STATS_POWER_H */
