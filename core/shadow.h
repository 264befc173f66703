/* shadow.h -- paired shadow analysis and its decision. Pure: the caller
 * (service/shadow.c) reads the paired observations from PostgreSQL, this
 * turns them into statistics (stats/paired.h) and a verdict.
 *
 * A paired observation is one request that both models served: the
 * serving (control) model's and the shadow (candidate) model's output (a
 * class label or a score), latency and error, and later perhaps the true
 * label. Four harm checks, each an always-valid two-sided normal-mixture
 * confidence sequence on the mean of a per-request difference (stats/
 * paired.h) at rollback_alpha / 4 (Bonferroni: the chance that a harmless
 * candidate is ever stopped by any of them stays below rollback_alpha, at
 * any number of looks), counted only from min_pairs pairs on:
 *
 *   disagreement  1 when the outputs differ (labels unequal, or scores more
 *                 than score_tolerance apart), over requests where both
 *                 answered: harm when the lower bound > max_disagreement
 *   latency       candidate minus control latency: harm when the lower
 *                 bound > max_latency_increase x the control's mean latency
 *   errors        candidate error minus control error (-1, 0, 1): harm when
 *                 the lower bound > max_error_increase
 *   accuracy      candidate correct minus control correct on labelled
 *                 requests with class outputs: harm when the upper bound
 *                 < -max_accuracy_drop
 *
 * The hand-off waits for evidence, not only for time and units: from
 * min_pairs on, every tested check whose limit allows some harm (a
 * positive max_*: by default disagreement and latency) must be proven
 * safe, its interval entirely on the good side of the limit, so a
 * candidate that disagrees on 5 % of requests cannot pass before the
 * disagreement check has the power to see it. A check with a zero limit
 * can never be proven safe against a candidate exactly as good; it only
 * stops.
 *
 * Reported beside them (not used to stop: they are fixed-horizon): the
 * Clopper-Pearson interval of the agreement rate, McNemar's test on
 * accuracy, the paired t test and the quantiles of the latency difference,
 * and the Wilcoxon signed-rank test of the score differences.
 */
#ifndef CORE_SHADOW_H
#define CORE_SHADOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/status.h"
#include "stats/paired.h"

struct core_shadow_config {
    double max_disagreement;     /* default 0.02 */
    double max_latency_increase; /* relative, default 0.05 */
    double max_error_increase;   /* absolute rate, default 0 */
    double max_accuracy_drop;    /* absolute rate, default 0 */
    int64_t min_pairs;           /* default 100 */
    double score_tolerance;      /* scores agree within it, default 0 */
};

/* Defaults (above). Inline: core/rollout.c fills the rollout defaults
 * with it and must not link the statistics for that. */
static inline void
core_shadow_config_default(struct core_shadow_config *c)
{
    *c = (struct core_shadow_config){.max_disagreement = 0.02,
                                     .max_latency_increase = 0.05,
                                     .min_pairs = 100}; /* others 0 */
}

/* What the caller measured over every stored pair, as counts and moments
 * (exact over all pairs), plus bounded samples for the quantiles and the
 * rank test (the most recent pairs, see service/shadow.c). */
struct core_shadow_summary {
    double n_pairs, n_units;
    double n_compared, n_agree;  /* both answered, no error */
    double n_latency;            /* both latencies known */
    double lat_diff_mean, lat_diff_var; /* candidate - control */
    double lat_control_mean, lat_candidate_mean;
    double err_control, err_candidate; /* requests with an error */
    double err_only_control, err_only_candidate;
    double n_labelled;           /* labelled, both answered a class */
    double both_right, only_control_right, only_candidate_right;
    double n_scores;             /* both answered a score */
    const double *lat_diffs;     /* sorted ascending, borrowed */
    size_t n_lat_diffs;
    const double *score_diffs;   /* candidate - control, borrowed */
    size_t n_score_diffs;
};

#define CORE_SHADOW_N_QUANTILES 5
extern const double core_shadow_quantiles[CORE_SHADOW_N_QUANTILES];

struct core_shadow_check {
    bool tested;                 /* enough pairs and a defined interval */
    struct stats_paired_mean mean; /* the per-request difference */
    double limit;                /* the bound the interval is held to */
    bool harm;                   /* the interval lies beyond the limit */
    bool safe;                   /* ... entirely on the good side of it */
};

struct core_shadow_analysis {
    double alpha;                /* level of the reported intervals */
    double check_alpha;          /* rollback_alpha / 4, per check */
    bool has_agreement;
    struct stats_agreement agreement;
    double p_disagreement_exceeds; /* exact binomial P(X >= k | max) */
    bool has_mcnemar;
    struct stats_mcnemar mcnemar;
    double acc_control, acc_candidate;
    bool has_latency_t;
    struct stats_paired_mean latency_t; /* at alpha (reporting) */
    double lat_quantiles[CORE_SHADOW_N_QUANTILES];
    bool has_quantiles;
    bool has_wilcoxon;
    struct stats_wilcoxon wilcoxon;
    struct core_shadow_check disagreement, latency, errors, accuracy;
};

/* Analyse s. alpha: the reported intervals' level; rollback_alpha and
 * n_star (mixture tuning): the harm checks. work: max(n_lat_diffs,
 * n_score_diffs) doubles. Writes *out always. */
void core_shadow_analyze(const struct core_shadow_config *c, double alpha,
                         double rollback_alpha, double n_star,
                         const struct core_shadow_summary *s, double *work,
                         struct core_shadow_analysis *out);

enum core_shadow_verdict {
    CORE_SHADOW_NO_DATA,  /* no pair posted: the paired evidence is silent */
    CORE_SHADOW_WAITING,  /* fewer than min_pairs pairs, or a check with a
                             positive limit not yet proven safe: hold the
                             hand-off */
    CORE_SHADOW_HOLDING,  /* enough pairs, no check failed */
    CORE_SHADOW_REGRESSED /* a check failed: stop the shadow */
};

/* The decision on the paired evidence: the verdict and, for REGRESSED,
 * which check failed with its numbers (reason, human). */
enum core_shadow_verdict core_shadow_decide(
    const struct core_shadow_config *c, const struct core_shadow_summary *s,
    const struct core_shadow_analysis *a, char *reason, size_t len);

const char *core_shadow_verdict_name(enum core_shadow_verdict v);

#endif /* CORE_SHADOW_H */
