/* fold.h -- the aggregation fold: committed raw events -> per-unit values
 * and per-arm sufficient statistics, exactly once (the watermark argument
 * is in sql/migrations/006_fold.sql).
 *
 *   writers (every process): COPY raw events, commit, answer 2xx
 *   fold (a leader job; woken early by readers, service/fold_read.h):
 *       arbiter.fold(FOLD_BATCH_EVENTS) until nothing committed is left
 *       or the tick's time budget is spent
 *
 * Freshness: arbiter.fold_status() (lag in seconds and events), the
 * trailing columns fold_watermark and folded_at of arbiter.arm_stats, the
 * gauges below in /metrics, and "freshness" in GET /results. A decision
 * (rollout engine, bandit job) must not act while the lag exceeds
 * FOLD_MAX_AGE_MS_DEFAULT (fold_stale()); the fold job is registered
 * before them, so on the leader it has just run when they read.
 */
#ifndef SERVICE_FOLD_H
#define SERVICE_FOLD_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/status.h"

struct db;
struct fold;

/* events per fold transaction (one statement each) */
#define FOLD_BATCH_EVENTS 200000
/* a tick folds for at most this long, then lets the other jobs run */
#define FOLD_TICK_BUDGET_MS 3000
/* a run that folded something runs again this soon (not at the tick) */
#define FOLD_BUSY_GAP_MS 200
/* decisions wait while the oldest unfolded committed event is older */
#define FOLD_MAX_AGE_MS_DEFAULT 5000

/* A fold job; registers its gauges and counters in /metrics:
 *   arbiter_fold_events_total, arbiter_fold_runs_total,
 *   arbiter_fold_errors_total, arbiter_fold_lag_seconds,
 *   arbiter_fold_lag_events, arbiter_fold_events_per_second,
 *   arbiter_fold_watermark (lag and rate: as of the leader's last tick),
 *   arbiter_fold_units_held, arbiter_fold_units_dirty,
 *   arbiter_fold_checkpoint_errors_total. The per-unit values live in
 *   memory (service/fold_units.h) and are checkpointed every
 *   checkpoint_ms.
 * Release with fold_free(). */
struct fold *fold_new(int64_t checkpoint_ms);
void fold_free(struct fold *f);

/* The leader whose wake job this fold is (service/leader.h): a run that
 * folded something asks for another FOLD_BUSY_GAP_MS later, so that a busy
 * fold runs about five times a second instead of once per tick. */
struct leader;
void fold_set_leader(struct fold *f, struct leader *l);

/* leader_job_fn: fold until caught up or FOLD_TICK_BUDGET_MS is spent;
 * arg is the fold. */
void fold_job(void *arg, struct db *db, int64_t now_ms);

/* Read your writes (GET /results, /bandit): service/fold_read.h waits
 * for this job instead of folding in the request. */

/* True when decisions must wait: the statistics are older than max_age_ms
 * (or their age cannot be read); *lag_ms gets the age when known. */
bool fold_stale(struct db *db, int64_t max_age_ms, int64_t *lag_ms);

/* ---- decisions wait on stale statistics ------------------------------------
 *
 * A gate for one deciding job (the rollout engine, the bandit job): once
 * per tick, fold_gate_check() reads the fold's lag; while it exceeds the
 * job's bound (ARBITER_FOLD_MAX_AGE_MS, FOLD_MAX_AGE_MS_DEFAULT), or
 * cannot be read, the job decides nothing and says so: a log line when a
 * wait starts and when it ends (with the lag and the bound), the counter
 * arbiter_<job>_stale_waits_total (ticks that waited) and the gauge
 * arbiter_<job>_statistics_age_seconds (the lag it last saw). */
struct fold_gate;

/* job: "rollout" or "bandit" (the metric names are fixed per job). */
struct fold_gate *fold_gate_new(const char *job, int64_t max_age_ms);
void fold_gate_free(struct fold_gate *g);
/* True when this tick must not decide (see above). */
bool fold_gate_check(struct fold_gate *g, struct db *db);

#endif /* SERVICE_FOLD_H */
