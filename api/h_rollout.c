/* h_rollout.c -- manual rollout actions. They take the same path as the
 * engine's decisions (db_decision_apply: state, served arm, audit row with
 * the reason, NOTIFY), with actor "admin".
 *
 *   POST /v1/experiments/{key}/promote   {"arm"?, "reason"?}
 *   POST /v1/experiments/{key}/rollback  {"reason"?}
 *   POST /v1/experiments/{key}/approve   {"reason"?}  (a waiting step)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/app.h"
#include "service/models.h"
#include "api/handlers.h"
#include "core/rollout.h"
#include "sql/db.h"
#include "sql/db_rollout.h"

static void
reply_after(struct api_ctx *ctx, const struct api_req *req,
            struct api_resp *resp, ab_status rc, const char *what)
{
    const char *key = req->params[0];
    if (rc == AB_OK) {
        app_reload_key(ctx->app, ctx->db, key);
        struct db_experiment row = {0};
        if (db_experiment_get(ctx->db, key, &row) == AB_OK) {
            json_t *doc = json_loads(row.definition, 0, NULL);
            json_object_set_new(doc, "state", json_string(row.state));
            json_object_set_new(doc, "version", json_integer(row.version));
            json_object_set_new(doc, "weights_version",
                                json_integer(row.weights_version));
            models_after_decision(ctx->db, key, doc); /* model moves */
            db_experiment_clear(&row);
            api_reply_json(resp, 200, doc);
            return;
        }
        api_reply_json(resp, 200, json_pack("{s:s}", "experiment", key));
    } else if (rc == AB_ECONFLICT) {
        api_reply_error(resp, 409, "illegal_transition",
                        "cannot %s experiment \"%s\" in its current state",
                        what, key);
    } else {
        api_reply_status(resp, rc, "could not %s the experiment", what);
    }
}

/* The action's body (strings only) and the experiment of the path from a
 * held snapshot (release *s), or NULL with the reply made. */
static const struct core_experiment *
body_and_experiment(struct api_ctx *ctx, const struct api_req *req,
                    struct api_resp *resp, const char *const *allowed,
                    char v[][API_STRING_MAX], size_t n, struct snapshot **s)
{
    if (!api_body_strings(req, resp, allowed, v, n))
        return NULL;
    return api_snapshot_experiment(ctx, req->params[0], resp, s, NULL);
}

void
api_experiment_promote(struct api_ctx *ctx, const struct api_req *req,
                       struct api_resp *resp)
{
    static const char *const allowed[] = {"arm", "reason"};
    char v[2][API_STRING_MAX];
    struct snapshot *s;
    const struct core_experiment *e = body_and_experiment(ctx, req, resp,
                                                          allowed, v, 2, &s);
    if (e == NULL)
        return;
    const char *arm = NULL;
    if (v[0][0]) {
        for (size_t a = 0; a < e->n_arms; a++)
            if (strcmp(e->arms[a].name, v[0]) == 0)
                arm = e->arms[a].name;
        if (arm == NULL) {
            app_snapshot_release(s);
            api_reply_error(resp, 400, "invalid", "arm: no arm \"%s\"", v[0]);
            return;
        }
    } else if (e->n_arms == 2) {
        arm = e->arms[core_rollout_candidate(e)].name;
    } else {
        app_snapshot_release(s);
        api_reply_error(resp, 400, "invalid",
                        "arm: required when there are more than two arms");
        return;
    }
    char arm_copy[CORE_KEY_MAX + 1];
    snprintf(arm_copy, sizeof(arm_copy), "%s", arm);
    app_snapshot_release(s);
    struct db_decision d = {.key = req->params[0],
                            .from_states = "running,paused",
                            .state = "promoted",
                            .served_arm = arm_copy,
                            .action = "promote",
                            .actor = "admin",
                            .reason = v[1],
                            .details = NULL};
    json_t *det = json_pack("{s:s}", "arm", arm_copy);
    char *details = json_dumps(det, JSON_COMPACT);
    json_decref(det);
    d.details = details;
    ab_status rc = db_decision_apply(ctx->db, &d);
    free(details);
    reply_after(ctx, req, resp, rc, "promote");
}

void
api_experiment_rollback(struct api_ctx *ctx, const struct api_req *req,
                        struct api_resp *resp)
{
    static const char *const allowed[] = {"reason"};
    char v[1][API_STRING_MAX];
    struct snapshot *s;
    const struct core_experiment *e = body_and_experiment(ctx, req, resp,
                                                          allowed, v, 1, &s);
    if (e == NULL)
        return;
    char control[CORE_KEY_MAX + 1];
    snprintf(control, sizeof(control), "%s", e->arms[e->control].name);
    app_snapshot_release(s);
    struct db_decision d = {.key = req->params[0],
                            .from_states = "running,paused,promoted",
                            .state = "rolled_back",
                            .served_arm = control,
                            .action = "rollback",
                            .actor = "admin",
                            .reason = v[0]};
    reply_after(ctx, req, resp, db_decision_apply(ctx->db, &d), "roll back");
}

void
api_experiment_approve(struct api_ctx *ctx, const struct api_req *req,
                       struct api_resp *resp)
{
    static const char *const allowed[] = {"reason"};
    char v[1][API_STRING_MAX];
    if (!api_body_strings(req, resp, allowed, v, 1))
        return;
    struct db_experiment row = {0};
    if (!api_experiment_row(ctx, req->params[0], resp, &row))
        return;
    struct db_rollout r = {0};
    ab_status rc = db_rollout_load(ctx->db, row.id, &r);
    bool waiting = rc == AB_OK && strcmp(r.phase, "waiting_approval") == 0;
    bool smoke = rc == AB_OK && strcmp(r.phase, "smoke") == 0;
    if (!waiting && !smoke) {
        db_rollout_clear(&r);
        db_experiment_clear(&row);
        api_reply_error(resp, 409, "illegal_transition",
                        "experiment \"%s\" is not waiting for an approval",
                        req->params[0]);
        return;
    }
    r.approved = true;
    if (waiting)
        snprintf(r.phase, sizeof(r.phase), "ramp");
    struct db_decision d = {.key = req->params[0],
                            .from_states = "running,paused",
                            .rollout = &r,
                            .action = "approve",
                            .actor = "admin",
                            .reason = v[0]};
    rc = db_decision_apply(ctx->db, &d);
    db_rollout_clear(&r);
    db_experiment_clear(&row);
    reply_after(ctx, req, resp, rc, "approve");
}
