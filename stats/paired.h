/* paired.h -- paired comparisons of two models that saw the same requests
 * (a shadow deployment): prediction agreement, McNemar on accuracy, the
 * paired latency difference and a paired score-shift test. Pure: no I/O,
 * no allocation, no globals; the caller passes data and workspace.
 *
 * Which test, and when:
 *  - agreement: the exact Clopper-Pearson interval (beta quantiles) and an
 *    exact one-sided binomial test of "disagreement exceeds p0";
 *  - accuracy: McNemar on the discordant pairs b (control right, candidate
 *    wrong) and c (control wrong, candidate right). The exact binomial form
 *    is used when b + c < STATS_MCNEMAR_EXACT_BELOW (25, the usual rule:
 *    the chi-square approximation needs about 25 discordant pairs), the
 *    chi-square form with continuity correction otherwise; both are
 *    always computed and reported;
 *  - latency: the mean of the per-request differences with a paired t test
 *    (fixed horizon) and an always-valid normal-mixture confidence
 *    sequence (the one-sample form of stats/msprt.h), plus its quantiles;
 *  - score shift: the Wilcoxon signed-rank test on the per-request score
 *    differences (paired, so it uses the pairing a two-sample KS would
 *    throw away), normal approximation with the tie correction, zero
 *    differences dropped (Wilcoxon's rule), no continuity correction.
 */
#ifndef STATS_PAIRED_H
#define STATS_PAIRED_H

#include <stddef.h>
#include <stdint.h>

#include "lib/status.h"
#include "stats/common.h"

#define STATS_MCNEMAR_EXACT_BELOW 25

struct stats_agreement {
    double rate;            /* agree / n */
    double ci_low, ci_high; /* Clopper-Pearson, level 1 - alpha */
};

/* Agreement rate of n pairs, 'agree' of which agree. AB_EINVAL: n == 0,
 * agree > n, alpha outside (0, 1). */
ab_status stats_paired_agreement(uint64_t agree, uint64_t n, double alpha,
                                 struct stats_agreement *out);

/* Exact binomial test, one-sided: P(X >= k) for X ~ Binomial(n, p0).
 * AB_EINVAL: k > n, p0 outside [0, 1]. */
ab_status stats_binom_p_greater(uint64_t k, uint64_t n, double p0,
                                double *p);

enum stats_mcnemar_method { STATS_MCNEMAR_EXACT, STATS_MCNEMAR_CHI2 };

struct stats_mcnemar {
    double b, c;          /* discordant pairs (see top) */
    double p_exact;       /* min(1, 2 P(X <= min(b, c))), X ~ Bin(b+c, 1/2) */
    double chi2;          /* (|b - c| - 1)^2 / (b + c) */
    double p_chi2;        /* its chi-square (1 df) upper tail */
    enum stats_mcnemar_method method; /* the one p_value comes from */
    double p_value;
};

/* McNemar's test. AB_ENUMERIC when b + c == 0 (no discordant pair). */
ab_status stats_mcnemar(uint64_t b, uint64_t c, struct stats_mcnemar *out);

const char *stats_mcnemar_method_name(enum stats_mcnemar_method m);

struct stats_paired_mean {
    double n, mean, sd, se; /* of the differences; se = sd / sqrt(n) */
    double t, df, p_value;  /* paired t test of mean 0, two-sided */
    double cs_low, cs_high; /* always-valid 1 - alpha confidence sequence:
                               mean -/+ z_crit(rho2 n, alpha) se with
                               rho2 = (-2 ln a + ln(1 - 2 ln a)) / n_star */
};

/* d: the differences summarised (n, mean, unbiased var). n_star as in
 * stats/msprt.h (0: its default). AB_EINVAL: non-finite or negative input,
 * alpha outside (0, 0.5]; AB_ENUMERIC: n < 2 or zero variance. */
ab_status stats_paired_mean(const struct stats_summary *d, double alpha,
                            double n_star, struct stats_paired_mean *out);

/* Quantile q in [0, 1] of n >= 1 sorted values, linear interpolation
 * between order statistics (Hyndman & Fan type 7, numpy's default). */
double stats_quantile_sorted(const double *sorted, size_t n, double q);

struct stats_wilcoxon {
    double n_used;        /* non-zero differences */
    double r_plus, r_minus;
    double statistic;     /* min(r_plus, r_minus) */
    double z, p_value;    /* two-sided, normal approximation */
};

/* Wilcoxon signed-rank test of the n differences d (see top). work: n
 * doubles of scratch. AB_EINVAL: a non-finite difference; AB_ENUMERIC:
 * fewer than 2 non-zero differences or zero variance. */
ab_status stats_wilcoxon(const double *d, size_t n, double *work,
                         struct stats_wilcoxon *out);

#endif /* STATS_PAIRED_H */
