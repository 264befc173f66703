/* shadow.h -- paired shadow analysis in the service (issue 16): reads the
 * paired observations of a shadow experiment from PostgreSQL
 * (sql/db_shadow.h), analyses them (core/shadow.h) and
 *  - answers GET /v1/experiments/:key/shadow (shadow_analysis_json);
 *  - feeds the rollout job's evidence (shadow_paired_evidence, the one
 *    hook in service/rollout_job.c).
 */
#ifndef SERVICE_SHADOW_H
#define SERVICE_SHADOW_H

#include <jansson.h>

#include "core/experiment.h"
#include "core/rollout.h"
#include "lib/status.h"

struct db;

/* The most recent pairs whose latency and score differences feed the
 * quantiles and the signed-rank test (counts and means use every pair). */
#define SHADOW_SAMPLE_MAX 50000

/* The paired analysis of e at level alpha (the harm checks use the
 * rollout's rollback_alpha and tuning). *out: new reference. AB_EDB. */
ab_status shadow_analysis_json(struct db *db, const struct core_experiment *e,
                               double alpha, json_t **out);

/* The rollout job's hook: for a shadow experiment, analyse the pairs, put
 * the analysis in details ("paired", borrowed object), and fold the
 * verdict into ev: a failed paired check fails the guardrails (the shadow
 * stops, with the check named); while the paired evidence waits (fewer
 * than min_pairs pairs, or a check not yet proven safe: core/shadow.h)
 * the hand-off waits; with enough pairs their units count as
 * units of both arms (each pair is an observation of both models).
 * Nothing changes when the experiment is not a shadow or has no pair. */
void shadow_paired_evidence(struct db *db, const struct core_experiment *e,
                            const struct core_rollout_config *c,
                            struct core_rollout_evidence *ev,
                            json_t *details);

#endif /* SERVICE_SHADOW_H */
