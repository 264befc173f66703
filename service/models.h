/* models.h -- the model registry in the process: the production version
 * of every model, held in memory and swapped whole when the registry
 * changes (a LISTEN on "arbiter_models", sent by every registry write and
 * every lifecycle move, with a 5 s backstop reload), so "what should I
 * run?" is answered without the database, like assignment; the registry's
 * strictness; the lifecycle hook of the manual rollout actions; and the
 * keeping of each ended rollout's report (its listener writes it).
 *
 * One registry per process (like the logger): models_start() once after
 * app_init(), models_stop() before app_shutdown().
 */
#ifndef SERVICE_MODELS_H
#define SERVICE_MODELS_H

#include <jansson.h>
#include <stdbool.h>

#include "lib/status.h"

struct app;
struct db;

/* Load the production versions (from a pooled connection, when the
 * database is up) and start the listener thread. Reads
 * ARBITER_MODEL_REGISTRY_STRICT ("1"/"true": refuse experiments naming an
 * unregistered model version; default: warn). */
void models_start(struct app *app);
void models_stop(void);

/* Refuse experiments whose arms name unregistered versions? */
bool models_strict(void);

/* Reload the production versions now with the caller's connection (a
 * handler after a registry write: read your writes). */
ab_status models_reload(struct db *db);

/* The production version of a model as JSON text (new string, free()), or
 * NULL when the model has none. Never touches the database. */
char *models_production(const char *model);

/* After a manual promote / rollback / approve answered with doc: refresh
 * the production versions and add the decision's model moves ("models")
 * and, on rollback, what to restore ("model_restore": version, artifact,
 * checkpoint) to doc. Best effort: doc is left as it is on a database
 * error. */
void models_after_decision(struct db *db, const char *key, json_t *doc);

#endif /* SERVICE_MODELS_H */
