/* h_shadow.c -- paired observations of a shadow experiment (issue 16):
 *
 *   POST /v1/experiments/:key/shadow/pairs    a batch of pairs (ingest scope)
 *   POST /v1/experiments/:key/shadow/labels   labels that arrive later
 *   GET  /v1/experiments/:key/shadow          the paired analysis (also
 *                                             after the hand-off)
 *
 * A pair is one request both models answered:
 *
 *   {"request_id": "r-1", "unit": "u-7",
 *    "control":   {"output": "cat", "latency_ms": 12.5, "error": false},
 *    "candidate": {"output": "dog", "latency_ms": 14.0, "error": false},
 *    "label": "cat"}                                  (label optional)
 *
 * output is a class label (string) or a score (number), null or absent
 * only when error is true. The body is a JSON array of pairs or
 * {"pairs": [...]}; at most SHADOW_BATCH_MAX per post. The whole batch is
 * validated before anything is stored (one 400 names the first bad
 * field); a request id already stored is a no-op (the first post wins),
 * so a retried batch is harmless. Labels: [{"request_id", "label"}] or
 * {"labels": [...]}; the first label of a request wins, the same label
 * again is a no-op, a different one is a 409, an unknown request id a
 * 404, and then nothing of the batch is written.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/handlers.h"
#include "core/experiment.h"
#include "service/app.h"
#include "service/shadow.h"
#include "sql/db_shadow.h"

#define SHADOW_BATCH_MAX 10000
#define REQUEST_ID_MAX 256
#define OUTPUT_MAX 256
#define LATENCY_MAX 1e9 /* ms: about 11.6 days */
#define SCORE_MAX 1e15  /* its square and sums stay finite */

/* A string field: 1 to max bytes, no NUL (PostgreSQL's text holds none). */
static bool
good_string(json_t *v, size_t max)
{
    size_t n = json_string_length(v);
    return json_is_string(v) && n > 0 && n <= max &&
           strlen(json_string_value(v)) == n;
}

static bool
known_fields(json_t *o, const char *const *names, size_t n,
             const char **unknown)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        bool ok = false;
        for (size_t i = 0; i < n; i++)
            ok |= strcmp(k, names[i]) == 0;
        if (!ok) {
            *unknown = k;
            return false;
        }
    }
    return true;
}

/* One model's answer into the flat row (prefix "control_" / "candidate_").
 * false: msg says what is wrong. */
static bool
side(json_t *o, const char *who, json_t *row, char *msg, size_t len)
{
    static const char *const names[] = {"output", "latency_ms", "error"};
    const char *unknown = NULL;
    char k[48];
    if (!json_is_object(o)) {
        snprintf(msg, len, "%s: must be an object", who);
        return false;
    }
    if (!known_fields(o, names, AB_ARRAY_LEN(names), &unknown)) {
        snprintf(msg, len, "%s.%.64s: unknown field", who, unknown);
        return false;
    }
    json_t *err = json_object_get(o, "error");
    if (err && !json_is_null(err) && !json_is_boolean(err)) {
        snprintf(msg, len, "%s.error: must be true or false", who);
        return false;
    }
    bool failed = json_is_true(err);
    json_t *out = json_object_get(o, "output");
    if (out == NULL || json_is_null(out)) {
        if (!failed) {
            snprintf(msg, len,
                     "%s.output: required unless \"error\" is true", who);
            return false;
        }
    } else if (json_is_string(out)) {
        if (!good_string(out, OUTPUT_MAX)) {
            snprintf(msg, len,
                     "%s.output: a label must be 1 to %d bytes without NUL",
                     who, OUTPUT_MAX);
            return false;
        }
        snprintf(k, sizeof(k), "%s_class", who);
        json_object_set(row, k, out);
    } else if (json_is_number(out)) {
        double x = json_number_value(out);
        if (!isfinite(x) || fabs(x) > SCORE_MAX) {
            snprintf(msg, len, "%s.output: a score must be finite and at "
                               "most 1e15 in magnitude", who);
            return false;
        }
        snprintf(k, sizeof(k), "%s_score", who);
        json_object_set_new(row, k, json_real(x));
    } else {
        snprintf(msg, len, "%s.output: must be a label (string) or a score "
                           "(number)", who);
        return false;
    }
    json_t *lat = json_object_get(o, "latency_ms");
    if (lat && !json_is_null(lat)) {
        double x = json_is_number(lat) ? json_number_value(lat) : NAN;
        if (!(x >= 0 && x <= LATENCY_MAX)) {
            snprintf(msg, len, "%s.latency_ms: must be a number in [0, 1e9]",
                     who);
            return false;
        }
        snprintf(k, sizeof(k), "%s_latency_ms", who);
        json_object_set_new(row, k, json_real(x));
    }
    snprintf(k, sizeof(k), "%s_error", who);
    json_object_set_new(row, k, json_boolean(failed));
    return true;
}

/* One pair into its flat row (new reference), or NULL with msg. */
static json_t *
pair_row(json_t *p, char *msg, size_t len)
{
    static const char *const names[] = {"request_id", "unit", "control",
                                        "candidate", "label"};
    const char *unknown = NULL;
    if (!json_is_object(p)) {
        snprintf(msg, len, "must be an object");
        return NULL;
    }
    if (!known_fields(p, names, AB_ARRAY_LEN(names), &unknown)) {
        snprintf(msg, len, "%.64s: unknown field", unknown);
        return NULL;
    }
    json_t *rid = json_object_get(p, "request_id");
    json_t *unit = json_object_get(p, "unit");
    json_t *label = json_object_get(p, "label");
    if (!good_string(rid, REQUEST_ID_MAX)) {
        snprintf(msg, len, "request_id: must be 1 to %d bytes without NUL",
                 REQUEST_ID_MAX);
        return NULL;
    }
    if (!good_string(unit, CORE_UNIT_MAX)) {
        snprintf(msg, len, "unit: must be 1 to %d bytes without NUL",
                 CORE_UNIT_MAX);
        return NULL;
    }
    if (label && !json_is_null(label) && !good_string(label, OUTPUT_MAX)) {
        snprintf(msg, len, "label: must be 1 to %d bytes without NUL",
                 OUTPUT_MAX);
        return NULL;
    }
    json_t *row = json_pack("{s:O,s:O}", "request_id", rid, "unit", unit);
    if (label && !json_is_null(label))
        json_object_set(row, "label", label);
    if (!side(json_object_get(p, "control"), "control", row, msg, len) ||
        !side(json_object_get(p, "candidate"), "candidate", row, msg, len)) {
        json_decref(row);
        return NULL;
    }
    return row;
}

/* The shadow experiment of the route, or NULL after a reply. The
 * snapshot stays held by the caller (release it). */
static const struct core_experiment *
shadow_or_reply(struct snapshot *s, const char *key, bool writing,
                struct api_resp *resp)
{
    const struct core_experiment *e = snapshot_find(s, key, NULL);
    if (e == NULL) {
        api_reply_error(resp, 404, "not_found", "no experiment \"%s\"",
                        strlen(key) <= CORE_KEY_MAX ? key : "(too long)");
        return NULL;
    }
    /* reading stays allowed once a shadow has handed off (it is then a
     * canary or a blue-green rollout whose pairs are kept) */
    if (writing && e->strategy != CORE_STRATEGY_SHADOW) {
        api_reply_error(resp, 409, "not_shadow",
                        "experiment \"%s\" is a %s experiment, not a shadow",
                        e->key, core_strategy_name(e->strategy));
        return NULL;
    }
    /* as for events: a draft takes nothing; a stopped shadow still takes
     * the pairs its callers had in flight */
    if (writing && e->state == CORE_STATE_DRAFT) {
        api_reply_error(resp, 409, "experiment_not_started",
                        "experiment \"%s\" is a draft", e->key);
        return NULL;
    }
    return e;
}

/* The batch array of the body: an array, or {"<member>": [...]}. */
static json_t *
batch_or_reply(const struct api_req *req, const char *member,
               struct api_resp *resp)
{
    json_t *b = req->json;
    if (json_is_object(b) && json_object_size(b) == 1)
        b = json_object_get(b, member);
    if (!json_is_array(b) || json_array_size(b) == 0) {
        api_reply_error(resp, 400, "invalid",
                        "body must be a non-empty JSON array of %s or "
                        "{\"%s\": [...]}",
                        member, member);
        return NULL;
    }
    if (json_array_size(b) > SHADOW_BATCH_MAX) {
        api_reply_error(resp, 413,
                        strcmp(member, "pairs") == 0 ? "too_many_pairs"
                                                     : "too_many_labels",
                        "at most %d %s per post", SHADOW_BATCH_MAX, member);
        return NULL;
    }
    return b;
}

/* What both POSTs begin with: the running shadow experiment of the path
 * and the body's batch (borrowed from req), or NULL with the reply made.
 * *id: the experiment's id (the snapshot is released here). */
static json_t *
posted_batch(struct api_ctx *ctx, const struct api_req *req,
             const char *member, struct api_resp *resp, int64_t *id)
{
    struct snapshot *s = app_snapshot_get(ctx->app);
    const struct core_experiment *e =
        shadow_or_reply(s, req->params[0], true, resp);
    json_t *batch = e ? batch_or_reply(req, member, resp) : NULL;
    *id = e ? e->id : 0;
    app_snapshot_release(s);
    return batch;
}

void
api_shadow_pairs_post(struct api_ctx *ctx, const struct api_req *req,
                      struct api_resp *resp)
{
    int64_t id;
    json_t *batch = posted_batch(ctx, req, "pairs", resp, &id);
    if (batch == NULL)
        return;
    json_t *rows = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(batch, i, p) {
        char msg[200];
        json_t *row = pair_row(p, msg, sizeof(msg));
        if (row == NULL) {
            json_decref(rows);
            api_reply_error(resp, 400, "invalid_pair", "pairs[%zu].%s", i,
                            msg);
            return;
        }
        json_array_append_new(rows, row);
    }
    char *doc = json_dumps(rows, JSON_COMPACT);
    json_decref(rows);
    char *text = NULL;
    ab_status rc = db_shadow_pairs_add(ctx->db, id, doc, &text);
    free(doc);
    if (rc != AB_OK) {
        api_reply_status(resp, rc, "could not store the pairs");
        return;
    }
    api_reply_raw(resp, 200, "application/json", text, strlen(text));
}

/* The first request ids of a {"unknown"|"conflicting": [...]} answer, for
 * the message: "\"r-1\", \"r-2\" (and 3 more)". */
static void
id_list(json_t *ids, char *out, size_t len)
{
    size_t i, used = 0;
    json_t *v;
    out[0] = '\0';
    json_array_foreach(ids, i, v) {
        if (i == 3) {
            snprintf(out + used, len - used, " (and %zu more)",
                     json_array_size(ids) - 3);
            return;
        }
        int n = snprintf(out + used, len - used, "%s\"%.64s\"",
                         i ? ", " : "", json_string_value(v));
        if (n < 0 || (size_t)n >= len - used)
            return;
        used += (size_t)n;
    }
}

void
api_shadow_labels_post(struct api_ctx *ctx, const struct api_req *req,
                       struct api_resp *resp)
{
    int64_t id;
    json_t *batch = posted_batch(ctx, req, "labels", resp, &id);
    if (batch == NULL)
        return;
    static const char *const names[] = {"request_id", "label"};
    size_t i;
    json_t *l;
    json_array_foreach(batch, i, l) {
        const char *unknown = NULL;
        if (!json_is_object(l)) {
            api_reply_error(resp, 400, "invalid_label",
                            "labels[%zu]: must be an object", i);
            return;
        }
        if (!known_fields(l, names, 2, &unknown)) {
            api_reply_error(resp, 400, "invalid_label",
                            "labels[%zu].%.64s: unknown field", i, unknown);
            return;
        }
        if (!good_string(json_object_get(l, "request_id"), REQUEST_ID_MAX) ||
            !good_string(json_object_get(l, "label"), OUTPUT_MAX)) {
            api_reply_error(resp, 400, "invalid_label",
                            "labels[%zu]: request_id and label must be "
                            "strings of 1 to %d bytes without NUL",
                            i, OUTPUT_MAX);
            return;
        }
    }
    char *doc = json_dumps(batch, JSON_COMPACT);
    char *text = NULL;
    ab_status rc = db_shadow_labels_set(ctx->db, id, doc, &text);
    free(doc);
    if (rc != AB_OK) {
        api_reply_status(resp, rc, "could not store the labels");
        return;
    }
    json_t *ans = json_loads(text, 0, NULL);
    json_t *unknown = json_object_get(ans, "unknown");
    json_t *conflicting = json_object_get(ans, "conflicting");
    char ids[300];
    if (json_is_array(unknown)) {
        id_list(unknown, ids, sizeof(ids));
        api_reply_error(resp, 404, "not_found",
                        "labels: no pair with request_id %s; nothing stored",
                        ids);
    } else if (json_is_array(conflicting)) {
        id_list(conflicting, ids, sizeof(ids));
        api_reply_error(resp, 409, "conflict",
                        "labels: request_id %s already has another label, "
                        "or two in this batch; nothing stored",
                        ids);
    } else {
        api_reply_raw(resp, 200, "application/json", text, strlen(text));
        text = NULL;
    }
    json_decref(ans);
    free(text);
}

void
api_shadow_get(struct api_ctx *ctx, const struct api_req *req,
               struct api_resp *resp)
{
    double alpha = 0.05;
    const char *alpha_s = api_req_query(req, "alpha");
    if (alpha_s) {
        char *end;
        alpha = strtod(alpha_s, &end);
        if (*end || end == alpha_s || !(alpha > 0 && alpha < 0.5)) {
            api_reply_error(resp, 400, "invalid",
                            "alpha: must be a number in (0, 0.5)");
            return;
        }
    }
    struct snapshot *s = app_snapshot_get(ctx->app);
    const struct core_experiment *e =
        shadow_or_reply(s, req->params[0], false, resp);
    if (e == NULL) {
        app_snapshot_release(s);
        return;
    }
    json_t *doc = NULL;
    ab_status rc = shadow_analysis_json(ctx->db, e, alpha, &doc);
    if (rc == AB_OK) {
        json_object_set_new(doc, "experiment", json_string(e->key));
        json_object_set_new(doc, "state",
                            json_string(core_state_name(e->state)));
    }
    app_snapshot_release(s);
    if (rc != AB_OK) {
        api_reply_status(resp, rc, "could not read the pairs");
        return;
    }
    api_reply_json(resp, 200, doc);
}
