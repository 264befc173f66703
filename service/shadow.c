/* shadow.c -- paired shadow analysis in the service (see shadow.h). */
#include "service/shadow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/rollout_json.h"
#include "codec/shadow_json.h"
#include "core/shadow.h"
#include "sql/db_shadow.h"

/* The samples of one analysis: latency differences, score differences
 * and the rank test's scratch, SHADOW_SAMPLE_MAX each. */
struct buffers {
    double lat[SHADOW_SAMPLE_MAX], scores[SHADOW_SAMPLE_MAX],
        work[SHADOW_SAMPLE_MAX];
};

static double
num(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : 0;
}

static size_t
sample(json_t *arr, double *out)
{
    size_t i, n = 0;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (n == SHADOW_SAMPLE_MAX)
            break;
        if (json_is_number(v))
            out[n++] = json_number_value(v);
    }
    return n;
}

/* Read and analyse. */
static ab_status
load(struct db *db, const struct core_experiment *e,
     const struct core_rollout_config *c, double alpha, struct buffers *b,
     struct core_shadow_summary *s, struct core_shadow_analysis *a)
{
    char *text = NULL;
    ab_status rc = db_shadow_summary(db, e->id, c->paired.score_tolerance,
                                     SHADOW_SAMPLE_MAX, &text);
    if (rc != AB_OK)
        return rc;
    json_t *o = json_loads(text, 0, NULL);
    free(text);
    if (!json_is_object(o)) {
        json_decref(o);
        return AB_EDB;
    }
    memset(s, 0, sizeof(*s));
    s->n_pairs = num(o, "n_pairs");
    s->n_units = num(o, "n_units");
    s->n_compared = num(o, "n_compared");
    s->n_agree = num(o, "n_agree");
    s->n_latency = num(o, "n_latency");
    s->lat_diff_mean = num(o, "lat_diff_mean");
    s->lat_diff_var = num(o, "lat_diff_var");
    s->lat_control_mean = num(o, "lat_control_mean");
    s->lat_candidate_mean = num(o, "lat_candidate_mean");
    s->err_control = num(o, "err_control");
    s->err_candidate = num(o, "err_candidate");
    s->err_only_control = num(o, "err_only_control");
    s->err_only_candidate = num(o, "err_only_candidate");
    s->n_labelled = num(o, "n_labelled");
    s->both_right = num(o, "both_right");
    s->only_control_right = num(o, "only_control_right");
    s->only_candidate_right = num(o, "only_candidate_right");
    s->n_scores = num(o, "n_scores");
    s->n_lat_diffs = sample(json_object_get(o, "lat_diffs"), b->lat);
    s->lat_diffs = b->lat;
    s->n_score_diffs = sample(json_object_get(o, "score_diffs"), b->scores);
    s->score_diffs = b->scores;
    json_decref(o);
    core_shadow_analyze(&c->paired, alpha, c->rollback_alpha, c->tuning, s,
                        b->work, a);
    return AB_OK;
}

ab_status
shadow_analysis_json(struct db *db, const struct core_experiment *e,
                     double alpha, json_t **out)
{
    struct core_rollout_config c;
    if (api_rollout_config(e, &c) != AB_OK)
        core_rollout_config_default(&c);
    struct core_shadow_summary s;
    struct core_shadow_analysis a;
    struct buffers *b = ab_xmalloc(sizeof(*b));
    ab_status rc = load(db, e, &c, alpha, b, &s, &a);
    if (rc != AB_OK) {
        free(b);
        return rc;
    }
    char reason[CORE_KEY_MAX + 96];
    enum core_shadow_verdict v =
        core_shadow_decide(&c.paired, &s, &a, reason, sizeof(reason));
    *out = api_shadow_analysis_json(&c.paired, &s, &a, v, reason);
    free(b);
    return AB_OK;
}

void
shadow_paired_evidence(struct db *db, const struct core_experiment *e,
                       const struct core_rollout_config *c,
                       struct core_rollout_evidence *ev, json_t *details)
{
    if (e->strategy != CORE_STRATEGY_SHADOW)
        return;
    struct core_shadow_summary s;
    struct core_shadow_analysis a;
    struct buffers *b = ab_xmalloc(sizeof(*b));
    if (load(db, e, c, c->alpha, b, &s, &a) != AB_OK) {
        free(b); /* no paired evidence this tick: the other checks decide */
        return;
    }
    char reason[sizeof(ev->failed_test)];
    enum core_shadow_verdict v =
        core_shadow_decide(&c->paired, &s, &a, reason, sizeof(reason));
    if (json_is_object(details))
        json_object_set_new(details, "paired",
                            api_shadow_analysis_json(&c->paired, &s, &a, v,
                                                     reason));
    free(b);
    switch (v) {
    case CORE_SHADOW_NO_DATA: break;
    case CORE_SHADOW_REGRESSED:
        ev->guardrails = CORE_VERDICT_HARM;
        snprintf(ev->failed_guardrail, sizeof(ev->failed_guardrail), "%s",
                 "paired");
        snprintf(ev->failed_test, sizeof(ev->failed_test), "%s", reason);
        break;
    case CORE_SHADOW_WAITING:
        /* core_rollout_decide hands a shadow off once min_units reaches
         * shadow_min_units: holding it at 0 holds the hand-off (the
         * reason is in details.paired) */
        ev->min_units = 0;
        break;
    case CORE_SHADOW_HOLDING:
        if (ev->min_units < s.n_units)
            ev->min_units = s.n_units;
        break;
    }
}
