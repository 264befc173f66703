/* drift_job.h -- the drift watch on the decision leader (issue 16): every
 * metric declared with "drift" (core/experiment.h, struct core_drift) of
 * every experiment that is not a draft is looked at, at most once per
 * interval_s and only when new values came in: the reference sample
 * (captured once, sql/migrations/018_drift.sql) against the current
 * window, by stats/drift.h (PSI; the two-sample KS test spending alpha
 * over looks). Each look is stored in arbiter.drift_state (GET .../results
 * "drift", the view arbiter.drift) and shown in /metrics.
 */
#ifndef SERVICE_DRIFT_JOB_H
#define SERVICE_DRIFT_JOB_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct db;
struct core_experiment;

/* The leader job; arg is the struct app. */
void drift_job_tick(void *arg, struct db *db, int64_t now_ms);

/* The watch of every drift metric of e, for GET .../results: a JSON array
 * (new reference; [] when none is declared), with "status" per metric:
 * "collecting_reference", "watching" or "drift". */
json_t *drift_results_json(struct db *db, const struct core_experiment *e);

/* Gauges (Prometheus text, new string in *out, free()), each
 * {experiment, metric}: arbiter_drift_detected for every declared watch
 * of a non-draft experiment of exps (0 until this process finds drift;
 * latched); of the watches this process looked at arbiter_drift_psi,
 * arbiter_drift_ks_statistic, arbiter_drift_ks_p_value and
 * arbiter_drift_looks. */
void drift_metrics_render(const struct core_experiment *const *exps,
                          size_t n, char **out, size_t *len);

#endif /* SERVICE_DRIFT_JOB_H */
