/* rollout_eval.h -- from sufficient statistics to the evidence a rollout
 * decision needs (core/rollout.h). Pure: the service feeds it the
 * statistics it reads from PostgreSQL, the simulator (tests/tools/sim_rollouts.c)
 * feeds it synthetic ones; both get the same verdicts.
 *
 *   primary    two-sided always-valid mSPRT per treatment arm at
 *              alpha / (arms - 1) (Bonferroni keeps the time-uniform
 *              guarantee across arms); WIN / HARM from the sign of the
 *              running interval (Johari, Pekelis & Walsh 2017)
 *   guardrail  for "lower is better" (higher: mirrored) with relative
 *              margin m, control mean mu_c:
 *                harm: one-sided running bound ci_low > m |mu_c|
 *                safe: the non-inferiority test (effect < m |mu_c|) rejects
 *              both always valid (Howard et al. 2021), so checking every
 *              tick keeps the false rollback rate at or below alpha per
 *              guardrail
 *   errors     the counting-process e-value test (stats/counts.h) on the
 *              error metric's counts per period of constant share; valid
 *              while the share ramps
 *   srm        with two live arms, the same anytime-valid conditional
 *              binomial e-value test on the units of this weights version
 *              (each unit lands in the candidate with the configured
 *              share under H0), so checking every tick does not inflate
 *              false pauses; with more arms, Pearson's chi-square
 *              (stats/srm.h); p < 0.001 is a mismatch
 */
#ifndef CORE_ROLLOUT_EVAL_H
#define CORE_ROLLOUT_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/experiment.h"
#include "core/rollout.h"
#include "stats/counts.h"
#include "stats/msprt.h"

#define CORE_EVAL_MAX_ARMS 16
#define CORE_EVAL_MAX_METRICS 16

/* Sufficient statistics of one (metric, arm), as arbiter.arm_stats holds
 * them: n is the analysis population; den_* and cross_sum for ratios. */
struct core_eval_stats {
    double n, sum, sum_sq, den_sum, den_sum_sq, cross_sum;
    double units_with_events;
};

/* The running state of every test, carried from tick to tick. */
struct core_eval_tests {
    struct stats_msprt_state primary[CORE_EVAL_MAX_METRICS]
                                    [CORE_EVAL_MAX_ARMS];
    struct stats_msprt_state harm[CORE_EVAL_MAX_METRICS][CORE_EVAL_MAX_ARMS];
    struct stats_msprt_state safe[CORE_EVAL_MAX_METRICS][CORE_EVAL_MAX_ARMS];
    double errors_p; /* running minimum */
    double srm_p;    /* running minimum of the sequential SRM test ... */
    int64_t srm_version; /* ... of this weights version */
};
void core_eval_tests_init(struct core_eval_tests *t);

enum core_eval_kind { CORE_EVAL_PRIMARY, CORE_EVAL_GUARDRAIL };

/* One tested (metric, arm) against control, for the audit trail. */
struct core_eval_line {
    enum core_eval_kind kind;
    size_t metric, arm;
    double control_mean, effect, se;
    double ci_low, ci_high; /* running; one-sided for guardrails */
    double p_running;       /* primary: two-sided; guardrail: safety test */
    double p_harm;          /* guardrail: the harm test's running p (the
                               test that rolls back, at alpha_harm) */
    double margin_abs;
    enum core_verdict verdict;
};

struct core_eval_report {
    struct core_eval_line lines[2 * CORE_EVAL_MAX_METRICS *
                                CORE_EVAL_MAX_ARMS];
    size_t n_lines;
    double srm_chi2;
    bool errors_tested;
    double errors_c, errors_t, errors_p, errors_p_running;
    double alpha_harm;      /* each harm test's level (Bonferroni) */
    /* planning (core_rollout_config.plan_*): per tested metric, the units
     * per arm at which its harm test has plan_power at the stated harm */
    struct core_eval_plan {
        size_t metric;
        double harm_abs;          /* the stated harm, in metric units */
        double units_control, units_candidate; /* planned */
        double have_control, have_candidate;   /* observed */
        bool reached;
    } plans[CORE_EVAL_MAX_METRICS];
    size_t n_plans;
};

struct core_eval_input {
    /* stats[m * CORE_EVAL_MAX_ARMS + a] for e->metrics[m], e->arms[a] */
    const struct core_eval_stats *stats;
    const double *srm_units;   /* per arm: units of this weights version */
    double total_units;        /* units exposed so far, all versions */
    int64_t weights_version;   /* of srm_units */
    const struct stats_count_period *errors; /* error metric's periods */
    size_t n_errors;
    int64_t now_ms;
};

/* The summary of metric m's arm statistics s by the analysis' per-kind
 * rule (core_metric_kind_summary(), as GET /results); AB_ENUMERIC below
 * min_units units. The engine and the holdback watch summarise with it. */
ab_status core_eval_summary(const struct core_metric *m,
                            const struct core_eval_stats *s, double min_units,
                            struct stats_summary *out);

/* Evaluate; AB_EINVAL when e has more arms or metrics than the limits.
 * tests is read and updated; ev and rep are written. */
/* The side on which a guardrail is harmed: treatment minus control is
 * GREATER than zero for a "lower is better" (decrease) metric, LESS for an
 * "higher is better" (increase) one. The one definition of a guardrail's
 * sidedness: the rollout engine and GET /results both call it. */
enum stats_side core_guardrail_harm_side(const struct core_metric *m);

/* The level of each harm test: rollback_alpha / the number of harm tests
 * (guardrails per treatment arm, quantile guardrails included, the error
 * test, a canary's primary). */
double core_rollout_alpha_harm(const struct core_experiment *e,
                               const struct core_rollout_config *c);

ab_status core_rollout_evaluate(const struct core_experiment *e,
                                const struct core_rollout_config *c,
                                const struct core_eval_input *in,
                                struct core_eval_tests *tests,
                                struct core_rollout_evidence *ev,
                                struct core_eval_report *rep);

#endif /* CORE_ROLLOUT_EVAL_H */
