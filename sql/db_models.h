/* db_models.h -- the model registry in PostgreSQL
 * (sql/migrations/011_models.sql): versions, stages, checkpoints, the
 * deployment history, and the deployment report's data. Documents are
 * built by PostgreSQL and returned as JSON text (new strings, free()).
 * Lifecycle moves caused by rollout decisions happen in the database, in
 * the decision's own transaction (a trigger on arbiter.decision_log).
 */
#ifndef SQL_DB_MODELS_H
#define SQL_DB_MODELS_H

#include "lib/status.h"

struct db;

struct db_model_version {
    const char *model, *version, *artifact_uri, *sha256;
    const char *framework, *training_data;
    const char *hyperparameters, *metrics; /* JSON object text */
};

/* Register a version (stage 'registered', with its history row).
 * AB_ECONFLICT when model@version exists (versions are immutable). */
ab_status db_model_register(struct db *db, const struct db_model_version *v,
                            char **out);
/* One version with its checkpoints; AB_ENOTFOUND. */
ab_status db_model_version_get(struct db *db, const char *model,
                               const char *version, char **out);
/* One model: {"name", "production", "versions": [...]}; AB_ENOTFOUND. */
ab_status db_model_get(struct db *db, const char *model, char **out);
/* Every model: {"models": [...]} ordered by name. */
ab_status db_model_list(struct db *db, char **out);
/* Deployment history of a model, oldest first (JSON array). */
ab_status db_model_history(struct db *db, const char *model, char **out);
/* Move a version by hand (audited in the history with actor 'admin').
 * AB_OK (*changed false when it already was there), AB_ENOTFOUND, or
 * AB_ECONFLICT with the key of the experiment whose rollout owns the stage
 * in *busy (new string). */
ab_status db_model_stage_set(struct db *db, const char *model,
                             const char *version, const char *stage,
                             const char *reason, int *changed, char **busy);
/* Register a checkpoint: {"status": created|exists|mismatch|not_found,
 * "checkpoint": {...}}. */
ab_status db_model_checkpoint_add(struct db *db, const char *model,
                                  const char *version, const char *uri,
                                  const char *sha256, char **out);
/* {"model": {production version, latest checkpoint}, ...}. */
ab_status db_model_production(struct db *db, char **out);
/* Which of refs (a JSON array of "name@version" strings) are registered:
 * {"registered": [those], "in_use": whether any version is registered}. */
ab_status db_model_refs_registered(struct db *db, const char *refs,
                                   char **out);
/* The model moves and restore advice of the experiment's latest decision:
 * {"models": [...], "model_restore": [...]} (either may be absent). */
ab_status db_model_last_decision(struct db *db, const char *key, char **out);
/* Everything the deployment report shows: the report kept when the
 * rollout ended if it covers the last decision, else built now;
 * AB_ENOTFOUND. */
ab_status db_experiment_report(struct db *db, const char *key, char **out);
/* Keep the report of every rollout that has ended since the last call
 * (arbiter.experiment_reports); *written: how many. */
ab_status db_experiment_reports_write(struct db *db, int *written);

#endif /* SQL_DB_MODELS_H */
