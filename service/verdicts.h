/* verdicts.h -- the decision leader's latest rollout decision per
 * experiment, kept in memory for the verdict route (Argo Rollouts' web
 * metric, Flagger's webhooks) and the per-experiment rollout metrics.
 *
 * The rollout job records each decision it has applied (one call where a
 * decision is made); readers never recompute a decision and never touch
 * PostgreSQL. Process-wide, thread-safe (one mutex, held for a copy).
 */
#ifndef SERVICE_VERDICTS_H
#define SERVICE_VERDICTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/experiment.h"
#include "core/rollout.h"
#include "lib/status.h"

/* What a controller reads. Words are stable: "continue", "promote",
 * "rollback", "paused", "stopped". */
struct verdict {
    char experiment[CORE_KEY_MAX + 1];
    const char *verdict;       /* static */
    const char *phase;         /* static; "" when no decision is known */
    int64_t step;              /* -1 when unknown */
    double share;              /* candidate share, percent of traffic */
    char reason[CORE_KEY_MAX + 224]; /* as struct core_rollout_decision */
    int64_t decided_at_ms;     /* 0: no decision in memory */
    int64_t version;           /* experiment row version decided on */
    const char *action;        /* the last action ("none" for a tick
                                  without one); static */
};

/* The rollout job, after db_decision_apply() returned rc: records the
 * decision when it was applied (rc == AB_OK) and counts it by action. */
void verdicts_record(const struct core_experiment *e,
                     const struct core_rollout_decision *d, ab_status rc,
                     int64_t now_ms);

/* The verdict for e from memory: the snapshot's state where it has moved
 * past the last recorded decision (manual actions, another leader), else
 * the last recorded decision; running with no decision: "continue". */
void verdicts_get(const struct core_experiment *e, struct verdict *out);

/* Prometheus text for every experiment of the given list: rollout state,
 * candidate share, verdict, decisions by action. labelled[i] false (the
 * metrics label-set limit, lib/metrics.h) folds experiment i into
 * experiment="other": states and verdicts counted, decisions summed, no
 * share; labelled NULL: every experiment has its own. New string in *out. */
void verdicts_metrics_render(const struct core_experiment *const *exps,
                             size_t n, const bool *labelled, char **out,
                             size_t *len);

/* Forget everything (tests). */
void verdicts_reset(void);

#endif /* SERVICE_VERDICTS_H */
