/* quantiles.c -- quantile metrics in the service (see quantiles.h). */
#include "service/quantiles.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "codec/field.h"
#include "core/quantile_guard.h"
#include "core/rollout_eval.h"
#include "lib/log.h"
#include "sql/db_quantile.h"
#include "stats/ddsketch.h"
#include "stats/msprt.h"
#include "stats/quantile.h"

/* Bins per sketch: at alpha 1 %, 115 per decade; 16,384 cover values from
 * 1e-35 to 1e35 (the zero bucket included). */
#define SKETCH_CAP 16384

struct arm_sketches {
    struct stats_ddsketch sk[CORE_EVAL_MAX_ARMS];
    struct stats_ddsketch_bin bins[CORE_EVAL_MAX_ARMS][SKETCH_CAP];
};

/* The buckets of every metric of e: {"metric": {"arm": [[b, c]]}}. NULL
 * on a database failure. New reference. */
static json_t *
load(struct db *db, const struct core_experiment *e)
{
    char *text = NULL;
    if (db_quantile_buckets_json(db, e->id, &text) != AB_OK)
        return NULL;
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    return j;
}

/* Sketches of one metric per arm from the loaded buckets (empty arms:
 * n = 0). AB_ETOOBIG when an arm has more buckets than SKETCH_CAP. */
static ab_status
sketches(const json_t *all, const struct core_experiment *e,
         const char *metric, struct arm_sketches *s)
{
    const json_t *arms = json_object_get(all, metric);
    for (size_t a = 0; a < e->n_arms && a < CORE_EVAL_MAX_ARMS; a++) {
        stats_ddsketch_init(&s->sk[a], STATS_DDSKETCH_ALPHA, s->bins[a],
                            SKETCH_CAP);
        const json_t *bins = json_object_get(arms, e->arms[a].name);
        size_t i;
        const json_t *b;
        json_array_foreach(bins, i, b) {
            json_int_t idx = json_integer_value(json_array_get(b, 0));
            json_int_t cnt = json_integer_value(json_array_get(b, 1));
            if (cnt <= 0)
                continue;
            ab_status rc = stats_ddsketch_add_bin(&s->sk[a], (int32_t)idx,
                                                  (uint64_t)cnt);
            if (rc != AB_OK)
                return rc;
        }
    }
    return AB_OK;
}

static json_t *
diff_json(const struct stats_quantile_diff *d)
{
    return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "difference",
                     codec_real_or_null(d->diff), "ci_low",
                     codec_real_or_null(d->diff_low), "ci_high",
                     codec_real_or_null(d->diff_high), "relative",
                     codec_real_or_null(d->rel), "relative_ci_low",
                     codec_real_or_null(d->rel_low), "relative_ci_high",
                     codec_real_or_null(d->rel_high));
}

/* better / worse / inconclusive: the relative interval against 0, in the
 * metric's direction */
static const char *
verdict_word(const struct stats_quantile_diff *d, enum core_direction dir)
{
    if (d->rel_low >= 0) /* bounds are open bucket edges: quantile.h */
        return dir == CORE_INCREASE ? "better" : "worse";
    if (d->rel_high <= 0)
        return dir == CORE_INCREASE ? "worse" : "better";
    return "inconclusive";
}

static json_t *
compare(const struct core_experiment *e, const struct core_metric *m,
        const struct arm_sketches *s, size_t a, bool sequential,
        double alpha)
{
    const struct stats_ddsketch *c = &s->sk[e->control], *t = &s->sk[a];
    struct stats_quantile_diff d;
    ab_status rc;
    if (c->n == 0 || t->n == 0)
        rc = AB_ENOTFOUND;
    else if (sequential)
        rc = stats_quantile_cs(c, t, m->q, alpha, STATS_MSPRT_DEFAULT_N_STAR, &d);
    else
        rc = stats_quantile_fixed(c, t, m->q, alpha, &d);
    if (rc != AB_OK)
        return json_pack("{s:s,s:s,s:s}", "arm", e->arms[a].name, "status",
                         rc == AB_ENUMERIC ? "zero_control" : "not_enough_data",
                         "reason",
                         rc == AB_ENUMERIC
                             ? "the control's quantile is 0: no relative "
                               "difference"
                             : "too few values in an arm for the interval");
    json_t *o = diff_json(&d);
    json_object_set_new(o, "arm", json_string(e->arms[a].name));
    json_object_set_new(o, "status", json_string("ok"));
    json_object_set_new(o, "verdict",
                        json_string(verdict_word(&d, m->direction)));
    return o;
}

json_t *
quantiles_results_json(struct db *db, const struct core_experiment *e,
                       size_t metric, const char *method, double alpha)
{
    const struct core_metric *m = &e->metrics[metric];
    json_t *all = load(db, e);
    if (all == NULL || e->n_arms > CORE_EVAL_MAX_ARMS) {
        json_decref(all);
        return json_pack("{s:s}", "status", "unavailable");
    }
    /* 4 MiB on the heap: too large for a worker's stack or its TLS */
    struct arm_sketches *sp = ab_xmalloc(sizeof(*sp));
    ab_status rc = sketches(all, e, m->name, sp);
    json_decref(all);
    if (rc != AB_OK) {
        free(sp);
        return json_pack("{s:s}", "status", "unavailable");
    }
    const struct arm_sketches *s = sp;
    bool seq = strcmp(method, "msprt") == 0;
    json_t *arms = json_array(), *cmp = json_array();
    for (size_t a = 0; a < e->n_arms; a++) {
        double v = NAN;
        if (s->sk[a].n > 0)
            stats_ddsketch_quantile(&s->sk[a], m->q, &v);
        json_array_append_new(arms,
                              json_pack("{s:s,s:b,s:I,s:o}", "name",
                                        e->arms[a].name, "control",
                                        a == e->control, "n",
                                        (json_int_t)s->sk[a].n, "quantile",
                                        codec_real_or_null(v)));
        if (a != e->control)
            json_array_append_new(cmp, compare(e, m, s, a, seq, alpha));
    }
    free(sp);
    return json_pack(
        "{s:s,s:f,s:f,s:f,s:s,s:s,s:o,s:o}", "status", "ok", "q", m->q,
        "alpha", alpha, "sketch_relative_accuracy", STATS_DDSKETCH_ALPHA,
        "interval",
        seq ? "always_valid_confidence_sequence" : "fixed_horizon",
        "reference",
        seq ? "Howard & Ramdas 2022 (beta-binomial confidence sequence per "
              "arm at alpha/2), sketch error folded into the bounds"
            : "order-statistic standard errors per arm (Price & Bonett "
              "2002), sketch error folded into the bounds",
        "arms", arms, "comparisons", cmp);
}

void
quantiles_rollout_hook(struct db *db, const struct core_experiment *e,
                       const struct core_rollout_config *c,
                       struct core_rollout_evidence *ev, json_t *details)
{
    size_t n = 0;
    for (size_t i = 0; i < e->n_metrics; i++)
        n += e->metrics[i].kind == CORE_METRIC_QUANTILE &&
             e->metrics[i].role == CORE_ROLE_GUARDRAIL;
    if (n == 0 || e->n_arms > CORE_EVAL_MAX_ARMS)
        return;
    json_t *all = load(db, e);
    if (all == NULL) {
        log_msg(LOG_WARN, "quantile guardrails: could not read the sketches",
                NULL);
        ev->guardrails = ev->guardrails == CORE_VERDICT_HARM
                             ? CORE_VERDICT_HARM
                             : CORE_VERDICT_OPEN;
        return;
    }
    struct arm_sketches *s = ab_xmalloc(sizeof(*s)); /* 4 MiB: heap */
    const char *names[CORE_EVAL_MAX_METRICS * CORE_EVAL_MAX_ARMS];
    enum core_verdict verdicts[CORE_EVAL_MAX_METRICS * CORE_EVAL_MAX_ARMS];
    size_t k = 0;
    double alpha = core_rollout_alpha_harm(e, c);
    json_t *lines = json_array();
    for (size_t mi = 0; mi < e->n_metrics; mi++) {
        const struct core_metric *m = &e->metrics[mi];
        if (m->kind != CORE_METRIC_QUANTILE || m->role != CORE_ROLE_GUARDRAIL)
            continue;
        bool ok = sketches(all, e, m->name, s) == AB_OK;
        for (size_t a = 0; a < e->n_arms && k < AB_ARRAY_LEN(verdicts); a++) {
            if (a == e->control)
                continue;
            const struct stats_ddsketch *sc = &s->sk[e->control];
            const struct stats_ddsketch *st = &s->sk[a];
            struct stats_quantile_diff d;
            enum core_verdict v = CORE_VERDICT_NONE;
            if (ok && sc->n >= (uint64_t)c->min_test_units &&
                st->n >= (uint64_t)c->min_test_units &&
                stats_quantile_cs(sc, st, m->q, alpha,
                                  c->tuning > 0 ? c->tuning
                                                : STATS_MSPRT_DEFAULT_N_STAR,
                                  &d) == AB_OK)
                v = core_quantile_guard_verdict(&d, m->direction, c->margin);
            names[k] = m->name;
            verdicts[k++] = v;
            json_t *l = v == CORE_VERDICT_NONE ? json_object() : diff_json(&d);
            json_object_set_new(l, "metric", json_string(m->name));
            json_object_set_new(l, "arm", json_string(e->arms[a].name));
            json_object_set_new(l, "q", json_real(m->q));
            json_object_set_new(l, "n_control", json_integer((json_int_t)sc->n));
            json_object_set_new(l, "n_treatment",
                                json_integer((json_int_t)st->n));
            json_object_set_new(l, "alpha", json_real(alpha));
            json_object_set_new(l, "margin", json_real(c->margin));
            static const char *const vn[] = {"not_enough_data", "open",
                                             "safe", "failed"};
            json_object_set_new(l, "verdict", json_string(vn[v]));
            json_array_append_new(lines, l);
        }
    }
    json_decref(all);
    free(s);
    core_quantile_guard_merge(ev, names, verdicts, k);
    if (details)
        json_object_set_new(details, "quantile_guardrails", lines);
    else
        json_decref(lines);
}
