/* rollout_json.h -- the "rollout" object of an experiment definition:
 *
 *   {"alpha": 0.05, "tuning": 5000, "margin": 0,
 *    "auto_promote": true, "max_duration_s": 0, "max_units": 0,
 *    "steps": [1, 5, 10, 25, 50, 100], "step_min_s": 60,
 *    "step_min_units": 100, "step_max_s": 0, "require_evidence": false,
 *    "manual_approval": false, "adaptive": false, "error_metric": null,
 *    "smoke_s": 60, "rollback_window_s": 600, "shadow_min_s": 60,
 *    "shadow_min_units": 100, "then": "canary", "no_traffic_s": 0,
 *    "min_test_units": 100, "rollback_alpha": 0.02, "plan_power": 0.99, "plan_error_ratio": 2,
 *    "plan_regression": 0.10,
 *   ["holdback_pct": 5, "holdback_s": 86400, "holdback_alpha": 0.05,]
 *    "paired": {...}}             (shadow: codec/shadow_json.h)
 *
 * One table in rollout_json.c lists the fields in this order: the order
 * they are printed in and checked in (the first bad one is reported). The
 * holdback fields are printed only when holdback_pct > 0.
 *
 * Every field is optional (defaults above; see core/rollout.h for what
 * they do). steps are the candidate's share in percent, increasing, the
 * last 100. margin is relative (0.02: a guardrail may be 2 % worse).
 */
#ifndef CODEC_ROLLOUT_JSON_H
#define CODEC_ROLLOUT_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "core/experiment.h"
#include "core/rollout.h"
#include "lib/status.h"

/* Parse obj (NULL: defaults) for experiment e (its metrics are checked).
 * AB_EINVAL with "rollout.<field>: ..." in err. */
ab_status api_rollout_parse(const json_t *obj, const struct core_experiment *e,
                            struct core_rollout_config *out, char *err,
                            size_t errlen);

/* Canonical object, every field filled in. New reference. */
json_t *api_rollout_json(const struct core_rollout_config *c);

/* The config of e (its stored rollout text, or defaults). AB_EINVAL only if
 * the stored text does not parse (never for stored definitions). */
ab_status api_rollout_config(const struct core_experiment *e,
                             struct core_rollout_config *out);

#endif /* CODEC_ROLLOUT_JSON_H */
