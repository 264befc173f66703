/* analyze.c -- the JSON edge of the typed analysis (core/analysis.h),
 * shared by `arbiter analyze`, POST /v1/analyze and GET /results. The
 * request format is in codec/analyze.h; the computation is
 * core_analysis_run() and the statistics live in stats/ (each file cites
 * its formula and reference). This file only translates:
 *
 *   request --parse/validate--> struct core_analysis_req (exit 2 / HTTP 400)
 *           --core_analysis_run()--> struct core_analysis
 *           --format----------> answer, non-finite numbers as null
 */
#include "codec/analyze.h"

#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/field.h"
#include "core/metric_kind.h"
#include "stats/msprt.h"

#define MAX_ARMS CORE_ANALYSIS_MAX_ARMS

/* ---- errors ------------------------------------------------------ */

static ab_status fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static ab_status
fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return AB_EINVAL;
}

/* ---- request parsing --------------------------------------------- */

static int
only_keys(const json_t *obj, const char *const *allowed, const char **bad)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)obj, key, v) {
        int ok = 0;
        (void)v;
        for (size_t i = 0; allowed[i] != NULL; i++)
            if (strcmp(key, allowed[i]) == 0)
                ok = 1;
        if (!ok) {
            *bad = key;
            return 0;
        }
    }
    return 1;
}

/* Index of s in names (NULL-terminated), or -1. */
static int
pick(const char *s, const char *const *names)
{
    for (int i = 0; names[i] != NULL; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static ab_status
get_enum(const json_t *obj, const char *key, const char *const *names,
         int *out, const char *where, char *err, size_t errlen)
{
    const json_t *v = json_object_get(obj, key);
    int i;

    if (v == NULL)
        return AB_ENOTFOUND;
    if (!json_is_string(v) || (i = pick(json_string_value(v), names)) < 0) {
        char list[160] = "";
        for (int k = 0; names[k] != NULL; k++) {
            size_t len = strlen(list);
            snprintf(list + len, sizeof(list) - len, "%s\"%s\"",
                     k ? ", " : "", names[k]);
        }
        return fail(err, errlen, "%s%s: must be one of %s", where, key,
                    list);
    }
    *out = i;
    return AB_OK;
}

static ab_status
get_number(const json_t *obj, const char *key, double *out, int required,
           const char *where, char *err, size_t errlen)
{
    const json_t *v = json_object_get(obj, key);

    if (v == NULL) {
        if (required)
            return fail(err, errlen, "%s%s: required", where, key);
        return AB_ENOTFOUND;
    }
    if (!json_is_number(v))
        return fail(err, errlen, "%s%s: must be a number", where, key);
    *out = json_number_value(v);
    return AB_OK;
}

static const char *const kind_names[] = { "mean", "binary", "sum", "ratio",
                                          NULL };
static const char *const dir_names[] = { "increase", "decrease", NULL };
static const char *const method_names[] = { "welch", "z", "msprt", "gst",
                                            "bayes", NULL };
static const char *const effect_names[] = { "absolute", "relative", NULL };
static const char *const side_names[] = { "two", "greater", "less", NULL };
static const char *const corr_names[] = { "none", "holm", "bh", NULL };
static const char *const spend_names[] = { "obf", "pocock", "power", "hsd",
                                           NULL };

static ab_status
parse_metric(const json_t *m, struct core_analysis_req *r, char *err, size_t errlen)
{
    static const char *const keys[] = { "kind", "direction", NULL };
    const char *bad;
    int i;
    ab_status rc;

    if (m == NULL)
        return fail(err, errlen, "metric: required");
    if (!json_is_object(m))
        return fail(err, errlen, "metric: must be an object");
    if (!only_keys(m, keys, &bad))
        return fail(err, errlen, "metric.%s: unknown field", bad);
    rc = get_enum(m, "kind", kind_names, &i, "metric.", err, errlen);
    if (rc == AB_ENOTFOUND)
        return fail(err, errlen, "metric.kind: required");
    if (rc != AB_OK)
        return rc;
    core_metric_kind_parse(kind_names[i], &r->kind);
    i = 0;
    rc = get_enum(m, "direction", dir_names, &i, "metric.", err, errlen);
    if (rc == AB_EINVAL)
        return rc;
    r->dir = i == 1 ? STATS_DIR_DECREASE : STATS_DIR_INCREASE;
    return AB_OK;
}

static ab_status
parse_arm(const json_t *a, size_t idx, const struct core_analysis_req *r,
          struct core_analysis_arm *out, int *is_control, char *err, size_t errlen)
{
    static const char *const keys[] = {
        "name", "n", "sum", "sum_sq", "den_sum", "den_sum_sq", "cross_sum",
        "pre_sum", "pre_sum_sq", "pre_cross_sum", "weight", "control", NULL
    };
    char where[48];
    const char *bad;
    const json_t *v;
    ab_status rc;

    snprintf(where, sizeof(where), "arms[%zu].", idx);
    if (!json_is_object(a))
        return fail(err, errlen, "arms[%zu]: must be an object", idx);
    if (!only_keys(a, keys, &bad))
        return fail(err, errlen, "%s%s: unknown field", where, bad);
    v = json_object_get(a, "name");
    if (v == NULL)
        return fail(err, errlen, "%sname: required", where);
    if (!json_is_string(v) || json_string_length(v) == 0)
        return fail(err, errlen, "%sname: must be a non-empty string",
                    where);
    memset(out, 0, sizeof(*out));
    out->name = json_string_value(v);
    v = json_object_get(a, "control");
    *is_control = 0;
    if (v != NULL) {
        if (!json_is_boolean(v))
            return fail(err, errlen, "%scontrol: must be true or false",
                        where);
        *is_control = json_is_true(v);
    }
    if (get_number(a, "n", &out->n, 1, where, err, errlen) != AB_OK ||
        get_number(a, "sum", &out->sum, 1, where, err, errlen) != AB_OK)
        return AB_EINVAL;
    rc = get_number(a, "sum_sq", &out->sum_sq, r->kind != CORE_METRIC_BINARY, where,
                    err, errlen);
    if (rc == AB_EINVAL)
        return rc;
    if (rc == AB_ENOTFOUND)
        out->sum_sq = out->sum;           /* binary: y^2 = y */
    if (r->kind == CORE_METRIC_BINARY && out->sum_sq != out->sum)
        return fail(err, errlen,
                    "%ssum_sq: must equal sum for a binary metric", where);
    if (r->kind == CORE_METRIC_RATIO) {
        if (get_number(a, "den_sum", &out->den_sum, 1, where, err,
                       errlen) != AB_OK ||
            get_number(a, "den_sum_sq", &out->den_sum_sq, 1, where, err,
                       errlen) != AB_OK ||
            get_number(a, "cross_sum", &out->cross_sum, 1, where, err,
                       errlen) != AB_OK)
            return AB_EINVAL;
    } else {
        static const char *const ratio_only[] = { "den_sum", "den_sum_sq",
                                                  "cross_sum", NULL };
        for (size_t i = 0; ratio_only[i] != NULL; i++)
            if (json_object_get(a, ratio_only[i]) != NULL)
                return fail(err, errlen,
                            "%s%s: only for metric.kind \"ratio\"", where,
                            ratio_only[i]);
    }
    if (r->cuped) {
        if (get_number(a, "pre_sum", &out->pre_sum, 1, where, err,
                       errlen) != AB_OK ||
            get_number(a, "pre_sum_sq", &out->pre_sum_sq, 1, where, err,
                       errlen) != AB_OK ||
            get_number(a, "pre_cross_sum", &out->pre_cross_sum, 1, where, err,
                       errlen) != AB_OK)
            return AB_EINVAL;
    } else {
        /* a field that would be ignored is refused: a mistyped request
         * must not pass for an analysis it is not */
        static const char *const cuped_only[] = { "pre_sum", "pre_sum_sq",
                                                  "pre_cross_sum", NULL };
        for (size_t i = 0; cuped_only[i] != NULL; i++)
            if (json_object_get(a, cuped_only[i]) != NULL)
                return fail(err, errlen,
                            "%s%s: only used with \"cuped\": true", where,
                            cuped_only[i]);
    }
    rc = get_number(a, "weight", &out->weight, 0, where, err, errlen);
    if (rc == AB_EINVAL)
        return rc;
    out->has_weight = rc == AB_OK;
    if (out->has_weight && !(out->weight >= 0))
        return fail(err, errlen, "%sweight: must be >= 0", where);
    return AB_OK;
}

/* "information": the looks of a group sequential design, as increasing
 * fractions in (0, 1]; required for gst and refused elsewhere. */
static ab_status
parse_information(const json_t *v, struct core_analysis_req *r, char *err, size_t errlen)
{
    if (v != NULL && r->method != CORE_METHOD_GST)
        return fail(err, errlen, "information: only for method \"gst\"");
    if (r->method != CORE_METHOD_GST)
        return AB_OK;
    if (v == NULL)
        return fail(err, errlen, "information: required for method \"gst\"");
    if (!json_is_array(v) || json_array_size(v) == 0)
        return fail(err, errlen, "information: must be a non-empty array");
    size_t k = json_array_size(v);
    if (k > STATS_GST_MAX_LOOKS - 1)
        return fail(err, errlen, "information: at most %d looks",
                    STATS_GST_MAX_LOOKS - 1);
    for (size_t j = 0; j < k; j++) {
        const json_t *e = json_array_get(v, j);
        double t;
        if (!json_is_number(e))
            return fail(err, errlen, "information[%zu]: must be a number", j);
        t = json_number_value(e);
        if (!(t > 0) || (j > 0 && !(t > r->info[j - 1])))
            return fail(err, errlen,
                        "information[%zu]: fractions must be positive "
                        "and increasing", j);
        if (j + 1 < k && !(t < 1))
            return fail(err, errlen,
                        "information[%zu]: only the last look may "
                        "reach 1", j);
        r->info[j] = t;
    }
    r->n_info = k;
    return AB_OK;
}

/* "prior": {"mean", "sd"} of the normal prior on the effect, bayes only. */
static ab_status
parse_prior(const json_t *v, struct core_analysis_req *r, char *err, size_t errlen)
{
    static const char *const pkeys[] = { "mean", "sd", NULL };
    const char *bad;
    if (v == NULL)
        return AB_OK;
    if (r->method != CORE_METHOD_BAYES)
        return fail(err, errlen, "prior: only for method \"bayes\"");
    if (!json_is_object(v))
        return fail(err, errlen, "prior: must be an object");
    if (!only_keys(v, pkeys, &bad))
        return fail(err, errlen, "prior.%s: unknown field", bad);
    if (get_number(v, "mean", &r->prior.mean, 1, "prior.", err, errlen) !=
            AB_OK ||
        get_number(v, "sd", &r->prior.sd, 1, "prior.", err, errlen) != AB_OK)
        return AB_EINVAL;
    if (!(r->prior.sd > 0))
        return fail(err, errlen, "prior.sd: must be > 0");
    r->has_prior = 1;
    return AB_OK;
}

/* "arms": 2 to MAX_ARMS arms with distinct names, at most one control,
 * and weights for all arms or none; allocates r->arms. */
static ab_status
parse_arms(const json_t *arms, struct core_analysis_req *r, char *err, size_t errlen)
{
    int n_controls = 0, weights = 0;
    ab_status rc;
    if (arms == NULL)
        return fail(err, errlen, "arms: required");
    if (!json_is_array(arms) || json_array_size(arms) < 2)
        return fail(err, errlen, "arms: must be an array of at least 2 arms");
    if (json_array_size(arms) > MAX_ARMS)
        return fail(err, errlen, "arms: at most %d arms", MAX_ARMS);
    r->n_arms = json_array_size(arms);
    struct core_analysis_arm *mine = calloc(r->n_arms, sizeof(*mine));
    if (mine == NULL)
        return fail(err, errlen, "arms: out of memory");
    r->arms = mine;
    r->control = 0;
    for (size_t j = 0; j < r->n_arms; j++) {
        int is_control = 0;
        rc = parse_arm(json_array_get(arms, j), j, r, &mine[j],
                       &is_control, err, errlen);
        if (rc != AB_OK)
            return rc;
        for (size_t k = 0; k < j; k++)
            if (strcmp(r->arms[k].name, r->arms[j].name) == 0)
                return fail(err, errlen, "arms[%zu].name: duplicate \"%s\"",
                            j, r->arms[j].name);
        if (is_control) {
            if (n_controls > 0)
                return fail(err, errlen,
                            "arms[%zu].control: only one arm may be the "
                            "control", j);
            n_controls++;
            r->control = j;
        }
        weights += r->arms[j].has_weight;
    }
    if (weights != 0 && (size_t)weights != r->n_arms)
        return fail(err, errlen,
                    "arms: give a weight for every arm or for none");
    return AB_OK;
}

static ab_status
parse(const json_t *doc, struct core_analysis_req *r, char *err, size_t errlen)
{
    static const char *const keys[] = {
        "metric", "method", "effect", "alpha", "sided", "tuning",
        "spending", "rho", "information", "prior", "cuped", "correction",
        "arms", NULL
    };
    const char *bad;
    const json_t *v;
    int i;
    ab_status rc;

    if (!json_is_object(doc))
        return fail(err, errlen, "request: must be a JSON object");
    if (!only_keys(doc, keys, &bad))
        return fail(err, errlen, "%s: unknown field", bad);
    rc = parse_metric(json_object_get(doc, "metric"), r, err, errlen);
    if (rc != AB_OK)
        return rc;

    i = r->kind == CORE_METRIC_BINARY ? CORE_METHOD_Z : CORE_METHOD_WELCH;
    if (get_enum(doc, "method", method_names, &i, "", err, errlen) ==
        AB_EINVAL)
        return AB_EINVAL;
    r->method = (enum core_analysis_method)i;
    i = 0;
    if (get_enum(doc, "effect", effect_names, &i, "", err, errlen) ==
        AB_EINVAL)
        return AB_EINVAL;
    r->effect = i ? STATS_EFFECT_RELATIVE : STATS_EFFECT_ABSOLUTE;
    i = 0;
    if (get_enum(doc, "sided", side_names, &i, "", err, errlen) == AB_EINVAL)
        return AB_EINVAL;
    r->side = i == 1 ? STATS_SIDE_GREATER
                     : i == 2 ? STATS_SIDE_LESS : STATS_SIDE_TWO;
    i = 0;
    if (get_enum(doc, "correction", corr_names, &i, "", err, errlen) ==
        AB_EINVAL)
        return AB_EINVAL;
    r->corr = i == 1 ? STATS_CORR_HOLM : i == 2 ? STATS_CORR_BH
                                                : STATS_CORR_NONE;

    r->alpha = 0.05;
    if (get_number(doc, "alpha", &r->alpha, 0, "", err, errlen) ==
        AB_EINVAL)
        return AB_EINVAL;
    if (!(r->alpha > 0 && r->alpha < 1))
        return fail(err, errlen, "alpha: must be in (0, 1)");
    if (r->method == CORE_METHOD_MSPRT && r->alpha > 0.5)
        return fail(err, errlen, "alpha: must be at most 0.5 for msprt");

    /* method-specific fields: refuse them where they mean nothing */
    r->tuning = STATS_MSPRT_DEFAULT_N_STAR;
    rc = get_number(doc, "tuning", &r->tuning, 0, "", err, errlen);
    if (rc == AB_EINVAL)
        return rc;
    if (rc == AB_OK && r->method != CORE_METHOD_MSPRT)
        return fail(err, errlen, "tuning: only for method \"msprt\"");
    if (!(r->tuning > 0) || !isfinite(r->tuning))
        return fail(err, errlen, "tuning: must be a positive number");

    i = 0;
    rc = get_enum(doc, "spending", spend_names, &i, "", err, errlen);
    if (rc == AB_EINVAL)
        return rc;
    if (rc == AB_OK && r->method != CORE_METHOD_GST)
        return fail(err, errlen, "spending: only for method \"gst\"");
    r->spending = i == 1 ? STATS_GST_POCOCK
                         : i == 2 ? STATS_GST_POWER
                                  : i == 3 ? STATS_GST_HSD : STATS_GST_OBF;
    rc = get_number(doc, "rho", &r->rho, 0, "", err, errlen);
    if (rc == AB_EINVAL)
        return rc;
    r->has_rho = rc == AB_OK;
    if (r->has_rho && r->method != CORE_METHOD_GST)
        return fail(err, errlen, "rho: only for method \"gst\"");
    if (r->spending == STATS_GST_POWER && !(r->has_rho && r->rho > 0))
        return fail(err, errlen,
                    "rho: spending \"power\" needs rho > 0");
    if (r->spending == STATS_GST_HSD && !r->has_rho)
        r->rho = -4;        /* rpact's default gammaA for asHSD */
    if (r->has_rho && r->spending != STATS_GST_POWER &&
        r->spending != STATS_GST_HSD)
        return fail(err, errlen,
                    "rho: only for spending \"power\" or \"hsd\"");

    rc = parse_information(json_object_get(doc, "information"), r, err,
                           errlen);
    if (rc != AB_OK)
        return rc;
    rc = parse_prior(json_object_get(doc, "prior"), r, err, errlen);
    if (rc != AB_OK)
        return rc;

    v = json_object_get(doc, "cuped");
    if (v != NULL) {
        if (!json_is_boolean(v))
            return fail(err, errlen, "cuped: must be true or false");
        r->cuped = json_is_true(v);
    }
    if (r->cuped && r->kind == CORE_METRIC_RATIO)
        return fail(err, errlen,
                    "cuped: not supported for metric.kind \"ratio\"");
    if (r->corr != STATS_CORR_NONE &&
        (r->method == CORE_METHOD_BAYES || r->method == CORE_METHOD_GST))
        return fail(err, errlen,
                    "correction: adjusts p-values; method \"%s\" has none",
                    method_names[r->method]);

    return parse_arms(json_object_get(doc, "arms"), r, err, errlen);
}

/* ---- formatting -------------------------------------------------- */

/* a count: an integer when it is one (and exact), else a real or null */
static json_t *
count(double x)
{
    if (isfinite(x) && x == floor(x) && fabs(x) <= 9007199254740992.0)
        return json_integer((json_int_t)x);
    return codec_real_or_null(x);
}

static void
set_status(json_t *obj, ab_status rc, enum stats_reason why)
{
    if (rc == AB_OK) {
        json_object_set_new(obj, "status", json_string("ok"));
        json_object_set_new(obj, "reason", json_null());
        return;
    }
    json_object_set_new(obj, "status", json_string(ab_status_name(rc)));
    json_object_set_new(obj, "reason_code",
                        json_string(stats_reason_code(why)));
    json_object_set_new(obj, "reason", json_string(stats_reason_text(why)));
}

static json_t *
interval(double lo, double hi)
{
    json_t *a = json_array();
    json_array_append_new(a, codec_real_or_null(lo));
    json_array_append_new(a, codec_real_or_null(hi));
    return a;
}

static json_t *
format_arm(const struct core_analysis_req *r, const struct core_analysis_arm *a,
           const struct core_analysis_arm_out *o)
{
    json_t *j = json_object();

    json_object_set_new(j, "name", json_string(a->name));
    json_object_set_new(j, "n", count(a->n));
    if (o->rc == AB_OK) {
        json_object_set_new(j, "mean", codec_real_or_null(o->s.mean));
        json_object_set_new(j, "variance", codec_real_or_null(o->s.var));
        json_object_set_new(j, "ci", interval(o->ci_low, o->ci_high));
        if (r->cuped)
            json_object_set_new(j, "unadjusted_mean",
                                codec_real_or_null(o->cs.raw.mean));
    } else {
        json_object_set_new(j, "mean", json_null());
        json_object_set_new(j, "variance", json_null());
        json_object_set_new(j, "ci", json_null());
    }
    set_status(j, o->rc, o->why);
    return j;
}

static const char *
action_name(enum stats_gst_action a)
{
    switch (a) {
    case STATS_GST_CONTINUE: return "continue";
    case STATS_GST_EFFICACY: return "efficacy";
    case STATS_GST_FUTILITY: return "futility";
    case STATS_GST_ACCEPT: return "accept";
    }
    return "continue";
}

static json_t *
format_cmp(const struct core_analysis_req *r, const struct core_analysis_arm *c, const struct core_analysis_arm *t,
           const struct core_analysis_cmp *o)
{
    json_t *j = json_object();
    int ok = o->rc == AB_OK;

    json_object_set_new(j, "arm", json_string(t->name));
    json_object_set_new(j, "control", json_string(c->name));
    json_object_set_new(j, "effect",
                        ok ? codec_real_or_null(o->effect) : json_null());
    json_object_set_new(j, "se",
                        ok ? codec_real_or_null(o->se) : json_null());
    json_object_set_new(j, "ci", ok ? interval(o->lo, o->hi) : json_null());
    json_object_set_new(j, "p_value",
                        ok && o->has_p ? codec_real_or_null(o->p)
                                       : json_null());
    json_object_set_new(j, "adjusted_p_value",
                        ok && o->has_p && r->corr != STATS_CORR_NONE
                            ? codec_real_or_null(o->p_adj)
                            : json_null());
    json_object_set_new(j, "chance_to_win",
                        ok && o->has_bayes ? codec_real_or_null(o->chance)
                                           : json_null());
    if (ok && o->has_bayes) {
        json_t *risk = json_object();
        json_object_set_new(risk, "control", codec_real_or_null(o->risk_c));
        json_object_set_new(risk, "treatment", codec_real_or_null(o->risk_t));
        json_object_set_new(j, "risk", risk);
    } else {
        json_object_set_new(j, "risk", json_null());
    }
    if (ok && r->method == CORE_METHOD_GST) {
        json_t *b = json_array();
        for (size_t k = 0; k < o->bounds.k_max; k++) {
            double c_k = o->bounds.efficacy[k];
            json_array_append_new(b, codec_real_or_null(
                                         r->side == STATS_SIDE_LESS ? -c_k
                                                                    : c_k));
        }
        json_object_set_new(j, "boundaries", b);
        json_object_set_new(j, "decision",
                            json_string(action_name(o->decision.action)));
        json_object_set_new(j, "z", codec_real_or_null(o->decision.z));
    } else {
        json_object_set_new(j, "boundaries", json_null());
    }
    json_object_set_new(j, "significant", ok ? json_boolean(o->significant)
                                             : json_null());
    /* verdict: which way a significant effect goes, for this metric */
    json_object_set_new(j, "verdict",
                        json_string(core_analysis_verdict_name(o->verdict)));
    set_status(j, o->rc, o->why);
    return j;
}

static json_t *
format_srm(const struct core_analysis_srm *s)
{
    json_t *j = json_object();

    if (s->rc == AB_OK) {
        json_object_set_new(j, "p_value", codec_real_or_null(s->p_value));
        json_object_set_new(j, "mismatch", json_boolean(s->mismatch));
        json_object_set_new(j, "chi2", codec_real_or_null(s->chi2));
        json_object_set_new(j, "df", codec_real_or_null(s->df));
    } else {
        json_object_set_new(j, "p_value", json_null());
        json_object_set_new(j, "mismatch", json_null());
    }
    json_object_set_new(j, "weights",
                        json_string(s->configured ? "configured" : "equal"));
    set_status(j, s->rc, s->why);
    return j;
}

json_t *
codec_analysis_json(const struct core_analysis_req *r,
                    const struct core_analysis *an)
{
    json_t *ans = json_object(), *ja = json_array(), *jc = json_array();
    for (size_t i = 0; i < r->n_arms; i++) {
        json_array_append_new(ja, format_arm(r, &r->arms[i], &an->arms[i]));
        if (i != r->control)
            json_array_append_new(jc, format_cmp(r, &r->arms[r->control],
                                                 &r->arms[i], &an->cmps[i]));
    }
    json_object_set_new(ans, "arms", ja);
    json_object_set_new(ans, "comparisons", jc);
    json_object_set_new(ans, "srm", format_srm(&an->srm));
    if (r->cuped)
        json_object_set_new(ans, "theta", codec_real_or_null(an->theta));
    return ans;
}

/* ---- entry point ------------------------------------------------- */

ab_status
api_analyze(const json_t *doc, json_t **out, char *err, size_t errlen)
{
    struct core_analysis_req r;
    struct core_analysis *an = NULL;
    ab_status rc;

    core_analysis_req_init(&r, CORE_METRIC_MEAN, CORE_METHOD_WELCH);
    r.arms = NULL;
    rc = parse(doc, &r, err, errlen);
    if (rc != AB_OK)
        goto done;
    an = core_analysis_new(r.n_arms);
    rc = core_analysis_run(&r, an);
    if (rc != AB_OK) {
        snprintf(err, errlen, "request: not an analysis this build can run");
        goto done;
    }
    *out = codec_analysis_json(&r, an);
done:
    free((void *)r.arms);
    core_analysis_free(an);
    return rc;
}
