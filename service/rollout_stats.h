/* rollout_stats.h -- the arm statistics the decision jobs read: the typed
 * rows of arbiter.arm_stats (sql/db_stats.h) as the engine's grid
 * (core/rollout_eval.h). Shared by the rollout tick (rollout_job.c) and the
 * holdback watch (holdback.c), which the rollout tick drives; in a file of
 * its own so that neither job includes the other's reader. */
#ifndef ARBITER_SERVICE_ROLLOUT_STATS_H
#define ARBITER_SERVICE_ROLLOUT_STATS_H

#include "core/experiment.h"
#include "core/rollout_eval.h"
#include "lib/status.h"
#include "sql/db.h"

/* The current arm statistics of e as the engine reads them (typed rows of
 * arbiter.arm_stats, sql/db_stats.h) into grid[m * CORE_EVAL_MAX_ARMS + a]
 * (CORE_EVAL_MAX_METRICS x CORE_EVAL_MAX_ARMS, zeros where there is no
 * row); the rollout tick and the holdback watch read through it. */
ab_status rollout_stats_read(struct db *db, const struct core_experiment *e,
                             struct core_eval_stats *grid);

#endif
