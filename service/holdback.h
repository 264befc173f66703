/* holdback.h -- the watch after promotion, on the decision leader: starts
 * a holdback where a rollout would promote, evaluates it every tick with
 * core/holdback.h, raises the alert (decision row "holdback_alert", gauge
 * arbiter_holdback_reversed) and ends it (decision row "holdback_end",
 * state promoted). The running tests and the baseline statistics live in
 * arbiter.rollout_state.tests under "holdback".
 *
 * Two hooks in service/rollout_job.c call it:
 *   evaluate(), after the rollout state is loaded:
 *       if (holdback_tick(db, e, &cfg, &row, now)) { ...; return; }
 *   evaluate(), case CORE_ACTION_PROMOTE:
 *       if (holdback_begin(db, e, &cfg, &dec, &d, &next_row, ...)) break;
 */
#ifndef SERVICE_HOLDBACK_H
#define SERVICE_HOLDBACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/experiment.h"
#include "core/rollout.h"
#include "sql/db_rollout.h"

struct db;

/* When row is in phase "holdback": evaluate, apply what is due, and
 * answer true (the rollout tick has nothing else to do). */
bool holdback_tick(struct db *db, const struct core_experiment *e,
                   const struct core_rollout_config *c,
                   const struct db_rollout *row, int64_t now_ms);

/* When dec promotes and c asks for a holdback: turn the promotion into
 * the start of the holdback. d (action, state, reason), next (phase,
 * tests with the baseline) and *definition, *weights (new strings, the
 * caller frees them) are rewritten; the new reason lives in a
 * thread-local buffer until the next call. Answers false (nothing
 * changed) otherwise. */
bool holdback_begin(struct db *db, const struct core_experiment *e,
                    const struct core_rollout_config *c,
                    const struct core_rollout_decision *dec,
                    struct db_decision *d, struct db_rollout *next,
                    char **definition, char **weights, int64_t now_ms);

/* The gauges (Prometheus text; new string in *out, free()):
 * arbiter_holdback_reversed{experiment,metric} for every primary and
 * guardrail metric of every running two-arm experiment of exps (0 until a
 * watch of this process finds a reversal), and of the watches this
 * process ran arbiter_holdback_active{experiment} and
 * arbiter_holdback_p_running{experiment,metric}. */
void holdback_metrics_render(const struct core_experiment *const *exps,
                             size_t n, char **out, size_t *len);

#endif /* SERVICE_HOLDBACK_H */
