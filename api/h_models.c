/* h_models.c -- the model registry over HTTP (sql/migrations/011_models.sql
 * holds the rules; service/models.h the production versions in memory).
 *
 *   POST /v1/models                                      register a version
 *   GET  /v1/models                                      every model
 *   GET  /v1/models/{model}                              versions, production
 *   GET  /v1/models/{model}/history                      deployment history
 *   GET  /v1/models/{model}/production                   from memory (client)
 *   GET  /v1/models/{model}/versions/{version}           one version
 *   POST /v1/models/{model}/versions/{version}/stage     {"stage","reason"?}
 *   POST /v1/models/{model}/versions/{version}/checkpoints
 *                                                        {"uri","sha256"}
 *
 * and the registry's check of experiment definitions: POST and PATCH
 * /v1/experiments run through api_models_experiment_create/_patch, which
 * look up every arm's "model": "name@version" and, for unregistered ones,
 * refuse the definition (strict registry) or add "warnings" to the answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/handlers.h"
#include "service/models.h"
#include "sql/db_models.h"
#include "lib/utf8.h"

#define NAME_MAX_LEN 64
#define URI_MAX_LEN 2048

static const char *const stages[] = {"registered", "shadow",   "canary",
                                     "production", "archived", "rolled_back"};

/* Model names and versions: 1 to 64 of A-Z a-z 0-9 _ . - + (no '@': it
 * separates them in an arm's reference, no '/': it separates paths). */
static bool
name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NAME_MAX_LEN)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-' ||
              c == '+'))
            return false;
    }
    return true;
}

static bool
sha256_ok(const char *s)
{
    if (strlen(s) != 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

/* 404 for a :model or :version no version can have (no database trip). */
static bool
reply_bad_names(const struct api_req *req, struct api_resp *resp,
                size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!name_ok(req->params[i])) {
            api_reply_error(resp, 404, "not_found",
                            "no such model%s (names and versions are 1 to "
                            "64 characters of A-Z a-z 0-9 _ . - +)",
                            i ? " version" : "");
            return true;
        }
    return false;
}

/* Reply with a JSON document text from the database (stolen). */
static void
reply_doc(struct api_resp *resp, int status, char *text)
{
    json_t *doc = json_loads(text, 0, NULL);
    free(text);
    api_reply_json(resp, status, doc ? doc : json_object());
}

/* An optional string field: NULL when absent; false (400 written) when of
 * the wrong type or too long. */
static bool
opt_string(json_t *body, const char *field, size_t max, const char **out,
           struct api_resp *resp)
{
    json_t *v = json_object_get(body, field);
    *out = NULL;
    if (v == NULL)
        return true;
    if (!json_is_string(v) || json_string_length(v) > max) {
        api_reply_error(resp, 400, "invalid",
                        "%s: must be a string of at most %zu bytes", field,
                        max);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

void
api_model_register(struct api_ctx *ctx, const struct api_req *req,
                   struct api_resp *resp)
{
    static const char *const fields[] = {
        "name",          "version",         "artifact_uri", "sha256",
        "framework",     "training_data",   "hyperparameters", "metrics"};
    json_t *body = req->json;
    if (!json_is_object(body)) {
        api_reply_error(resp, 400, "invalid", "body must be a JSON object");
        return;
    }
    const char *k;
    json_t *val;
    json_object_foreach(body, k, val) {
        bool known = false;
        for (size_t i = 0; i < AB_ARRAY_LEN(fields); i++)
            known = known || strcmp(k, fields[i]) == 0;
        if (!known) {
            api_reply_error(resp, 400, "invalid", "%s: unknown field",
                            ab_utf8_valid(k, strlen(k)) && strlen(k) < 64
                                ? k
                                : "(a field)");
            return;
        }
    }
    const char *name, *version, *uri, *sha, *framework, *training;
    if (!opt_string(body, "name", NAME_MAX_LEN, &name, resp) ||
        !opt_string(body, "version", NAME_MAX_LEN, &version, resp) ||
        !opt_string(body, "artifact_uri", URI_MAX_LEN, &uri, resp) ||
        !opt_string(body, "sha256", 64, &sha, resp) ||
        !opt_string(body, "framework", 256, &framework, resp) ||
        !opt_string(body, "training_data", URI_MAX_LEN, &training, resp))
        return;
    if (name == NULL || !name_ok(name)) {
        api_reply_error(resp, 400, "invalid",
                        "name: required, 1 to 64 characters of A-Z a-z 0-9 "
                        "_ . - +");
        return;
    }
    if (version == NULL || !name_ok(version)) {
        api_reply_error(resp, 400, "invalid",
                        "version: required, 1 to 64 characters of A-Z a-z "
                        "0-9 _ . - +");
        return;
    }
    if (uri == NULL || uri[0] == '\0') {
        api_reply_error(resp, 400, "invalid", "artifact_uri: required");
        return;
    }
    if (sha == NULL || !sha256_ok(sha)) {
        api_reply_error(resp, 400, "invalid",
                        "sha256: required, 64 lowercase hex digits");
        return;
    }
    json_t *hyper = json_object_get(body, "hyperparameters");
    json_t *metrics = json_object_get(body, "metrics");
    if ((hyper && !json_is_object(hyper)) ||
        (metrics && !json_is_object(metrics))) {
        api_reply_error(resp, 400, "invalid", "%s: must be a JSON object",
                        hyper && !json_is_object(hyper) ? "hyperparameters"
                                                        : "metrics");
        return;
    }
    char *hyper_text = hyper ? json_dumps(hyper, JSON_COMPACT)
                             : ab_xstrdup("{}");
    char *metrics_text = metrics ? json_dumps(metrics, JSON_COMPACT)
                                 : ab_xstrdup("{}");
    struct db_model_version v = {name,       version,
                                 uri,        sha,
                                 framework ? framework : "",
                                 training ? training : "",
                                 hyper_text, metrics_text};
    char *out = NULL;
    ab_status rc = db_model_register(ctx->db, &v, &out);
    free(hyper_text);
    free(metrics_text);
    if (rc == AB_OK)
        reply_doc(resp, 201, out);
    else if (rc == AB_ECONFLICT)
        api_reply_error(resp, 409, "conflict",
                        "model %s@%s is registered (versions are immutable)",
                        name, version);
    else
        api_reply_status(resp, rc, "could not register the model");
}

void
api_model_list(struct api_ctx *ctx, const struct api_req *req,
               struct api_resp *resp)
{
    (void)req;
    char *out = NULL;
    ab_status rc = db_model_list(ctx->db, &out);
    if (rc == AB_OK)
        reply_doc(resp, 200, out);
    else
        api_reply_status(resp, rc, "could not list models");
}

void
api_model_get(struct api_ctx *ctx, const struct api_req *req,
              struct api_resp *resp)
{
    if (reply_bad_names(req, resp, 1))
        return;
    char *out = NULL;
    ab_status rc = db_model_get(ctx->db, req->params[0], &out);
    if (rc == AB_OK)
        reply_doc(resp, 200, out);
    else if (rc == AB_ENOTFOUND)
        api_reply_error(resp, 404, "not_found", "no model \"%s\"",
                        req->params[0]);
    else
        api_reply_status(resp, rc, "could not read the model");
}

void
api_model_history(struct api_ctx *ctx, const struct api_req *req,
                  struct api_resp *resp)
{
    if (reply_bad_names(req, resp, 1))
        return;
    char *out = NULL;
    ab_status rc = db_model_history(ctx->db, req->params[0], &out);
    if (rc != AB_OK) {
        api_reply_status(resp, rc, "could not read the history");
        return;
    }
    json_t *arr = json_loads(out, 0, NULL);
    free(out);
    if (json_array_size(arr) == 0) {
        json_decref(arr);
        api_reply_error(resp, 404, "not_found", "no model \"%s\"",
                        req->params[0]);
        return;
    }
    api_reply_json(resp, 200,
                   json_pack("{s:s,s:o}", "model", req->params[0], "history",
                             arr));
}

void
api_model_production(struct api_ctx *ctx, const struct api_req *req,
                     struct api_resp *resp)
{
    (void)ctx;
    if (reply_bad_names(req, resp, 1))
        return;
    char *text = models_production(req->params[0]);
    if (text == NULL) {
        api_reply_error(resp, 404, "not_found",
                        "model \"%s\" has no production version",
                        req->params[0]);
        return;
    }
    api_reply_raw(resp, 200, "application/json", text, strlen(text));
}

void
api_model_version_get(struct api_ctx *ctx, const struct api_req *req,
                      struct api_resp *resp)
{
    if (reply_bad_names(req, resp, 2))
        return;
    char *out = NULL;
    ab_status rc =
        db_model_version_get(ctx->db, req->params[0], req->params[1], &out);
    if (rc == AB_OK)
        reply_doc(resp, 200, out);
    else if (rc == AB_ENOTFOUND)
        api_reply_error(resp, 404, "not_found", "no model version %s@%s",
                        req->params[0], req->params[1]);
    else
        api_reply_status(resp, rc, "could not read the model version");
}

void
api_model_stage(struct api_ctx *ctx, const struct api_req *req,
                struct api_resp *resp)
{
    static const char *const allowed[] = {"stage", "reason"};
    char v[2][API_STRING_MAX];
    if (reply_bad_names(req, resp, 2))
        return;
    if (!api_body_strings(req, resp, allowed, v, 2))
        return;
    bool known = false;
    for (size_t i = 0; i < AB_ARRAY_LEN(stages); i++)
        known = known || strcmp(v[0], stages[i]) == 0;
    if (!known) {
        api_reply_error(resp, 400, "invalid",
                        "stage: must be one of registered shadow canary "
                        "production archived rolled_back");
        return;
    }
    int changed = 0;
    char *busy = NULL;
    ab_status rc = db_model_stage_set(ctx->db, req->params[0], req->params[1],
                                      v[0], v[1], &changed, &busy);
    if (rc == AB_ECONFLICT) {
        api_reply_error(resp, 409, "conflict",
                        "model %s@%s: experiment \"%s\" is rolling it out; "
                        "its rollout decides the stage (stop, promote or "
                        "roll it back first)",
                        req->params[0], req->params[1], busy);
        free(busy);
        return;
    }
    if (rc == AB_ENOTFOUND) {
        api_reply_error(resp, 404, "not_found", "no model version %s@%s",
                        req->params[0], req->params[1]);
        return;
    }
    if (rc != AB_OK) {
        api_reply_status(resp, rc, "could not change the stage");
        return;
    }
    if (changed)
        models_reload(ctx->db);
    char *out = NULL;
    rc = db_model_version_get(ctx->db, req->params[0], req->params[1], &out);
    if (rc != AB_OK) {
        api_reply_status(resp, rc, "could not read the model version");
        return;
    }
    reply_doc(resp, 200, out);
}

void
api_model_checkpoint_add(struct api_ctx *ctx, const struct api_req *req,
                         struct api_resp *resp)
{
    static const char *const allowed[] = {"uri", "sha256"};
    char v[2][API_STRING_MAX];
    if (reply_bad_names(req, resp, 2))
        return;
    if (!api_body_strings(req, resp, allowed, v, 2))
        return;
    if (v[0][0] == '\0') {
        api_reply_error(resp, 400, "invalid", "uri: required");
        return;
    }
    if (!sha256_ok(v[1])) {
        api_reply_error(resp, 400, "invalid",
                        "sha256: required, 64 lowercase hex digits");
        return;
    }
    char *out = NULL;
    ab_status rc = db_model_checkpoint_add(ctx->db, req->params[0],
                                           req->params[1], v[0], v[1], &out);
    if (rc != AB_OK) {
        api_reply_status(resp, rc, "could not register the checkpoint");
        return;
    }
    json_t *doc = json_loads(out, 0, NULL);
    free(out);
    const char *status =
        json_string_value(json_object_get(doc, "status"));
    if (status == NULL || strcmp(status, "not_found") == 0) {
        json_decref(doc);
        api_reply_error(resp, 404, "not_found", "no model version %s@%s",
                        req->params[0], req->params[1]);
        return;
    }
    if (strcmp(status, "mismatch") == 0) {
        const char *have = json_string_value(json_object_get(
            json_object_get(doc, "checkpoint"), "sha256"));
        api_reply_error(resp, 409, "checksum_mismatch",
                        "checkpoint %s of %s@%s is registered with sha256 "
                        "%s, not %s",
                        v[0], req->params[0], req->params[1],
                        have ? have : "?", v[1]);
        json_decref(doc);
        return;
    }
    models_reload(ctx->db);
    json_t *cp = json_incref(json_object_get(doc, "checkpoint"));
    json_object_set_new(cp, "model", json_string(req->params[0]));
    json_object_set_new(cp, "version", json_string(req->params[1]));
    int code = strcmp(status, "created") == 0 ? 201 : 200;
    json_decref(doc);
    api_reply_json(resp, code, cp);
}

/* ---- the registry's check of experiment definitions ---------------------- */

/* Unregistered arm references of a definition (JSON): a new array of
 * "arms[i].model: ..." sentences, or NULL with a reply written. In warn
 * mode a registry that holds no version at all has nothing to say (a
 * deployment that does not use it sees no change); strict mode refuses
 * every unregistered reference. */
static json_t *
unregistered_arms(struct api_ctx *ctx, json_t *def, struct api_resp *resp)
{
    json_t *arms = json_object_get(def, "arms");
    json_t *refs = json_array(), *out = json_array();
    size_t i;
    json_t *a;
    json_array_foreach(arms, i, a) {
        json_t *m = json_object_get(a, "model");
        if (json_is_string(m) && json_string_length(m) > 0)
            json_array_append(refs, m);
    }
    if (json_array_size(refs) == 0) {
        json_decref(refs);
        return out;
    }
    char *refs_text = json_dumps(refs, JSON_COMPACT);
    char *known_text = NULL;
    ab_status rc = db_model_refs_registered(ctx->db, refs_text, &known_text);
    free(refs_text);
    json_decref(refs);
    if (rc != AB_OK) {
        json_decref(out);
        api_reply_status(resp, rc, "could not read the model registry");
        return NULL;
    }
    json_t *answer = json_loads(known_text, 0, NULL);
    free(known_text);
    json_t *known = json_incref(json_object_get(answer, "registered"));
    bool in_use = json_is_true(json_object_get(answer, "in_use"));
    json_decref(answer);
    if (!in_use && !models_strict()) {
        json_decref(known);
        return out;
    }
    json_array_foreach(arms, i, a) {
        json_t *m = json_object_get(a, "model");
        if (!json_is_string(m) || json_string_length(m) == 0)
            continue;
        bool found = false;
        size_t j;
        json_t *k;
        json_array_foreach(known, j, k) found =
            found || json_equal(k, m);
        if (found)
            continue;
        char line[512];
        const char *ref = json_string_value(m);
        if (strlen(ref) <= 200) /* echoed whole: never a cut character */
            snprintf(line, sizeof(line),
                     "arms[%zu].model: \"%s\" is not a registered model "
                     "version (name@version)",
                     i, ref);
        else
            snprintf(line, sizeof(line),
                     "arms[%zu].model: not a registered model version "
                     "(name@version)",
                     i);
        json_array_append_new(out, json_string(line));
    }
    json_decref(known);
    return out;
}

/* Run the definition handler, after the registry's check. */
static void
checked(struct api_ctx *ctx, const struct api_req *req, struct api_resp *resp,
        api_handler_fn *inner, int ok_status)
{
    json_t *warnings = NULL;
    if (json_is_object(req->json)) {
        warnings = unregistered_arms(ctx, req->json, resp);
        if (warnings == NULL)
            return;
    }
    if (warnings && json_array_size(warnings) > 0 && models_strict()) {
        api_reply_error(resp, 400, "unregistered_model",
                        "%s; the model registry is strict "
                        "(ARBITER_MODEL_REGISTRY_STRICT)",
                        json_string_value(json_array_get(warnings, 0)));
        json_decref(warnings);
        return;
    }
    inner(ctx, req, resp);
    if (warnings && json_array_size(warnings) > 0 &&
        resp->status == ok_status && resp->body) {
        json_t *doc = json_loadb(resp->body, resp->body_len, 0, NULL);
        if (json_is_object(doc)) {
            json_object_set(doc, "warnings", warnings);
            api_reply_json(resp, ok_status, doc);
        } else {
            json_decref(doc);
        }
    }
    json_decref(warnings);
}

void
api_models_experiment_create(struct api_ctx *ctx, const struct api_req *req,
                             struct api_resp *resp)
{
    checked(ctx, req, resp, api_experiment_create, 201);
}

void
api_models_experiment_patch(struct api_ctx *ctx, const struct api_req *req,
                            struct api_resp *resp)
{
    checked(ctx, req, resp, api_experiment_patch, 200);
}
