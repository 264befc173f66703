/* metrics.h -- Prometheus metrics (text exposition format 0.0.4).
 *
 * Hot paths only touch relaxed atomics: request counters and latency
 * histograms per (route, status), assignment counters per (experiment,
 * arm). Components own their other counters and gauges as atomics and
 * register them once at start-up.
 */
#ifndef LIB_METRICS_H
#define LIB_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Call once before threads start. */
/* The HTTP series are labelled by route: patterns[i] and methods[i] name
 * route i (borrowed; they must outlive the registry). The ground layer
 * knows nothing of the route table: the server passes its labels in. */
void metrics_init(size_t n_routes, const char *const *patterns,
                  const char *const *methods);
void metrics_free(void);

/* route: index into the labels given to metrics_init, or n_routes for
 * "no route matched". */
void metrics_observe_request(size_t route, int status, uint64_t nanos);

/* A counter that lives for the life of the process; the same pointer for
 * the same (experiment, arm). Thread-safe; takes a lock: call it when a
 * snapshot is built, not per request. */
_Atomic uint64_t *metrics_assign_counter(const char *experiment,
                                         const char *arm);

/* The label-set limit: at most max_label_sets label sets naming an
 * experiment get their own series (0, the default: no limit) -- one per
 * experiment (metrics_experiment_labelled: the per-experiment rollout
 * series) and one per (experiment, arm) (metrics_assign_counter), first
 * come first served for the life of the process. Past it, a new label set
 * is folded: metrics_assign_counter answers the counter rendered as
 * experiment="other",arm="other", metrics_experiment_labelled answers
 * false (the caller renders it under experiment="other"), and
 * arbiter_metrics_label_sets_dropped_total counts it once. Call before
 * the first snapshot. */
void metrics_set_label_limit(size_t max_label_sets);
/* True when the experiment's own label set is within the limit (it is
 * taken now if new). Takes the lock: once per experiment per render. */
bool metrics_experiment_labelled(const char *experiment);

/* METRICS_GAUGE_MILLI: a gauge kept in thousandths, rendered divided by
 * 1000 (a duration in ms shown in the base unit, seconds). */
enum metrics_type { METRICS_COUNTER, METRICS_GAUGE, METRICS_GAUGE_MILLI };
/* Register a process-wide value; name must be a valid metric name and
 * stay valid (static). At most 64. */
void metrics_register(const char *name, const char *help,
                      enum metrics_type type, _Atomic int64_t *value);

/* Render everything; new string in *out (free()), length in *len. */
void metrics_render(char **out, size_t *len);

#endif /* LIB_METRICS_H */
