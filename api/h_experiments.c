/* h_experiments.c -- experiment definitions and their life cycle.
 *
 *   draft --start--> running --pause--> paused --resume--> running
 *     \                 \                  \
 *      +------stop-------+-------stop-------+--> stopped (final)
 *
 * Every change is one database statement that also writes the audit row
 * (arbiter.decision_log) and a NOTIFY, so every instance reloads its
 * snapshot; this instance reloads before answering (read your writes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/app.h"
#include "codec/experiment_json.h"
#include "codec/field.h"
#include "codec/rollout_json.h"
#include "api/handlers.h"
#include "lib/log.h"
#include "service/rollout_job.h"
#include "sql/db.h"

/* The public representation: the definition plus life-cycle fields. */
static json_t *
represent(const struct db_experiment *row)
{
    json_t *doc = json_loads(row->definition, 0, NULL);
    if (doc == NULL)
        doc = json_object();
    /* the rollout settings in force, every default written out, also for
     * definitions stored before a setting existed */
    struct core_experiment *e = NULL;
    char err[256];
    struct core_rollout_config rc;
    if (api_experiment_parse(doc, &e, err, sizeof(err)) == AB_OK &&
        e->strategy != CORE_STRATEGY_BANDIT &&
        api_rollout_config(e, &rc) == AB_OK)
        json_object_set_new(doc, "rollout", api_rollout_json(&rc));
    core_experiment_free(e);
    json_object_set_new(doc, "state", json_string(row->state));
    json_object_set_new(doc, "version", json_integer(row->version));
    json_object_set_new(doc, "weights_version",
                        json_integer(row->weights_version));
    json_object_set_new(doc, "created_at", json_string(row->created_at));
    json_object_set_new(doc, "updated_at", json_string(row->updated_at));
    return doc;
}

static json_t *
weights_of(const struct core_experiment *e)
{
    json_t *w = json_object();
    for (size_t i = 0; i < e->n_arms; i++)
        json_object_set_new(w, e->arms[i].name,
                            codec_percent_json(e->arms[i].weight));
    return w;
}

static bool
same_weights(const struct core_experiment *a, const struct core_experiment *b)
{
    if (a->n_arms != b->n_arms)
        return false;
    for (size_t i = 0; i < a->n_arms; i++)
        if (strcmp(a->arms[i].name, b->arms[i].name) != 0 ||
            a->arms[i].weight != b->arms[i].weight)
            return false;
    return true;
}

/* 409 when e's layer slice overlaps another live experiment's slice. */
static ab_status
check_layer(struct db *db, const struct core_experiment *e, char *msg,
            size_t len)
{
    if (e->layer == NULL)
        return AB_OK;
    struct db_experiment *rows;
    size_t n;
    ab_status rc = db_experiment_list(db, &rows, &n);
    if (rc != AB_OK)
        return rc;
    for (size_t i = 0; i < n && rc == AB_OK; i++) {
        if (strcmp(rows[i].key, e->key) == 0 ||
            strcmp(rows[i].state, "stopped") == 0)
            continue;
        json_t *doc = json_loads(rows[i].definition, 0, NULL);
        json_t *layer = json_object_get(doc, "layer");
        const char *name = json_string_value(json_object_get(layer, "name"));
        json_t *range = json_object_get(layer, "range");
        if (name && strcmp(name, e->layer) == 0) {
            double lo = json_number_value(json_array_get(range, 0)) * 1e4;
            double hi = json_number_value(json_array_get(range, 1)) * 1e4;
            if ((double)e->layer_lo < hi - 0.5 && lo + 0.5 < (double)e->layer_hi) {
                snprintf(msg, len,
                         "layer: range overlaps experiment \"%s\" in layer "
                         "\"%s\"",
                         rows[i].key, e->layer);
                rc = AB_ECONFLICT;
            }
        }
        json_decref(doc);
    }
    db_experiment_list_free(rows, n);
    return rc;
}

/* Writers of one layer are serialized: the overlap check and the write
 * run in one transaction that holds the layer's lock, so two concurrent
 * writers can never both find the same slice free. Without a layer:
 * nothing to do. */
static ab_status
layer_begin(struct db *db, const struct core_experiment *e)
{
    if (e->layer == NULL)
        return AB_OK;
    ab_status rc = db_begin(db);
    if (rc != AB_OK)
        return rc;
    rc = db_layer_lock(db, e->layer);
    if (rc != AB_OK)
        db_rollback(db);
    return rc;
}

/* End what layer_begin() began: commit when 'commit' (AB_EDB if that
 * failed: nothing was written), else roll back. */
static ab_status
layer_end(struct db *db, const struct core_experiment *e, bool commit)
{
    if (e->layer == NULL)
        return AB_OK;
    if (commit)
        return db_commit(db);
    db_rollback(db);
    return AB_OK;
}

/* layer_begin() and the overlap check; on failure the transaction is
 * rolled back and the reply made (409 for an overlap). */
static ab_status
layer_or_reply(struct api_ctx *ctx, const struct core_experiment *e,
               struct api_resp *resp)
{
    char err[512];
    ab_status rc = layer_begin(ctx->db, e);
    if (rc == AB_OK)
        rc = check_layer(ctx->db, e, err, sizeof(err));
    if (rc != AB_OK) {
        layer_end(ctx->db, e, false);
        if (rc == AB_ECONFLICT)
            api_reply_error(resp, 409, "conflict", "%s", err);
        else
            api_reply_status(resp, rc, "could not read experiments");
    }
    return rc;
}

static void
reply_row(struct api_ctx *ctx, struct api_resp *resp, int status,
          struct db_experiment *row)
{
    if (app_reload_key(ctx->app, ctx->db, row->key) != AB_OK)
        log_msg(LOG_WARN, "snapshot reload after write failed", NULL);
    api_reply_json(resp, status, represent(row));
    db_experiment_clear(row);
}

void
api_experiment_create(struct api_ctx *ctx, const struct api_req *req,
                      struct api_resp *resp)
{
    char err[512];
    struct core_experiment *e = NULL;
    if (!json_is_object(req->json)) {
        api_reply_error(resp, 400, "invalid", "body must be a JSON object");
        return;
    }
    if (api_experiment_parse(req->json, &e, err, sizeof(err)) != AB_OK) {
        api_reply_error(resp, 400, "invalid", "%s", err);
        return;
    }
    ab_status rc = layer_or_reply(ctx, e, resp);
    if (rc != AB_OK) {
        core_experiment_free(e);
        return;
    }
    json_t *def = api_experiment_definition(e);
    json_t *w = weights_of(e);
    char *def_text = json_dumps(def, JSON_COMPACT | JSON_SORT_KEYS);
    char *w_text = json_dumps(w, JSON_COMPACT);
    struct db_experiment row = {0};
    rc = db_experiment_insert(ctx->db, e->key, def_text, w_text, &row);
    if (rc == AB_OK) {
        rc = layer_end(ctx->db, e, true);
        if (rc != AB_OK)
            db_experiment_clear(&row);
    } else
        layer_end(ctx->db, e, false);
    if (rc == AB_OK)
        reply_row(ctx, resp, 201, &row);
    else if (rc == AB_ECONFLICT)
        api_reply_error(resp, 409, "conflict", "experiment \"%s\" exists",
                        e->key);
    else
        api_reply_status(resp, rc, "could not store the experiment");
    free(def_text);
    free(w_text);
    json_decref(def);
    json_decref(w);
    core_experiment_free(e);
}

void
api_experiment_list(struct api_ctx *ctx, const struct api_req *req,
                    struct api_resp *resp)
{
    struct db_experiment *rows;
    size_t n;
    enum core_state want;
    const char *state = api_req_query(req, "state");
    if (state != NULL && core_state_parse(state, &want) != AB_OK) {
        api_reply_error(resp, 400, "invalid",
                        "state: must be one of draft running paused stopped");
        return;
    }
    ab_status rc = db_experiment_list(ctx->db, &rows, &n);
    if (rc != AB_OK) {
        api_reply_status(resp, rc, "could not list experiments");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        if (state == NULL || strcmp(state, rows[i].state) == 0)
            json_array_append_new(arr, represent(&rows[i]));
    db_experiment_list_free(rows, n);
    api_reply_json(resp, 200, json_pack("{s:o}", "experiments", arr));
}

void
api_experiment_get(struct api_ctx *ctx, const struct api_req *req,
                   struct api_resp *resp)
{
    struct db_experiment row = {0};
    if (!api_experiment_row(ctx, req->params[0], resp, &row))
        return;
    api_reply_json(resp, 200, represent(&row));
    db_experiment_clear(&row);
}

/* RFC 7386 JSON merge patch: target is modified in place. */
static void
merge_patch(json_t *target, json_t *patch)
{
    const char *k;
    json_t *v;
    json_object_foreach(patch, k, v) {
        if (json_is_null(v))
            json_object_del(target, k);
        else if (json_is_object(v) && json_is_object(json_object_get(target, k)))
            merge_patch(json_object_get(target, k), v);
        else
            json_object_set(target, k, v);
    }
}

/* Replies 400 (and returns true) when a merge patch for key is not an
 * object, renames the experiment or sets a read-only field. */
static bool
reply_bad_patch(const char *key, json_t *patch, struct api_resp *resp)
{
    if (api_reply_impossible_key(key, resp))
        return true;
    if (!json_is_object(patch)) {
        api_reply_error(resp, 400, "invalid",
                        "body must be a JSON object (a JSON merge patch)");
        return true;
    }
    json_t *jk = json_object_get(patch, "key");
    if (jk && !(json_is_string(jk) && strcmp(json_string_value(jk), key) == 0)) {
        api_reply_error(resp, 400, "invalid", "key: cannot be changed");
        return true;
    }
    static const char *const readonly[] = {"state", "version",
                                           "weights_version", "created_at",
                                           "updated_at"};
    for (size_t i = 0; i < AB_ARRAY_LEN(readonly); i++)
        if (json_object_get(patch, readonly[i])) {
            api_reply_error(resp, 400, "invalid",
                            "%s: read-only; use the life-cycle actions",
                            readonly[i]);
            return true;
        }
    return false;
}

void
api_experiment_patch(struct api_ctx *ctx, const struct api_req *req,
                     struct api_resp *resp)
{
    const char *key = req->params[0];
    char err[512];
    if (reply_bad_patch(key, req->json, resp))
        return;
    struct db_experiment row = {0};
    if (!api_experiment_row(ctx, key, resp, &row))
        return;
    ab_status rc;
    if (strcmp(row.state, "stopped") == 0) {
        api_reply_error(resp, 409, "conflict",
                        "experiment \"%s\" is stopped and cannot change", key);
        db_experiment_clear(&row);
        return;
    }
    json_t *cur = json_loads(row.definition, 0, NULL);
    struct core_experiment *old = NULL, *e = NULL;
    api_experiment_parse(cur, &old, err, sizeof(err));
    json_t *doc = json_deep_copy(cur);
    merge_patch(doc, req->json);
    if (api_experiment_parse(doc, &e, err, sizeof(err)) != AB_OK) {
        api_reply_error(resp, 400, "invalid", "%s", err);
        goto done;
    }
    if (old && !same_weights(old, e) &&
        rollout_job_owns_weights(old, row.state)) {
        api_reply_error(resp, 409, "conflict",
                        "weights of a %s %s belong to the rollout engine "
                        "(a manual change would be overridden at the next "
                        "tick and move units); use promote, rollback, "
                        "approve, or stop the rollout",
                        row.state, core_strategy_name(old->strategy));
        goto done;
    }
    if (e->bucket_version < (old ? old->bucket_version : 1)) {
        api_reply_error(resp, 400, "invalid",
                        "bucket_version: cannot decrease (was %u)",
                        old->bucket_version);
        goto done;
    }
    /* a started experiment keeps its randomization unless asked */
    const char *rehash = old && strcmp(row.state, "draft") != 0
                             ? api_experiment_rehash_field(old, e)
                             : NULL;
    if (rehash != NULL) {
        api_reply_error(resp, 409, "conflict",
                        "%s: changing it re-randomizes units of a started "
                        "experiment; bump bucket_version to do so on purpose "
                        "(now %u)",
                        rehash, old->bucket_version);
        goto done;
    }
    rc = layer_or_reply(ctx, e, resp);
    if (rc != AB_OK)
        goto done;
    json_t *def = api_experiment_definition(e);
    char *def_text = json_dumps(def, JSON_COMPACT | JSON_SORT_KEYS);
    char *w_text = NULL;
    if (old == NULL || !same_weights(old, e)) {
        json_t *w = weights_of(e);
        w_text = json_dumps(w, JSON_COMPACT);
        json_decref(w);
    }
    json_t *jd = json_pack("{s:O}", "patch", req->json);
    char *details = json_dumps(jd, JSON_COMPACT);
    json_decref(jd);
    struct db_experiment upd = {0};
    rc = db_experiment_update(ctx->db, key, row.version, def_text, w_text,
                              details, &upd);
    if (rc == AB_OK) {
        rc = layer_end(ctx->db, e, true);
        if (rc != AB_OK)
            db_experiment_clear(&upd);
    } else {
        layer_end(ctx->db, e, false);
    }
    if (rc == AB_OK)
        reply_row(ctx, resp, 200, &upd);
    else if (rc == AB_ECONFLICT)
        api_reply_error(resp, 409, "conflict",
                        "experiment \"%s\" changed concurrently; retry", key);
    else
        api_reply_status(resp, rc, "could not store the experiment");
    free(details);
    free(def_text);
    free(w_text);
    json_decref(def);
done:
    json_decref(cur);
    json_decref(doc);
    core_experiment_free(old);
    core_experiment_free(e);
    db_experiment_clear(&row);
}

static void
transition(struct api_ctx *ctx, const struct api_req *req,
           struct api_resp *resp, const char *from, const char *to,
           const char *action)
{
    static const char *const allowed[] = {"reason"};
    char v[1][API_STRING_MAX];
    if (api_reply_impossible_key(req->params[0], resp))
        return;
    if (!api_body_strings(req, resp, allowed, v, 1))
        return;
    const char *reason = v[0];
    struct db_experiment row = {0};
    ab_status rc = db_experiment_transition(ctx->db, req->params[0], from, to,
                                            action, "admin", reason, &row);
    if (rc == AB_OK) {
        reply_row(ctx, resp, 200, &row);
    } else if (rc == AB_ENOTFOUND) {
        api_reply_no_experiment(resp, req->params[0]);
    } else if (rc == AB_ECONFLICT) {
        struct db_experiment cur = {0};
        const char *state = "unknown";
        if (db_experiment_get(ctx->db, req->params[0], &cur) == AB_OK)
            state = cur.state;
        api_reply_error(resp, 409, "illegal_transition",
                        "cannot %s an experiment that is %s (allowed from: "
                        "%s)",
                        action, state, from);
        db_experiment_clear(&cur);
    } else {
        api_reply_status(resp, rc, "could not change the experiment");
    }
}

void
api_experiment_start(struct api_ctx *ctx, const struct api_req *req,
                     struct api_resp *resp)
{
    /* a canary starts at its first step, not at its declared weights */
    if (api_reply_impossible_key(req->params[0], resp))
        return;
    {
        ab_status rc = rollout_job_prepare_start(ctx->db, req->params[0]);
        if (rc == AB_ECONFLICT) {
            api_reply_error(resp, 409, "conflict",
                            "experiment \"%s\" changed concurrently; retry",
                            req->params[0]);
            return;
        }
        if (rc != AB_OK) {
            api_reply_status(resp, rc, "could not start the experiment");
            return;
        }
    }
    transition(ctx, req, resp, "draft", "running", "start");
}

void
api_experiment_pause(struct api_ctx *ctx, const struct api_req *req,
                     struct api_resp *resp)
{
    transition(ctx, req, resp, "running", "paused", "pause");
}

void
api_experiment_resume(struct api_ctx *ctx, const struct api_req *req,
                      struct api_resp *resp)
{
    transition(ctx, req, resp, "paused", "running", "resume");
}

void
api_experiment_stop(struct api_ctx *ctx, const struct api_req *req,
                    struct api_resp *resp)
{
    transition(ctx, req, resp, "draft,running,paused", "stopped", "stop");
}

static void
reply_json_text(struct api_ctx *ctx, const struct api_req *req,
                struct api_resp *resp,
                ab_status (*fetch)(struct db *, const char *, char **),
                const char *field)
{
    struct db_experiment row = {0};
    if (!api_experiment_row(ctx, req->params[0], resp, &row))
        return;
    char *text = NULL;
    ab_status rc = fetch(ctx->db, req->params[0], &text);
    db_experiment_clear(&row);
    if (rc != AB_OK) {
        api_reply_status(resp, rc, "could not read the database");
        return;
    }
    json_t *arr = json_loads(text, 0, NULL);
    free(text);
    api_reply_json(resp, 200,
                   json_pack("{s:s,s:o}", "experiment", req->params[0], field,
                             arr ? arr : json_array()));
}

void
api_experiment_decisions(struct api_ctx *ctx, const struct api_req *req,
                         struct api_resp *resp)
{
    reply_json_text(ctx, req, resp, db_decisions_json, "decisions");
}

void
api_experiment_exposures(struct api_ctx *ctx, const struct api_req *req,
                         struct api_resp *resp)
{
    reply_json_text(ctx, req, resp, db_exposure_counts_json, "arms");
}
