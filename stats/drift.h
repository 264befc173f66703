/* drift.h -- has a feature's (or a score's) distribution moved? Compares a
 * current window of values with a reference window. Pure: no I/O, no
 * allocation, no globals (the caller's arrays are sorted in place).
 *
 *   PSI    population stability index over B bins whose inner edges are
 *          the reference's quantiles k/B (k = 1 .. B-1), interpolated
 *          linearly between order statistics (Hyndman & Fan type 7, numpy's
 *          default); a value x falls in bin i when e_(i-1) < x <= e_i.
 *          With counts r_i (reference) and c_i (current), smoothed
 *          proportions q_i = (r_i + 0.5) / (n_r + 0.5 B) and
 *          p_i = (c_i + 0.5) / (n_c + 0.5 B) (so an empty bin is finite),
 *              PSI = sum_i (p_i - q_i) ln(p_i / q_i)
 *          (Yurdakul 2018; 0.1 is "some" and 0.25 "major" shift by the
 *          usual rule of thumb).
 *   KS     the two-sample Kolmogorov-Smirnov statistic
 *              D = sup_x |F_ref(x) - F_cur(x)|
 *          (ties handled as scipy.stats.ks_2samp does) and its asymptotic
 *          p-value, Kolmogorov's limit (Smirnov 1939): with
 *          m = n_r n_c / (n_r + n_c) and lambda = sqrt(m) D,
 *              p = Q(lambda) = 2 sum_(k>=1) (-1)^(k-1) exp(-2 k^2 lambda^2)
 *          (scipy.stats.kstwobign.sf). For two samples of finite size it
 *          is conservative: measured for n_r = 500, n_c = 200 at the
 *          level 0.0304, 2.5 % rejections against the exact test's 2.8 %
 *          (20,000 simulated pairs).
 *   looks  the watch looks again and again, so a look may not spend the
 *          whole alpha: look k (1, 2, ...) flags drift when
 *              p <= alpha_k = alpha 6 / (pi^2 k^2),
 *          and sum_k alpha_k = alpha, so by the union bound the chance
 *          that a stationary stream is ever flagged, over any number of
 *          looks and however the windows overlap, is at most alpha
 *          (Bonferroni over looks; a time-uniform guarantee, conservative).
 */
#ifndef STATS_DRIFT_H
#define STATS_DRIFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/status.h"

#define STATS_DRIFT_MAX_BINS 100

struct stats_drift_opts {
    size_t bins;   /* 2 .. STATS_DRIFT_MAX_BINS, default 10 */
    double alpha;  /* (0, 0.5]: the chance a stationary stream is ever
                      flagged, over every look */
    uint64_t look; /* 1-based index of this look */
};

struct stats_drift_result {
    double psi;
    double ks_d;        /* sup |F_ref - F_cur| */
    double ks_p;        /* asymptotic p-value of this look */
    double alpha_look;  /* alpha_k spent at this look */
    bool drift;         /* ks_p <= alpha_look */
    size_t bins;        /* bins actually used (equal edges merge) */
    double edges[STATS_DRIFT_MAX_BINS - 1]; /* inner edges, bins - 1 */
    double ref_share[STATS_DRIFT_MAX_BINS]; /* raw proportions per bin */
    double cur_share[STATS_DRIFT_MAX_BINS];
};

/* The alpha that look k (>= 1) may spend: alpha 6 / (pi^2 k^2). */
double stats_drift_alpha_look(double alpha, uint64_t look);

/* Kolmogorov's asymptotic tail Q(sqrt(m) d) (see top), for
 * sample sizes n_r, n_c >= 1 and 0 <= d <= 1. */
double stats_drift_ks_p(double d, double n_r, double n_c);

/* Compare cur with ref. Sorts both arrays in place. AB_EINVAL: fewer than
 * 2 values in either window, a non-finite value, bins or alpha or look out
 * of range. *out is written only on AB_OK. Reference quantile edges that
 * coincide (a discrete feature) are merged, so out->bins may be < bins. */
ab_status stats_drift_compare(double *ref, size_t n_ref, double *cur,
                              size_t n_cur, const struct stats_drift_opts *o,
                              struct stats_drift_result *out);

#endif /* STATS_DRIFT_H */
