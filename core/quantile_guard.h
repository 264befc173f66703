/* quantile_guard.h -- a quantile metric as a rollout guardrail ("p99
 * latency no more than 10 % worse"), the pure part. Pure: no I/O.
 *
 * The evidence is the always-valid confidence sequence of the relative
 * difference Q_t / Q_c - 1 (stats/quantile.h, stats_quantile_cs) at the
 * level 1 - alpha_harm that every harm test of the rollout gets
 * (core_rollout_alpha_harm: rollback_alpha shared by Bonferroni), with the
 * rollout's relative margin m:
 *   lower is better ("decrease", latency):
 *     harm:  rel_low >= m     (provably worse than the margin allows)
 *     safe:  rel_high <= m    (provably within the margin)
 *   higher is better ("increase"): mirrored, harm rel_high <= -m,
 *     safe rel_low >= -m
 * (>=: the sequence's bounds are sketch bucket edges that the quantiles lie
 * strictly inside -- Q_t > L_t and Q_c <= U_c, so L_t / U_c - 1 >= m means
 * Q_t / Q_c - 1 > m; stats/quantile.h. A lower bound of 0, the zero
 * bucket, gives rel_low = -1 and never harms.)
 * The sequence holds at every tick simultaneously with probability
 * >= 1 - alpha_harm, so checking it on every tick rolls a harmless
 * candidate back with probability <= alpha_harm, however long it runs.
 * Below min_units values in either arm the verdict is NONE.
 */
#ifndef CORE_QUANTILE_GUARD_H
#define CORE_QUANTILE_GUARD_H

#include <stddef.h>

#include "core/experiment.h"
#include "core/rollout.h"
#include "stats/quantile.h"

/* The verdict of one quantile guardrail from its sequence. */
enum core_verdict core_quantile_guard_verdict(
    const struct stats_quantile_diff *cs, enum core_direction direction,
    double margin);

/* Fold quantile guardrail verdicts into the evidence the other
 * guardrails produced (core_rollout_evaluate): any HARM fails the
 * guardrails (naming the first failed metric, unless one already failed);
 * WIN stays WIN only when every quantile guardrail is WIN too; NONE (no
 * other guardrail) takes the quantile verdicts' combination. */
void core_quantile_guard_merge(struct core_rollout_evidence *ev,
                               const char *const *names,
                               const enum core_verdict *verdicts, size_t n);

#endif /* CORE_QUANTILE_GUARD_H */
