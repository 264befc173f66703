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
#include "core/analysis.h"
#include "core/metric_kind.h"
#include "core/rollout_eval.h"
#include "lib/clock.h"
#include "service/app.h"
#include "service/drift_job.h"
#include "api/handlers.h"
#include "service/reweight.h"
#include "service/rollout_job.h"
#include "sql/db.h"
#include "service/fold.h"
#include "service/fold_read.h"
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
role_name(enum core_role r)
{
    switch (r) {
    case CORE_ROLE_PRIMARY: return "primary";
    case CORE_ROLE_SECONDARY: return "secondary";
    case CORE_ROLE_GUARDRAIL: return "guardrail";
    }
    return "secondary";
}

/* The typed analysis request of one metric from the arm_stats rows (arms:
 * e->n_arms entries, filled here). Guardrails are tested one-sided in
 * their harmful direction (core_guardrail_harm_side); CUPED is applied
 * whenever the metric declares a covariate and its kind admits it
 * (core/metric_kind.h). */
static void
metric_request(const struct core_experiment *e, const struct core_metric *m,
               const struct db_arm_stat *rows, size_t n_rows,
               enum core_analysis_method method, double alpha,
               enum stats_effect effect, struct core_analysis_arm *arms,
               struct core_analysis_req *r)
{
    core_analysis_req_init(r, m->kind, method);
    r->dir = m->direction == CORE_DECREASE ? STATS_DIR_DECREASE
                                           : STATS_DIR_INCREASE;
    r->effect = effect;
    r->alpha = alpha;
    if (m->role == CORE_ROLE_GUARDRAIL && method != CORE_METHOD_BAYES)
        r->side = core_guardrail_harm_side(m); /* the harmful direction */
    r->corr = e->n_arms > 2 && method != CORE_METHOD_BAYES ? STATS_CORR_HOLM
                                                           : STATS_CORR_NONE;
    const struct core_metric_kind_def *k = core_metric_kind_def(m->kind);
    /* every method uses the adjusted arms (msprt and bayes included:
     * issue 10, item 6; before, both silently ignored the covariate) */
    r->cuped = m->covariate != NULL && k->cuped;
    r->mixed_weights = e->weights_version > 1; /* 1: as created */
    for (size_t a = 0; a < e->n_arms; a++) {
        const struct db_arm_stat *row =
            db_arm_stat_find(rows, n_rows, m->name, e->arms[a].name);
        struct core_analysis_arm *x = &arms[a];
        memset(x, 0, sizeof(*x));
        x->name = e->arms[a].name;
        /* the SRM of this metric's n: against the weights in force, which
         * are the only ones while the weights never changed */
        x->weight = (double)e->arms[a].weight;
        x->has_weight = true;
        if (row == NULL)
            continue;
        x->n = row->n;
        x->sum = row->sum;
        x->sum_sq = row->sum_sq;
        if (k->ratio_moments) {
            x->den_sum = row->den_sum;
            x->den_sum_sq = row->den_sum_sq;
            x->cross_sum = row->cross_sum;
        }
        if (r->cuped) {
            x->pre_sum = row->pre_sum;
            x->pre_sum_sq = row->pre_sum_sq;
            x->pre_cross_sum = row->pre_cross_sum;
        }
    }
    r->arms = arms;
    r->n_arms = e->n_arms;
    r->control = e->control;
}

/* One entry of "metrics": the definition and its analysis. */
static json_t *
metric_entry(struct db *db, const struct core_experiment *e,
             const struct core_metric *m, size_t index,
             const struct db_arm_stat *rows, size_t n_rows,
             enum core_analysis_method method, double alpha,
             enum stats_effect effect, struct core_analysis_arm *arms,
             struct core_analysis *an)
{
    struct core_analysis_req r;
    metric_request(e, m, rows, n_rows, method, alpha, effect, arms, &r);
    json_t *entry = json_pack(
        "{s:s,s:s,s:s,s:s}", "name", m->name, "kind",
        core_metric_kind_def(m->kind)->name, "direction",
        m->direction == CORE_INCREASE ? "increase" : "decrease", "role",
        role_name(m->role));
    if (m->kind == CORE_METRIC_QUANTILE) /* issue 16: from the sketches */
        json_object_set_new(entry, "analysis",
                            quantiles_results_json(
                                db, e, index,
                                core_analysis_method_name(method), alpha));
    else if (core_analysis_run(&r, an) == AB_OK)
        json_object_set_new(entry, "analysis", codec_analysis_json(&r, an));
    else
        json_object_set_new(entry, "analysis",
                            json_pack("{s:s,s:s}", "status", "invalid",
                                      "reason", "the experiment cannot be "
                                      "analysed: it needs 2 arms"));
    json_object_set_new(entry, "method",
                        json_string(core_analysis_method_name(method)));
    return entry;
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
    enum core_analysis_method how;
    if (core_analysis_method_parse(method, &how) != AB_OK ||
        how == CORE_METHOD_GST) {
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
    struct db_arm_stat *rows = NULL;
    size_t n_rows = 0;
    char *exp_text = NULL, *moved_text = NULL;
    int64_t several = 0;
    /* read your writes: wait (bounded) for the leader's fold to pass what
     * was committed before this request, say how fresh it is
     * (service/fold_read.h) */
    struct fold_read fr;
    fold_read_wait(ctx->app, ctx->db, ctx->app->cfg.fold_max_age_ms,
                   /* a bandit's estimates read per-unit values */
                   e->strategy == CORE_STRATEGY_BANDIT, &fr);
    json_t *freshness =
        fold_read_json(ctx->db, &fr, ctx->app->cfg.fold_max_age_ms);
    ab_status rc = db_arm_stats_read(ctx->db, key, &rows, &n_rows);
    if (rc == AB_OK)
        rc = db_exposure_counts_json(ctx->db, key, &exp_text);
    if (rc == AB_OK)
        rc = db_units_in_several_arms(ctx->db, e->id, &several);
    if (rc == AB_OK)
        rc = db_moved_units_json(ctx->db, e->id, &moved_text);
    if (rc != AB_OK) {
        db_arm_stats_free(rows, n_rows);
        free(exp_text);
        free(moved_text);
        json_decref(freshness);
        app_snapshot_release(s);
        api_reply_status(resp, rc, "could not read the statistics");
        return;
    }
    json_t *exposures = json_loads(exp_text, 0, NULL);
    free(exp_text);

    enum stats_effect eff = strcmp(effect, "relative") == 0
                                ? STATS_EFFECT_RELATIVE
                                : STATS_EFFECT_ABSOLUTE;
    struct core_analysis *an = core_analysis_new(e->n_arms);
    struct core_analysis_arm *arms = ab_xcalloc(e->n_arms + 1, sizeof(*arms));
    json_t *metrics = json_array();
    for (size_t i = 0; i < e->n_metrics; i++)
        json_array_append_new(metrics,
                              metric_entry(ctx->db, e, &e->metrics[i], i,
                                           rows, n_rows,
                                           how, alpha, eff, arms, an));
    free(arms);
    core_analysis_free(an);
    db_arm_stats_free(rows, n_rows);
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
    /* units whose outcomes went to several arms (README, "Attribution") */
    json_object_set_new(out, "units_in_several_arms",
                        json_integer((json_int_t)several));
    json_t *moved = json_loads(moved_text, 0, NULL);
    free(moved_text);
    json_object_set_new(out, "moved_units", moved ? moved : json_object());
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
    app_snapshot_release(s);
    api_reply_json(resp, 200, out);
}
