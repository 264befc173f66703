/* metric_kind.h -- the one definition of every metric kind: what a value
 * means, which events count, how a unit's values aggregate into the
 * per-unit value y, which units form the analysis population n, which
 * tests apply and whether CUPED applies. Read by the analysis
 * (core/analysis.c), GET /results (api/h_results.c), the rollout engine
 * (core/rollout_eval.c), the analysis and definition codecs; the SQL that
 * folds events (sql/migrations: arbiter.contribution(), arbiter.fold(),
 * arbiter.arm_stats, arbiter.error_periods()) implements the same rows,
 * each statement citing this table. Pure: static data.
 *
 * | kind   | one event's value        | y of a unit (its events of m) | n           | tests                  | CUPED |
 * |--------|--------------------------|-------------------------------|-------------|------------------------|-------|
 * | binary | 1 converted, 0 did not   | [sum of values > 0]           | pop(A)      | z (two-proportion),    | yes   |
 * |        |                          |                               |             | welch, msprt, gst,     |       |
 * |        |                          |                               |             | bayes (Beta-Binomial)  |       |
 * | sum    | an amount (revenue)      | sum of values (0 without)     | pop(A)      | welch, z, msprt, gst,  | yes   |
 * |        |                          |                               |             | bayes (normal)         |       |
 * | mean   | one measurement          | mean of values                | units with  | welch, z, msprt, gst,  | yes   |
 * |        | (latency of a request)   |                               | events of m | bayes (normal)         |       |
 * | ratio  | the numerator of one     | sum of values, over d = count | units with  | delta method: welch,   | no    |
 * |        | request (errors: 1 or 0) | of events (the denominator)   | events of m | z, msprt, gst, bayes   |       |
 *
 * Events that count: every event of metric m for the unit, whatever its
 * value (a binary 0 is an observed non-conversion, counted in n_u but not
 * converting). A unit enters the population only through an exposure or
 * an event of an analysed metric; an event of a covariate alone (the
 * pre-period) does not expose the unit. Error counts (the rollout's
 * error_metric, any kind) count events whose value is nonzero: 0 records
 * a request that did not fail. Attribution when the served arm changed
 * (README, "Attribution"; sql/migrations/015_attribution.sql): outcomes
 * belong to the arm the unit was served when the event happened, and
 * pop(A) = the units exposed in arm A plus the units with an outcome event
 * (of a declared metric) credited to A; y and the covariate x of a member
 * without events are 0. A moved unit is in both arms' populations.
 */
#ifndef CORE_METRIC_KIND_H
#define CORE_METRIC_KIND_H

#include <stdbool.h>

#include "core/experiment.h"
#include "lib/status.h"
#include "stats/common.h"
#include "stats/delta.h"

struct core_metric_kind_def {
    enum core_metric_kind kind;
    const char *name;           /* the API's word */
    const char *value;          /* what one event's value means */
    const char *unit_value;     /* how a unit's events aggregate */
    bool values_01;             /* values are 0 or 1: y <= 1, sum <= n */
    bool n_exposed;             /* n = exposed units (else: with events) */
    bool ratio_moments;         /* den_sum, den_sum_sq, cross_sum */
    bool prop_test;             /* the two-proportion z test applies */
    bool beta_binomial;         /* bayes without a prior: Beta-Binomial */
    bool cuped;                 /* CUPED applies */
};

/* The row of kind k (never NULL: an unknown value reads as "mean"). */
const struct core_metric_kind_def *core_metric_kind_def(enum core_metric_kind k);

/* The kind named s; AB_EINVAL when none is. */
ab_status core_metric_kind_parse(const char *s, enum core_metric_kind *out);

/* The summary (n, mean, variance of the per-unit value y) of one arm's
 * sufficient statistics m (num_* are the sums of y; den_* and cross_sum
 * are read for ratios only): the delta-method variance for ratios.
 * The one summary of the analysis (core/analysis.h) and the rollout
 * engine (core/rollout_eval.h). '*out' is written only on AB_OK. */
ab_status core_metric_kind_summary(enum core_metric_kind k,
                                   const struct stats_ratio_moments *m,
                                   struct stats_summary *out,
                                   enum stats_reason *why);

/* "binary", "sum", "mean", "ratio", for messages listing the kinds. */
extern const char core_metric_kind_list[];

#endif /* CORE_METRIC_KIND_H */
