/* rollout_json.c -- parse and print the "rollout" object (rollout_json.h).
 */
#include "codec/rollout_json.h"
#include "codec/shadow_json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "codec/field.h"

static const char *const fields[] = {
    "alpha",          "tuning",           "margin",         "auto_promote",
    "max_duration_s", "max_units",        "steps",          "step_min_s",
    "step_min_units", "step_max_s",       "require_evidence",
    "manual_approval", "adaptive",        "error_metric",   "smoke_s",
    "rollback_window_s", "shadow_min_s",  "shadow_min_units", "then",
    "no_traffic_s", "min_test_units", "plan_power", "plan_error_ratio",
    "plan_regression", "rollback_alpha",
    "holdback_pct", "holdback_s", "holdback_alpha",
    "paired", /* issue 16: codec/shadow_json.h */
    NULL};

static const struct codec_name then_names[] = {
    {"canary", CORE_THEN_CANARY},
    {"blue_green", CORE_THEN_BLUE_GREEN},
    {"stop", CORE_THEN_STOP},
};

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

/* The watch after promotion (core/holdback.h): "holdback_pct" in [0, 50]
 * with at most 4 decimals (0: off), "holdback_s", "holdback_alpha". */
static ab_status
parse_holdback(const json_t *obj, struct core_rollout_config *c, char *err,
               size_t len)
{
    double pct = 0;
    ab_status rc = number(obj, "holdback_pct", 0, 50, false, &pct, err, len);
    if (rc == AB_OK)
        rc = seconds(obj, "holdback_s", &c->holdback_s, err, len);
    if (rc == AB_OK)
        rc = number(obj, "holdback_alpha", 0, 0.5, true, &c->holdback_alpha,
                    err, len);
    if (rc != AB_OK)
        return rc;
    uint32_t w = (uint32_t)llround(pct * 1e4);
    if (fabs(pct * 1e4 - (double)w) > 1e-6)
        return bad(err, len, "holdback_pct",
                   "must be a percentage with at most 4 decimals");
    c->holdback_share = w;
    return AB_OK;
}

/* The numeric and boolean settings, in the order they are checked; the
 * first bad one is reported. */
static ab_status
parse_numbers(const json_t *obj, struct core_rollout_config *c, char *err,
              size_t len)
{
    double units = -1, max_units = -1, mtu = -1, su = -1;
    ab_status rc = number(obj, "alpha", 0, 0.5, true, &c->alpha, err, len);
    if (rc == AB_OK)
        rc = number(obj, "tuning", 0, 1e12, true, &c->tuning, err, len);
    if (rc == AB_OK)
        rc = number(obj, "margin", 0, 10, false, &c->margin, err, len);
    if (rc == AB_OK)
        rc = boolean(obj, "auto_promote", &c->auto_promote, err, len);
    if (rc == AB_OK)
        rc = seconds(obj, "max_duration_s", &c->max_duration_s, err, len);
    if (rc == AB_OK)
        rc = number(obj, "max_units", 0, 1e15, false, &max_units, err, len);
    if (rc == AB_OK)
        rc = seconds(obj, "step_min_s", &c->step_min_s, err, len);
    if (rc == AB_OK)
        rc = number(obj, "step_min_units", 0, 1e15, false, &units, err, len);
    if (rc == AB_OK)
        rc = seconds(obj, "step_max_s", &c->step_max_s, err, len);
    if (rc == AB_OK)
        rc = boolean(obj, "require_evidence", &c->require_evidence, err, len);
    if (rc == AB_OK)
        rc = boolean(obj, "manual_approval", &c->manual_approval, err, len);
    if (rc == AB_OK)
        rc = boolean(obj, "adaptive", &c->adaptive, err, len);
    if (rc == AB_OK)
        rc = seconds(obj, "smoke_s", &c->smoke_s, err, len);
    if (rc == AB_OK)
        rc = seconds(obj, "rollback_window_s", &c->rollback_window_s, err,
                     len);
    if (rc == AB_OK)
        rc = seconds(obj, "shadow_min_s", &c->shadow_min_s, err, len);
    if (rc == AB_OK)
        rc = seconds(obj, "no_traffic_s", &c->no_traffic_s, err, len);
    if (rc != AB_OK)
        return rc;
    if (max_units >= 0)
        c->max_units = (int64_t)max_units;
    if (units >= 0)
        c->step_min_units = (int64_t)units;
    rc = number(obj, "rollback_alpha", 0, 0.5, true, &c->rollback_alpha, err,
                len);
    if (rc == AB_OK)
        rc = number(obj, "plan_power", 0.5, 0.9999, false, &c->plan_power,
                    err, len);
    if (rc == AB_OK)
        rc = number(obj, "plan_error_ratio", 1, 1000, true,
                    &c->plan_error_ratio, err, len);
    if (rc == AB_OK)
        rc = number(obj, "plan_regression", 0, 10, true, &c->plan_regression,
                    err, len);
    if (rc != AB_OK)
        return rc;
    rc = number(obj, "min_test_units", 2, 1e12, false, &mtu, err, len);
    if (rc != AB_OK)
        return rc;
    if (mtu >= 0)
        c->min_test_units = (int64_t)mtu;
    rc = number(obj, "shadow_min_units", 0, 1e15, false, &su, err, len);
    if (rc != AB_OK)
        return rc;
    if (su >= 0)
        c->shadow_min_units = (int64_t)su;
    return parse_holdback(obj, c, err, len);
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
    ab_status rc = codec_check_fields(obj, "rollout", fields, err, len);
    if (rc != AB_OK)
        return rc;
    rc = parse_numbers(obj, &c, err, len);
    if (rc != AB_OK)
        return rc;
    rc = parse_steps(json_object_get(obj, "steps"), &c, err, len);
    if (rc != AB_OK)
        return rc;
    rc = parse_error_metric(json_object_get(obj, "error_metric"), e, &c, err,
                            len);
    if (rc != AB_OK)
        return rc;
    if (e && e->strategy == CORE_STRATEGY_CANARY && c.n_steps > 0 &&
        c.steps[0] >= CORE_SCALE) {
        bool checked = c.error_metric[0] != '\0';
        for (size_t i = 0; i < e->n_metrics; i++)
            checked |= e->metrics[i].role == CORE_ROLE_GUARDRAIL;
        if (checked)
            return bad(err, len, "steps",
                       "a canary with guardrails or an error_metric needs a "
                       "partial step before 100: at 100 nothing compares "
                       "the candidate with the control");
    }
    if (c.holdback_share > 0 && e &&
        (e->n_arms != 2 || e->strategy == CORE_STRATEGY_BANDIT))
        return bad(err, len, "holdback_pct",
                   "a holdback needs a two-arm rollout (ab, canary, "
                   "blue_green or shadow)");
    rc = api_shadow_config_parse(json_object_get(obj, "paired"), &c.paired,
                                 err, len);
    if (rc != AB_OK)
        return rc;
    json_t *then = json_object_get(obj, "then");
    if (then && !json_is_null(then)) {
        int v;
        if (!codec_name_find(then_names, AB_ARRAY_LEN(then_names),
                             json_string_value(then), &v))
            return bad(err, len, "then",
                       "one of \"canary\", \"blue_green\", \"stop\"");
        c.then = (enum core_rollout_then)v;
    }
    *out = c;
    return AB_OK;
}

json_t *
api_rollout_json(const struct core_rollout_config *c)
{
    json_t *steps = json_array();
    for (size_t i = 0; i < c->n_steps; i++)
        json_array_append_new(steps, codec_percent_json(c->steps[i]));
    json_t *o = json_object();
    json_object_set_new(o, "alpha", json_real(c->alpha));
    json_object_set_new(o, "tuning", json_real(c->tuning));
    json_object_set_new(o, "margin", json_real(c->margin));
    json_object_set_new(o, "auto_promote", json_boolean(c->auto_promote));
    json_object_set_new(o, "max_duration_s", json_integer(c->max_duration_s));
    json_object_set_new(o, "max_units", json_integer(c->max_units));
    json_object_set_new(o, "steps", steps);
    json_object_set_new(o, "step_min_s", json_integer(c->step_min_s));
    json_object_set_new(o, "step_min_units", json_integer(c->step_min_units));
    json_object_set_new(o, "step_max_s", json_integer(c->step_max_s));
    json_object_set_new(o, "require_evidence",
                        json_boolean(c->require_evidence));
    json_object_set_new(o, "manual_approval",
                        json_boolean(c->manual_approval));
    json_object_set_new(o, "adaptive", json_boolean(c->adaptive));
    json_object_set_new(o, "error_metric",
                        c->error_metric[0] ? json_string(c->error_metric)
                                           : json_null());
    json_object_set_new(o, "smoke_s", json_integer(c->smoke_s));
    json_object_set_new(o, "rollback_window_s",
                        json_integer(c->rollback_window_s));
    json_object_set_new(o, "shadow_min_s", json_integer(c->shadow_min_s));
    json_object_set_new(o, "shadow_min_units",
                        json_integer(c->shadow_min_units));
    json_object_set_new(o, "then",
                        json_string(codec_name_of(then_names,
                                                  AB_ARRAY_LEN(then_names),
                                                  (int)c->then)));
    json_object_set_new(o, "no_traffic_s", json_integer(c->no_traffic_s));
    json_object_set_new(o, "min_test_units", json_integer(c->min_test_units));
    json_object_set_new(o, "rollback_alpha", json_real(c->rollback_alpha));
    json_object_set_new(o, "plan_power", json_real(c->plan_power));
    json_object_set_new(o, "plan_error_ratio", json_real(c->plan_error_ratio));
    json_object_set_new(o, "plan_regression", json_real(c->plan_regression));
    if (c->holdback_share > 0) { /* printed only when on: older definitions
                                    stay byte-identical */
        json_object_set_new(o, "holdback_pct",
                            c->holdback_share % 10000 == 0
                                ? json_integer(c->holdback_share / 10000)
                                : json_real(c->holdback_share / 1e4));
        json_object_set_new(o, "holdback_s", json_integer(c->holdback_s));
        json_object_set_new(o, "holdback_alpha",
                            json_real(c->holdback_alpha));
    }
    json_object_set_new(o, "paired", api_shadow_config_json(&c->paired));
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
