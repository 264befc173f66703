/* experiment_json.h -- experiment definitions as JSON: parse + validate,
 * and the canonical form that is stored and returned by the API.
 *
 * Definition document (fields; unknown fields are refused):
 *   key            string [A-Za-z0-9][A-Za-z0-9_.-]{0,63}         required
 *   description    string                                       default ""
 *   strategy       "ab"|"canary"|"blue_green"|"shadow"|"bandit"  default "ab"
 *   unit_type      string                                   default "user"
 *   arms           [{name, weight (number, percent), model, control}]
 *                  weights sum to 100 (4 decimals), exactly one control
 *   coverage       number in [0, 1]                              default 1
 *   targeting      [{attribute, op, value | values}]               default []
 *                  op: eq ne in not_in lt le gt ge semver_eq semver_lt
 *                      semver_le semver_gt semver_ge exists
 *   forced         {"unit id": "arm name", ...}                    default {}
 *   layer          {"name": string, "range": [lo, hi] percent} | null
 *   salt           string                              default: the key
 *   bucket_version integer >= 1                                  default 1
 *   min_bucket_version integer in [1, bucket_version]            default 1
 *   sticky         bool                  default: true for bandit, else false
 *   metrics        [{name, kind, direction, role, covariate}]      default []
 *                  kind binary|sum|mean|ratio (required), direction
 *                  increase|decrease (default increase), role primary|
 *                  secondary|guardrail (default secondary), covariate
 *                  name or null (default null)
 *   bandit         strategy bandit only: {policy, metric, interval_s,
 *                  floor, control_share, burn_in, min_units,
 *                  promote_threshold, promote_after_s, seed}, every field
 *                  optional (see parse_bandit in experiment_json.c for
 *                  ranges and defaults); the canonical form of a bandit
 *                  experiment always has it, filled in; other strategies
 *                  never have it
 * Strategies: canary, blue_green and shadow have exactly 2 arms; a
 * blue_green definition has all traffic on one arm (weights 0 and 100).
 * Limits: key/names 64 bytes of [A-Za-z0-9_.-], description 4096 bytes,
 * model 256, forced unit ids 1..256, salt 1..64, 64 arms, 64 rules of up
 * to 1000 values (256 bytes each), 10000 forced units, 64 metrics.
 * Weights and layer ranges: percent with at most 4 decimals (0.0001 % is
 * one millionth); coverage: fraction with at most 6 decimals.
 */
#ifndef CODEC_EXPERIMENT_JSON_H
#define CODEC_EXPERIMENT_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "core/experiment.h"
#include "lib/status.h"

/* Parse and validate a definition. On AB_OK stores a new experiment in
 * *out (release with core_experiment_free()); state is DRAFT, id/version 0.
 * On AB_EINVAL writes a message naming the field into err, such as
 * "arms[1].weight: must be a number between 0 and 100". */
ab_status api_experiment_parse(const json_t *doc, struct core_experiment **out,
                               char *err, size_t errlen);

/* The canonical definition (the fields above, every default filled in).
 * New reference. */
json_t *api_experiment_definition(const struct core_experiment *e);
/* The hashing input ("salt", "layer") that 'next' changes relative to
 * 'prev' without raising bucket_version, or NULL. Such a change moves
 * units between arms (and in or out of the experiment) as silently as a
 * new bucket_version would, so a started experiment refuses it (409):
 * re-randomizing is done on purpose, by bumping bucket_version. */
const char *api_experiment_rehash_field(const struct core_experiment *prev,
                                        const struct core_experiment *next);

/* Stable names used in definitions: "eq", "binary", "increase",
 * "guardrail", ... (static strings; "unknown" for a bad value). */
const char *api_op_name(enum core_op op);
const char *api_metric_kind_name(enum core_metric_kind k);
const char *api_direction_name(enum core_direction d);
const char *api_role_name(enum core_role r);
const char *api_bandit_policy_name(enum core_bandit_policy p);
/* The policy named 'name' (the same one table) into *out; AB_EINVAL for
 * an unknown name (or NULL). '*out' is written only on AB_OK. */
ab_status api_bandit_policy_parse(const char *name,
                                  enum core_bandit_policy *out);

#endif /* CODEC_EXPERIMENT_JSON_H */
