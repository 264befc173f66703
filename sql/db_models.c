/* db_models.c -- the model registry (see db_models.h). Every call is one
 * statement; the documents and the lifecycle rules live in
 * sql/migrations/011_models.sql, next to the tables they read. */
#include "sql/db_models.h"

#include <stdlib.h>
#include <string.h>

#include "sql/db.h"

/* A document query whose answer is the text 'null' when there is nothing:
 * AB_ENOTFOUND then. */
static ab_status
doc_or_notfound(struct db *db, const char *what, const char *sql, int n,
                const char *const *params, char **out)
{
    char *text = NULL;
    ab_status rc = db_text(db, what, sql, n, params, &text);
    if (rc != AB_OK)
        return rc;
    if (strcmp(text, "null") == 0) {
        free(text);
        return AB_ENOTFOUND;
    }
    *out = text;
    return AB_OK;
}

ab_status
db_model_register(struct db *db, const struct db_model_version *v,
                  char **out)
{
    const char *p[8] = {v->model,     v->version,   v->artifact_uri,
                        v->sha256,    v->framework, v->training_data,
                        v->hyperparameters, v->metrics};
    ab_status rc = doc_or_notfound(
        db, "model register",
        "SELECT coalesce(arbiter.model_register($1, $2, $3, $4, $5, $6,"
        " $7::jsonb, $8::jsonb)::text, 'null')",
        8, p, out);
    return rc == AB_ENOTFOUND ? AB_ECONFLICT : rc;
}

ab_status
db_model_version_get(struct db *db, const char *model, const char *version,
                     char **out)
{
    const char *p[2] = {model, version};
    return doc_or_notfound(
        db, "model version",
        "SELECT coalesce((SELECT arbiter.model_version_doc(id)::text FROM"
        " arbiter.model_versions WHERE model = $1 AND version = $2), 'null')",
        2, p, out);
}

ab_status
db_model_get(struct db *db, const char *model, char **out)
{
    const char *p[1] = {model};
    return doc_or_notfound(db, "model get",
                           "SELECT coalesce(arbiter.model_doc($1)::text,"
                           " 'null')",
                           1, p, out);
}

ab_status
db_model_list(struct db *db, char **out)
{
    return db_text(db, "model list",
                   "SELECT jsonb_build_object('models', coalesce(jsonb_agg("
                   "arbiter.model_doc(m) ORDER BY m), '[]'::jsonb))::text"
                   " FROM (SELECT DISTINCT model AS m FROM"
                   " arbiter.model_versions) s",
                   0, NULL, out);
}

ab_status
db_model_history(struct db *db, const char *model, char **out)
{
    const char *p[1] = {model};
    return db_text(db, "model history",
                   "SELECT arbiter.model_history_doc($1)::text", 1, p, out);
}

ab_status
db_model_stage_set(struct db *db, const char *model, const char *version,
                   const char *stage, const char *reason, int *changed,
                   char **busy)
{
    const char *p[4] = {model, version, stage, reason};
    char *text = NULL;
    ab_status rc = db_text(db, "model stage",
                           "SELECT arbiter.model_stage_manual($1, $2, $3, $4)",
                           4, p, &text);
    if (rc != AB_OK)
        return rc;
    *changed = 0;
    if (strcmp(text, "ok") == 0) {
        *changed = 1;
    } else if (strcmp(text, "same") == 0) {
        rc = AB_OK;
    } else if (strcmp(text, "not_found") == 0) {
        rc = AB_ENOTFOUND;
    } else if (strncmp(text, "conflict:", 9) == 0) {
        *busy = ab_xstrdup(text + 9);
        rc = AB_ECONFLICT;
    } else {
        rc = AB_EINTERNAL;
    }
    free(text);
    return rc;
}

ab_status
db_model_checkpoint_add(struct db *db, const char *model, const char *version,
                        const char *uri, const char *sha256, char **out)
{
    const char *p[4] = {model, version, uri, sha256};
    return db_text(db, "model checkpoint",
                   "SELECT arbiter.model_checkpoint_add($1, $2, $3, $4)::text",
                   4, p, out);
}

ab_status
db_model_production(struct db *db, char **out)
{
    return db_text(db, "model production",
                   "SELECT arbiter.model_production_doc()::text", 0, NULL,
                   out);
}

ab_status
db_model_refs_registered(struct db *db, const char *refs, char **out)
{
    const char *p[1] = {refs};
    return db_text(db, "model refs",
                   "SELECT jsonb_build_object('registered', coalesce(("
                   "SELECT jsonb_agg(r) FROM"
                   " jsonb_array_elements_text($1::jsonb) r"
                   " WHERE arbiter.model_version_of(r) IS NOT NULL),"
                   " '[]'::jsonb), 'in_use', EXISTS (SELECT 1 FROM"
                   " arbiter.model_versions))::text",
                   1, p, out);
}

ab_status
db_model_last_decision(struct db *db, const char *key, char **out)
{
    const char *p[1] = {key};
    return db_text(db, "model last decision",
                   "SELECT coalesce((SELECT jsonb_strip_nulls("
                   "jsonb_build_object('models', d.details->'models',"
                   " 'model_restore', d.details->'model_restore'))"
                   " FROM arbiter.decision_log d JOIN arbiter.experiments e"
                   " ON e.id = d.experiment_id WHERE e.key = $1"
                   " ORDER BY d.id DESC LIMIT 1), '{}'::jsonb)::text",
                   1, p, out);
}

ab_status
db_experiment_report(struct db *db, const char *key, char **out)
{
    const char *p[1] = {key};
    return doc_or_notfound(
        db, "experiment report",
        "SELECT coalesce(coalesce((SELECT r.document FROM"
        " arbiter.experiment_reports r"
        " JOIN arbiter.experiments e ON e.id = r.experiment_id"
        " WHERE e.key = $1 AND r.decision_id >= (SELECT max(d.id) FROM"
        " arbiter.decision_log d WHERE d.experiment_id = e.id)),"
        " arbiter.experiment_report($1))::text, 'null')",
        1, p, out);
}

ab_status
db_experiment_reports_write(struct db *db, int *written)
{
    char *text = NULL;
    ab_status rc = db_text(db, "experiment reports",
                           "SELECT arbiter.experiment_reports_write()", 0,
                           NULL, &text);
    if (rc == AB_OK) {
        *written = (int)strtol(text, NULL, 10);
        free(text);
    }
    return rc;
}
