/* rollout.c -- the automated-rollout job (see rollout.h): reads the
 * statistics of each running experiment from PostgreSQL, asks
 * core_rollout_evaluate() for the evidence (core/rollout_eval.h: the tests
 * and their references) and core_rollout_decide() for the action, and
 * applies it with its audit row. The running state of every sequential
 * test is stored with the rollout between ticks.
 */
#include "service/rollout_job.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/app.h"
#include "service/quantiles.h"
#include "codec/experiment_json.h"
#include "lib/log.h"
#include "codec/rollout_json.h"
#include "codec/state_json.h"
#include "core/rollout.h"
#include "core/rollout_eval.h"
#include "service/fold.h"
#include "sql/db.h"
#include "sql/db_rollout.h"
#include "service/verdicts.h"
#include "service/holdback.h"
#include "service/rollout_stats.h"
#include "service/shadow.h"
#include "sql/db_stats.h"
#include "stats/msprt.h"

struct rollout_job {
    struct app *app;
    int tick_ms;
    int64_t last_ms;
    struct fold_gate *gate; /* issue 11: no decision on stale statistics */
};

struct rollout_job *
rollout_job_new(struct app *app, int tick_ms)
{
    struct rollout_job *j = ab_xcalloc(1, sizeof(*j));
    j->app = app;
    j->tick_ms = tick_ms;
    j->gate = fold_gate_new("rollout", app->cfg.fold_max_age_ms);
    return j;
}

void
rollout_job_free(struct rollout_job *j)
{
    if (j)
        fold_gate_free(j->gate);
    free(j);
}

/* ---- running test state, kept as JSON between ticks ---------------------- */

static void
state_get(json_t *tests, const char *key, struct stats_msprt_state *st)
{
    codec_msprt_state_read(json_object_get(tests, key), st);
}

static void
state_put(json_t *tests, const char *key, const struct stats_msprt_state *st)
{
    json_object_set_new(tests, key, codec_msprt_state_json(st, true));
}

/* ---- inputs from the database ---------------------------------------------- */

/* The running test state <-> JSON, keyed by names (so a reordered
 * definition keeps its states). */
static void
tests_from_json(const struct core_experiment *e, json_t *j,
                struct core_eval_tests *t)
{
    core_eval_tests_init(t);
    char key[200];
    for (size_t m = 0; m < e->n_metrics; m++)
        for (size_t a = 0; a < e->n_arms; a++) {
            snprintf(key, sizeof(key), "primary|%s|%s", e->metrics[m].name,
                     e->arms[a].name);
            state_get(j, key, &t->primary[m][a]);
            snprintf(key, sizeof(key), "harm|%s|%s", e->metrics[m].name,
                     e->arms[a].name);
            state_get(j, key, &t->harm[m][a]);
            snprintf(key, sizeof(key), "safe|%s|%s", e->metrics[m].name,
                     e->arms[a].name);
            state_get(j, key, &t->safe[m][a]);
        }
    t->errors_p = codec_num_or(json_object_get(j, "errors_p_running"), 1);
    t->srm_p = codec_num_or(json_object_get(j, "srm_p_running"), 1);
    t->srm_version = (int64_t)codec_num_or(json_object_get(j, "srm_version"),
                                           0);
}

static json_t *
tests_to_json(const struct core_experiment *e, const struct core_eval_tests *t)
{
    json_t *j = json_object();
    char key[200];
    for (size_t m = 0; m < e->n_metrics; m++)
        for (size_t a = 0; a < e->n_arms; a++) {
            if (a == e->control)
                continue;
            if (t->primary[m][a].n_looks) {
                snprintf(key, sizeof(key), "primary|%s|%s",
                         e->metrics[m].name, e->arms[a].name);
                state_put(j, key, &t->primary[m][a]);
            }
            if (t->harm[m][a].n_looks) {
                snprintf(key, sizeof(key), "harm|%s|%s", e->metrics[m].name,
                         e->arms[a].name);
                state_put(j, key, &t->harm[m][a]);
            }
            if (t->safe[m][a].n_looks) {
                snprintf(key, sizeof(key), "safe|%s|%s", e->metrics[m].name,
                         e->arms[a].name);
                state_put(j, key, &t->safe[m][a]);
            }
        }
    json_object_set_new(j, "errors_p_running", json_real(t->errors_p));
    json_object_set_new(j, "srm_p_running", json_real(t->srm_p));
    json_object_set_new(j, "srm_version", json_integer(t->srm_version));
    return j;
}

static const char *
verdict_name(enum core_verdict v, enum core_eval_kind k)
{
    switch (v) {
    case CORE_VERDICT_WIN: return k == CORE_EVAL_PRIMARY ? "win" : "safe";
    case CORE_VERDICT_HARM: return "harm";
    case CORE_VERDICT_OPEN: return "open";
    case CORE_VERDICT_NONE: break;
    }
    return "none";
}

/* The numbers behind a decision, for the audit row. */
static json_t *
report_json(const struct core_experiment *e,
            const struct core_rollout_config *c,
            const struct core_rollout_evidence *ev,
            const struct core_eval_report *rep, json_t *srm_units)
{
    json_t *prim = json_array(), *guard = json_array();
    for (size_t i = 0; i < rep->n_lines; i++) {
        const struct core_eval_line *l = &rep->lines[i];
        json_t *o = json_pack("{s:s,s:s,s:o,s:o,s:o,s:[o,o],s:o,s:s}",
                              "metric", e->metrics[l->metric].name, "arm",
                              e->arms[l->arm].name, "control_mean",
                              codec_real_or_null(l->control_mean), "effect",
                              codec_real_or_null(l->effect), "se",
                              codec_real_or_null(l->se), "ci_running",
                              codec_real_or_null(l->ci_low),
                              codec_real_or_null(l->ci_high), "p_running",
                              codec_real_or_null(l->p_running), "verdict",
                              verdict_name(l->verdict, l->kind));
        if (l->kind == CORE_EVAL_GUARDRAIL) {
            /* a guardrail's p_running is its harm test's (the test that
             * rolls back, at alpha_harm), so a verdict "harm" never sits
             * beside p = 1; the non-inferiority test is p_safe_running */
            json_object_set_new(o, "p_running",
                                codec_real_or_null(l->p_harm));
            json_object_set_new(o, "margin_abs",
                                codec_real_or_null(l->margin_abs));
            json_object_set_new(o, "p_safe_running",
                                codec_real_or_null(l->p_running));
            json_object_set_new(o, "p_harm_running",
                                codec_real_or_null(l->p_harm));
            json_array_append_new(guard, o);
        } else
            json_array_append_new(prim, o);
    }
    json_t *d = json_pack("{s:o,s:o,s:{s:f,s:b,s:O},s:f,s:f,s:f}", "primary",
                          prim, "guardrails", guard, "srm", "p_value",
                          ev->srm_p, "mismatch", ev->srm_mismatch, "units",
                          srm_units ? srm_units : json_null(), "min_units",
                          ev->min_units, "total_units", ev->total_units,
                          "alpha", c->alpha);
    json_object_set_new(d, "alpha_harm", codec_real_or_null(rep->alpha_harm));
    json_object_set_new(d, "rollback_alpha", json_real(c->rollback_alpha));
    json_t *plans = json_array();
    for (size_t i = 0; i < rep->n_plans; i++) {
        const struct core_eval_plan *p = &rep->plans[i];
        json_array_append_new(
            plans,
            json_pack("{s:s,s:o,s:o,s:o,s:f,s:f,s:b}", "metric",
                      e->metrics[p->metric].name, "harm_abs",
                      codec_real_or_null(p->harm_abs), "units_control",
                      codec_real_or_null(p->units_control), "units_candidate",
                      codec_real_or_null(p->units_candidate), "have_control",
                      p->have_control, "have_candidate", p->have_candidate,
                      "reached", p->reached));
    }
    json_object_set_new(
        d, "plan",
        json_pack("{s:f,s:f,s:f,s:b,s:f,s:o}", "power", c->plan_power,
                  "error_ratio", c->plan_error_ratio, "regression",
                  c->plan_regression, "informative", ev->informative,
                  "units_per_arm", ev->planned_units, "metrics", plans));
    if (rep->errors_tested)
        json_object_set_new(
            d, "errors",
            json_pack("{s:s,s:f,s:f,s:f,s:f}", "metric", c->error_metric,
                      "errors_control", rep->errors_c, "errors_candidate",
                      rep->errors_t, "p_value", rep->errors_p, "p_running",
                      rep->errors_p_running));
    return d;
}

/* Read everything a tick needs and evaluate. *details: new reference. */
static ab_status
gather(struct db *db, const struct core_experiment *e,
       const struct core_rollout_config *c, int64_t now,
       struct core_eval_tests *tests, struct core_rollout_evidence *ev,
       json_t **details)
{
    char *text = NULL;
    static _Thread_local struct core_eval_stats
        stats[CORE_EVAL_MAX_METRICS * CORE_EVAL_MAX_ARMS];
    if (rollout_stats_read(db, e, stats) != AB_OK)
        return AB_EDB;

    json_t *srm = NULL, *exposed = NULL;
    double srm_units[CORE_EVAL_MAX_ARMS] = {0}, total = 0;
    if (db_srm_counts_json(db, e->id, e->weights_version, &text) == AB_OK) {
        srm = json_loads(text, 0, NULL);
        free(text);
    }
    if (db_exposure_counts_json(db, e->key, &text) == AB_OK) {
        exposed = json_loads(text, 0, NULL);
        free(text);
    }
    for (size_t a = 0; a < e->n_arms && a < CORE_EVAL_MAX_ARMS; a++)
        srm_units[a] = codec_num_or(json_object_get(srm, e->arms[a].name), 0);
    size_t i;
    json_t *x;
    json_array_foreach(exposed, i, x)
        total += codec_num_or(json_object_get(x, "units"), 0);
    json_decref(exposed);

    struct stats_count_period periods[256];
    size_t n_periods = 0;
    if (c->error_metric[0] && e->n_arms == 2) {
        size_t cand = core_rollout_candidate(e);
        if (db_error_periods_json(db, e->id, c->error_metric,
                                  e->arms[e->control].name,
                                  e->arms[cand].name, &text) == AB_OK) {
            json_t *arr = json_loads(text, 0, NULL);
            free(text);
            json_array_foreach(arr, i, x) {
                if (n_periods == AB_ARRAY_LEN(periods))
                    break;
                periods[n_periods].share_t = codec_num_or(json_array_get(x,
                                                                         0),
                                                          0);
                periods[n_periods].errors_c = codec_num_or(json_array_get(x,
                                                                          1),
                                                           0);
                periods[n_periods].errors_t = codec_num_or(json_array_get(x,
                                                                          2),
                                                           0);
                n_periods++;
            }
            json_decref(arr);
        }
    }
    struct core_eval_input in = {stats,   srm_units, total,
                                 e->weights_version, periods, n_periods,
                                 now};
    static _Thread_local struct core_eval_report rep;
    ab_status rc = core_rollout_evaluate(e, c, &in, tests, ev, &rep);
    if (rc == AB_OK)
        *details = report_json(e, c, ev, &rep, srm);
    json_decref(srm);
    return rc;
}

/* ---- applying a decision -------------------------------------------------- */

static json_t *
percent(uint32_t w)
{
    return w % 10000 == 0 ? json_integer(w / 10000) : json_real(w / 1e4);
}

/* The definition with the candidate at share w (two-arm strategies). */
static char *
reweighted(const struct core_experiment *e, uint32_t w,
           const char *strategy, char **weights_out)
{
    json_t *def = api_experiment_definition(e);
    json_t *arms = json_object_get(def, "arms");
    json_t *weights = json_object();
    size_t cand = core_rollout_candidate(e);
    for (size_t a = 0; a < e->n_arms; a++) {
        uint32_t x = a == cand ? w : a == e->control ? CORE_SCALE - w : 0;
        json_object_set_new(json_array_get(arms, a), "weight", percent(x));
        json_object_set_new(weights, e->arms[a].name, percent(x));
    }
    if (strategy)
        json_object_set_new(def, "strategy", json_string(strategy));
    char *text = json_dumps(def, JSON_COMPACT | JSON_SORT_KEYS);
    *weights_out = json_dumps(weights, JSON_COMPACT);
    json_decref(def);
    json_decref(weights);
    return text;
}

static void
to_row(const struct core_rollout_state *s, struct db_rollout *r)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->phase, sizeof(r->phase), "%s",
             core_rollout_phase_name(s->phase));
    r->step = (int)s->step;
    r->phase_started_ms = s->phase_started_ms;
    r->approved = s->approved;
    r->last_units = s->last_units;
    r->last_units_ms = s->last_units_ms;
}

static void
from_row(const struct db_rollout *r, struct core_rollout_state *s)
{
    memset(s, 0, sizeof(*s));
    if (core_rollout_phase_parse(r->phase, &s->phase) != AB_OK)
        s->phase = CORE_PHASE_RAMP;
    s->step = r->step > 0 ? (size_t)r->step : 0;
    s->phase_started_ms = r->phase_started_ms;
    s->approved = r->approved;
    s->last_units = r->last_units;
    s->last_units_ms = r->last_units_ms;
}

static void
evaluate(struct db *db, const struct core_experiment *e, int64_t now)
{
    struct core_rollout_config cfg;
    if (api_rollout_config(e, &cfg) != AB_OK)
        return;
    struct db_rollout row = {0};
    struct core_rollout_state st;
    static _Thread_local struct core_eval_tests tests;
    ab_status rc = db_rollout_load(db, e->id, &row);
    if (rc == AB_EDB)
        return;
    bool fresh = rc == AB_ENOTFOUND;
    json_t *tj = NULL;
    if (fresh) {
        core_rollout_state_init(e, &cfg, now, &st);
    } else {
        from_row(&row, &st);
        if (holdback_tick(db, e, &cfg, &row, now)) { /* issue 16 hook */
            db_rollout_clear(&row);
            return;
        }
        tj = json_loads(row.tests, 0, NULL);
    }
    tests_from_json(e, tj, &tests);
    json_decref(tj);
    db_rollout_clear(&row);

    struct db_decision d = {0};
    d.key = e->key;
    d.expect_version = e->version;
    d.from_states = "running";
    d.actor = "engine";
    char *definition = NULL, *weights = NULL;
    json_t *details = NULL;
    struct db_rollout next_row;
    struct core_rollout_decision dec;
    memset(&dec, 0, sizeof(dec));

    size_t cand = core_rollout_candidate(e);
    if (fresh && e->strategy == CORE_STRATEGY_CANARY && cfg.n_steps > 0 &&
        e->arms[cand].weight != cfg.steps[0]) {
        /* a canary starts at its first step */
        dec.action = CORE_ACTION_ADVANCE;
        snprintf(dec.reason, sizeof(dec.reason), "%s",
                 "rollout started: first step");
        dec.candidate_weight = cfg.steps[0];
        dec.next = st;
    } else {
        struct core_rollout_evidence ev;
        if (gather(db, e, &cfg, now, &tests, &ev, &details) != AB_OK)
            return;
        quantiles_rollout_hook(db, e, &cfg, &ev, details); /* issue 16 */
        shadow_paired_evidence(db, e, &cfg, &ev, details); /* issue 16 */
        core_rollout_decide(e, &cfg, &st, &ev, &dec);
        json_object_set_new(details, "phase",
                            json_string(core_rollout_phase_name(st.phase)));
        json_object_set_new(details, "step",
                            json_integer((json_int_t)st.step));
    }

    to_row(&dec.next, &next_row);
    json_t *tests_json = tests_to_json(e, &tests);
    next_row.tests = json_dumps(tests_json, JSON_COMPACT);
    json_decref(tests_json);
    next_row.evidence = details ? json_dumps(details, JSON_COMPACT)
                                : ab_xstrdup("{}");
    json_decref(details);
    d.rollout = &next_row;
    d.details = next_row.evidence;
    d.reason = dec.reason;
    d.action = dec.action == CORE_ACTION_NONE
                   ? NULL
                   : core_rollout_action_name(dec.action);
    switch (dec.action) {
    case CORE_ACTION_NONE:
    case CORE_ACTION_WAIT:
        break;
    case CORE_ACTION_ADVANCE:
        definition = reweighted(e, dec.candidate_weight, NULL, &weights);
        break;
    case CORE_ACTION_CONVERT:
        definition = reweighted(e, dec.candidate_weight,
                                core_strategy_name(dec.convert_to), &weights);
        break;
    case CORE_ACTION_PROMOTE:
        if (holdback_begin(db, e, &cfg, &dec, &d, &next_row, &definition,
                           &weights, now)) /* issue 16 hook */
            break;
        d.state = "promoted";
        d.served_arm =
            e->arms[dec.promote_arm < e->n_arms ? dec.promote_arm : cand].name;
        break;
    case CORE_ACTION_ROLLBACK:
        d.state = "rolled_back";
        d.served_arm = e->arms[e->control].name;
        break;
    case CORE_ACTION_PAUSE:
        d.state = "paused";
        break;
    case CORE_ACTION_STOP:
        d.state = "stopped";
        break;
    }
    d.definition = definition;
    d.weights = weights;
    rc = db_decision_apply(db, &d);
    verdicts_record(e, &dec, rc, now);
    if (rc == AB_OK && d.action)
        log_msg(LOG_INFO, "rollout decision", "experiment", e->key, "action",
                d.action, "reason", d.reason, NULL);
    free(definition);
    free(weights);
    db_rollout_clear(&next_row);
}

void
rollout_job_tick(void *arg, struct db *db, int64_t now_ms)
{
    struct rollout_job *j = arg;
    if (now_ms - j->last_ms < j->tick_ms)
        return;
    j->last_ms = now_ms;
    /* issue 11 hook: statistics older than the bound -> wait, and say so
     * (service/fold.h, fold_gate_check) */
    if (fold_gate_check(j->gate, db))
        return;
    struct snapshot *s = app_snapshot_get(j->app);
    for (size_t i = 0; i < s->n; i++) {
        const struct core_experiment *e = s->exps[i];
        if (e->state != CORE_STATE_RUNNING ||
            e->strategy == CORE_STRATEGY_BANDIT)
            continue;
        evaluate(db, e, now_ms);
    }
    app_snapshot_release(s);
}

/* ---- status for results ----------------------------------------------------- */

json_t *
rollout_status_json(struct db *db, const struct core_experiment *e,
                    int64_t now_ms)
{
    struct core_rollout_config cfg;
    if (e->strategy == CORE_STRATEGY_BANDIT ||
        api_rollout_config(e, &cfg) != AB_OK)
        return json_null();
    struct db_rollout row = {0};
    if (db_rollout_load(db, e->id, &row) != AB_OK)
        return json_pack("{s:s}", "phase", "not_started");
    struct core_rollout_state st;
    from_row(&row, &st);
    json_t *evidence = json_loads(row.evidence, 0, NULL);
    db_rollout_clear(&row);
    size_t cand = core_rollout_candidate(e);
    double in_phase_s = (double)(now_ms - st.phase_started_ms) / 1000.0;
    double min_units = codec_num_or(json_object_get(evidence, "min_units"),
                                    0);
    char waiting[256] = "";
    if (e->state != CORE_STATE_RUNNING)
        snprintf(waiting, sizeof(waiting), "nothing: the experiment is %s",
                 core_state_name(e->state));
    else if (st.phase == CORE_PHASE_HOLDBACK) /* issue 16 */
        snprintf(waiting, sizeof(waiting),
                 "the end of the holdback, or a person after an alert "
                 "(evidence.holdback)");
    else if (st.phase == CORE_PHASE_WAITING)
        snprintf(waiting, sizeof(waiting), "manual approval (POST "
                                           ".../approve)");
    else if (e->strategy == CORE_STRATEGY_AB)
        snprintf(waiting, sizeof(waiting),
                 "a significant result on the primary metric");
    else {
        int64_t need_s = e->strategy == CORE_STRATEGY_BLUE_GREEN
                             ? (st.phase == CORE_PHASE_SWITCHED
                                    ? cfg.rollback_window_s
                                    : cfg.smoke_s)
                         : e->strategy == CORE_STRATEGY_SHADOW
                             ? cfg.shadow_min_s
                             : cfg.step_min_s;
        int64_t need_units = e->strategy == CORE_STRATEGY_SHADOW
                                 ? cfg.shadow_min_units
                                 : cfg.step_min_units;
        if (in_phase_s < (double)need_s)
            snprintf(waiting, sizeof(waiting), "time: %.0f of %lld s",
                     in_phase_s, (long long)need_s);
        else if (min_units < (double)need_units)
            snprintf(waiting, sizeof(waiting), "units: %.0f of %lld per arm",
                     min_units, (long long)need_units);
        else if (cfg.require_evidence)
            snprintf(waiting, sizeof(waiting),
                     "evidence that every guardrail is safe");
        else if (e->strategy == CORE_STRATEGY_CANARY &&
                 st.step < cfg.n_steps && cfg.steps[st.step] < CORE_SCALE &&
                 (st.step + 1 >= cfg.n_steps ||
                  cfg.steps[st.step + 1] >= CORE_SCALE) &&
                 json_is_false(json_object_get(
                     json_object_get(evidence, "plan"), "informative")))
            snprintf(waiting, sizeof(waiting),
                     "the planned power of the last partial step: %.0f "
                     "units per arm (evidence.plan)",
                     codec_num_or(json_object_get(json_object_get(evidence,
                                                                  "plan"),
                                                  "units_per_arm"),
                                  0));
        else
            snprintf(waiting, sizeof(waiting), "the next analysis tick");
    }
    return json_pack("{s:s,s:I,s:o,s:f,s:b,s:s,s:o}", "phase",
                     core_rollout_phase_name(st.phase), "step",
                     (json_int_t)st.step, "candidate_share",
                     json_real((double)e->arms[cand].weight / 1e4),
                     "seconds_in_phase", in_phase_s, "approved", st.approved,
                     "waiting_for", waiting, "evidence",
                     evidence ? evidence : json_null());
}

bool
rollout_job_owns_weights(const struct core_experiment *e, const char *state)
{
    if (strcmp(state, "running") != 0 && strcmp(state, "paused") != 0)
        return false;
    return e->strategy == CORE_STRATEGY_CANARY ||
           e->strategy == CORE_STRATEGY_BLUE_GREEN ||
           e->strategy == CORE_STRATEGY_SHADOW;
}

ab_status
rollout_job_prepare_start(struct db *db, const char *key)
{
    struct db_experiment row = {0};
    ab_status rc = db_experiment_get(db, key, &row);
    if (rc != AB_OK)
        return rc == AB_ENOTFOUND ? AB_OK : rc; /* start answers 404 */
    struct core_experiment *e = NULL;
    json_t *doc = json_loads(row.definition, 0, NULL);
    char err[256];
    struct core_rollout_config cfg;
    if (strcmp(row.state, "draft") != 0 || doc == NULL ||
        api_experiment_parse(doc, &e, err, sizeof(err)) != AB_OK ||
        e->strategy != CORE_STRATEGY_CANARY || e->n_arms != 2 ||
        api_rollout_config(e, &cfg) != AB_OK || cfg.n_steps == 0 ||
        e->arms[core_rollout_candidate(e)].weight == cfg.steps[0])
        goto done;
    char *weights = NULL;
    char *definition = reweighted(e, cfg.steps[0], NULL, &weights);
    struct db_experiment upd = {0};
    rc = db_experiment_update(db, key, row.version, definition, weights,
                              "{\"start\":\"weights set to the first step\"}",
                              &upd);
    db_experiment_clear(&upd);
    free(definition);
    free(weights);
done:
    json_decref(doc);
    core_experiment_free(e);
    db_experiment_clear(&row);
    return rc;
}
