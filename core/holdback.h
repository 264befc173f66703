/* holdback.h -- the watch after promotion. Pure: the service
 * (service/holdback.c) feeds it the statistics it reads from PostgreSQL,
 * the tests feed it synthetic ones.
 *
 * A rollout with a holdback (rollout.holdback_pct > 0, two arms) does not
 * hand every unit to the winner at once: the decision that would promote
 * starts a holdback instead. The winner ("promoted") serves 100 - h % of
 * the traffic and the previous version (the control arm) keeps h %, with
 * weights fixed for holdback_s seconds (so every unit keeps its arm: the
 * arm hash is ramp-monotone and a unit below the control's share at every
 * earlier step is still below it). When the period ends, the promotion
 * completes (state promoted, every unit gets the winner).
 *
 * The test. Only units new since the holdback began count: the statistics
 * are the increments of the per-arm sufficient statistics since the start
 * (stored then as the baseline). For every primary metric and guardrail,
 * a one-sided always-valid mSPRT (stats/msprt.h; Johari, Pekelis & Walsh
 * 2017) of "the promoted arm is worse than the previous version"
 * (promoted minus previous < 0 when higher is better, > 0 when lower is
 * better; null: no difference), at alpha / (number of tested metrics)
 * (Bonferroni): the chance that a holdback whose benefit holds is ever
 * flagged, over every metric and every look however long the watch runs,
 * is at most alpha. A rejection is a reversal: the service raises the
 * alert (decision row, gauge) and the holdback then waits for a person
 * (POST .../promote or .../rollback) instead of completing by itself.
 * Binary metrics use the pooled variance, as the rollout engine does.
 */
#ifndef CORE_HOLDBACK_H
#define CORE_HOLDBACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/experiment.h"
#include "core/rollout_eval.h"
#include "stats/msprt.h"

struct core_holdback_config {
    uint32_t share;     /* previous version's share, millionths; 0 = off */
    int64_t period_s;   /* how long; 0 = until a person ends it */
    double alpha;       /* default 0.05 */
    double tuning;      /* mSPRT n*, default the rollout's tuning */
    double min_units;   /* per arm before a test counts, default 100 */
};

/* The running tests, carried between ticks (service: JSON in
 * arbiter.rollout_state.tests). */
struct core_holdback_tests {
    struct stats_msprt_state worse[CORE_EVAL_MAX_METRICS];
    bool alerted;
};
void core_holdback_tests_init(struct core_holdback_tests *t);

struct core_holdback_line {
    size_t metric;
    bool tested;              /* enough units in both arms */
    double n_previous, n_promoted;
    double mean_previous, mean_promoted;
    double effect;            /* promoted minus previous */
    double ci_low, ci_high;   /* running, one-sided */
    double p_running;
    bool reversed;
};

enum core_holdback_verdict {
    CORE_HOLDBACK_HOLDING,  /* no reversal; the period runs */
    CORE_HOLDBACK_REVERSED, /* a reversal (first seen at this look or
                               earlier: tests->alerted says which) */
    CORE_HOLDBACK_ENDED     /* the period ended without a reversal */
};

struct core_holdback_result {
    enum core_holdback_verdict verdict;
    bool new_alert;           /* the reversal was first seen at this look */
    size_t reversed_metric;   /* the first reversed metric */
    double alpha_each;
    struct core_holdback_line lines[CORE_EVAL_MAX_METRICS];
    size_t n_lines;
};

/* stats_now / stats_base: [m * CORE_EVAL_MAX_ARMS + a] as in
 * core_eval_input (base: at the start of the holdback; NULL = zeros).
 * previous / promoted: arm indexes. AB_EINVAL: bad arms, more metrics
 * than the limit, share or alpha out of range. tests is read and updated;
 * *out written on AB_OK. */
ab_status core_holdback_evaluate(const struct core_experiment *e,
                                 const struct core_holdback_config *c,
                                 size_t previous, size_t promoted,
                                 const struct core_eval_stats *stats_now,
                                 const struct core_eval_stats *stats_base,
                                 int64_t started_ms, int64_t now_ms,
                                 struct core_holdback_tests *tests,
                                 struct core_holdback_result *out);

#endif /* CORE_HOLDBACK_H */
