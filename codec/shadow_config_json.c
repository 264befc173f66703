/* shadow_config_json.c -- the "paired" member of the rollout object (see
 * shadow_json.h). Apart from the analysis answer so that the rollout
 * codec links no statistics. */
#include "codec/shadow_json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const fields[] = {
    "max_disagreement", "max_latency_increase", "max_error_increase",
    "max_accuracy_drop", "min_pairs", "score_tolerance"};

static ab_status
bad(char *err, size_t len, const char *f, const char *msg)
{
    snprintf(err, len, "rollout.paired.%s: %s", f, msg);
    return AB_EINVAL;
}

static ab_status
num(const json_t *obj, const char *f, double lo, double hi, double *out,
    char *err, size_t len)
{
    json_t *v = json_object_get(obj, f);
    if (v == NULL || json_is_null(v))
        return AB_OK;
    double x = json_is_number(v) ? json_number_value(v) : NAN;
    if (!(x >= lo && x <= hi)) {
        char msg[64];
        snprintf(msg, sizeof(msg), "must be a number in [%g, %g]", lo, hi);
        return bad(err, len, f, msg);
    }
    *out = x;
    return AB_OK;
}

ab_status
api_shadow_config_parse(const json_t *obj, struct core_shadow_config *c,
                        char *err, size_t len)
{
    if (obj == NULL || json_is_null(obj))
        return AB_OK;
    if (!json_is_object(obj)) {
        snprintf(err, len, "rollout.paired: must be an object");
        return AB_EINVAL;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        bool known = false;
        for (size_t i = 0; i < AB_ARRAY_LEN(fields); i++)
            known |= strcmp(k, fields[i]) == 0;
        if (!known)
            return bad(err, len, strlen(k) < 64 ? k : "(long name)",
                       "unknown field");
    }
    struct core_shadow_config n = *c;
    double mp = -1;
    ab_status rc =
        num(obj, "max_disagreement", 0, 1, &n.max_disagreement, err, len);
    if (rc == AB_OK)
        rc = num(obj, "max_latency_increase", 0, 100, &n.max_latency_increase,
                 err, len);
    if (rc == AB_OK)
        rc = num(obj, "max_error_increase", 0, 1, &n.max_error_increase, err,
                 len);
    if (rc == AB_OK)
        rc = num(obj, "max_accuracy_drop", 0, 1, &n.max_accuracy_drop, err,
                 len);
    if (rc == AB_OK)
        rc = num(obj, "min_pairs", 2, 1e12, &mp, err, len);
    if (rc == AB_OK)
        rc = num(obj, "score_tolerance", 0, 1e300, &n.score_tolerance, err,
                 len);
    if (rc != AB_OK)
        return rc;
    if (mp >= 0) {
        if (mp != floor(mp))
            return bad(err, len, "min_pairs", "must be an integer");
        n.min_pairs = (int64_t)mp;
    }
    *c = n;
    return AB_OK;
}

json_t *
api_shadow_config_json(const struct core_shadow_config *c)
{
    return json_pack("{s:f,s:f,s:f,s:f,s:I,s:f}", "max_disagreement",
                     c->max_disagreement, "max_latency_increase",
                     c->max_latency_increase, "max_error_increase",
                     c->max_error_increase, "max_accuracy_drop",
                     c->max_accuracy_drop, "min_pairs",
                     (json_int_t)c->min_pairs, "score_tolerance",
                     c->score_tolerance);
}
