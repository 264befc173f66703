/* gst.h -- group sequential designs with Lan-DeMets error spending:
 * efficacy boundaries from an alpha-spending function, optional
 * non-binding futility boundaries from a beta-spending function, for
 * arbitrary information fractions, one- or two-sided, and the decision at
 * the current look given its z statistic. Pure: no I/O, no allocation, no
 * globals; the caller passes the numerical workspace.
 *
 * Spending functions of the information fraction t in [0, 1] (total x =
 * alpha per side or beta; Lan & DeMets 1983, Kim & DeMets 1987, Hwang, Shih
 * & DeCani 1990), as in R rpact. A two-sided design of level alpha spends
 * x = alpha / 2 in each tail (so OBF two-sided at 0.05 has the boundaries
 * of OBF one-sided at 0.025, as rpact does):
 *   OBF     (asOF)   x(t) = 2 - 2 Phi(Phi^-1(1 - x/2) / sqrt(t))
 *   POCOCK  (asP)    x(t) = x ln(1 + (e - 1) t)
 *   POWER   (asKD)   x(t) = x t^rho                  param = rho > 0
 *   HSD     (asHSD)  x(t) = x (1 - e^(-g t)) / (1 - e^(-g)), g = param
 *                    (x t when g = 0)
 * Boundaries come from recursive numerical integration of the canonical
 * joint distribution of (Z_1 .. Z_K), cov(Z_j, Z_k) = sqrt(t_j / t_k), on
 * the grid of Jennison & Turnbull (2000), chapter 19, with Simpson's rule.
 *
 * Over- and under-running. The last look always spends everything that is
 * left: alpha(1) - alpha(t_{K-1}), whatever t_K is, so a final look with
 * t_K > 1 (more data than planned) or t_K < 1 (stopped early by calendar)
 * keeps the total type I error at alpha. The covariance uses the actual
 * fractions. Only the last fraction may be >= 1.
 */
#ifndef STATS_GST_H
#define STATS_GST_H

#include <stddef.h>

#include "lib/status.h"
#include "stats/common.h"

#define STATS_GST_MAX_LOOKS 25
#define STATS_GST_GRID_R 32 /* J&T grid density; 6r - 1 base points */
#define STATS_GST_GRID_MAX (12 * STATS_GST_GRID_R + 3)
/* Futility bounds below this are raised to it, as rpact does
 * (C_FUTILITY_BOUNDS_DEFAULT): such a bound is never crossed in practice. */
#define STATS_GST_FUTILITY_MIN (-6.0)

enum stats_gst_spend {
    STATS_GST_NONE = 0, /* for beta_spend: no futility boundary */
    STATS_GST_OBF,      /* O'Brien-Fleming type (rpact "asOF") */
    STATS_GST_POCOCK,   /* Pocock type (rpact "asP") */
    STATS_GST_POWER,    /* Kim-DeMets power family t^rho ("asKD") */
    STATS_GST_HSD       /* Hwang-Shih-DeCani with gamma ("asHSD") */
};

/* k_max looks (1 .. STATS_GST_MAX_LOOKS) at information fractions info[0]
 * < info[1] < ... (all > 0; only the last may be >= 1). side TWO gives
 * symmetric boundaries +-c_k with alpha split over both tails; GREATER
 * rejects when z >= c_k, LESS when z <= -c_k (efficacy values are
 * reported positive; negate for LESS). alpha in (0, 0.5) (TWO: (0, 1)).
 * Futility (one-sided only): beta_spend != NONE, beta in (0, 1 - alpha),
 * non-binding (efficacy ignores it), rpact's typeBetaSpending. */
struct stats_gst_design {
    size_t k_max;
    double info[STATS_GST_MAX_LOOKS];
    enum stats_side side;
    double alpha;
    enum stats_gst_spend alpha_spend;
    double alpha_param; /* rho for POWER, gamma for HSD, else unused */
    enum stats_gst_spend beta_spend;
    double beta;
    double beta_param;
};

/* Numerical workspace, about 28 KB: put it on the stack or in a long-lived
 * struct. Its contents mean nothing between calls. */
struct stats_gst_work {
    double x[2][STATS_GST_GRID_MAX];
    double w[2][STATS_GST_GRID_MAX];
    double h[2][STATS_GST_GRID_MAX];
};

/* Boundaries on the z scale, one per look. */
struct stats_gst_bounds {
    size_t k_max;
    double efficacy[STATS_GST_MAX_LOOKS];    /* c_k > 0, may be +INFINITY
                                                when no alpha is spent */
    double futility[STATS_GST_MAX_LOOKS];    /* one-sided: b_k, stop for
                                                futility when z <= b_k
                                                (LESS: z >= -b_k), never
                                                below FUTILITY_MIN;
                                                -INFINITY without futility;
                                                b_K = c_K */
    double alpha_spent[STATS_GST_MAX_LOOKS]; /* cumulative, by look */
    double beta_spent[STATS_GST_MAX_LOOKS];  /* cumulative, 0 without */
    double drift;  /* with futility: E[Z] at t = 1 that gives power
                      1 - beta (rpact: shift = drift^2); else 0 */
    int has_futility;
};

enum stats_gst_action {
    STATS_GST_CONTINUE = 0, /* interim look, inside the boundaries */
    STATS_GST_EFFICACY,     /* crossed the efficacy boundary: reject H0 */
    STATS_GST_FUTILITY,     /* crossed the futility boundary: stop */
    STATS_GST_ACCEPT        /* last look, H0 not rejected */
};

struct stats_gst_decision {
    enum stats_gst_action action;
    size_t look;        /* 1-based */
    double z;
    double efficacy;    /* c_look (signed: negative for LESS) */
    double futility;    /* b_look on the same signed scale, or -INFINITY
                           (+INFINITY for LESS) without futility */
    double alpha_spent; /* cumulative through this look */
    int direction;      /* EFFICACY: +1 treatment higher, -1 lower; else 0 */
};

/* Cumulative spending x(t) of total x for f (formulas above); t is capped
 * to [0, 1]. AB_EINVAL (BAD_PARAMETER) for f == NONE, x outside (0, 1),
 * t infinite or < 0, POWER with rho <= 0, HSD with |gamma| > 700;
 * NOT_FINITE for a NaN argument. */
ab_status stats_gst_spend_value(enum stats_gst_spend f, double param,
                                double x, double t, double *out,
                                enum stats_reason *why);

/* Boundaries for the whole design d. AB_EINVAL (BAD_PARAMETER): k_max out
 * of range, fractions not increasing / not positive / >= 1 before the last
 * look, bad alpha/beta/parameters, futility with a two-sided design;
 * NOT_FINITE for NaN. AB_ENUMERIC (NO_CONVERGENCE) if a root search fails.
 * out is written only on AB_OK; why (may be NULL) only on failure. */
ab_status stats_gst_bounds(const struct stats_gst_design *d,
                           struct stats_gst_work *work,
                           struct stats_gst_bounds *out,
                           enum stats_reason *why);

/* The decision at look (1 .. d->k_max) with statistic z (treatment minus
 * control over its standard error). Efficacy boundaries up to 'look' depend
 * only on info[0 .. look-1], so later entries of d->info may still be the
 * planned fractions; futility (beta spending) uses the whole plan. Errors
 * as stats_gst_bounds, plus AB_EINVAL for look out of range or z not
 * finite. out is written only on AB_OK. */
ab_status stats_gst_decide(const struct stats_gst_design *d, size_t look,
                           double z, struct stats_gst_work *work,
                           struct stats_gst_decision *out,
                           enum stats_reason *why);

#endif /* STATS_GST_H */
