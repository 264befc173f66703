/* quantile_guard.c -- quantile guardrails (rules in quantile_guard.h;
 * the sequence: Howard & Ramdas 2022, stats/quantile.c). */
#include "core/quantile_guard.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

enum core_verdict
core_quantile_guard_verdict(const struct stats_quantile_diff *cs,
                            enum core_direction direction, double margin)
{
    if (direction == CORE_DECREASE) {
        if (cs->rel_low >= margin)
            return CORE_VERDICT_HARM;
        if (cs->rel_high <= margin)
            return CORE_VERDICT_WIN;
    } else {
        if (cs->rel_high <= -margin)
            return CORE_VERDICT_HARM;
        if (cs->rel_low >= -margin)
            return CORE_VERDICT_WIN;
    }
    return CORE_VERDICT_OPEN;
}

void
core_quantile_guard_merge(struct core_rollout_evidence *ev,
                          const char *const *names,
                          const enum core_verdict *verdicts, size_t n)
{
    if (n == 0)
        return;
    size_t harm = 0, win = 0, none = 0, first = n;
    for (size_t i = 0; i < n; i++) {
        if (verdicts[i] == CORE_VERDICT_HARM && first == n)
            first = i;
        harm += verdicts[i] == CORE_VERDICT_HARM;
        win += verdicts[i] == CORE_VERDICT_WIN;
        none += verdicts[i] == CORE_VERDICT_NONE;
    }
    if (harm > 0) {
        if (ev->guardrails != CORE_VERDICT_HARM) {
            snprintf(ev->failed_guardrail, sizeof(ev->failed_guardrail), "%s",
                     names[first]);
            snprintf(ev->failed_test, sizeof(ev->failed_test),
                     "guardrail \"%s\" failed (quantile significantly "
                     "worse than the margin)",
                     ev->failed_guardrail);
        }
        ev->guardrails = CORE_VERDICT_HARM;
        return;
    }
    if (ev->guardrails == CORE_VERDICT_HARM)
        return;
    if (ev->guardrails == CORE_VERDICT_NONE && none == n)
        return; /* nothing tested yet */
    if (ev->guardrails == CORE_VERDICT_NONE ||
        ev->guardrails == CORE_VERDICT_WIN)
        ev->guardrails = win == n ? CORE_VERDICT_WIN : CORE_VERDICT_OPEN;
}
