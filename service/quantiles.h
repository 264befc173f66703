/* quantiles.h -- quantile metrics in the service: their sketches read from
 * PostgreSQL (arbiter.quantile_buckets, kept by the fold), the /results
 * entry and the rollout engine's quantile guardrails.
 *
 * Statistics: stats/quantile.h (fixed horizon: order-statistic standard
 * errors, Price & Bonett 2002; always valid: Howard & Ramdas 2022 beta-
 * binomial confidence sequence); rules: core/quantile_guard.h. */
#ifndef SERVICE_QUANTILES_H
#define SERVICE_QUANTILES_H

#include <jansson.h>
#include <stddef.h>

#include "core/experiment.h"
#include "core/rollout.h"

struct db;

/* The "analysis" of quantile metric e->metrics[metric] for /results: per
 * arm n and the q-quantile; per treatment arm the difference, relative
 * difference, interval and verdict. method "msprt" (the default): the
 * always-valid confidence sequence; "welch", "z", "bayes": the fixed-
 * horizon interval (stated in "interval"). New reference; a
 * {"status": "unavailable"} object when the database fails. */
json_t *quantiles_results_json(struct db *db, const struct core_experiment *e,
                               size_t metric, const char *method,
                               double alpha);

/* The rollout hook (service/rollout_job.c, after gather()): evaluates every
 * quantile guardrail of e sequentially at the rollout's harm level and
 * margin, merges the verdicts into *ev (core_quantile_guard_merge) and
 * adds "quantile_guardrails" to details (borrowed; may be NULL). A
 * database failure leaves *ev as it was (the guardrails stay open: the
 * step waits) and is logged. */
void quantiles_rollout_hook(struct db *db, const struct core_experiment *e,
                            const struct core_rollout_config *c,
                            struct core_rollout_evidence *ev,
                            json_t *details);

#endif /* SERVICE_QUANTILES_H */
