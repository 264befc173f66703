/* holdback.c -- the watch after promotion on the decision leader (see
 * holdback.h; the test is core/holdback.h).
 *
 * arbiter.rollout_state.tests during a holdback:
 *   {"holdback": {"started_ms": 1764700000000, "previous": "v1",
 *                 "promoted": "v2", "alerted": false,
 *                 "base": {"<metric>|<arm>": [n, sum, sum_sq, den_sum,
 *                          den_sum_sq, cross_sum, units_with_events]},
 *                 "worse": {"<metric>": {"looks", "p_abs", "abs_low",
 *                           "abs_high"}}}}
 */
#include "service/holdback.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/experiment_json.h"
#include "codec/state_json.h"
#include "core/holdback.h"
#include "lib/log.h"
#include "lib/strbuf.h"
#include "service/rollout_stats.h"
#include "sql/db.h"

#define N_STATS (CORE_EVAL_MAX_METRICS * CORE_EVAL_MAX_ARMS)

/* ---- what /metrics shows: the watches this process ran --------------- */

struct watch {
    char key[CORE_KEY_MAX + 1];
    bool active;
    size_t n_metrics;
    char metric[CORE_EVAL_MAX_METRICS][CORE_KEY_MAX + 1];
    bool reversed[CORE_EVAL_MAX_METRICS];
    double p_running[CORE_EVAL_MAX_METRICS];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct watch *watches;
static size_t n_watches, cap_watches;

static void
watch_set(const struct core_experiment *e, bool active,
          const struct core_holdback_result *r)
{
    pthread_mutex_lock(&lock);
    struct watch *w = NULL;
    for (size_t i = 0; i < n_watches && !w; i++)
        if (strcmp(watches[i].key, e->key) == 0)
            w = &watches[i];
    if (w == NULL) {
        if (n_watches == cap_watches) {
            cap_watches = cap_watches ? 2 * cap_watches : 8;
            watches = ab_xrealloc(watches, cap_watches * sizeof(*watches));
        }
        w = &watches[n_watches++];
        memset(w, 0, sizeof(*w));
        snprintf(w->key, sizeof(w->key), "%s", e->key);
    }
    w->active = active;
    if (r) {
        w->n_metrics = r->n_lines;
        for (size_t i = 0; i < r->n_lines; i++) {
            snprintf(w->metric[i], sizeof(w->metric[i]), "%s",
                     e->metrics[r->lines[i].metric].name);
            w->reversed[i] = r->lines[i].reversed ||
                             (r->verdict == CORE_HOLDBACK_REVERSED &&
                              r->lines[i].p_running <= r->alpha_each);
            w->p_running[i] = r->lines[i].p_running;
        }
    }
    pthread_mutex_unlock(&lock);
}

/* The watch of (key), or NULL; call under lock. */
static const struct watch *
watch_of(const char *key)
{
    for (size_t i = 0; i < n_watches; i++)
        if (strcmp(watches[i].key, key) == 0)
            return &watches[i];
    return NULL;
}

/* 1 when the watch of key found metric reversed. */
static int
reversed_of(const struct watch *w, const char *metric)
{
    for (size_t m = 0; w && m < w->n_metrics; m++)
        if (strcmp(w->metric[m], metric) == 0)
            return w->reversed[m];
    return 0;
}

/* Keys and metric names are [A-Za-z0-9_.-]: nothing to escape. Every
 * running two-arm experiment has its arbiter_holdback_reversed series
 * from the start (0), so that a rule or a dashboard sees them before the
 * first watch (and on every instance; the leader's says 1). */
void
holdback_metrics_render(const struct core_experiment *const *exps, size_t n,
                        char **out, size_t *len)
{
    struct strbuf t;
    strbuf_init(&t, 1024);
    pthread_mutex_lock(&lock);
    strbuf_printf(
        &t, "# HELP arbiter_holdback_reversed 1 when the promoted arm is "
            "significantly worse than the previous version kept on the "
            "holdback (always-valid test, latched)\n"
            "# TYPE arbiter_holdback_reversed gauge\n");
    for (size_t i = 0; i < n; i++) {
        const struct core_experiment *e = exps[i];
        if (e->state != CORE_STATE_RUNNING || e->n_arms != 2 ||
            e->strategy == CORE_STRATEGY_BANDIT)
            continue;
        const struct watch *w = watch_of(e->key);
        for (size_t m = 0; m < e->n_metrics; m++)
            if (e->metrics[m].role != CORE_ROLE_SECONDARY)
                strbuf_printf(&t,
                              "arbiter_holdback_reversed{experiment=\"%s\","
                              "metric=\"%s\"} %d\n",
                              e->key, e->metrics[m].name,
                              reversed_of(w, e->metrics[m].name));
    }
    strbuf_printf(
        &t, "# HELP arbiter_holdback_active 1 while the promoted arm is "
            "watched against a holdback on the previous version\n"
            "# TYPE arbiter_holdback_active gauge\n");
    for (size_t i = 0; i < n_watches; i++) {
        /* a person may end a holdback (promote, rollback, stop) */
        bool running = false;
        for (size_t k = 0; k < n; k++)
            running |= strcmp(exps[k]->key, watches[i].key) == 0 &&
                       exps[k]->state == CORE_STATE_RUNNING;
        strbuf_printf(&t, "arbiter_holdback_active{experiment=\"%s\"} %d\n",
                      watches[i].key, watches[i].active && running);
    }
    strbuf_printf(&t,
                  "# HELP arbiter_holdback_p_running Running always-valid "
                  "p-value of \"the promoted arm is worse\"\n"
                  "# TYPE arbiter_holdback_p_running gauge\n");
    for (size_t i = 0; i < n_watches; i++)
        for (size_t m = 0; m < watches[i].n_metrics; m++)
            strbuf_printf(&t,
                          "arbiter_holdback_p_running{experiment=\"%s\","
                          "metric=\"%s\"} %.17g\n",
                          watches[i].key, watches[i].metric[m],
                          watches[i].p_running[m]);
    pthread_mutex_unlock(&lock);
    *out = t.p;
    *len = t.len;
}

/* ---- state <-> JSON ---------------------------------------------------- */

static size_t
arm_index(const struct core_experiment *e, const char *name)
{
    for (size_t a = 0; name && a < e->n_arms; a++)
        if (strcmp(e->arms[a].name, name) == 0)
            return a;
    return SIZE_MAX;
}

static json_t *
base_to_json(const struct core_experiment *e, const struct core_eval_stats *s)
{
    json_t *o = json_object();
    char key[2 * CORE_KEY_MAX + 2];
    for (size_t m = 0; m < e->n_metrics; m++)
        for (size_t a = 0; a < e->n_arms; a++) {
            const struct core_eval_stats *x = &s[m * CORE_EVAL_MAX_ARMS + a];
            snprintf(key, sizeof(key), "%s|%s", e->metrics[m].name,
                     e->arms[a].name);
            json_object_set_new(
                o, key,
                json_pack("[f,f,f,f,f,f,f]", x->n, x->sum, x->sum_sq,
                          x->den_sum, x->den_sum_sq, x->cross_sum,
                          x->units_with_events));
        }
    return o;
}

static void
base_from_json(const struct core_experiment *e, json_t *o,
               struct core_eval_stats *s)
{
    memset(s, 0, N_STATS * sizeof(*s));
    char key[2 * CORE_KEY_MAX + 2];
    for (size_t m = 0; m < e->n_metrics; m++)
        for (size_t a = 0; a < e->n_arms; a++) {
            snprintf(key, sizeof(key), "%s|%s", e->metrics[m].name,
                     e->arms[a].name);
            json_t *v = json_object_get(o, key);
            struct core_eval_stats *x = &s[m * CORE_EVAL_MAX_ARMS + a];
            x->n = codec_num_or(json_array_get(v, 0), 0);
            x->sum = codec_num_or(json_array_get(v, 1), 0);
            x->sum_sq = codec_num_or(json_array_get(v, 2), 0);
            x->den_sum = codec_num_or(json_array_get(v, 3), 0);
            x->den_sum_sq = codec_num_or(json_array_get(v, 4), 0);
            x->cross_sum = codec_num_or(json_array_get(v, 5), 0);
            x->units_with_events = codec_num_or(json_array_get(v, 6), 0);
        }
}

static void
tests_from_json(const struct core_experiment *e, json_t *h,
                struct core_holdback_tests *t)
{
    core_holdback_tests_init(t);
    t->alerted = json_is_true(json_object_get(h, "alerted"));
    json_t *w = json_object_get(h, "worse");
    for (size_t m = 0; m < e->n_metrics && m < CORE_EVAL_MAX_METRICS; m++) {
        codec_msprt_state_read(json_object_get(w, e->metrics[m].name),
                               &t->worse[m]);
    }
}

static void
tests_to_json(const struct core_experiment *e,
              const struct core_holdback_tests *t, json_t *h)
{
    json_t *w = json_object();
    for (size_t m = 0; m < e->n_metrics && m < CORE_EVAL_MAX_METRICS; m++) {
        const struct stats_msprt_state *st = &t->worse[m];
        if (st->n_looks == 0)
            continue;
        json_object_set_new(w, e->metrics[m].name,
                            codec_msprt_state_json(st, false));
    }
    json_object_set_new(h, "worse", w);
    json_object_set_new(h, "alerted", json_boolean(t->alerted));
}

static void
config_of(const struct core_rollout_config *c, struct core_holdback_config *h)
{
    h->share = c->holdback_share;
    h->period_s = c->holdback_s;
    h->alpha = c->holdback_alpha;
    h->tuning = c->tuning;
    h->min_units = (double)c->min_test_units;
}

/* ---- starting a holdback ----------------------------------------------- */

static json_t *
percent(uint32_t w)
{
    return w % 10000 == 0 ? json_integer(w / 10000) : json_real(w / 1e4);
}

bool
holdback_begin(struct db *db, const struct core_experiment *e,
               const struct core_rollout_config *c,
               const struct core_rollout_decision *dec, struct db_decision *d,
               struct db_rollout *next, char **definition, char **weights,
               int64_t now_ms)
{
    static _Thread_local char reason[CORE_KEY_MAX + 512];
    static _Thread_local struct core_eval_stats base[N_STATS];
    size_t promoted = dec->promote_arm;
    if (dec->action != CORE_ACTION_PROMOTE || c->holdback_share == 0 ||
        e->n_arms != 2 || promoted >= e->n_arms || promoted == e->control ||
        rollout_stats_read(db, e, base) != AB_OK)
        return false;
    /* the previous version keeps the share; arm hashing is ramp-monotone,
     * so its units were on it at every earlier step */
    json_t *def = api_experiment_definition(e);
    json_t *arms = json_object_get(def, "arms");
    json_t *w = json_object();
    for (size_t a = 0; a < e->n_arms; a++) {
        uint32_t x = a == e->control ? c->holdback_share
                                     : CORE_SCALE - c->holdback_share;
        json_object_set_new(json_array_get(arms, a), "weight", percent(x));
        json_object_set_new(w, e->arms[a].name, percent(x));
    }
    *definition = json_dumps(def, JSON_COMPACT | JSON_SORT_KEYS);
    *weights = json_dumps(w, JSON_COMPACT);
    json_decref(def);
    json_decref(w);

    json_t *h = json_pack("{s:I,s:s,s:s,s:o}", "started_ms",
                          (json_int_t)now_ms, "previous",
                          e->arms[e->control].name, "promoted",
                          e->arms[promoted].name, "base", base_to_json(e, base));
    struct core_holdback_tests t;
    core_holdback_tests_init(&t);
    tests_to_json(e, &t, h);
    json_t *tests = json_pack("{s:o}", "holdback", h);
    free(next->tests);
    next->tests = json_dumps(tests, JSON_COMPACT);
    json_decref(tests);
    json_t *ev = json_loads(next->evidence ? next->evidence : "{}", 0, NULL);
    if (!json_is_object(ev)) {
        json_decref(ev);
        ev = json_object();
    }
    json_object_set_new(
        ev, "holdback",
        json_pack("{s:o,s:I,s:I,s:f,s:s,s:s}", "share_pct",
                  percent(c->holdback_share), "period_s",
                  (json_int_t)c->holdback_s, "started_ms", (json_int_t)now_ms,
                  "alpha", c->holdback_alpha, "previous",
                  e->arms[e->control].name, "promoted",
                  e->arms[promoted].name));
    free(next->evidence);
    next->evidence = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    snprintf(next->phase, sizeof(next->phase), "%s",
             core_rollout_phase_name(CORE_PHASE_HOLDBACK));
    next->phase_started_ms = now_ms;
    snprintf(reason, sizeof(reason),
             "%s; holdback: \"%s\" serves %g %%, \"%s\" keeps %g %% for "
             "%lld s",
             dec->reason, e->arms[promoted].name,
             (CORE_SCALE - c->holdback_share) / 1e4, e->arms[e->control].name,
             c->holdback_share / 1e4, (long long)c->holdback_s);
    d->action = "holdback";
    d->state = NULL;
    d->served_arm = NULL;
    d->reason = reason;
    d->details = next->evidence;
    watch_set(e, true, NULL);
    return true;
}

/* ---- a tick of the watch ------------------------------------------------ */

static const char *const verdict_names[] = {"holding", "reversed", "ended"};

static json_t *
result_json(const struct core_experiment *e,
            const struct core_holdback_config *hc, json_t *h,
            const struct core_holdback_result *r)
{
    json_t *lines = json_array();
    for (size_t i = 0; i < r->n_lines; i++) {
        const struct core_holdback_line *l = &r->lines[i];
        json_array_append_new(
            lines,
            json_pack("{s:s,s:b,s:f,s:f,s:o,s:o,s:o,s:[o,o],s:o,s:b}",
                      "metric", e->metrics[l->metric].name, "tested",
                      l->tested, "n_previous", l->n_previous, "n_promoted",
                      l->n_promoted, "mean_previous",
                      codec_real_or_null(l->mean_previous), "mean_promoted",
                      codec_real_or_null(l->mean_promoted), "effect",
                      codec_real_or_null(l->effect), "ci_running",
                      codec_real_or_null(l->ci_low),
                      codec_real_or_null(l->ci_high), "p_running",
                      codec_real_or_null(l->p_running), "reversed",
                      l->reversed));
    }
    int64_t started = (int64_t)codec_num_or(json_object_get(h, "started_ms"),
                                            0);
    return json_pack(
        "{s:o,s:I,s:I,s:o,s:f,s:f,s:s,s:O,s:O,s:o}", "share_pct",
        percent(hc->share), "period_s", (json_int_t)hc->period_s,
        "started_ms", (json_int_t)started, "ends_ms",
        hc->period_s > 0 ? json_integer(started + hc->period_s * 1000)
                         : json_null(),
        "alpha", hc->alpha, "alpha_each", r->alpha_each, "verdict",
        verdict_names[r->verdict], "previous",
        json_object_get(h, "previous"), "promoted",
        json_object_get(h, "promoted"), "metrics", lines);
}

/* Apply the tick: the stored state, and a decision row when one is due. */
static void
apply(struct db *db, const struct core_experiment *e,
      const struct db_rollout *row, const struct core_holdback_result *r,
      json_t *tests, json_t *evidence, size_t promoted)
{
    char reason[CORE_KEY_MAX * 3 + 256] = "";
    struct db_rollout next = *row;
    next.tests = json_dumps(tests, JSON_COMPACT);
    next.evidence = json_dumps(evidence, JSON_COMPACT);
    struct db_decision d = {0};
    d.key = e->key;
    d.expect_version = e->version;
    d.from_states = "running";
    d.actor = "engine";
    d.rollout = &next;
    d.details = next.evidence;
    if (r->new_alert) {
        const struct core_metric *m = &e->metrics[r->reversed_metric];
        double p = 1;
        for (size_t i = 0; i < r->n_lines; i++)
            if (r->lines[i].metric == r->reversed_metric)
                p = r->lines[i].p_running;
        snprintf(reason, sizeof(reason),
                 "holdback: \"%s\" is significantly %s than the previous "
                 "version \"%s\" on \"%s\" (always-valid p %.3g); the "
                 "holdback waits for promote or rollback",
                 e->arms[promoted].name,
                 m->direction == CORE_DECREASE ? "higher" : "lower",
                 e->arms[e->control].name, m->name, p);
        d.action = "holdback_alert";
    } else if (r->verdict == CORE_HOLDBACK_ENDED) {
        snprintf(reason, sizeof(reason),
                 "holdback ended without a reversal: \"%s\" serves every "
                 "unit",
                 e->arms[promoted].name);
        d.action = "holdback_end";
        d.state = "promoted";
        d.served_arm = e->arms[promoted].name;
    }
    d.reason = reason;
    ab_status rc = db_decision_apply(db, &d);
    if (rc == AB_OK && d.action)
        log_msg(r->new_alert ? LOG_WARN : LOG_INFO, "holdback decision",
                "experiment", e->key, "action", d.action, "reason", reason,
                NULL);
    if (rc == AB_OK)
        watch_set(e, r->verdict != CORE_HOLDBACK_ENDED, r);
    free(next.tests);
    free(next.evidence);
}

bool
holdback_tick(struct db *db, const struct core_experiment *e,
              const struct core_rollout_config *c,
              const struct db_rollout *row, int64_t now_ms)
{
    if (strcmp(row->phase, core_rollout_phase_name(CORE_PHASE_HOLDBACK)) != 0)
        return false;
    static _Thread_local struct core_eval_stats now[N_STATS], base[N_STATS];
    json_t *tests = json_loads(row->tests ? row->tests : "{}", 0, NULL);
    json_t *h = json_object_get(tests, "holdback");
    size_t promoted = arm_index(
        e, json_string_value(json_object_get(h, "promoted")));
    struct core_holdback_config hc;
    config_of(c, &hc);
    if (!json_is_object(h) || promoted == SIZE_MAX || hc.share == 0 ||
        rollout_stats_read(db, e, now) != AB_OK) {
        json_decref(tests);
        return true; /* a holdback phase is never a ramp */
    }
    base_from_json(e, json_object_get(h, "base"), base);
    struct core_holdback_tests t;
    tests_from_json(e, h, &t);
    int64_t started = (int64_t)codec_num_or(json_object_get(h, "started_ms"),
                                            0);
    struct core_holdback_result r;
    if (core_holdback_evaluate(e, &hc, e->control, promoted, now, base,
                               started, now_ms, &t, &r) == AB_OK) {
        tests_to_json(e, &t, h);
        json_t *ev = json_loads(row->evidence ? row->evidence : "{}", 0,
                                NULL);
        if (!json_is_object(ev)) {
            json_decref(ev);
            ev = json_object();
        }
        json_object_set_new(ev, "phase", json_string("holdback"));
        json_object_set_new(ev, "holdback", result_json(e, &hc, h, &r));
        apply(db, e, row, &r, tests, ev, promoted);
        json_decref(ev);
    }
    json_decref(tests);
    return true;
}
