/* rollout.c -- the automated-rollout job (see rollout.h).
 *
 * Guardrails. For a metric where lower is better (latency, errors) the
 * candidate harms when its effect d = mean_t - mean_c exceeds m |mean_c|
 * (m: the relative non-inferiority margin); it is proven safe when
 * d < m |mean_c|. Two one-sided always-valid tests per guardrail:
 *   harm: the one-sided (GREATER, margin 0) running confidence bound
 *         ci_low > m |mean_c|                  -> HARM (roll back)
 *   safe: the non-inferiority test (LESS, margin m) rejects -> proven safe
 * mirrored for metrics where higher is better. Both are valid under
 * continuous monitoring (Howard et al. 2021), so checking them every tick
 * keeps the false rollback rate at or below alpha per guardrail.
 * Primary: a two-sided mSPRT per treatment arm at alpha / (arms - 1)
 * (Bonferroni keeps the always-valid guarantee across arms).
 */
#include "api/rollout.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "api/experiment_json.h"
#include "api/log.h"
#include "api/rollout_json.h"
#include "core/rollout.h"
#include "sql/db.h"
#include "sql/db_rollout.h"
#include "sql/db_stats.h"
#include "stats/counts.h"
#include "stats/delta.h"
#include "stats/msprt.h"
#include "stats/srm.h"

struct rollout_job {
    struct app *app;
    int tick_ms;
    int64_t last_ms;
};

struct rollout_job *
rollout_job_new(struct app *app, int tick_ms)
{
    struct rollout_job *j = ab_xcalloc(1, sizeof(*j));
    j->app = app;
    j->tick_ms = tick_ms;
    return j;
}

void
rollout_job_free(struct rollout_job *j)
{
    free(j);
}

/* ---- running test state, kept as JSON between ticks ---------------------- */

static double
num_or(json_t *v, double dflt)
{
    return json_is_number(v) ? json_number_value(v) : dflt;
}

static json_t *
finite_or_null(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

static void
state_get(json_t *tests, const char *key, struct stats_msprt_state *st)
{
    stats_msprt_state_init(st);
    json_t *o = json_object_get(tests, key);
    if (!json_is_object(o))
        return;
    st->n_looks = (uint64_t)num_or(json_object_get(o, "looks"), 0);
    st->p_abs = num_or(json_object_get(o, "p_abs"), 1);
    st->abs_low = num_or(json_object_get(o, "abs_low"), -INFINITY);
    st->abs_high = num_or(json_object_get(o, "abs_high"), INFINITY);
    st->p_rel = num_or(json_object_get(o, "p_rel"), 1);
    st->rel_low = num_or(json_object_get(o, "rel_low"), -INFINITY);
    st->rel_high = num_or(json_object_get(o, "rel_high"), INFINITY);
}

static void
state_put(json_t *tests, const char *key, const struct stats_msprt_state *st)
{
    json_object_set_new(
        tests, key,
        json_pack("{s:I,s:o,s:o,s:o,s:o,s:o,s:o}", "looks",
                  (json_int_t)st->n_looks, "p_abs", finite_or_null(st->p_abs),
                  "abs_low", finite_or_null(st->abs_low), "abs_high",
                  finite_or_null(st->abs_high), "p_rel",
                  finite_or_null(st->p_rel), "rel_low",
                  finite_or_null(st->rel_low), "rel_high",
                  finite_or_null(st->rel_high)));
}

/* ---- statistics from arbiter.arm_stats rows ------------------------------- */

static json_t *
stats_row(json_t *rows, const char *metric, const char *arm)
{
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) {
        if (strcmp(json_string_value(json_object_get(r, "metric")), metric) ==
                0 &&
            strcmp(json_string_value(json_object_get(r, "arm")), arm) == 0)
            return r;
    }
    return NULL;
}

static double
field(json_t *row, const char *f)
{
    return row ? num_or(json_object_get(row, f), 0) : 0;
}

static ab_status
summary(json_t *rows, const struct core_metric *m, const char *arm,
        struct stats_summary *out)
{
    json_t *r = stats_row(rows, m->name, arm);
    enum stats_reason why;
    if (m->kind == CORE_METRIC_RATIO) {
        struct stats_ratio_moments rm = {
            field(r, "n"),       field(r, "sum"),        field(r, "sum_sq"),
            field(r, "den_sum"), field(r, "den_sum_sq"), field(r, "cross_sum")};
        return stats_ratio_summary(&rm, out, &why);
    }
    struct stats_moments mm = {field(r, "n"), field(r, "sum"),
                               field(r, "sum_sq")};
    return stats_moments_summary(&mm, out, &why);
}

/* ---- evidence ------------------------------------------------------------- */

struct gather {
    struct core_rollout_evidence ev;
    json_t *details; /* the numbers, for the audit row */
    json_t *tests;   /* running state (borrowed from the caller) */
};

static void
primary_tests(const struct core_experiment *e,
              const struct core_rollout_config *c, json_t *rows,
              struct gather *g)
{
    const struct core_metric *m = NULL;
    for (size_t i = 0; i < e->n_metrics && m == NULL; i++)
        if (e->metrics[i].role == CORE_ROLE_PRIMARY)
            m = &e->metrics[i];
    g->ev.primary = CORE_VERDICT_NONE;
    g->ev.best_arm = e->n_arms;
    if (m == NULL)
        return;
    struct stats_summary sc;
    const char *ctl = e->arms[e->control].name;
    if (summary(rows, m, ctl, &sc) != AB_OK)
        return;
    size_t k = e->n_arms > 1 ? e->n_arms - 1 : 1;
    json_t *list = json_array();
    size_t wins = 0, harms = 0, tested = 0;
    double best = -INFINITY;
    for (size_t a = 0; a < e->n_arms; a++) {
        if (a == e->control)
            continue;
        struct stats_summary st;
        if (summary(rows, m, e->arms[a].name, &st) != AB_OK)
            continue;
        struct stats_msprt_opts o = {c->alpha / (double)k, c->tuning,
                                     STATS_SIDE_TWO, 0, 0};
        char key[160];
        snprintf(key, sizeof(key), "primary|%s|%s", m->name, e->arms[a].name);
        struct stats_msprt_state s;
        state_get(g->tests, key, &s);
        struct stats_msprt_result r;
        if (stats_msprt_test(&sc, &st, &o, &s, &r, NULL) != AB_OK)
            continue;
        state_put(g->tests, key, &s);
        tested++;
        enum core_verdict v = CORE_VERDICT_OPEN;
        double good = m->direction == CORE_INCREASE ? r.abs.estimate
                                                    : -r.abs.estimate;
        if (r.abs.reject) {
            bool up = r.abs.ci_low_running > 0;
            bool better = m->direction == CORE_INCREASE ? up : !up;
            v = better ? CORE_VERDICT_WIN : CORE_VERDICT_HARM;
        }
        if (v == CORE_VERDICT_WIN) {
            wins++;
            if (good > best) {
                best = good;
                g->ev.best_arm = a;
            }
        } else if (v == CORE_VERDICT_HARM)
            harms++;
        json_array_append_new(
            list,
            json_pack("{s:s,s:s,s:o,s:o,s:[o,o],s:o,s:s}", "metric", m->name,
                      "arm", e->arms[a].name, "effect",
                      finite_or_null(r.abs.estimate), "se",
                      finite_or_null(r.abs.se), "ci_running",
                      finite_or_null(r.abs.ci_low_running),
                      finite_or_null(r.abs.ci_high_running), "p_running",
                      finite_or_null(r.abs.p_running), "verdict",
                      v == CORE_VERDICT_WIN    ? "win"
                      : v == CORE_VERDICT_HARM ? "harm"
                                               : "open"));
    }
    json_object_set_new(g->details, "primary", list);
    if (tested == 0)
        return;
    if (wins > 0)
        g->ev.primary = CORE_VERDICT_WIN;
    else if (harms == tested)
        g->ev.primary = CORE_VERDICT_HARM;
    else
        g->ev.primary = CORE_VERDICT_OPEN;
}

static void
guardrail_tests(const struct core_experiment *e,
                const struct core_rollout_config *c, json_t *rows,
                struct gather *g)
{
    json_t *list = json_array();
    size_t n = 0, safe = 0, harm = 0;
    const char *ctl = e->arms[e->control].name;
    for (size_t i = 0; i < e->n_metrics; i++) {
        const struct core_metric *m = &e->metrics[i];
        if (m->role != CORE_ROLE_GUARDRAIL)
            continue;
        for (size_t a = 0; a < e->n_arms; a++) {
            if (a == e->control)
                continue;
            n++;
            struct stats_summary sc, st;
            if (summary(rows, m, ctl, &sc) != AB_OK ||
                summary(rows, m, e->arms[a].name, &st) != AB_OK)
                continue;
            bool lower_better = m->direction == CORE_DECREASE;
            double bound = c->margin * fabs(sc.mean);
            char key[160];
            /* harm */
            struct stats_msprt_opts oh = {
                c->alpha, c->tuning,
                lower_better ? STATS_SIDE_GREATER : STATS_SIDE_LESS, 0, 0};
            snprintf(key, sizeof(key), "harm|%s|%s", m->name, e->arms[a].name);
            struct stats_msprt_state sh;
            state_get(g->tests, key, &sh);
            struct stats_msprt_result rh;
            if (stats_msprt_test(&sc, &st, &oh, &sh, &rh, NULL) != AB_OK)
                continue;
            state_put(g->tests, key, &sh);
            bool harmed = lower_better ? rh.abs.ci_low_running > bound
                                       : rh.abs.ci_high_running < -bound;
            /* proven safe (non-inferior by the margin) */
            struct stats_msprt_opts os = {
                c->alpha, c->tuning,
                lower_better ? STATS_SIDE_LESS : STATS_SIDE_GREATER, 0,
                c->margin};
            snprintf(key, sizeof(key), "safe|%s|%s", m->name, e->arms[a].name);
            struct stats_msprt_state ss;
            state_get(g->tests, key, &ss);
            struct stats_msprt_result rs;
            memset(&rs, 0, sizeof(rs));
            rs.abs.p_running = NAN;
            bool proven = false;
            if (stats_msprt_test(&sc, &st, &os, &ss, &rs, NULL) == AB_OK) {
                state_put(g->tests, key, &ss);
                proven = rs.abs.reject;
            }
            if (harmed) {
                harm++;
                if (g->ev.failed_guardrail[0] == '\0')
                    snprintf(g->ev.failed_guardrail,
                             sizeof(g->ev.failed_guardrail), "%s", m->name);
            } else if (proven)
                safe++;
            json_array_append_new(
                list,
                json_pack("{s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:s}", "metric",
                          m->name, "arm", e->arms[a].name, "control_mean",
                          finite_or_null(sc.mean), "effect",
                          finite_or_null(rh.abs.estimate), "harm_bound",
                          finite_or_null(lower_better ? rh.abs.ci_low_running
                                                      : rh.abs.ci_high_running),
                          "margin_abs", finite_or_null(bound), "safe_p_running",
                          finite_or_null(rs.abs.p_running),
                          "verdict",
                          harmed ? "harm" : proven ? "safe" : "open"));
        }
    }
    json_object_set_new(g->details, "guardrails", list);
    if (n == 0)
        g->ev.guardrails = CORE_VERDICT_NONE;
    else if (harm > 0)
        g->ev.guardrails = CORE_VERDICT_HARM;
    else if (safe == n)
        g->ev.guardrails = CORE_VERDICT_WIN;
    else
        g->ev.guardrails = CORE_VERDICT_OPEN;
}

static void
error_test(struct db *db, const struct core_experiment *e,
           const struct core_rollout_config *c, struct gather *g)
{
    if (c->error_metric[0] == '\0' || e->n_arms != 2 ||
        e->strategy == CORE_STRATEGY_SHADOW)
        return;
    size_t cand = core_rollout_candidate(e);
    char *text = NULL;
    if (db_error_periods_json(db, e->id, c->error_metric,
                              e->arms[e->control].name, e->arms[cand].name,
                              &text) != AB_OK)
        return;
    json_t *arr = json_loads(text, 0, NULL);
    free(text);
    struct stats_count_period p[256];
    size_t k = 0, i;
    json_t *row;
    json_array_foreach(arr, i, row) {
        double share = num_or(json_array_get(row, 0), 0);
        if (share <= 0 || share >= 1 || k == AB_ARRAY_LEN(p))
            continue;
        p[k].errors_c = num_or(json_array_get(row, 1), 0);
        p[k].errors_t = num_or(json_array_get(row, 2), 0);
        p[k].share_t = share;
        k++;
    }
    json_decref(arr);
    if (k == 0)
        return;
    struct stats_counts_result r;
    if (stats_counts_test(p, k, 0, STATS_SIDE_GREATER, &r, NULL) != AB_OK)
        return;
    double running = num_or(json_object_get(g->tests, "errors_p_running"), 1);
    if (r.p_value < running)
        running = r.p_value;
    json_object_set_new(g->tests, "errors_p_running", json_real(running));
    g->ev.errors_failed = running <= c->alpha;
    json_object_set_new(
        g->details, "errors",
        json_pack("{s:s,s:f,s:f,s:o,s:f,s:f}", "metric", c->error_metric,
                  "errors_control", r.errors_c, "errors_candidate",
                  r.errors_t, "rate_ratio", finite_or_null(r.rate_ratio),
                  "p_value", r.p_value, "p_running", running));
}

static void
traffic(struct db *db, const struct core_experiment *e, json_t *rows,
        struct gather *g)
{
    char *text = NULL;
    json_t *counts = NULL;
    if (db_srm_counts_json(db, e->id, e->weights_version, &text) == AB_OK)
        counts = json_loads(text, 0, NULL);
    free(text);
    double c[64], w[64], min_live = INFINITY;
    size_t k = 0, live = 0;
    for (size_t a = 0; a < e->n_arms && k < 64; a++, k++) {
        json_t *v = json_object_get(counts, e->arms[a].name);
        c[k] = v ? json_number_value(v) : 0;
        w[k] = (double)e->arms[a].weight;
        if (w[k] > 0) {
            live++;
            if (c[k] < min_live)
                min_live = c[k];
        }
    }
    g->ev.srm_p = 1;
    if (live >= 2) {
        struct stats_srm srm;
        if (stats_srm_test(c, w, k, 0, &srm, NULL) == AB_OK) {
            g->ev.srm_p = srm.p_value;
            g->ev.srm_mismatch = srm.mismatch != 0;
        }
    }
    /* units: live arms in this weights version; blue-green and shadow
     * compare arms that do not all take live traffic: units with data */
    if (e->strategy == CORE_STRATEGY_BLUE_GREEN ||
        e->strategy == CORE_STRATEGY_SHADOW || live < 2) {
        min_live = INFINITY;
        for (size_t a = 0; a < e->n_arms; a++) {
            double best = 0;
            for (size_t i = 0; i < e->n_metrics; i++) {
                json_t *r = stats_row(rows, e->metrics[i].name,
                                      e->arms[a].name);
                double u = field(r, "units_with_events");
                if (u > best)
                    best = u;
            }
            if (best < min_live)
                min_live = best;
        }
    }
    g->ev.min_units = isfinite(min_live) ? min_live : 0;
    double total = 0;
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) {
        if (i == 0 || strcmp(json_string_value(json_object_get(r, "metric")),
                             json_string_value(json_object_get(
                                 json_array_get(rows, 0), "metric"))) == 0)
            total += field(r, "exposed_units");
    }
    g->ev.total_units = total;
    json_object_set_new(g->details, "srm",
                        json_pack("{s:f,s:b,s:O}", "p_value", g->ev.srm_p,
                                  "mismatch", g->ev.srm_mismatch, "units",
                                  counts ? counts : json_null()));
    json_object_set_new(g->details, "min_units", json_real(g->ev.min_units));
    json_object_set_new(g->details, "total_units",
                        json_real(g->ev.total_units));
    json_decref(counts);
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
    json_t *tests = NULL;
    ab_status rc = db_rollout_load(db, e->id, &row);
    if (rc == AB_EDB)
        return;
    bool fresh = rc == AB_ENOTFOUND;
    if (fresh) {
        core_rollout_state_init(e, &cfg, now, &st);
        tests = json_object();
    } else {
        from_row(&row, &st);
        tests = json_loads(row.tests, 0, NULL);
        if (!json_is_object(tests)) {
            json_decref(tests);
            tests = json_object();
        }
    }
    db_rollout_clear(&row);

    struct db_decision d = {0};
    d.key = e->key;
    d.expect_version = e->version;
    d.from_states = "running";
    d.actor = "engine";
    char *definition = NULL, *weights = NULL, *details = NULL;
    struct db_rollout next_row;
    struct core_rollout_decision dec;
    memset(&dec, 0, sizeof(dec));

    size_t cand = core_rollout_candidate(e);
    if (fresh && e->strategy == CORE_STRATEGY_CANARY && cfg.n_steps > 0 &&
        e->arms[cand].weight != cfg.steps[0]) {
        /* a canary starts at its first step */
        dec.action = CORE_ACTION_ADVANCE;
        dec.reason = "rollout started: first step";
        dec.candidate_weight = cfg.steps[0];
        dec.next = st;
    } else {
        char *stats_text = NULL;
        if (db_arm_stats_json(db, e->key, &stats_text) != AB_OK) {
            json_decref(tests);
            return;
        }
        json_t *rows = json_loads(stats_text, 0, NULL);
        free(stats_text);
        struct gather g;
        memset(&g, 0, sizeof(g));
        g.ev.now_ms = now;
        g.details = json_object();
        g.tests = tests;
        traffic(db, e, rows, &g);
        primary_tests(e, &cfg, rows, &g);
        guardrail_tests(e, &cfg, rows, &g);
        error_test(db, e, &cfg, &g);
        json_decref(rows);
        core_rollout_decide(e, &cfg, &st, &g.ev, &dec);
        json_object_set_new(g.details, "phase",
                            json_string(core_rollout_phase_name(st.phase)));
        json_object_set_new(g.details, "step", json_integer((json_int_t)st.step));
        details = json_dumps(g.details, JSON_COMPACT);
        json_decref(g.details);
    }

    to_row(&dec.next, &next_row);
    next_row.tests = json_dumps(tests, JSON_COMPACT);
    next_row.evidence = details ? details : ab_xstrdup("{}");
    d.rollout = &next_row;
    d.details = next_row.evidence;
    d.reason = dec.reason;
    d.action = dec.action == CORE_ACTION_NONE
                   ? NULL
                   : core_rollout_action_name(dec.action);
    switch (dec.action) {
    case CORE_ACTION_NONE:
        break;
    case CORE_ACTION_ADVANCE:
        definition = reweighted(e, dec.candidate_weight, NULL, &weights);
        break;
    case CORE_ACTION_CONVERT:
        definition = reweighted(e, dec.candidate_weight,
                                core_strategy_name(dec.convert_to), &weights);
        break;
    case CORE_ACTION_WAIT:
        break;
    case CORE_ACTION_PROMOTE:
        d.state = "promoted";
        d.served_arm = e->arms[dec.promote_arm < e->n_arms ? dec.promote_arm
                                                          : cand]
                           .name;
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
    if (rc == AB_OK && d.action)
        log_msg(LOG_INFO, "rollout decision", "experiment", e->key, "action",
                d.action, "reason", d.reason, NULL);
    free(definition);
    free(weights);
    db_rollout_clear(&next_row);
    json_decref(tests);
}

void
rollout_job_tick(void *arg, struct db *db, int64_t now_ms)
{
    struct rollout_job *j = arg;
    if (now_ms - j->last_ms < j->tick_ms)
        return;
    j->last_ms = now_ms;
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
    double min_units = num_or(json_object_get(evidence, "min_units"), 0);
    char waiting[256] = "";
    if (e->state != CORE_STATE_RUNNING)
        snprintf(waiting, sizeof(waiting), "nothing: the experiment is %s",
                 core_state_name(e->state));
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
