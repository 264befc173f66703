/* shadow_json.h -- the "paired" member of the "rollout" object (the paired
 * shadow checks, core/shadow.h) and the paired analysis answer:
 *
 *   "paired": {"max_disagreement": 0.02, "max_latency_increase": 0.05,
 *              "max_error_increase": 0, "max_accuracy_drop": 0,
 *              "min_pairs": 100, "score_tolerance": 0}
 *
 * Every field is optional (defaults above). Rates are fractions of
 * requests; max_latency_increase is relative to the serving model's mean
 * latency (0.05: 5 % slower is tolerated).
 */
#ifndef CODEC_SHADOW_JSON_H
#define CODEC_SHADOW_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "core/shadow.h"
#include "lib/status.h"

/* Parse obj (NULL or null: leave *c as it is) into *c. AB_EINVAL with
 * "rollout.paired.<field>: ..." in err. */
ab_status api_shadow_config_parse(const json_t *obj,
                                  struct core_shadow_config *c, char *err,
                                  size_t len);

/* Canonical object, every field. New reference. */
json_t *api_shadow_config_json(const struct core_shadow_config *c);

/* The analysis answer (see docs/openapi.json, ShadowAnalysis). New
 * reference. */
json_t *api_shadow_analysis_json(const struct core_shadow_config *c,
                                 const struct core_shadow_summary *s,
                                 const struct core_shadow_analysis *a,
                                 enum core_shadow_verdict v,
                                 const char *reason);

#endif /* CODEC_SHADOW_JSON_H */
