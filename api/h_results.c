/* h_results.c -- GET /v1/experiments/{key}/results and POST /v1/analyze.
 *
 * Results read the per-arm sufficient statistics (arbiter.arm_stats, O(arms
 * x metrics)) and run each declared metric through the same analysis as
 * POST /v1/analyze (codec/analyze.c): by default the always-valid mSPRT, so
 * the answer may be read at any time without inflating false positives;
 * ?method= chooses another. Several treatment arms are adjusted with Holm.
 * Guardrail metrics are tested one-sided in their harmful direction.
 * Sample-ratio mismatch compares the units first exposed under the current
 * weights with those weights.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/analyze.h"
#include "core/rollout_eval.h"
#include "lib/clock.h"
#include "service/app.h"
#include "service/drift_job.h"
#include "api/handlers.h"
#include "service/reweight.h"
#include "service/rollout_job.h"
#include "sql/db.h"
#include "service/fold.h"
#include "service/quantiles.h"
#include "sql/db_stats.h"
#include "stats/srm.h"

void
api_analyze_post(struct api_ctx *ctx, const struct api_req *req,
                 struct api_resp *resp)
{
    (void)ctx;
    char err[512];
    json_t *out = NULL;
    ab_status rc = api_analyze(req->json, &out, err, sizeof(err));
    if (rc == AB_OK)
        api_reply_json(resp, 200, out);
    else if (rc == AB_EINVAL)
        api_reply_error(resp, 400, "invalid", "%s", err);
    else
        api_reply_status(resp, rc, "analysis failed: %s", err);
}

static const char *
kind_name(enum core_metric_kind k)
{
    switch (k) {
    case CORE_METRIC_BINARY: return "binary";
    case CORE_METRIC_SUM: return "sum";
    case CORE_METRIC_MEAN: return "mean";
    case CORE_METRIC_RATIO: return "ratio";
    case CORE_METRIC_QUANTILE: return "quantile";
    }
    return "mean";
}

static const char *
role_name(enum core_role r)
{
    switch (r) {
    case CORE_ROLE_PRIMARY: return "primary";
    case CORE_ROLE_SECONDARY: return "secondary";
    case CORE_ROLE_GUARDRAIL: return "guardrail";
    }
    return "secondary";
}

/* The analysis request of one metric from the arm_stats rows. */
static json_t *
metric_request(const struct core_experiment *e, const struct core_metric *m,
               json_t *rows, const char *method, double alpha,
               const char *effect)
{
    json_t *arms = json_array();
    for (size_t a = 0; a < e->n_arms; a++) {
        const struct core_arm *arm = &e->arms[a];
        json_t *row = NULL, *r;
        size_t i;
        json_array_foreach(rows, i, r) {
            if (strcmp(json_string_value(json_object_get(r, "metric")),
                       m->name) == 0 &&
                strcmp(json_string_value(json_object_get(r, "arm")),
                       arm->name) == 0)
                row = r;
        }
        json_t *x = json_pack("{s:s,s:b}", "name", arm->name, "control",
                              arm->control);
        static const char *const fields[] = {
            "n",         "sum",        "sum_sq",  "den_sum", "den_sum_sq",
            "cross_sum", "pre_sum",    "pre_sum_sq", "pre_cross_sum"};
        for (size_t f = 0; f < AB_ARRAY_LEN(fields); f++) {
            if (m->kind != CORE_METRIC_RATIO && strncmp(fields[f], "den", 3) == 0)
                continue;
            if (m->kind != CORE_METRIC_RATIO && strcmp(fields[f], "cross_sum") == 0)
                continue;
            if (m->covariate == NULL && strncmp(fields[f], "pre", 3) == 0)
                continue;
            json_t *v = row ? json_object_get(row, fields[f]) : NULL;
            json_object_set_new(x, fields[f],
                                json_real(v ? json_number_value(v) : 0.0));
        }
        json_array_append_new(arms, x);
    }
    const char *sided = "two";
    if (m->role == CORE_ROLE_GUARDRAIL) /* the harmful direction */
        sided = core_guardrail_harm_side(m) == STATS_SIDE_GREATER ? "greater"
                                                                  : "less";
    json_t *req = json_pack(
        "{s:{s:s,s:s},s:s,s:s,s:f,s:s,s:s,s:o}", "metric", "kind",
        kind_name(m->kind), "direction",
        m->direction == CORE_INCREASE ? "increase" : "decrease", "method",
        method, "effect", effect, "alpha", alpha, "sided",
        strcmp(method, "bayes") == 0 ? "two" : sided, "correction",
        e->n_arms > 2 ? "holm" : "none", "arms", arms);
    if (m->covariate && m->kind != CORE_METRIC_RATIO &&
        strcmp(method, "bayes") != 0 && strcmp(method, "msprt") != 0)
        json_object_set_new(req, "cuped", json_true());
    return req;
}

static json_t *
srm_json(struct db *db, const struct core_experiment *e)
{
    char *text = NULL;
    if (db_srm_counts_json(db, e->id, e->weights_version, &text) != AB_OK)
        return json_pack("{s:s}", "status", "unavailable");
    json_t *counts = json_loads(text, 0, NULL);
    free(text);
    double c[64], w[64];
    size_t k = e->n_arms < 64 ? e->n_arms : 64;
    for (size_t i = 0; i < k; i++) {
        json_t *v = json_object_get(counts, e->arms[i].name);
        c[i] = v ? json_number_value(v) : 0;
        w[i] = (double)e->arms[i].weight;
    }
    struct stats_srm srm;
    enum stats_reason why = STATS_REASON_NONE;
    json_t *out;
    if (stats_srm_test(c, w, k, 0, &srm, &why) == AB_OK)
        out = json_pack("{s:f,s:f,s:f,s:b,s:s,s:I,s:O}", "p_value",
                        srm.p_value, "chi2", srm.chi2, "df", srm.df,
                        "mismatch", srm.mismatch, "status", "ok",
                        "weights_version", (json_int_t)e->weights_version,
                        "units", counts);
    else
        out = json_pack("{s:n,s:b,s:s,s:s,s:I,s:O}", "p_value", "mismatch",
                        0, "status", stats_reason_code(why), "reason",
                        stats_reason_text(why), "weights_version",
                        (json_int_t)e->weights_version, "units", counts);
    json_decref(counts);
    return out;
}

void
api_experiment_results(struct api_ctx *ctx, const struct api_req *req,
                       struct api_resp *resp)
{
    const char *key = req->params[0];
    const char *method = api_req_query(req, "method");
    const char *effect = api_req_query(req, "effect");
    const char *alpha_s = api_req_query(req, "alpha");
    if (method == NULL)
        method = "msprt";
    if (effect == NULL)
        effect = "absolute";
    double alpha = 0.05;
    if (alpha_s) {
        char *end;
        alpha = strtod(alpha_s, &end);
        if (*end || !(alpha > 0 && alpha < 0.5)) {
            api_reply_error(resp, 400, "invalid",
                            "alpha: must be a number in (0, 0.5)");
            return;
        }
    }
    static const char *const methods[] = {"msprt", "welch", "z", "bayes"};
    bool known = false;
    for (size_t i = 0; i < AB_ARRAY_LEN(methods); i++)
        known |= strcmp(method, methods[i]) == 0;
    if (!known) {
        api_reply_error(resp, 400, "invalid",
                        "method: one of msprt, welch, z, bayes");
        return;
    }
    if (strcmp(effect, "absolute") != 0 && strcmp(effect, "relative") != 0) {
        api_reply_error(resp, 400, "invalid",
                        "effect: \"absolute\" or \"relative\"");
        return;
    }
    struct snapshot *s;
    struct core_experiment *e =
        api_snapshot_experiment(ctx, key, resp, &s, NULL);
    if (e == NULL)
        return;
    char *stats_text = NULL, *exp_text = NULL;
    /* read your writes: fold what is committed, say how fresh it is */
    json_t *freshness = fold_freshness_json(ctx->db);
    ab_status rc = db_arm_stats_json(ctx->db, key, &stats_text);
    if (rc == AB_OK)
        rc = db_exposure_counts_json(ctx->db, key, &exp_text);
    if (rc != AB_OK) {
        free(stats_text);
        json_decref(freshness);
        app_snapshot_release(s);
        api_reply_status(resp, rc, "could not read the statistics");
        return;
    }
    json_t *rows = json_loads(stats_text, 0, NULL);
    json_t *exposures = json_loads(exp_text, 0, NULL);
    free(stats_text);
    free(exp_text);

    json_t *metrics = json_array();
    for (size_t i = 0; i < e->n_metrics; i++) {
        const struct core_metric *m = &e->metrics[i];
        json_t *areq = metric_request(e, m, rows, method, alpha, effect);
        json_t *answer = NULL;
        char err[512] = "";
        json_t *entry = json_pack("{s:s,s:s,s:s,s:s}", "name", m->name,
                                  "kind", kind_name(m->kind), "direction",
                                  m->direction == CORE_INCREASE ? "increase"
                                                                : "decrease",
                                  "role", role_name(m->role));
        if (m->kind == CORE_METRIC_QUANTILE) /* issue 16: sketches */
            json_object_set_new(entry, "analysis",
                                quantiles_results_json(ctx->db, e, i, method,
                                                       alpha));
        else if (api_analyze(areq, &answer, err, sizeof(err)) == AB_OK)
            json_object_set_new(entry, "analysis", answer);
        else
            json_object_set_new(entry, "analysis",
                                json_pack("{s:s,s:s}", "status", "invalid",
                                          "reason", err));
        json_object_set_new(entry, "method", json_string(method));
        json_decref(areq);
        json_array_append_new(metrics, entry);
    }
    json_t *weights = json_object();
    for (size_t a = 0; a < e->n_arms; a++)
        json_object_set_new(weights, e->arms[a].name,
                            json_real((double)e->arms[a].weight / 1e4));
    json_t *out = json_pack(
        "{s:s,s:s,s:s,s:I,s:o,s:o,s:o,s:o}", "experiment", e->key, "state",
        core_state_name(e->state), "strategy",
        core_strategy_name(e->strategy), "weights_version",
        (json_int_t)e->weights_version, "weights", weights, "exposures",
        exposures ? exposures : json_array(), "srm", srm_json(ctx->db, e),
        "metrics", metrics);
    json_object_set_new(out, "freshness", freshness);
    json_object_set_new(out, "rollout",
                        rollout_status_json(ctx->db, e, ab_now_ms()));
    json_object_set_new(out, "drift", drift_results_json(ctx->db, e));
    if (e->strategy == CORE_STRATEGY_BANDIT) {
        /* allocation changed over time: naive means are biased; report
         * the per-period and inverse-propensity estimates beside them */
        json_t *b = NULL;
        if (reweight_estimates_json(ctx->db, e, &b) == AB_OK)
            json_object_set_new(out, "bandit", b);
        else
            json_object_set_new(out, "bandit", json_null());
    }
    json_decref(rows);
    app_snapshot_release(s);
    api_reply_json(resp, 200, out);
}
