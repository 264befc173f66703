/* rollout_json.c -- parse and print the "rollout" object (rollout_json.h).
 */
#include "codec/rollout_json.h"
#include "codec/shadow_json.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "codec/field.h"

static const struct codec_name then_names[] = {
    {"canary", CORE_THEN_CANARY},
    {"blue_green", CORE_THEN_BLUE_GREEN},
    {"stop", CORE_THEN_STOP},
};

/* ---- the one table ---------------------------------------------------
 * Every field of the object, in the order it is printed and parsed (the
 * first bad field is the one reported). The numbers and booleans are read
 * and printed from the table alone; the others have their own reader and
 * printer (the switches below). */
enum kind {
    K_REAL,    /* double, number in lo..hi */
    K_SECONDS, /* int64_t, integer seconds >= 0 */
    K_COUNT,   /* int64_t, number in lo..hi (units may be written 1e6) */
    K_BOOL,    /* bool */
    K_STEPS,
    K_ERROR_METRIC,
    K_THEN,
    K_HOLDBACK_PCT, /* holdback_share, a percentage in [0, 50] */
    K_PAIRED
};

struct field {
    const char *name;
    enum kind kind;
    size_t off; /* in struct core_rollout_config (K_REAL..K_BOOL) */
    double lo, hi;
    bool lo_open;
    bool holdback; /* printed only with a holdback on: older definitions
                      stay byte-identical */
};

#define AT(member) offsetof(struct core_rollout_config, member)
#define REAL(m, lo, hi, open) {#m, K_REAL, AT(m), lo, hi, open, false}
#define SECONDS(m) {#m, K_SECONDS, AT(m), 0, 0, false, false}
#define COUNT(m, lo, hi) {#m, K_COUNT, AT(m), lo, hi, false, false}
#define BOOL(m) {#m, K_BOOL, AT(m), 0, 0, false, false}
#define OWN(name, kind) {name, kind, 0, 0, 0, false, false}

static const struct field fields[] = {
    REAL(alpha, 0, 0.5, true),
    REAL(tuning, 0, 1e12, true),
    REAL(margin, 0, 10, false),
    BOOL(auto_promote),
    SECONDS(max_duration_s),
    COUNT(max_units, 0, 1e15),
    OWN("steps", K_STEPS),
    SECONDS(step_min_s),
    COUNT(step_min_units, 0, 1e15),
    SECONDS(step_max_s),
    BOOL(require_evidence),
    BOOL(manual_approval),
    BOOL(adaptive),
    OWN("error_metric", K_ERROR_METRIC),
    SECONDS(smoke_s),
    SECONDS(rollback_window_s),
    SECONDS(shadow_min_s),
    COUNT(shadow_min_units, 0, 1e15),
    OWN("then", K_THEN),
    SECONDS(no_traffic_s),
    COUNT(min_test_units, 2, 1e12),
    REAL(rollback_alpha, 0, 0.5, true),
    REAL(plan_power, 0.5, 0.9999, false),
    REAL(plan_error_ratio, 1, 1000, true),
    REAL(plan_regression, 0, 10, true),
    {"holdback_pct", K_HOLDBACK_PCT, 0, 0, 50, false, true},
    {"holdback_s", K_SECONDS, AT(holdback_s), 0, 0, false, true},
    {"holdback_alpha", K_REAL, AT(holdback_alpha), 0, 0.5, true, true},
    OWN("paired", K_PAIRED), /* issue 16: codec/shadow_json.h */
};
#define N_FIELDS AB_ARRAY_LEN(fields)

/* "rollout.<field>: <msg>" (codec/field.h) */
static ab_status
bad(char *err, size_t len, const char *field, const char *msg)
{
    char path[96];
    codec_join(path, sizeof(path), "rollout", field);
    return codec_bad(err, len, path, "%s", msg);
}

/* The rollout's settings through the one set of field readers
 * (codec/field.h): null reads as absent, the default stays. */
static ab_status
number(const json_t *obj, const char *f, double lo, double hi, bool lo_open,
       double *out, char *err, size_t len)
{
    const struct codec_num spec = {lo,  hi, lo_open, false, CODEC_NULL_ABSENT,
                                   NULL};
    return codec_get_number(obj, "rollout", f, &spec, out, NULL, err, len);
}

static ab_status
seconds(const json_t *obj, const char *f, int64_t *out, char *err, size_t len)
{
    static const struct codec_int spec = {0, 100LL * 365 * 86400,
                                          CODEC_NULL_ABSENT,
                                          "a non-negative integer"};
    return codec_get_int(obj, "rollout", f, &spec, out, err, len);
}

static ab_status
boolean(const json_t *obj, const char *f, bool *out, char *err, size_t len)
{
    return codec_get_bool(obj, "rollout", f, CODEC_NULL_ABSENT, out, err,
                          len);
}

/* "steps": 1 to CORE_ROLLOUT_MAX_STEPS increasing percentages with at
 * most 4 decimals, ending at 100; kept in c->steps as CORE_SCALE parts. */
static ab_status
parse_steps(const json_t *steps, struct core_rollout_config *c, char *err,
            size_t len)
{
    if (steps == NULL || json_is_null(steps))
        return AB_OK;
    size_t n = json_array_size(steps);
    if (!json_is_array(steps) || n == 0 || n > CORE_ROLLOUT_MAX_STEPS)
        return bad(err, len, "steps", "must be an array of 1 to 16 "
                                      "percentages");
    for (size_t i = 0; i < n; i++) {
        uint32_t w = 0;
        if (!codec_percent_parse(json_array_get(steps, i), &w) || w == 0 ||
            (i > 0 && w <= c->steps[i - 1])) {
            char f[32];
            snprintf(f, sizeof(f), "steps[%zu]", i);
            return bad(err, len, f,
                       "must be increasing percentages in (0, 100] "
                       "with at most 4 decimals");
        }
        c->steps[i] = w;
    }
    if (c->steps[n - 1] != CORE_SCALE)
        return bad(err, len, "steps", "the last step must be 100");
    c->n_steps = n;
    return AB_OK;
}

/* "error_metric": the name of a metric the experiment declares. */
static ab_status
parse_error_metric(const json_t *em, const struct core_experiment *e,
                   struct core_rollout_config *c, char *err, size_t len)
{
    if (em == NULL || json_is_null(em))
        return AB_OK;
    if (!json_is_string(em))
        return bad(err, len, "error_metric", "must be a metric name");
    bool found = false;
    for (size_t i = 0; e && i < e->n_metrics; i++)
        found |= strcmp(e->metrics[i].name, json_string_value(em)) == 0;
    if (!found)
        return bad(err, len, "error_metric",
                   "must name a metric declared in \"metrics\"");
    snprintf(c->error_metric, sizeof(c->error_metric), "%s",
             json_string_value(em));
    return AB_OK;
}

/* "holdback_pct": the holdback's share (core/holdback.h), a percentage
 * in the table's range with at most 4 decimals (0: off). */
static ab_status
parse_holdback_pct(const struct field *f, const json_t *obj,
                   struct core_rollout_config *c, char *err, size_t len)
{
    double pct = c->holdback_share / 1e4;
    ab_status rc = number(obj, f->name, f->lo, f->hi, f->lo_open, &pct, err,
                          len);
    if (rc != AB_OK)
        return rc;
    uint32_t w = (uint32_t)llround(pct * 1e4);
    if (fabs(pct * 1e4 - (double)w) > 1e-6)
        return bad(err, len, "holdback_pct",
                   "must be a percentage with at most 4 decimals");
    c->holdback_share = w;
    return AB_OK;
}

/* "then": what follows a shadow phase. */
static ab_status
parse_then(const json_t *then, struct core_rollout_config *c, char *err,
           size_t len)
{
    if (then == NULL || json_is_null(then))
        return AB_OK;
    int v;
    if (!codec_name_find(then_names, AB_ARRAY_LEN(then_names),
                         json_string_value(then), &v))
        return bad(err, len, "then",
                   "one of \"canary\", \"blue_green\", \"stop\"");
    c->then = (enum core_rollout_then)v;
    return AB_OK;
}

/* One field of the table from obj into c (absent or null: the default
 * stays). */
static ab_status
parse_field(const struct field *f, const json_t *obj,
            const struct core_experiment *e, struct core_rollout_config *c,
            char *err, size_t len)
{
    char *at = (char *)c + f->off;
    const json_t *v = json_object_get(obj, f->name);
    switch (f->kind) {
    case K_REAL:
        return number(obj, f->name, f->lo, f->hi, f->lo_open, (double *)at,
                      err, len);
    case K_SECONDS:
        return seconds(obj, f->name, (int64_t *)at, err, len);
    case K_COUNT: {
        double x = (double)*(int64_t *)at;
        ab_status rc = number(obj, f->name, f->lo, f->hi, false, &x, err,
                              len);
        *(int64_t *)at = (int64_t)x;
        return rc;
    }
    case K_BOOL:
        return boolean(obj, f->name, (bool *)at, err, len);
    case K_STEPS:
        return parse_steps(v, c, err, len);
    case K_ERROR_METRIC:
        return parse_error_metric(v, e, c, err, len);
    case K_THEN:
        return parse_then(v, c, err, len);
    case K_HOLDBACK_PCT:
        return parse_holdback_pct(f, obj, c, err, len);
    case K_PAIRED:
        return api_shadow_config_parse(v, &c->paired, err, len);
    }
    return AB_EINTERNAL;
}

/* What no single field can check: the steps of a canary with checks, a
 * holdback's two arms. */
static ab_status
check_together(const struct core_experiment *e,
               const struct core_rollout_config *c, char *err, size_t len)
{
    if (e && e->strategy == CORE_STRATEGY_CANARY && c->n_steps > 0 &&
        c->steps[0] >= CORE_SCALE) {
        bool checked = c->error_metric[0] != '\0';
        for (size_t i = 0; i < e->n_metrics; i++)
            checked |= e->metrics[i].role == CORE_ROLE_GUARDRAIL;
        if (checked)
            return bad(err, len, "steps",
                       "a canary with guardrails or an error_metric needs a "
                       "partial step before 100: at 100 nothing compares "
                       "the candidate with the control");
    }
    if (c->holdback_share > 0 && e &&
        (e->n_arms != 2 || e->strategy == CORE_STRATEGY_BANDIT))
        return bad(err, len, "holdback_pct",
                   "a holdback needs a two-arm rollout (ab, canary, "
                   "blue_green or shadow)");
    return AB_OK;
}

ab_status
api_rollout_parse(const json_t *obj, const struct core_experiment *e,
                  struct core_rollout_config *out, char *err, size_t len)
{
    struct core_rollout_config c;
    core_rollout_config_default(&c);
    if (obj == NULL || json_is_null(obj)) {
        *out = c;
        return AB_OK;
    }
    if (!json_is_object(obj)) {
        snprintf(err, len, "rollout: must be an object");
        return AB_EINVAL;
    }
    const char *names[N_FIELDS + 1];
    for (size_t i = 0; i < N_FIELDS; i++)
        names[i] = fields[i].name;
    names[N_FIELDS] = NULL;
    ab_status rc = codec_check_fields(obj, "rollout", names, err, len);
    for (size_t i = 0; rc == AB_OK && i < N_FIELDS; i++)
        rc = parse_field(&fields[i], obj, e, &c, err, len);
    if (rc == AB_OK)
        rc = check_together(e, &c, err, len);
    if (rc == AB_OK)
        *out = c;
    return rc;
}

/* One field of the table as printed. New reference. */
static json_t *
field_json(const struct field *f, const struct core_rollout_config *c)
{
    const char *at = (const char *)c + f->off;
    switch (f->kind) {
    case K_REAL:
        return json_real(*(const double *)at);
    case K_SECONDS:
    case K_COUNT:
        return json_integer(*(const int64_t *)at);
    case K_BOOL:
        return json_boolean(*(const bool *)at);
    case K_STEPS: {
        json_t *steps = json_array();
        for (size_t i = 0; i < c->n_steps; i++)
            json_array_append_new(steps, codec_percent_json(c->steps[i]));
        return steps;
    }
    case K_ERROR_METRIC:
        return c->error_metric[0] ? json_string(c->error_metric)
                                  : json_null();
    case K_THEN:
        return json_string(codec_name_of(then_names, AB_ARRAY_LEN(then_names),
                                         (int)c->then));
    case K_HOLDBACK_PCT:
        return codec_percent_json(c->holdback_share);
    case K_PAIRED:
        return api_shadow_config_json(&c->paired);
    }
    return json_null();
}

json_t *
api_rollout_json(const struct core_rollout_config *c)
{
    json_t *o = json_object();
    for (size_t i = 0; i < N_FIELDS; i++)
        if (!fields[i].holdback || c->holdback_share > 0)
            json_object_set_new(o, fields[i].name, field_json(&fields[i], c));
    return o;
}

ab_status
api_rollout_config(const struct core_experiment *e,
                   struct core_rollout_config *out)
{
    char err[256];
    if (e->rollout == NULL)
        return api_rollout_parse(NULL, e, out, err, sizeof(err));
    json_t *obj = json_loads(e->rollout, 0, NULL);
    ab_status rc = api_rollout_parse(obj, e, out, err, sizeof(err));
    json_decref(obj);
    return rc;
}
