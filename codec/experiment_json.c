/* experiment_json.c -- experiment definitions as JSON: parse + validate,
 * and the canonical form that is stored and returned (see
 * codec/experiment_json.h for the document). jansson only: no HTTP, no SQL.
 *
 * Every error message starts with the path of the offending field in the
 * document ("arms[1].weight: ...", "targeting[0].value: ...",
 * "forced[\"qa-7\"]: ...") so that a client can point at it.
 *
 * Numbers. Weights and layer ranges are percentages with at most 4
 * decimals, coverage a fraction with at most 6; both become integers in
 * millionths (CORE_SCALE; 0.0001 % = 10^-6) by exact rounding:
 * x -> round(x * 10^4) for a percentage, round(x * 10^6) for a fraction,
 * accepted only when |x * 10^4 - round(x * 10^4)| <= 10^-6 (a double
 * holds a 4-decimal percentage to about 10^-14 relative, so the test
 * separates "33.3333" from "33.33333" with a wide margin; Goldberg, "What
 * Every Computer Scientist Should Know About Floating-Point Arithmetic",
 * ACM Computing Surveys 23(1), 1991, section 1.2). The rounded weights
 * must sum to exactly 1,000,000. Non-finite numbers are refused.
 *
 * Strategy rules (the choices, documented for users in the README):
 *   ab          2 to 64 arms, any weights
 *   canary      exactly 2 arms: control (stable) and the candidate; a
 *               ramp moves weight from control to the candidate
 *   blue_green  exactly 2 arms, all traffic on one of them (weights 0 and
 *               100): a switch, never a split (a split is a canary)
 *   shadow      exactly 2 arms: control serves, the other is the shadow
 *               model whose weight is the share of traffic mirrored to it
 *   bandit      2 to 64 arms; sticky defaults to true; an optional
 *               "bandit" object (below) configures the reweight job, and
 *               is refused for the other strategies
 * Canonical output: weights in percent and layer ranges in percent, as
 * JSON integers when whole; coverage as a fraction; equality operands as
 * strings; every default filled in. parse(definition(e)) equals e.
 */
#include "codec/experiment_json.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/field.h"
#include "codec/rollout_json.h"
#include "core/assign.h"

#define DESCRIPTION_MAX 4096
#define MODEL_MAX 256
#define SALT_MAX CORE_KEY_MAX
#define VALUE_MAX 256 /* a targeting operand */
#define ARMS_MAX 64
#define RULES_MAX 64
#define RULE_VALUES_MAX 1000
#define FORCED_MAX 10000
#define METRICS_MAX 64

struct parser {
    char *err;
    size_t errlen;
};

/* Write "path: message" and return AB_EINVAL. */
__attribute__((format(printf, 3, 4))) static ab_status
bad(struct parser *p, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ab_status rc = codec_vbad(p->err, p->errlen, path, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- names -------------------------------------------------------------- */

/* One table per concept (codec/field.h); the model names strategies and
 * states itself (core/experiment.c). */
static const struct codec_name op_names[] = {
    { "eq", CORE_OP_EQ },
    { "ne", CORE_OP_NE },
    { "in", CORE_OP_IN },
    { "not_in", CORE_OP_NOT_IN },
    { "lt", CORE_OP_LT },
    { "le", CORE_OP_LE },
    { "gt", CORE_OP_GT },
    { "ge", CORE_OP_GE },
    { "semver_eq", CORE_OP_SEMVER_EQ },
    { "semver_lt", CORE_OP_SEMVER_LT },
    { "semver_le", CORE_OP_SEMVER_LE },
    { "semver_gt", CORE_OP_SEMVER_GT },
    { "semver_ge", CORE_OP_SEMVER_GE },
    { "exists", CORE_OP_EXISTS },
};
static const struct codec_name kind_names[] = {
    { "binary", CORE_METRIC_BINARY },
    { "sum", CORE_METRIC_SUM },
    { "mean", CORE_METRIC_MEAN },
    { "ratio", CORE_METRIC_RATIO },
    { "quantile", CORE_METRIC_QUANTILE },
};
static const struct codec_name direction_names[] = {
    { "increase", CORE_INCREASE },
    { "decrease", CORE_DECREASE },
};
static const struct codec_name role_names[] = {
    { "primary", CORE_ROLE_PRIMARY },
    { "secondary", CORE_ROLE_SECONDARY },
    { "guardrail", CORE_ROLE_GUARDRAIL },
};

const char *
api_op_name(enum core_op op)
{
    return codec_name_of(op_names, AB_ARRAY_LEN(op_names), (int)op);
}

const char *
api_metric_kind_name(enum core_metric_kind k)
{
    return codec_name_of(kind_names, AB_ARRAY_LEN(kind_names), (int)k);
}

const char *
api_direction_name(enum core_direction d)
{
    return codec_name_of(direction_names, AB_ARRAY_LEN(direction_names), (int)d);
}

const char *
api_role_name(enum core_role r)
{
    return codec_name_of(role_names, AB_ARRAY_LEN(role_names), (int)r);
}

/* ---- field helpers ------------------------------------------------------ */

/* Refuse fields not in 'allowed' (NULL-terminated). */
static ab_status
check_fields(struct parser *p, const json_t *obj, const char *path,
             const char *const *allowed)
{
    return codec_check_fields(obj, path, allowed, p->err, p->errlen);
}

static bool
key_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/* [A-Za-z0-9_.-]{1,64}; with 'alnum_first' the first is [A-Za-z0-9]. */
static bool
valid_name(const char *s, size_t len, bool alnum_first)
{
    if (len == 0 || len > CORE_KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!key_char(s[i]))
            return false;
    if (alnum_first && (s[0] == '_' || s[0] == '.' || s[0] == '-'))
        return false;
    return true;
}

/* A string field: *out borrows the value, NULL when absent (or null when
 * 'nullable'). Checks type, embedded NUL and the byte limit. */
static ab_status
get_string(struct parser *p, const json_t *obj, const char *field,
           const char *path, size_t max, bool nullable, const char **out,
           size_t *len)
{
    json_t *v = json_object_get(obj, field);
    char f[160];
    codec_join(f, sizeof(f), path, field);
    *out = NULL;
    *len = 0;
    if (v == NULL || (nullable && json_is_null(v)))
        return AB_OK;
    if (!json_is_string(v))
        return bad(p, f, "must be a string");
    size_t n = json_string_length(v);
    if (strlen(json_string_value(v)) != n)
        return bad(p, f, "must not contain NUL characters");
    if (n > max)
        return bad(p, f, "must be at most %zu bytes", max);
    *out = json_string_value(v);
    *len = n;
    return AB_OK;
}

/* A required or optional name ([A-Za-z0-9_.-]{1,64}). */
static ab_status
get_name(struct parser *p, const json_t *obj, const char *field,
         const char *path, bool required, bool alnum_first, char **out)
{
    const char *s;
    size_t n;
    char f[160];
    codec_join(f, sizeof(f), path, field);
    ab_status rc = get_string(p, obj, field, path, SIZE_MAX, false, &s, &n);
    if (rc != AB_OK)
        return rc;
    if (s == NULL) {
        if (required)
            return bad(p, f, "required");
        *out = NULL;
        return AB_OK;
    }
    if (!valid_name(s, n, alnum_first))
        return bad(p, f,
                   alnum_first
                       ? "must be 1 to 64 characters of A-Z a-z 0-9 _ . - "
                         "starting with a letter or digit"
                       : "must be 1 to 64 characters of A-Z a-z 0-9 _ . -");
    *out = ab_xstrndup(s, n);
    return AB_OK;
}

/* A number in [0, max] with at most 'decimals' decimals -> millionths:
 * round(x * 10^decimals) * mult. */
static ab_status
to_millionths(struct parser *p, const json_t *v, const char *path,
              double max, int decimals, uint32_t mult, uint32_t *out)
{
    double x = json_is_number(v) ? json_number_value(v) : NAN;
    if (!isfinite(x) || x < 0 || x > max)
        return bad(p, path, "must be a number between 0 and %g", max);
    double scaled = x * pow(10.0, decimals);
    double r = round(scaled);
    if (fabs(scaled - r) > 1e-6)
        return bad(p, path, "at most %d decimals", decimals);
    *out = (uint32_t)r * mult;
    return AB_OK;
}

/* A percentage: 0.0001 % is one millionth, so round(x * 10^4). */
static ab_status
percent(struct parser *p, const json_t *v, const char *path, uint32_t *out)
{
    return to_millionths(p, v, path, 100.0, 4, 1, out);
}

/* A fraction of traffic: round(x * 10^6) millionths. */
static ab_status
fraction(struct parser *p, const json_t *v, const char *path, uint32_t *out)
{
    return to_millionths(p, v, path, 1.0, 6, 1, out);
}

/* ---- arms --------------------------------------------------------------- */

static const char *const arm_fields[] = { "name", "weight", "model",
                                          "control", "value", NULL };

/* An arm's optional "value": any JSON (what an OpenFeature client is served
 * for this arm: a boolean for an on/off canary, an object for a model
 * config), kept as compact text with sorted keys; null means none. */
#define ARM_VALUE_MAX 4096

/* Whether every number of v survives the round trip through the stored
 * definition: PostgreSQL's jsonb writes a number without its exponent
 * (1e20 as 100000000000000000000), and jansson refuses an integer literal
 * beyond int64 when the definition is read back, so such a number would
 * lose the whole experiment at the next snapshot load. Reals at or beyond
 * 2^63 are integral (every double above 2^53 is), so exactly those fail. */
static bool
number_storable(double x)
{
    return fabs(x) < 9223372036854775808.0; /* 2^63 */
}

static bool
value_storable(const json_t *v, double *bad_number)
{
    if (json_is_real(v)) {
        double x = json_real_value(v);
        if (!number_storable(x)) {
            *bad_number = x;
            return false;
        }
        return true;
    }
    const char *k;
    size_t i;
    json_t *m;
    if (json_is_object(v)) {
        json_object_foreach ((json_t *)v, k, m)
            if (!value_storable(m, bad_number))
                return false;
    } else if (json_is_array(v)) {
        json_array_foreach (v, i, m)
            if (!value_storable(m, bad_number))
                return false;
    }
    return true;
}

/* Arm i's optional "value" (null: none), kept as compact sorted text. */
static ab_status
parse_arm_value(struct parser *p, const json_t *jv, const char *path,
                struct core_experiment *e, size_t i)
{
    if (jv == NULL || json_is_null(jv))
        return AB_OK;
    char f[96];
    snprintf(f, sizeof(f), "%s.value", path);
    double x;
    if (!value_storable(jv, &x))
        return bad(p, f,
                   "the number %g cannot be stored (numbers must be "
                   "below 9.2e18 in magnitude; send a larger one as a "
                   "string)",
                   x);
    char *text =
        json_dumps(jv, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (text == NULL || strlen(text) > ARM_VALUE_MAX) {
        free(text);
        return bad(p, f, "must be JSON of at most %d bytes", ARM_VALUE_MAX);
    }
    if (e->arm_values == NULL)
        e->arm_values = ab_xcalloc(e->n_arms, sizeof(char *));
    e->arm_values[i] = text;
    return AB_OK;
}

static ab_status
parse_arms(struct parser *p, const json_t *doc, struct core_experiment *e)
{
    json_t *arms = json_object_get(doc, "arms");
    if (arms == NULL)
        return bad(p, "arms", "required");
    if (!json_is_array(arms))
        return bad(p, "arms", "must be an array");
    size_t n = json_array_size(arms);
    if (n < 2 || n > ARMS_MAX)
        return bad(p, "arms", "must have 2 to %d arms (it has %zu)", ARMS_MAX,
                   n);
    e->arms = ab_xcalloc(n, sizeof(*e->arms));
    e->n_arms = n;
    uint64_t sum = 0;
    size_t n_control = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(arms, i);
        struct core_arm *arm = &e->arms[i];
        char path[64], f[96];
        ab_status rc;
        snprintf(path, sizeof(path), "arms[%zu]", i);
        if (!json_is_object(a))
            return bad(p, path, "must be an object");
        rc = check_fields(p, a, path, arm_fields);
        if (rc != AB_OK)
            return rc;
        rc = get_name(p, a, "name", path, true, false, &arm->name);
        if (rc != AB_OK)
            return rc;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(e->arms[j].name, arm->name) == 0) {
                snprintf(f, sizeof(f), "%s.name", path);
                return bad(p, f, "duplicate arm \"%s\" (also arms[%zu])",
                           arm->name, j);
            }
        }
        json_t *w = json_object_get(a, "weight");
        snprintf(f, sizeof(f), "%s.weight", path);
        if (w == NULL)
            return bad(p, f, "required");
        rc = percent(p, w, f, &arm->weight);
        if (rc != AB_OK)
            return rc;
        sum += arm->weight;
        const char *model;
        size_t len;
        rc = get_string(p, a, "model", path, MODEL_MAX, true, &model, &len);
        if (rc != AB_OK)
            return rc;
        arm->model = ab_xstrndup(model != NULL ? model : "", len);
        rc = parse_arm_value(p, json_object_get(a, "value"), path, e, i);
        if (rc != AB_OK)
            return rc;
        arm->control = false;
        if (codec_get_bool(a, path, "control", CODEC_NULL_REFUSED,
                           &arm->control, p->err, p->errlen) != AB_OK)
            return AB_EINVAL;
        snprintf(f, sizeof(f), "%s.control", path);
        if (arm->control) {
            if (n_control > 0)
                return bad(p, f, "a second control arm (arms[%zu] is control)",
                           e->control);
            e->control = i;
            n_control++;
        }
    }
    if (n_control == 0)
        return bad(p, "arms", "no control arm (set \"control\": true on one)");
    if (sum != CORE_SCALE)
        return bad(p, "arms", "weights must sum to 100 (they sum to %.10g)",
                   (double)sum / 1e4);
    return AB_OK;
}

static ab_status
check_strategy(struct parser *p, const struct core_experiment *e)
{
    const char *s = core_strategy_name(e->strategy);
    switch (e->strategy) {
    case CORE_STRATEGY_CANARY:
    case CORE_STRATEGY_BLUE_GREEN:
    case CORE_STRATEGY_SHADOW:
        if (e->n_arms != 2)
            return bad(p, "arms",
                       "strategy %s needs exactly 2 arms (control and one "
                       "candidate)",
                       s);
        if (e->strategy == CORE_STRATEGY_BLUE_GREEN &&
            e->arms[0].weight != CORE_SCALE && e->arms[1].weight != CORE_SCALE)
            return bad(p, "arms",
                       "strategy blue_green sends all traffic to one arm "
                       "(weights 0 and 100)");
        break;
    case CORE_STRATEGY_AB:
    case CORE_STRATEGY_BANDIT: break;
    }
    return AB_OK;
}

/* ---- targeting ---------------------------------------------------------- */

static const char *const rule_fields[] = { "attribute", "op", "value",
                                           "values", NULL };

/* The text of a string / integer / boolean operand (new), or NULL. */
static char *
scalar_text(const json_t *v)
{
    char buf[32];
    if (json_is_string(v)) {
        size_t n = json_string_length(v);
        if (strlen(json_string_value(v)) != n || n > VALUE_MAX)
            return NULL;
        return ab_xstrndup(json_string_value(v), n);
    }
    if (json_is_integer(v)) {
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(v));
        return ab_xstrdup(buf);
    }
    if (json_is_boolean(v))
        return ab_xstrdup(json_is_true(v) ? "true" : "false");
    return NULL;
}

/* The canonical text of a numeric operand: whole numbers below 2^53 as
 * integers ("42"), others with 17 significant digits (round-trips). */
static char *
number_text(double x)
{
    char buf[40];
    if (x == floor(x) && fabs(x) < 9007199254740992.0)
        snprintf(buf, sizeof(buf), "%.0f", x);
    else
        snprintf(buf, sizeof(buf), "%.17g", x);
    return ab_xstrdup(buf);
}

static ab_status
parse_rule(struct parser *p, const json_t *r, size_t idx,
           struct core_rule *rule)
{
    char path[64], f[96];
    ab_status rc;
    snprintf(path, sizeof(path), "targeting[%zu]", idx);
    if (!json_is_object(r))
        return bad(p, path, "must be an object");
    rc = check_fields(p, r, path, rule_fields);
    if (rc != AB_OK)
        return rc;
    rc = get_name(p, r, "attribute", path, true, false, &rule->attribute);
    if (rc != AB_OK)
        return rc;
    json_t *op = json_object_get(r, "op");
    snprintf(f, sizeof(f), "%s.op", path);
    if (op == NULL)
        return bad(p, f, "required");
    int opv;
    if (!json_is_string(op) ||
        !codec_name_find(op_names, AB_ARRAY_LEN(op_names),
                         json_string_value(op), &opv)) {
        char choices[256];
        codec_name_choices(op_names, AB_ARRAY_LEN(op_names), choices,
                           sizeof(choices));
        return bad(p, f, "must be one of %s", choices);
    }
    rule->op = (enum core_op)opv;
    const char *opname = json_string_value(op);
    json_t *value = json_object_get(r, "value");
    json_t *values = json_object_get(r, "values");
    char fv[96], fvs[96];
    snprintf(fv, sizeof(fv), "%s.value", path);
    snprintf(fvs, sizeof(fvs), "%s.values", path);

    if (rule->op == CORE_OP_EXISTS) {
        if (value != NULL)
            return bad(p, fv, "not allowed with op exists");
        if (values != NULL)
            return bad(p, fvs, "not allowed with op exists");
        return AB_OK;
    }
    if (rule->op == CORE_OP_IN || rule->op == CORE_OP_NOT_IN) {
        if (value != NULL)
            return bad(p, fv, "not allowed with op %s (use values)", opname);
        if (values == NULL)
            return bad(p, fvs, "required with op %s", opname);
        size_t n = json_array_size(values);
        if (!json_is_array(values) || n == 0 || n > RULE_VALUES_MAX)
            return bad(p, fvs, "must be an array of 1 to %d values",
                       RULE_VALUES_MAX);
        rule->values = ab_xcalloc(n, sizeof(char *));
        rule->n_values = n;
        for (size_t i = 0; i < n; i++) {
            rule->values[i] = scalar_text(json_array_get(values, i));
            if (rule->values[i] == NULL) {
                char fi[112];
                snprintf(fi, sizeof(fi), "%s[%zu]", fvs, i);
                return bad(p, fi,
                           "must be a string of at most %d bytes, an integer "
                           "or a boolean",
                           VALUE_MAX);
            }
        }
        return AB_OK;
    }
    if (values != NULL)
        return bad(p, fvs, "not allowed with op %s (use value)", opname);
    if (value == NULL)
        return bad(p, fv, "required with op %s", opname);
    rule->values = ab_xcalloc(1, sizeof(char *));
    rule->n_values = 1;
    switch (rule->op) {
    case CORE_OP_EQ:
    case CORE_OP_NE:
        rule->values[0] = scalar_text(value);
        if (rule->values[0] == NULL)
            return bad(p, fv,
                       "must be a string of at most %d bytes, an integer or a "
                       "boolean",
                       VALUE_MAX);
        return AB_OK;
    case CORE_OP_LT:
    case CORE_OP_LE:
    case CORE_OP_GT:
    case CORE_OP_GE: {
        double x = json_is_number(value) ? json_number_value(value) : NAN;
        if (!isfinite(x))
            return bad(p, fv, "must be a finite number with op %s", opname);
        if (!number_storable(x))
            return bad(p, fv,
                       "the number %g cannot be stored (numbers must be "
                       "below 9.2e18 in magnitude)",
                       x);
        if (x == 0)
            x = 0.0; /* -0 and 0 are one operand */
        rule->number = x;
        rule->values[0] = number_text(x);
        return AB_OK;
    }
    default: {
        const char *s;
        size_t n;
        rc = get_string(p, r, "value", path, CORE_KEY_MAX, false, &s, &n);
        if (rc != AB_OK)
            return rc;
        if (core_semver_parse(s, &rule->semver) != AB_OK)
            return bad(p, fv, "not a semantic version: \"%s\"", s);
        rule->values[0] = ab_xstrndup(s, n);
        return AB_OK;
    }
    }
}

/* An optional array member of at most max elements (null or absent: none,
 * *n = 0). */
static ab_status
get_array(struct parser *p, const json_t *doc, const char *field, size_t max,
          const char *noun, json_t **out, size_t *n)
{
    json_t *a = json_object_get(doc, field);
    *out = a;
    *n = 0;
    if (a == NULL || json_is_null(a))
        return AB_OK;
    if (!json_is_array(a))
        return bad(p, field, "must be an array");
    if (json_array_size(a) > max)
        return bad(p, field, "at most %zu %s", max, noun);
    *n = json_array_size(a);
    return AB_OK;
}

static ab_status
parse_targeting(struct parser *p, const json_t *doc,
                struct core_experiment *e)
{
    json_t *t;
    size_t n;
    ab_status rc0 = get_array(p, doc, "targeting", RULES_MAX, "rules", &t,
                              &n);
    if (rc0 != AB_OK || n == 0)
        return rc0;
    e->rules = ab_xcalloc(n, sizeof(*e->rules));
    e->n_rules = n;
    for (size_t i = 0; i < n; i++) {
        ab_status rc = parse_rule(p, json_array_get(t, i), i, &e->rules[i]);
        if (rc != AB_OK)
            return rc;
    }
    return AB_OK;
}

/* ---- forced ------------------------------------------------------------- */

static int
forced_cmp(const void *a, const void *b)
{
    const struct core_forced *x = a, *y = b;
    return strcmp(x->unit, y->unit); /* unsigned bytes, as core/assign.c */
}

static ab_status
parse_forced(struct parser *p, const json_t *doc, struct core_experiment *e)
{
    json_t *fo = json_object_get(doc, "forced");
    if (fo == NULL || json_is_null(fo))
        return AB_OK;
    if (!json_is_object(fo))
        return bad(p, "forced", "must be an object {\"unit id\": \"arm\"}");
    size_t n = json_object_size(fo);
    if (n > FORCED_MAX)
        return bad(p, "forced", "at most %d units", FORCED_MAX);
    if (n == 0)
        return AB_OK;
    e->forced = ab_xcalloc(n, sizeof(*e->forced));
    const char *unit;
    json_t *arm;
    json_object_foreach(fo, unit, arm) {
        char f[128];
        size_t len = strlen(unit);
        char q[CODEC_QUOTE_MAX + 1];
        snprintf(f, sizeof(f), "forced[\"%s\"]", codec_quote(q, unit));
        if (len == 0 || len > CORE_UNIT_MAX)
            return bad(p, f, "unit ids must be 1 to %d bytes", CORE_UNIT_MAX);
        if (!json_is_string(arm))
            return bad(p, f, "must be an arm name");
        size_t k;
        for (k = 0; k < e->n_arms; k++)
            if (strcmp(e->arms[k].name, json_string_value(arm)) == 0)
                break;
        if (k == e->n_arms)
            return bad(p, f, "unknown arm \"%s\"",
                       codec_quote(q, json_string_value(arm)));
        e->forced[e->n_forced].unit = ab_xstrdup(unit);
        e->forced[e->n_forced].arm = k;
        e->n_forced++;
    }
    qsort(e->forced, e->n_forced, sizeof(*e->forced), forced_cmp);
    return AB_OK;
}

/* ---- layer -------------------------------------------------------------- */

static const char *const layer_fields[] = { "name", "range", NULL };

static ab_status
parse_layer(struct parser *p, const json_t *doc, struct core_experiment *e)
{
    json_t *l = json_object_get(doc, "layer");
    ab_status rc;
    if (l == NULL || json_is_null(l))
        return AB_OK;
    if (!json_is_object(l))
        return bad(p, "layer", "must be an object {name, range} or null");
    rc = check_fields(p, l, "layer", layer_fields);
    if (rc != AB_OK)
        return rc;
    rc = get_name(p, l, "name", "layer", true, false, &e->layer);
    if (rc != AB_OK)
        return rc;
    json_t *r = json_object_get(l, "range");
    if (r == NULL)
        return bad(p, "layer.range", "required");
    if (!json_is_array(r) || json_array_size(r) != 2)
        return bad(p, "layer.range", "must be [lo, hi] in percent");
    uint32_t lo, hi;
    rc = percent(p, json_array_get(r, 0), "layer.range[0]", &lo);
    if (rc != AB_OK)
        return rc;
    rc = percent(p, json_array_get(r, 1), "layer.range[1]", &hi);
    if (rc != AB_OK)
        return rc;
    if (lo >= hi)
        return bad(p, "layer.range", "must have lo < hi");
    e->layer_lo = lo;
    e->layer_hi = hi;
    return AB_OK;
}

/* ---- metrics ------------------------------------------------------------ */

static const char *const metric_fields[] = { "name", "kind", "direction",
                                             "role", "covariate", "q", "drift",
                                             NULL };

/* "drift" of a metric (issue 16): null / absent = off, {} = on with the
 * defaults (core/experiment.h, struct core_drift). */
static const char *const drift_fields[] = {
    "reference_s", "window_s", "interval_s", "bins", "alpha", "min_values",
    NULL};

/* An integer drift setting in [min, max]; null keeps the default. */
static ab_status
drift_int(struct parser *p, const json_t *d, const char *path,
          const char *field, int64_t min, int64_t max, int64_t *out)
{
    const struct codec_int spec = {min, max, CODEC_NULL_ABSENT, NULL};
    return codec_get_int(d, path, field, &spec, out, p->err, p->errlen);
}

static ab_status
parse_drift(struct parser *p, const json_t *m, const char *mpath,
            struct core_drift *out)
{
    json_t *d = json_object_get(m, "drift");
    if (d == NULL || json_is_null(d))
        return AB_OK;
    char path[96];
    codec_join(path, sizeof(path), mpath, "drift");
    if (!json_is_object(d))
        return bad(p, path, "must be an object or null");
    ab_status rc = check_fields(p, d, path, drift_fields);
    struct core_drift x = {true, 3600, 3600, 60, 10, 0.01, 100};
    int64_t bins = x.bins;
    if (rc == AB_OK)
        rc = drift_int(p, d, path, "reference_s", 1, 31536000, &x.reference_s);
    if (rc == AB_OK)
        rc = drift_int(p, d, path, "window_s", 1, 31536000, &x.window_s);
    if (rc == AB_OK)
        rc = drift_int(p, d, path, "interval_s", 1, 86400, &x.interval_s);
    if (rc == AB_OK)
        rc = drift_int(p, d, path, "bins", 2, 100, &bins);
    if (rc == AB_OK)
        rc = drift_int(p, d, path, "min_values", 10, 20000, &x.min_values);
    if (rc != AB_OK)
        return rc;
    x.bins = (uint32_t)bins;
    static const struct codec_num alpha = {
        0, 0.5, true, false, CODEC_NULL_ABSENT, "a number in (0, 0.5]"};
    rc = codec_get_number(d, path, "alpha", &alpha, &x.alpha, NULL, p->err,
                          p->errlen);
    if (rc != AB_OK)
        return rc;
    *out = x;
    return AB_OK;
}

static ab_status
get_enum(struct parser *p, const json_t *obj, const char *field,
         const char *path, const struct codec_name *m, size_t n, int dflt,
         int *out)
{
    char f[96];
    codec_join(f, sizeof(f), path, field);
    json_t *v = json_object_get(obj, field);
    if (v == NULL) {
        if (dflt < 0)
            return bad(p, f, "required");
        *out = dflt;
        return AB_OK;
    }
    if (!json_is_string(v) ||
        !codec_name_find(m, n, json_string_value(v), out)) {
        char choices[256];
        codec_name_choices(m, n, choices, sizeof(choices));
        return bad(p, f, "must be one of %s", choices);
    }
    return AB_OK;
}

/* kind "quantile" takes "q" in (0, 1) (0.99: p99) and no covariate; "q"
 * belongs to quantile metrics only. */
static ab_status
metric_quantile(struct parser *p, const json_t *m, const char *path,
                struct core_metric *mt)
{
    char f[96];
    json_t *q = json_object_get(m, "q");
    codec_join(f, sizeof(f), path, "q");
    if (mt->kind != CORE_METRIC_QUANTILE)
        return q == NULL || json_is_null(q)
                   ? AB_OK
                   : bad(p, f, "only for kind \"quantile\"");
    if (q == NULL || json_is_null(q))
        return bad(p, f, "required for kind \"quantile\" (0.99: p99)");
    static const struct codec_num q_range = {
        0, 1, true, true, CODEC_NULL_REFUSED, "a number in (0, 1)"};
    ab_status rc = codec_get_number(m, path, "q", &q_range, &mt->q, NULL,
                                    p->err, p->errlen);
    if (rc != AB_OK)
        return rc;
    if (mt->covariate != NULL) {
        codec_join(f, sizeof(f), path, "covariate");
        return bad(p, f, "not supported for kind \"quantile\"");
    }
    return AB_OK;
}

static ab_status
parse_metrics(struct parser *p, const json_t *doc, struct core_experiment *e)
{
    json_t *ms;
    size_t n;
    ab_status rc0 = get_array(p, doc, "metrics", METRICS_MAX, "metrics", &ms,
                              &n);
    if (rc0 != AB_OK || n == 0)
        return rc0;
    e->metrics = ab_xcalloc(n, sizeof(*e->metrics));
    e->n_metrics = n;
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(ms, i);
        struct core_metric *mt = &e->metrics[i];
        char path[64];
        ab_status rc;
        int v;
        snprintf(path, sizeof(path), "metrics[%zu]", i);
        if (!json_is_object(m))
            return bad(p, path, "must be an object");
        rc = check_fields(p, m, path, metric_fields);
        if (rc != AB_OK)
            return rc;
        rc = get_name(p, m, "name", path, true, false, &mt->name);
        if (rc != AB_OK)
            return rc;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(e->metrics[j].name, mt->name) == 0) {
                char f[96];
                snprintf(f, sizeof(f), "%s.name", path);
                return bad(p, f, "duplicate metric \"%s\" (also metrics[%zu])",
                           mt->name, j);
            }
        }
        rc = get_enum(p, m, "kind", path, kind_names,
                      AB_ARRAY_LEN(kind_names), -1, &v);
        if (rc != AB_OK)
            return rc;
        mt->kind = (enum core_metric_kind)v;
        rc = get_enum(p, m, "direction", path, direction_names,
                      AB_ARRAY_LEN(direction_names), CORE_INCREASE, &v);
        if (rc != AB_OK)
            return rc;
        mt->direction = (enum core_direction)v;
        rc = get_enum(p, m, "role", path, role_names,
                      AB_ARRAY_LEN(role_names), CORE_ROLE_SECONDARY, &v);
        if (rc != AB_OK)
            return rc;
        mt->role = (enum core_role)v;
        json_t *cov = json_object_get(m, "covariate");
        if (cov != NULL && !json_is_null(cov)) {
            rc = get_name(p, m, "covariate", path, true, false,
                          &mt->covariate);
            if (rc != AB_OK)
                return rc;
        }
        rc = metric_quantile(p, m, path, mt);
        if (rc == AB_OK)
            rc = parse_drift(p, m, path, &mt->drift);
        if (rc != AB_OK)
            return rc;
    }
    return AB_OK;
}

/* ---- bandit ------------------------------------------------------------- */

/* The "bandit" object (strategy bandit only; every field optional):
 *   policy            thompson | top_two | ucb1 | kl_ucb | eps_greedy |
 *                     uniform                              default thompson
 *   metric            a declared binary, sum or mean metric   default: the
 *                     first such primary metric, else the first such one,
 *                     else null (no metric: the weights are not adapted)
 *   interval_s        reweight cadence, integer 1..2592000       default 60
 *   floor             minimum share per arm, [0, (1 - pinned) / arms]
 *                                                              default 0.01
 *   control_share     null (not pinned) or the control arm's fixed share
 *                     in [0, 1)                               default null
 *   burn_in           units in all arms before adapting       default 1000
 *   min_units         units an arm needs before it adapts      default 100
 *   promote_threshold null (never promote) or P(best) in (0.5, 1)
 *                                                              default 0.95
 *   promote_after_s   seconds P(best) must stay above it      default 3600
 *   seed              integer in [0, 2^53)   default: FNV-1a 64 of the key,
 *                     top 53 bits (Fowler, Noll, Vo; IETF draft
 *                     draft-eastlake-fnv, section 2) */
#define BANDIT_INTERVAL_MAX 2592000
#define BANDIT_COUNT_MAX 1000000000000LL
#define BANDIT_AFTER_MAX 31536000
#define BANDIT_SEED_MAX 9007199254740991LL /* 2^53 - 1 */

static const char *const bandit_fields[] = {
    "policy",        "metric",  "interval_s",        "floor",
    "control_share", "burn_in", "min_units",         "promote_threshold",
    "promote_after_s", "seed",  NULL
};

/* in the order the error message lists them: the default first */
static const struct codec_name bandit_policy_names[] = {
    { "thompson", CORE_BANDIT_THOMPSON },
    { "top_two", CORE_BANDIT_TOP_TWO },
    { "ucb1", CORE_BANDIT_UCB1 },
    { "kl_ucb", CORE_BANDIT_KL_UCB },
    { "eps_greedy", CORE_BANDIT_EPS_GREEDY },
    { "uniform", CORE_BANDIT_UNIFORM },
};

const char *
api_bandit_policy_name(enum core_bandit_policy policy)
{
    return codec_name_of(bandit_policy_names, AB_ARRAY_LEN(bandit_policy_names),
                    (int)policy);
}

ab_status
api_bandit_policy_parse(const char *name, enum core_bandit_policy *out)
{
    int v;
    if (!codec_name_find(bandit_policy_names,
                         AB_ARRAY_LEN(bandit_policy_names), name, &v))
        return AB_EINVAL;
    *out = (enum core_bandit_policy)v;
    return AB_OK;
}

static int64_t
key_seed(const char *key)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a 64 offset basis */
    for (const unsigned char *c = (const unsigned char *)key; *c; c++) {
        h ^= *c;
        h *= 1099511628211ULL; /* FNV 64 prime */
    }
    return (int64_t)(h >> 11);
}

/* An integer field of the bandit object in [min, max], or dflt. */
static ab_status
bandit_int(struct parser *p, const json_t *b, const char *field, int64_t min,
           int64_t max, int64_t dflt, int64_t *out)
{
    const struct codec_int spec = {min, max, CODEC_NULL_REFUSED, NULL};
    *out = dflt;
    return codec_get_int(b, "bandit", field, &spec, out, p->err, p->errlen);
}

/* A number field in 'range' (want: its words); 'nullable': null gives
 * *is_null (and no value); absent gives dflt, or null when dflt_null. */
static ab_status
bandit_num(struct parser *p, const json_t *b, const char *field,
           const struct codec_num *range, double dflt, bool dflt_null,
           double *out, bool *is_null)
{
    bool null_read = dflt_null;
    *out = dflt_null ? 0 : dflt;
    ab_status rc = codec_get_number(b, "bandit", field, range, out,
                                    &null_read, p->err, p->errlen);
    if (is_null)
        *is_null = null_read;
    return rc;
}

static ab_status
bandit_metric(struct parser *p, const json_t *b, struct core_experiment *e)
{
    struct core_bandit *bd = &e->bandit;
    json_t *v = json_object_get(b, "metric");
    bd->metric = SIZE_MAX;
    if (v == NULL || json_is_null(v)) {
        if (v != NULL && json_is_null(v))
            return AB_OK; /* explicitly none */
        for (int pass = 0; pass < 2 && bd->metric == SIZE_MAX; pass++)
            for (size_t i = 0; i < e->n_metrics; i++) {
                const struct core_metric *m = &e->metrics[i];
                if (m->kind != CORE_METRIC_RATIO &&
                    m->kind != CORE_METRIC_QUANTILE &&
                    (pass == 1 || m->role == CORE_ROLE_PRIMARY)) {
                    bd->metric = i;
                    break;
                }
            }
        return AB_OK;
    }
    if (!json_is_string(v))
        return bad(p, "bandit.metric", "must be a metric name or null");
    for (size_t i = 0; i < e->n_metrics; i++) {
        if (strcmp(e->metrics[i].name, json_string_value(v)) != 0)
            continue;
        if (e->metrics[i].kind == CORE_METRIC_RATIO ||
            e->metrics[i].kind == CORE_METRIC_QUANTILE)
            return bad(p, "bandit.metric",
                       "%s metric \"%s\" cannot drive a bandit (use a "
                       "binary, sum or mean metric)",
                       api_metric_kind_name(e->metrics[i].kind),
                       e->metrics[i].name);
        bd->metric = i;
        return AB_OK;
    }
    char q[CODEC_QUOTE_MAX + 1];
    return bad(p, "bandit.metric", "no metric \"%s\" is declared",
               codec_quote(q, json_string_value(v)));
}

static ab_status
parse_bandit(struct parser *p, const json_t *doc, struct core_experiment *e)
{
    json_t *b = json_object_get(doc, "bandit");
    struct core_bandit *bd = &e->bandit;
    ab_status rc;
    int v;
    memset(bd, 0, sizeof(*bd));
    if (e->strategy != CORE_STRATEGY_BANDIT) {
        if (b != NULL && !json_is_null(b))
            return bad(p, "bandit", "only for strategy bandit (this is %s)",
                       core_strategy_name(e->strategy));
        return AB_OK;
    }
    json_t *none = NULL;
    if (b == NULL || json_is_null(b)) {
        none = json_object();
        b = none;
    } else if (!json_is_object(b))
        return bad(p, "bandit", "must be an object or null");
    rc = check_fields(p, b, "bandit", bandit_fields);
    if (rc != AB_OK)
        goto done;
    rc = get_enum(p, b, "policy", "bandit", bandit_policy_names,
                  AB_ARRAY_LEN(bandit_policy_names), CORE_BANDIT_THOMPSON,
                  &v);
    if (rc != AB_OK)
        goto done;
    bd->policy = (enum core_bandit_policy)v;
    rc = bandit_metric(p, b, e);
    if (rc != AB_OK)
        goto done;
    rc = bandit_int(p, b, "interval_s", 1, BANDIT_INTERVAL_MAX, 60,
                    &bd->interval_s);
    if (rc != AB_OK)
        goto done;
    bool is_null;
    static const struct codec_num share = {
        0, 1, false, true, CODEC_NULL_VALUE, "a number in [0, 1)"};
    rc = bandit_num(p, b, "control_share", &share, 0, true,
                    &bd->control_share, &is_null);
    if (rc != AB_OK)
        goto done;
    bd->control_pinned = !is_null;
    size_t n_free = e->n_arms - (bd->control_pinned ? 1 : 0);
    double floor_max = (1.0 - bd->control_share) / (double)n_free;
    char range[96];
    snprintf(range, sizeof(range), "a number between 0 and %.6g", floor_max);
    const struct codec_num any = {-INFINITY, INFINITY,           false,
                                  false,     CODEC_NULL_REFUSED, range};
    rc = bandit_num(p, b, "floor", &any, 0.01, false, &bd->floor, NULL);
    if (rc != AB_OK)
        goto done;
    if (!(bd->floor >= 0 && bd->floor <= floor_max * (1 + 1e-12))) {
        rc = bad(p, "bandit.floor", "must be %s (%s / %zu arms)", range,
                 bd->control_pinned ? "(1 - control_share)" : "1", n_free);
        goto done;
    }
    rc = bandit_int(p, b, "burn_in", 0, BANDIT_COUNT_MAX, 1000,
                    &bd->burn_in);
    if (rc != AB_OK)
        goto done;
    rc = bandit_int(p, b, "min_units", 0, BANDIT_COUNT_MAX, 100,
                    &bd->min_units);
    if (rc != AB_OK)
        goto done;
    static const struct codec_num threshold = {
        0.5, 1, true, true, CODEC_NULL_VALUE, "a number in (0.5, 1)"};
    rc = bandit_num(p, b, "promote_threshold", &threshold, 0.95, false,
                    &bd->promote_threshold, &is_null);
    if (rc != AB_OK)
        goto done;
    bd->promote = !is_null;
    rc = bandit_int(p, b, "promote_after_s", 0, BANDIT_AFTER_MAX, 3600,
                    &bd->promote_after_s);
    if (rc != AB_OK)
        goto done;
    rc = bandit_int(p, b, "seed", 0, BANDIT_SEED_MAX, key_seed(e->key),
                    &bd->seed);
done:
    json_decref(none);
    return rc;
}

static json_t *
bandit_json(const struct core_experiment *e)
{
    const struct core_bandit *b = &e->bandit;
    json_t *o = json_object();
    json_object_set_new(o, "policy",
                        json_string(api_bandit_policy_name(b->policy)));
    json_object_set_new(o, "metric",
                        b->metric < e->n_metrics
                            ? json_string(e->metrics[b->metric].name)
                            : json_null());
    json_object_set_new(o, "interval_s", json_integer(b->interval_s));
    json_object_set_new(o, "floor", json_real(b->floor));
    json_object_set_new(o, "control_share",
                        b->control_pinned ? json_real(b->control_share)
                                          : json_null());
    json_object_set_new(o, "burn_in", json_integer(b->burn_in));
    json_object_set_new(o, "min_units", json_integer(b->min_units));
    json_object_set_new(o, "promote_threshold",
                        b->promote ? json_real(b->promote_threshold)
                                   : json_null());
    json_object_set_new(o, "promote_after_s",
                        json_integer(b->promote_after_s));
    json_object_set_new(o, "seed", json_integer(b->seed));
    return o;
}

/* ---- salt changes ---------------------------------------------------------- */

static bool
same_text(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

const char *
api_experiment_rehash_field(const struct core_experiment *prev,
                            const struct core_experiment *next)
{
    if (next->bucket_version > prev->bucket_version)
        return NULL;
    if (!same_text(prev->salt, next->salt))
        return "salt";
    if (!same_text(prev->layer, next->layer))
        return "layer";
    return NULL;
}

/* ---- the document ------------------------------------------------------- */

static const char *const doc_fields[] = {
    "key",       "description", "strategy", "unit_type",
    "arms",      "coverage",    "targeting", "forced",
    "layer",     "salt",        "bucket_version", "min_bucket_version",
    "sticky",    "metrics",     "bandit",   "rollout",
    NULL
};

/* "rollout": the automated rollout's configuration (codec/rollout_json.h).
 * Kept as its canonical JSON text, every setting in force written out:
 * absent means the defaults, which the returned definition then shows
 * (bandits have their own "bandit" settings and no rollout). */
static ab_status
parse_rollout(struct parser *p, const json_t *doc, struct core_experiment *e)
{
    json_t *r = json_object_get(doc, "rollout");
    if ((r == NULL || json_is_null(r)) &&
        e->strategy == CORE_STRATEGY_BANDIT)
        return AB_OK;
    struct core_rollout_config c;
    if (api_rollout_parse(r, e, &c, p->err, p->errlen) != AB_OK)
        return AB_EINVAL;
    json_t *canon = api_rollout_json(&c);
    e->rollout = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(canon);
    return AB_OK;
}

static ab_status
get_u32(struct parser *p, const json_t *doc, const char *field,
        uint32_t min, uint32_t max, uint32_t dflt, uint32_t *out)
{
    const struct codec_int spec = {min, max, CODEC_NULL_REFUSED, NULL};
    int64_t v = dflt;
    ab_status rc = codec_get_int(doc, "", field, &spec, &v, p->err,
                                 p->errlen);
    if (rc == AB_OK)
        *out = (uint32_t)v;
    return rc;
}

static ab_status
parse_doc(struct parser *p, const json_t *doc, struct core_experiment *e)
{
    ab_status rc;
    const char *s;
    size_t n;
    if (!json_is_object(doc))
        return bad(p, "definition", "must be a JSON object");
    rc = check_fields(p, doc, "", doc_fields);
    if (rc != AB_OK)
        return rc;
    rc = get_name(p, doc, "key", "", true, true, &e->key);
    if (rc != AB_OK)
        return rc;
    rc = get_string(p, doc, "description", "", DESCRIPTION_MAX, true, &s, &n);
    if (rc != AB_OK)
        return rc;
    e->description = ab_xstrndup(s != NULL ? s : "", n);

    json_t *st = json_object_get(doc, "strategy");
    e->strategy = CORE_STRATEGY_AB;
    if (st != NULL && (!json_is_string(st) ||
                       core_strategy_parse(json_string_value(st),
                                           &e->strategy) != AB_OK))
        return bad(p, "strategy",
                   "must be one of ab canary blue_green shadow bandit");
    rc = get_name(p, doc, "unit_type", "", false, false,
                  &e->unit_type);
    if (rc != AB_OK)
        return rc;
    if (e->unit_type == NULL)
        e->unit_type = ab_xstrdup("user");

    rc = parse_arms(p, doc, e);
    if (rc != AB_OK)
        return rc;
    rc = check_strategy(p, e);
    if (rc != AB_OK)
        return rc;

    json_t *cov = json_object_get(doc, "coverage");
    e->coverage = CORE_SCALE;
    if (cov != NULL) {
        rc = fraction(p, cov, "coverage", &e->coverage);
        if (rc != AB_OK)
            return rc;
    }

    rc = parse_targeting(p, doc, e);
    if (rc != AB_OK)
        return rc;
    rc = parse_forced(p, doc, e);
    if (rc != AB_OK)
        return rc;
    rc = parse_layer(p, doc, e);
    if (rc != AB_OK)
        return rc;

    rc = get_string(p, doc, "salt", "", SALT_MAX, false, &s, &n);
    if (rc != AB_OK)
        return rc;
    if (s != NULL && n == 0)
        return bad(p, "salt", "must be 1 to %d bytes", SALT_MAX);
    e->salt = s != NULL ? ab_xstrndup(s, n) : ab_xstrdup(e->key);

    rc = get_u32(p, doc, "bucket_version", 1, UINT32_MAX, 1,
                 &e->bucket_version);
    if (rc != AB_OK)
        return rc;
    rc = get_u32(p, doc, "min_bucket_version", 1, e->bucket_version, 1,
                 &e->min_bucket_version);
    if (rc != AB_OK)
        return rc;

    e->sticky = e->strategy == CORE_STRATEGY_BANDIT;
    rc = codec_get_bool(doc, "", "sticky", CODEC_NULL_REFUSED, &e->sticky,
                        p->err, p->errlen);
    if (rc != AB_OK)
        return rc;

    rc = parse_metrics(p, doc, e);
    if (rc != AB_OK)
        return rc;
    rc = parse_bandit(p, doc, e);
    if (rc != AB_OK)
        return rc;
    return parse_rollout(p, doc, e);
}

ab_status
api_experiment_parse(const json_t *doc, struct core_experiment **out,
                     char *err, size_t errlen)
{
    struct parser p = { err, errlen };
    struct core_experiment *e = ab_xcalloc(1, sizeof(*e));
    e->state = CORE_STATE_DRAFT;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    ab_status rc = parse_doc(&p, doc, e);
    if (rc != AB_OK) {
        core_experiment_free(e);
        return rc;
    }
    *out = e;
    return AB_OK;
}

/* ---- canonical definition ----------------------------------------------- */

static json_t *
rule_json(const struct core_rule *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "attribute", json_string(r->attribute));
    json_object_set_new(o, "op", json_string(api_op_name(r->op)));
    switch (r->op) {
    case CORE_OP_EXISTS: break;
    case CORE_OP_IN:
    case CORE_OP_NOT_IN: {
        json_t *vs = json_array();
        for (size_t i = 0; i < r->n_values; i++)
            json_array_append_new(vs, json_string(r->values[i]));
        json_object_set_new(o, "values", vs);
        break;
    }
    case CORE_OP_LT:
    case CORE_OP_LE:
    case CORE_OP_GT:
    case CORE_OP_GE:
        if (r->number == floor(r->number) &&
            fabs(r->number) < 9007199254740992.0)
            json_object_set_new(o, "value",
                                json_integer((json_int_t)r->number));
        else
            json_object_set_new(o, "value", json_real(r->number));
        break;
    default:
        json_object_set_new(o, "value",
                            json_string(r->n_values > 0 ? r->values[0] : ""));
        break;
    }
    return o;
}

json_t *
api_experiment_definition(const struct core_experiment *e)
{
    json_t *d = json_object();
    json_object_set_new(d, "key", json_string(e->key));
    json_object_set_new(d, "description",
                        json_string(e->description ? e->description : ""));
    json_object_set_new(d, "strategy",
                        json_string(core_strategy_name(e->strategy)));
    json_object_set_new(d, "unit_type",
                        json_string(e->unit_type ? e->unit_type : "user"));
    json_t *arms = json_array();
    for (size_t i = 0; i < e->n_arms; i++) {
        const struct core_arm *a = &e->arms[i];
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(a->name));
        json_object_set_new(o, "weight", codec_percent_json(a->weight));
        json_object_set_new(o, "model", json_string(a->model ? a->model : ""));
        json_object_set_new(o, "control", json_boolean(a->control));
        if (core_arm_value(e, i) != NULL)
            json_object_set_new(o, "value", json_loads(core_arm_value(e, i),
                                                       JSON_DECODE_ANY, NULL));
        json_array_append_new(arms, o);
    }
    json_object_set_new(d, "arms", arms);
    json_object_set_new(d, "coverage",
                        codec_scaled_json(e->coverage, CORE_SCALE));
    json_t *t = json_array();
    for (size_t i = 0; i < e->n_rules; i++)
        json_array_append_new(t, rule_json(&e->rules[i]));
    json_object_set_new(d, "targeting", t);
    json_t *fo = json_object();
    for (size_t i = 0; i < e->n_forced; i++)
        json_object_set_new(fo, e->forced[i].unit,
                            json_string(e->arms[e->forced[i].arm].name));
    json_object_set_new(d, "forced", fo);
    if (e->layer != NULL)
        json_object_set_new(
            d, "layer",
            json_pack("{s:s, s:[o,o]}", "name", e->layer, "range",
                      codec_percent_json(e->layer_lo),
                      codec_percent_json(e->layer_hi)));
    else
        json_object_set_new(d, "layer", json_null());
    json_object_set_new(d, "salt", json_string(e->salt ? e->salt : e->key));
    json_object_set_new(d, "bucket_version",
                        json_integer((json_int_t)e->bucket_version));
    json_object_set_new(d, "min_bucket_version",
                        json_integer((json_int_t)e->min_bucket_version));
    json_object_set_new(d, "sticky", json_boolean(e->sticky));
    json_t *ms = json_array();
    for (size_t i = 0; i < e->n_metrics; i++) {
        const struct core_metric *m = &e->metrics[i];
        json_array_append_new(
            ms, json_pack("{s:s, s:s, s:s, s:s, s:o}", "name", m->name, "kind",
                          api_metric_kind_name(m->kind), "direction",
                          api_direction_name(m->direction), "role",
                          api_role_name(m->role), "covariate",
                          m->covariate ? json_string(m->covariate)
                                       : json_null()));
        if (m->kind == CORE_METRIC_QUANTILE)
            json_object_set_new(json_array_get(ms, i), "q", json_real(m->q));
        if (m->drift.on) /* printed only when on */
            json_object_set_new(
                json_array_get(ms, i), "drift",
                json_pack("{s:I,s:I,s:I,s:I,s:f,s:I}", "reference_s",
                          (json_int_t)m->drift.reference_s, "window_s",
                          (json_int_t)m->drift.window_s, "interval_s",
                          (json_int_t)m->drift.interval_s, "bins",
                          (json_int_t)m->drift.bins, "alpha", m->drift.alpha,
                          "min_values", (json_int_t)m->drift.min_values));
    }
    json_object_set_new(d, "metrics", ms);
    if (e->strategy == CORE_STRATEGY_BANDIT)
        json_object_set_new(d, "bandit", bandit_json(e));
    if (e->rollout != NULL)
        json_object_set_new(d, "rollout", json_loads(e->rollout, 0, NULL));
    return d;
}
