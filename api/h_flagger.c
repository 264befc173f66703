/* h_flagger.c -- Flagger webhooks (fluxcd/flagger, docs "Webhooks").
 *
 * Flagger POSTs {"name","namespace","phase","metadata":{...}} and reads
 * only the status: 200-202 passes, anything else fails. It sends no custom
 * headers, so the token rides in metadata.token or in the URL's ?token=
 * (both end up in Flagger's Canary resource and, for the query, in proxy
 * logs: a trade-off, documented in the README; a read-only token limits
 * what a leaked one can do). The experiment is metadata.experiment, else
 * "{namespace}.{name}".
 *
 *   POST /v1/flagger/rollout            passes unless the verdict is rollback
 *   POST /v1/flagger/confirm-promotion  passes only on promote
 *   POST /v1/flagger/rollback           2xx only when arbiter decided
 *                                       rollback (Flagger then fails the
 *                                       canary: inverted polarity)
 *   POST /v1/flagger/event              appends the event to the
 *                                       experiment's audit trail (202)
 *
 * A gate that does not pass answers 412 with the verdict, which Flagger
 * copies into its events. The verdict comes from memory (h_verdict.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/handlers.h"
#include "service/app.h"
#include "service/verdicts.h"
#include "sql/db_audit.h"

enum hook { HOOK_ROLLOUT, HOOK_CONFIRM_PROMOTION, HOOK_ROLLBACK, HOOK_EVENT };

/* The body's token when the request carried none in a header or the
 * query (server.c dispatched with scope NONE). false: answered. */
static bool
body_auth(struct api_ctx *ctx, const struct api_req *req,
          struct api_resp *resp, enum api_scope need, json_t *meta)
{
    if (req->scope != API_SCOPE_NONE)
        return true;
    json_t *t = json_object_get(meta, "token");
    const char *tok = json_is_string(t) ? json_string_value(t) : NULL;
    enum api_scope granted;
    int rc = api_authorize_token(ctx->app, tok,
                                 tok ? json_string_length(t) : 0, need,
                                 &granted);
    if (rc == 401) {
        api_reply_error(resp, 401, "unauthorized",
                        "missing or unknown token (header, ?token= or "
                        "metadata.token)");
        return false;
    }
    if (rc == 403) {
        api_reply_error(resp, 403, "forbidden",
                        "this token may not use this route");
        return false;
    }
    return true;
}

/* metadata.experiment, else "{namespace}.{name}". false: answered 400. */
static bool
experiment_key(json_t *doc, json_t *meta, char *key, size_t n,
               struct api_resp *resp)
{
    json_t *je = json_object_get(meta, "experiment");
    if (je != NULL) {
        if (!json_is_string(je) || json_string_length(je) == 0 ||
            json_string_length(je) > CORE_KEY_MAX) {
            api_reply_error(resp, 400, "invalid",
                            "metadata.experiment: must be an experiment key");
            return false;
        }
        snprintf(key, n, "%s", json_string_value(je));
        return true;
    }
    json_t *jn = json_object_get(doc, "name");
    json_t *jns = json_object_get(doc, "namespace");
    if (!json_is_string(jn) || !json_is_string(jns) ||
        json_string_length(jn) == 0 || json_string_length(jns) == 0) {
        api_reply_error(resp, 400, "invalid",
                        "name and namespace (or metadata.experiment) are "
                        "required");
        return false;
    }
    if (json_string_length(jn) + json_string_length(jns) + 1 > CORE_KEY_MAX) {
        api_reply_error(resp, 400, "invalid",
                        "{namespace}.{name} is longer than %d bytes: set "
                        "metadata.experiment",
                        CORE_KEY_MAX);
        return false;
    }
    snprintf(key, n, "%s.%s", json_string_value(jns), json_string_value(jn));
    return true;
}

static void
hook(struct api_ctx *ctx, const struct api_req *req, struct api_resp *resp,
     enum hook which)
{
    json_t *doc = req->json;
    if (!json_is_object(doc)) {
        api_reply_error(resp, 400, "invalid", "body must be a JSON object");
        return;
    }
    json_t *meta = json_object_get(doc, "metadata");
    if (meta != NULL && !json_is_object(meta) && !json_is_null(meta)) {
        api_reply_error(resp, 400, "invalid", "metadata: must be an object");
        return;
    }
    enum api_scope need =
        which == HOOK_EVENT ? API_SCOPE_CLIENT : API_SCOPE_READ;
    if (!body_auth(ctx, req, resp, need, meta))
        return;
    char key[CORE_KEY_MAX + 16];
    if (!experiment_key(doc, meta, key, sizeof(key), resp))
        return;
    struct snapshot *s;
    const struct core_experiment *e =
        api_snapshot_experiment(ctx, key, resp, &s, NULL);
    if (e == NULL)
        return;
    if (which == HOOK_EVENT) {
        app_snapshot_release(s);
        if (ctx->db == NULL) { /* the route needs the database */
            api_reply_header(resp, "Retry-After", "1");
            api_reply_error(resp, 503, "database_unavailable",
                            "the database is unreachable; retry later");
            return;
        }
        json_t *jm = json_object_get(meta, "eventMessage");
        json_t *jp = json_object_get(doc, "phase");
        /* what Flagger says, never the token */
        json_t *details = json_pack(
            "{s:O*,s:O*,s:O*,s:O*,s:O*,s:O*,s:O*,s:O*,s:O*}", "name",
            json_object_get(doc, "name"), "namespace",
            json_object_get(doc, "namespace"), "phase", jp, "eventType",
            json_object_get(meta, "eventType"), "eventMessage", jm,
            "timestamp", json_object_get(meta, "timestamp"), "canaryWeight",
            json_object_get(doc, "canaryWeight"), "failedChecks",
            json_object_get(doc, "failedChecks"), "iterations",
            json_object_get(doc, "iterations"));
        char *text = json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(details);
        char reason[1024];
        snprintf(reason, sizeof(reason), "%s%s%s",
                 json_is_string(jp) ? json_string_value(jp) : "",
                 json_is_string(jp) && json_is_string(jm) ? ": " : "",
                 json_is_string(jm) ? json_string_value(jm) : "");
        ab_status rc = text && strlen(text) <= 8192
                           ? db_audit_append(ctx->db, key, "flagger_event",
                                             "flagger", reason, text)
                           : AB_EINVAL;
        free(text);
        if (rc == AB_EINVAL)
            api_reply_error(resp, 413, "too_big", "event over 8 KiB");
        else if (rc != AB_OK)
            api_reply_status(resp, rc, "could not record the event");
        else
            api_reply_json(resp, 202, json_pack("{s:s,s:b}", "experiment",
                                                key, "recorded", 1));
        return;
    }
    struct verdict v;
    json_t *body = api_verdict_json(ctx->app, e, &v);
    app_snapshot_release(s);
    bool pass = false;
    switch (which) {
    case HOOK_ROLLOUT: pass = strcmp(v.verdict, "rollback") != 0; break;
    case HOOK_CONFIRM_PROMOTION: pass = strcmp(v.verdict, "promote") == 0; break;
    case HOOK_ROLLBACK: pass = strcmp(v.verdict, "rollback") == 0; break;
    case HOOK_EVENT: pass = false; break;
    }
    json_object_set_new(body, "pass", json_boolean(pass));
    api_reply_json(resp, pass ? 200 : 412, body);
}

void
api_flagger_rollout(struct api_ctx *ctx, const struct api_req *req,
                    struct api_resp *resp)
{
    hook(ctx, req, resp, HOOK_ROLLOUT);
}

void
api_flagger_confirm_promotion(struct api_ctx *ctx, const struct api_req *req,
                              struct api_resp *resp)
{
    hook(ctx, req, resp, HOOK_CONFIRM_PROMOTION);
}

void
api_flagger_rollback(struct api_ctx *ctx, const struct api_req *req,
                     struct api_resp *resp)
{
    hook(ctx, req, resp, HOOK_ROLLBACK);
}

void
api_flagger_event(struct api_ctx *ctx, const struct api_req *req,
                  struct api_resp *resp)
{
    hook(ctx, req, resp, HOOK_EVENT);
}
