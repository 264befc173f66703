/* msprt.h -- always-valid inference for treatment minus control: the
 * normal-mixture sequential probability ratio test (mSPRT), which is the
 * same object as the asymptotic confidence sequence. Valid under continuous
 * peeking: the analyst may look after every unit and stop whenever the
 * p-value drops below alpha. Pure: no I/O, no allocation, no globals.
 *
 * Model. At a look, with control c and treatment t summarised as
 * (n, mean, var), the effect estimate is d = mean_t - mean_c (absolute) or
 * d = mean_t / mean_c - 1 (relative, delta method) with estimated variance
 * V. The per-pair variance s2 = V at n = 1 (absolute: var_c + var_t) defines
 * the effective sample size per arm t_eff = s2 / V (= n when both arms have
 * n units). The mixing variance is tau^2 = rho2 * s2, and rho2 is chosen so
 * that the boundary is tightest at t_eff = n_star (Waudby-Smith et al. 2023):
 *     rho2 = (-2 ln alpha + ln(1 - 2 ln alpha)) / n_star.
 * With z = (d - d0) / sqrt(V) and r = rho2 * t_eff the mixture likelihood
 * ratio is (Johari, Pekelis & Walsh 2017; Howard et al. 2021, sec. 3.5)
 *     two-sided: LR = (1 + r)^(-1/2) exp(z^2 r / (2 (1 + r)))
 *     one-sided: LR = 2 Phi(z sqrt(r / (1 + r))) (1 + r)^(-1/2)
 *                     exp(z^2 r / (2 (1 + r)))     (half-normal mixture;
 *                z is negated for LESS)
 * p = min(1, 1/LR); the interval is {d0 : LR(d0) < 1/alpha}.
 */
#ifndef STATS_MSPRT_H
#define STATS_MSPRT_H

#include <stdint.h>

#include "lib/status.h"
#include "stats/common.h"

#define STATS_MSPRT_DEFAULT_N_STAR 5000.0

/* alpha in (0, 0.5]; n_star > 0 (0 means STATS_MSPRT_DEFAULT_N_STAR);
 * side: TWO (effect != null), GREATER (effect > -margin: treatment is not
 * worse by margin or more, when higher is better), LESS (effect < +margin,
 * for metrics where lower is better). margin_abs (metric units) and
 * margin_rel (fraction of the control mean, 0.01 = 1 percent) are >= 0 and
 * must be 0 for TWO. Null values: GREATER d0 = -margin, LESS d0 = +margin. */
struct stats_msprt_opts {
    double alpha;
    double n_star;
    enum stats_side side;
    double margin_abs;
    double margin_rel;
};

/* One effect at one look. The interval is two-sided for TWO; for GREATER
 * ci_high = +INFINITY, for LESS ci_low = -INFINITY. "running" fields fold
 * in every earlier look (running minimum p-value, running intersection of
 * intervals) and are what a decision must use. */
struct stats_msprt_effect {
    double estimate;   /* d */
    double se;         /* sqrt(V) */
    double null_value; /* d0 */
    double z;          /* (d - d0) / se */
    double log_lr;     /* log of the mixture likelihood ratio at d0 */
    double p_value;    /* min(1, 1/LR) at this look */
    double ci_low, ci_high;
    double p_running;
    double ci_low_running, ci_high_running;
    int reject;        /* p_running <= alpha */
};

struct stats_msprt_result {
    double t_eff;  /* effective units per arm of the absolute effect */
    double rho2;   /* mixing parameter used */
    struct stats_msprt_effect abs;
    int has_rel;   /* 0 when the control mean is 0: rel is then zeroed */
    enum stats_reason rel_why; /* why has_rel is 0 */
    struct stats_msprt_effect rel;
    int empty;     /* the running intersection is empty (model violated) */
};

/* Kept by the caller between looks of one experiment and metric, passed
 * back unchanged; initialise with stats_msprt_state_init(). */
struct stats_msprt_state {
    uint64_t n_looks;
    double p_abs, abs_low, abs_high;
    double p_rel, rel_low, rel_high;
};

/* Sets st to "no look yet": p = 1, intervals (-inf, +inf). */
void stats_msprt_state_init(struct stats_msprt_state *st);

/* rho2 for level alpha, tightest at n_star units per arm (formula above).
 * AB_EINVAL (BAD_PARAMETER) for alpha outside (0, 0.5] or n_star <= 0. */
ab_status stats_msprt_rho2(double alpha, double n_star, double *rho2,
                           enum stats_reason *why);

/* log LR of the mixture at standardised statistic z and r = rho2 * t_eff
 * (see top); side GREATER uses z, LESS uses -z. AB_EINVAL when r <= 0 or
 * z is not finite. */
ab_status stats_msprt_log_lr(double z, double r, enum stats_side side,
                             double *log_lr, enum stats_reason *why);

/* The critical |z| at r = rho2 * t_eff: LR(z) = 1/alpha. Two-sided closed
 * form, one-sided by bisection to 1e-14 relative. */
ab_status stats_msprt_z_crit(double r, double alpha, enum stats_side side,
                             double *z_crit, enum stats_reason *why);

/* Analyse one look: control c, treatment t (n, mean, unbiased var).
 * state may be NULL (a single look); otherwise it is read and, on AB_OK
 * only, updated with this look. out is written only on AB_OK.
 * AB_EINVAL: non-finite input (NOT_FINITE), negative n or var (NEGATIVE),
 * bad alpha/n_star/margin (BAD_PARAMETER). AB_ENUMERIC: n <= 1 in an arm
 * (FEW_UNITS), V = 0 (ZERO_VARIANCE). why (may be NULL) is written on
 * failure. A zero control mean is not a failure: has_rel = 0. */
ab_status stats_msprt_test(const struct stats_summary *c,
                           const struct stats_summary *t,
                           const struct stats_msprt_opts *opts,
                           struct stats_msprt_state *state,
                           struct stats_msprt_result *out,
                           enum stats_reason *why);

#endif /* STATS_MSPRT_H */
