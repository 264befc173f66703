/* rollout.h -- the automated-rollout job (runs on the decision leader) and
 * the manual actions that share its path.
 *
 * Every tick (ARBITER_DECISION_TICK_MS, default 10 s) the job evaluates each
 * running ab / canary / blue_green / shadow experiment: always-valid tests
 * (mSPRT, core of stats/msprt.h) on the primary metric (two-sided) and on
 * every guardrail (one-sided, harm and non-inferiority with the margin),
 * the counting-process test on the error metric, SRM, units and time in
 * the step; core_rollout_decide() turns that into an action, which is
 * applied with its audit row (db_decision_apply). The tests' running state
 * (running minimum p-value, running intersection of intervals) is stored
 * with the rollout, so a new leader continues where the old one stopped.
 */
#ifndef SERVICE_ROLLOUT_JOB_H
#define SERVICE_ROLLOUT_JOB_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/experiment.h"
#include "core/rollout_eval.h"
#include "lib/status.h"

struct app;
struct db;

struct rollout_job;
struct rollout_job *rollout_job_new(struct app *app, int tick_ms);
void rollout_job_free(struct rollout_job *j);
/* leader_job_fn: arg is the rollout_job. */
void rollout_job_tick(void *arg, struct db *db, int64_t now_ms);

/* The rollout's state for results: phase, step, share, what it waits for,
 * the last tick's evidence. New reference; json null if none yet. */
json_t *rollout_status_json(struct db *db, const struct core_experiment *e,
                            int64_t now_ms);

/* Before a draft canary starts: its weights become the first step's, in
 * the stored definition, so the start serves steps[0] at once (never the
 * declared weights until the first tick, which would move units out of
 * the candidate when the first step is smaller). AB_OK when done or when
 * there is nothing to do (not a draft canary, or already at steps[0]);
 * AB_ECONFLICT when the experiment changed concurrently; AB_EDB. */
ab_status rollout_job_prepare_start(struct db *db, const char *key);

/* Whether the arm weights of e, in this life-cycle state, belong to the
 * rollout engine (a running or paused canary, blue-green or shadow): a
 * manual change would be overridden at the next tick and move units. */
bool rollout_job_owns_weights(const struct core_experiment *e,
                              const char *state);

#endif /* SERVICE_ROLLOUT_JOB_H */
