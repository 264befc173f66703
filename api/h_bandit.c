/* h_bandit.c -- GET /v1/experiments/:key/bandit: a bandit experiment's
 * allocation as the reweight job left it, with estimates that correct for
 * the changing weights (service/reweight.h).
 *
 *   {"experiment":"k","state":"running","bandit":{...definition...},
 *    "weights_version":7,"weights":{"a":2.5,"b":95,"c":2.5},
 *    "p_best":{"a":0.001,"b":0.998,"c":0.001},"phase":"adaptive",
 *    "job":{...arbiter.bandit_state: the job's memory...} | null,
 *    "estimator":{"metric","kind","method","units","unallocated_units",
 *                 "periods"} | null,
 *    "estimates":[{"arm","units","naive_mean","naive_se","corrected_mean",
 *                  "corrected_se","method","ipw":{...}}],
 *    "history":[{"weights_version","source","weights","inputs",
 *                "created_at"}]}
 * ?history=N limits the history to the last N versions (default 100,
 * 0..1000). The estimators are documented in service/reweight.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/experiment_json.h"
#include "codec/field.h"
#include "api/handlers.h"
#include "service/fold.h"
#include "service/app.h"
#include "service/fold_read.h"
#include "service/reweight.h"
#include "sql/db.h"
#include "sql/db_bandits.h"

/* The job's memory (arbiter.bandit_state) as "job": the row's columns by
 * name, times as RFC 3339, the P(best) object in its stored order and the
 * streak's points as {"arm","at_ms","p_best","weights_version"}. New
 * reference. */
static json_t *
job_json(const struct db_bandit_job *j)
{
    json_t *pb = json_object();
    for (size_t k = 0; k < j->n_p_best; k++)
        json_object_set_new(pb, j->p_best[k].arm, json_real(j->p_best[k].p));
    json_t *hist = json_array();
    for (size_t k = 0; k < j->n_history; k++) {
        const struct db_pbest_point *q = &j->history[k];
        json_array_append_new(
            hist, json_pack("{s:o, s:I, s:f, s:I}", "arm",
                            q->arm ? json_string(q->arm) : json_null(),
                            "at_ms", (json_int_t)q->at_ms, "p_best",
                            q->p_best, "weights_version",
                            (json_int_t)q->weights_version));
    }
    json_t *opt_str[3];
    const char *strs[3] = {j->phase, j->leader_arm, j->promoted_arm};
    for (int k = 0; k < 3; k++)
        opt_str[k] = strs[k] ? json_string(strs[k]) : json_null();
    return json_pack(
        "{s:o, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "last_run_at",
        codec_time_json(j->last_run_ms), "runs", (json_int_t)j->runs,
        "phase", opt_str[0], "p_best", pb, "leader_arm", opt_str[1],
        "leader_since", codec_time_json(j->leader_since_ms),
        "p_best_history", hist, "promoted_arm", opt_str[2],
        "promoted_version",
        j->promoted_version > 0 ? json_integer(j->promoted_version)
                                : json_null());
}

static json_t *
loads_or(const char *text, json_t *fallback)
{
    json_t *j = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    if (j == NULL)
        return fallback;
    json_decref(fallback);
    return j;
}

void
api_bandit_get(struct api_ctx *ctx, const struct api_req *req,
               struct api_resp *resp)
{
    const char *key = req->params[0];
    long limit = 100;
    const char *q = api_req_query(req, "history");
    if (q != NULL) {
        char *end;
        errno = 0;
        limit = strtol(q, &end, 10);
        if (errno || end == q || *end || limit < 0 || limit > 1000) {
            api_reply_error(resp, 400, "invalid",
                            "history: must be an integer between 0 and 1000");
            return;
        }
    }
    struct db_experiment row = {0};
    if (!api_experiment_row(ctx, key, resp, &row))
        return;
    char err[256];
    struct core_experiment *e = NULL;
    json_t *doc = json_loads(row.definition, 0, NULL);
    if (doc == NULL || api_experiment_parse(doc, &e, err, sizeof(err)) !=
                           AB_OK) {
        json_decref(doc);
        db_experiment_clear(&row);
        api_reply_status(resp, AB_EINTERNAL,
                         "the stored definition does not parse");
        return;
    }
    if (e->strategy != CORE_STRATEGY_BANDIT) {
        api_reply_error(resp, 404, "not_found",
                        "experiment \"%s\" is not a bandit (strategy %s)",
                        key, core_strategy_name(e->strategy));
        goto done;
    }
    e->id = row.id;
    e->weights_version = row.weights_version;

    char *hist_text = NULL;
    struct db_bandit_job job;
    bool has_job = false;
    json_t *est = NULL;
    /* read your writes: wait (bounded) for the leader's fold
     * (service/fold_read.h) */
    struct fold_read fr;
    fold_read_wait(ctx->app, ctx->db, ctx->app->cfg.fold_max_age_ms,
                   true, &fr);
    ab_status rc = db_bandit_job_get(ctx->db, e->id, &job, &has_job);
    if (rc == AB_OK)
        rc = db_bandit_history_json(ctx->db, e->id, (int)limit, &hist_text);
    if (rc == AB_OK && e->bandit.metric < e->n_metrics)
        rc = reweight_estimates_json(ctx->db, e, &est);
    if (rc != AB_OK) {
        if (has_job)
            db_bandit_job_clear(&job);
        free(hist_text);
        api_reply_status(resp, rc, "could not read the bandit");
        goto done;
    }
    json_t *state = has_job ? job_json(&job) : json_null();
    if (has_job)
        db_bandit_job_clear(&job);
    json_t *weights = json_object();
    for (size_t k = 0; k < e->n_arms; k++)
        json_object_set_new(weights, e->arms[k].name,
                            codec_percent_json(e->arms[k].weight));
    json_t *out = json_object();
    json_object_set_new(out, "experiment", json_string(e->key));
    json_object_set_new(out, "state", json_string(row.state));
    json_object_set(out, "bandit", json_object_get(doc, "bandit"));
    json_object_set_new(out, "weights_version",
                        json_integer(row.weights_version));
    json_object_set_new(out, "weights", weights);
    json_t *pb = json_object_get(state, "p_best");
    json_object_set_new(out, "p_best", pb ? json_incref(pb) : json_null());
    json_t *phase = json_object_get(state, "phase");
    json_object_set_new(out, "phase",
                        phase ? json_incref(phase) : json_null());
    json_object_set_new(out, "job", state);
    json_t *estimates = est ? json_incref(json_object_get(est, "estimates"))
                            : json_array();
    if (est)
        json_object_del(est, "estimates");
    json_object_set_new(out, "estimator", est ? est : json_null());
    json_object_set_new(out, "estimates", estimates);
    json_object_set_new(out, "history", loads_or(hist_text, json_array()));
    json_object_set_new(
        out, "freshness",
        fold_read_json(ctx->db, &fr, ctx->app->cfg.fold_max_age_ms));
    free(hist_text);
    api_reply_json(resp, 200, out);
done:
    json_decref(doc);
    core_experiment_free(e);
    db_experiment_clear(&row);
}
