/* quantile.h -- the difference of a quantile between two arms (treatment
 * minus control), from DDSketches, with a fixed-horizon interval and an
 * always-valid confidence sequence. Pure: no I/O, no allocation.
 *
 * Both intervals first bound each arm's quantile Q(q) by order statistics,
 * then fold in the sketch error: the sketch knows X_(r) only up to its
 * bucket, X_(r) in (gamma^(i-1), gamma^i] (stats_ddsketch_rank_bounds;
 * = [v / (1 + a), v / (1 - a)] around the representative v), so every
 * lower bound is the lower edge of its bucket (strict: the true value is
 * above it, unless it is the zero bucket) and every upper bound the upper
 * edge. The data must be non-negative (latency); X is
 * assumed continuous (ties only through the sketch, which the a-widening
 * covers).
 *
 * Fixed horizon (level 1 - alpha): per arm the point estimate is X_(k),
 * k = ceil(q n), and its standard error the order-statistic (Siddiqui-
 * Bloch-Gastwirth / Price-Bonett) estimate
 *     h = z0 sqrt(n q (1 - q)),  l = floor(n q - h),  u = ceil(n q + h) + 1
 *     se = sqrt(q (1 - q) / n) * n (X_(u) - X_(l)) / (u - l)
 * with z0 = 1.96 (Price & Bonett, "Distribution-free confidence intervals
 * for difference and ratio of medians", J. Stat. Comput. Simul. 72, 2002,
 * who combine such per-group standard errors exactly so). Difference:
 *     d +- z sqrt(se_c^2 + se_t^2),  z = Phi^-1(1 - alpha / 2)
 * and the relative difference Q_t / Q_c - 1 on the log scale:
 *     ln(Q_t / Q_c) +- z sqrt((se_t / Q_t)^2 + (se_c / Q_c)^2).
 * Needs 1 <= l and u <= n in both arms (about n (1 - q) >= 8 for q near 1):
 * AB_ENOTFOUND below that ("not enough data").
 *
 * Always valid (level 1 - alpha, uniformly over time): per arm at
 * alpha / 2, the fixed-quantile confidence sequence of Howard & Ramdas
 * ("Sequential estimation of quantiles with applications to A/B-testing
 * and best-arm identification", Bernoulli 28(3), 2022, sec. 3): the count
 * S_t of observations <= Q(q) is Binomial(t, q), and the beta-binomial
 * mixture (prior Beta(q r, (1 - q) r))
 *     M_t(s) = B(q r + s, (1 - q) r + t - s) / B(q r, (1 - q) r)
 *              / (q^s (1 - q)^(t - s))
 * is a martingale at s = S_t, so by Ville's inequality
 * P(exists t: M_t(S_t) >= 2 / alpha) <= alpha / 2. With [s_lo, s_hi] the
 * counts where M_t < 2 / alpha (an interval: ln M is convex in s),
 *     X_(s_lo) <= Q(q) <= X_(s_hi + 1)
 * at every t (0 when s_lo = 0, +inf when s_hi = t). The two arms' bounds
 * combine into difference and ratio bounds that hold together at every t
 * with probability >= 1 - alpha. r (the prior's weight) makes the boundary
 * tightest near t = r; the rollout engine passes its mSPRT n*.
 */
#ifndef STATS_QUANTILE_H
#define STATS_QUANTILE_H

#include <stdint.h>

#include "lib/status.h"
#include "stats/ddsketch.h"

struct stats_quantile_diff {
    double q_control, q_treatment; /* sketch estimates at rank ceil(q n) */
    double diff, diff_low, diff_high; /* Q_t - Q_c */
    double rel, rel_low, rel_high;    /* Q_t / Q_c - 1 (+inf bounds allowed
                                         in the sequence) */
};

/* Fixed-horizon interval at level 1 - alpha (see the header).
 * AB_EINVAL: q or alpha not in (0, 1). AB_ENOTFOUND: an arm has too few
 * values for the order-statistic standard error. AB_ENUMERIC: a control
 * quantile of 0 (no relative difference). *out only on AB_OK. */
ab_status stats_quantile_fixed(const struct stats_ddsketch *control,
                               const struct stats_ddsketch *treatment,
                               double q, double alpha,
                               struct stats_quantile_diff *out);

/* The ranks [s_lo, s_hi] of the fixed-quantile confidence sequence at
 * level 1 - alpha for t observations (see the header); r > 0. */
void stats_quantile_cs_ranks(uint64_t t, double q, double alpha, double r,
                             uint64_t *s_lo, uint64_t *s_hi);

/* Always-valid bounds on one arm's Q(q) at level 1 - alpha, sketch error
 * included: *low >= 0, *high may be +inf. AB_EINVAL: bad q, alpha or r,
 * or an empty sketch. */
ab_status stats_quantile_cs_arm(const struct stats_ddsketch *s, double q,
                                double alpha, double r, double *low,
                                double *high);

/* Always-valid difference and relative difference at level 1 - alpha
 * (alpha / 2 per arm). Bounds may be infinite early on; rel bounds use
 * +inf when the control's lower bound is 0. Same errors as _cs_arm. */
ab_status stats_quantile_cs(const struct stats_ddsketch *control,
                            const struct stats_ddsketch *treatment, double q,
                            double alpha, double r,
                            struct stats_quantile_diff *out);

#endif /* STATS_QUANTILE_H */
