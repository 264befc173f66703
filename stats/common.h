/* common.h -- the small shared vocabulary of stats/: per-arm sufficient
 * statistics, sides, effects, directions and the reasons a degenerate input
 * is refused. Header only (static inline), pure: no I/O, no allocation, no
 * globals. Keep it small and stable: stats/msprt.h and stats/gst.h include
 * it too.
 *
 * Units: every statistic is in the units of the metric (per unit means);
 * "n" is a count of randomisation units, held as a double so that counts and
 * sums up to 2^53 are exact and larger ones degrade gracefully.
 */
#ifndef STATS_COMMON_H
#define STATS_COMMON_H

#include <math.h>

#include "lib/status.h"

/* Alternative hypothesis, on the effect (treatment minus control):
 * TWO: effect != 0, GREATER: effect > 0, LESS: effect < 0. */
enum stats_side { STATS_SIDE_TWO = 0, STATS_SIDE_GREATER, STATS_SIDE_LESS };

/* ABSOLUTE: mean_t - mean_c. RELATIVE: (mean_t - mean_c) / mean_c, the lift
 * relative to the (unadjusted) control mean, by the delta method. */
enum stats_effect { STATS_EFFECT_ABSOLUTE = 0, STATS_EFFECT_RELATIVE };

/* Which way is good for the metric: INCREASE (conversion, revenue) or
 * DECREASE (latency, errors). Used for "chance to win" and "risk". */
enum stats_direction { STATS_DIR_INCREASE = 0, STATS_DIR_DECREASE };

/* Why a computation was refused (the status says how, this says why). */
enum stats_reason {
    STATS_REASON_NONE = 0,
    STATS_REASON_FEW_UNITS,         /* an arm has n <= 1 */
    STATS_REASON_ZERO_VARIANCE,     /* the standard error is zero */
    STATS_REASON_ZERO_CONTROL_MEAN, /* relative effect: control mean is 0 */
    STATS_REASON_OVERFLOW,          /* a sum or a derived value overflowed */
    STATS_REASON_NOT_FINITE,        /* NaN or infinity in the input */
    STATS_REASON_NEGATIVE,          /* a negative count or sum of squares */
    STATS_REASON_INCONSISTENT,      /* impossible sums (sum_sq < sum^2/n,
                                       successes > trials, n not integral) */
    STATS_REASON_BAD_PARAMETER,     /* alpha, power, prior sd ... invalid */
    STATS_REASON_NO_CONVERGENCE,    /* a numerical method did not converge */
    STATS_REASON_MIXED_WEIGHTS      /* counts gathered under several
                                       weightings: no one expected share */
};

static inline const char *
stats_reason_text(enum stats_reason r)
{
    switch (r) {
    case STATS_REASON_NONE: return "ok";
    case STATS_REASON_FEW_UNITS: return "an arm has at most one unit";
    case STATS_REASON_ZERO_VARIANCE: return "zero variance";
    case STATS_REASON_ZERO_CONTROL_MEAN:
        return "control mean is zero: relative effect undefined";
    case STATS_REASON_OVERFLOW: return "a sum overflowed";
    case STATS_REASON_NOT_FINITE: return "an input is NaN or infinite";
    case STATS_REASON_NEGATIVE: return "a count or sum of squares is negative";
    case STATS_REASON_INCONSISTENT: return "inconsistent sufficient statistics";
    case STATS_REASON_BAD_PARAMETER: return "a parameter is out of range";
    case STATS_REASON_NO_CONVERGENCE: return "numerical method did not converge";
    case STATS_REASON_MIXED_WEIGHTS:
        return "the weights changed during the experiment: the arms' n mix "
               "several weightings (see the experiment's srm, per weights "
               "version)";
    }
    return "unknown";
}

/* Stable one-word code for r ("few_units", "zero_variance", ...). */
static inline const char *
stats_reason_code(enum stats_reason r)
{
    switch (r) {
    case STATS_REASON_NONE: return "ok";
    case STATS_REASON_FEW_UNITS: return "few_units";
    case STATS_REASON_ZERO_VARIANCE: return "zero_variance";
    case STATS_REASON_ZERO_CONTROL_MEAN: return "zero_control_mean";
    case STATS_REASON_OVERFLOW: return "overflow";
    case STATS_REASON_NOT_FINITE: return "not_finite";
    case STATS_REASON_NEGATIVE: return "negative";
    case STATS_REASON_INCONSISTENT: return "inconsistent";
    case STATS_REASON_BAD_PARAMETER: return "bad_parameter";
    case STATS_REASON_NO_CONVERGENCE: return "no_convergence";
    case STATS_REASON_MIXED_WEIGHTS: return "mixed_weights";
    }
    return "unknown";
}

/* Per-arm sufficient statistics of a per-unit metric y:
 * n = number of units, sum = sum of y, sum_sq = sum of y^2. */
struct stats_moments {
    double n, sum, sum_sq;
};

/* Sample mean and unbiased variance of one arm. */
struct stats_summary {
    double n, mean, var;
};

/* Result of a Wald-type test of one effect (the fixed-horizon methods).
 * One-sided intervals have one infinite end (ci_high = +INFINITY for
 * GREATER, ci_low = -INFINITY for LESS); df = INFINITY means normal. */
struct stats_result {
    double effect, se, stat, df, p_value, ci_low, ci_high;
};

static inline void
stats_set_reason(enum stats_reason *why, enum stats_reason r)
{
    if (why != NULL)
        *why = r;
}

/* The one-line failure: set the reason, answer rc
 *   return stats_fail(why, STATS_REASON_OVERFLOW, AB_ENUMERIC); */
static inline ab_status
stats_fail(enum stats_reason *why, enum stats_reason r, ab_status rc)
{
    stats_set_reason(why, r);
    return rc;
}

/* Summarise m: mean = sum/n, var = (sum_sq - sum*mean)/(n-1). A tiny
 * negative numerator from rounding (|.| <= 1e-12 sum_sq) is taken as 0.
 * AB_EINVAL: non-finite input, n < 0, sum_sq < 0, n not an integer,
 * sum_sq clearly below sum^2/n; AB_ENUMERIC: n <= 1 (FEW_UNITS) or an
 * overflow. On failure writes *why (may be NULL); *out only on AB_OK. */
static inline ab_status
stats_moments_summary(const struct stats_moments *m, struct stats_summary *out,
                      enum stats_reason *why)
{
    double mean, ss;

    if (!isfinite(m->n) || !isfinite(m->sum) || !isfinite(m->sum_sq)) {
        stats_set_reason(why, STATS_REASON_NOT_FINITE);
        return AB_EINVAL;
    }
    if (m->n < 0 || m->sum_sq < 0) {
        stats_set_reason(why, STATS_REASON_NEGATIVE);
        return AB_EINVAL;
    }
    if (m->n != floor(m->n)) {
        stats_set_reason(why, STATS_REASON_INCONSISTENT);
        return AB_EINVAL;
    }
    if (m->n <= 1) {
        stats_set_reason(why, STATS_REASON_FEW_UNITS);
        return AB_ENUMERIC;
    }
    mean = m->sum / m->n;
    ss = m->sum_sq - m->sum * mean;
    if (!isfinite(mean) || !isfinite(ss)) {
        stats_set_reason(why, STATS_REASON_OVERFLOW);
        return AB_ENUMERIC;
    }
    if (ss < 0) {
        if (-ss > 1e-12 * m->sum_sq) {
            stats_set_reason(why, STATS_REASON_INCONSISTENT);
            return AB_EINVAL;
        }
        ss = 0;
    }
    out->n = m->n;
    out->mean = mean;
    out->var = ss / (m->n - 1);
    return AB_OK;
}

#endif /* STATS_COMMON_H */
