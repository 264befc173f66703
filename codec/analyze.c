/* analyze.c -- one analysis request (JSON) to one answer (JSON), shared by
 * `arbiter analyze` and POST /v1/analyze. The request format is in
 * codec/analyze.h; the statistics live in stats/ (each file cites its
 * formula and reference). This file only validates, dispatches and
 * formats:
 *
 *   request --parse/validate--> struct req (exit 2 / HTTP 400 on error)
 *           --per arm---------> summary (mean, var) or CUPED-adjusted
 *           --per comparison--> welch | z (prop) | bayes | msprt | gst
 *           --family----------> Holm / BH adjusted p-values
 *           --health----------> SRM chi-square against the weights
 *           --format----------> answer, non-finite numbers as null
 */
#include "codec/analyze.h"

#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats/bayes.h"
#include "stats/common.h"
#include "stats/cuped.h"
#include "stats/delta.h"
#include "stats/gst.h"
#include "stats/msprt.h"
#include "stats/multiple.h"
#include "stats/prop.h"
#include "stats/srm.h"
#include "stats/welch.h"

#define MAX_ARMS 1000

enum kind { KIND_MEAN, KIND_BINARY, KIND_SUM, KIND_RATIO };
enum method { METHOD_WELCH, METHOD_Z, METHOD_MSPRT, METHOD_GST,
              METHOD_BAYES };

struct arm_in {
    const char *name;              /* borrowed from the request */
    double n, sum, sum_sq;
    double den_sum, den_sum_sq, cross_sum;
    double pre_sum, pre_sum_sq, pre_cross_sum;
    double weight;
    int has_weight;
};

struct req {
    enum kind kind;
    enum stats_direction dir;
    enum method method;
    enum stats_effect effect;
    double alpha;
    enum stats_side side;
    double tuning;
    enum stats_gst_spend spending;
    double rho;
    int has_rho;
    double info[STATS_GST_MAX_LOOKS];
    size_t n_info;
    struct stats_bayes_prior prior;
    int has_prior;
    int cuped;
    enum stats_correction corr;
    struct arm_in *arms;
    size_t n_arms;
    size_t control;
};

/* Per-arm analysed summary. */
struct arm_out {
    ab_status rc;
    enum stats_reason why;
    struct stats_summary s;        /* analysed metric (adjusted if CUPED) */
    struct stats_cuped_summary cs; /* CUPED only */
};

/* Per-comparison result before formatting. */
struct cmp {
    ab_status rc;
    enum stats_reason why;
    double effect, se, lo, hi, p, p_adj, chance, risk_c, risk_t;
    int has_p, has_bayes, significant;
    struct stats_gst_bounds bounds;     /* gst only */
    struct stats_gst_decision decision; /* gst only */
};

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
parse_metric(const json_t *m, struct req *r, char *err, size_t errlen)
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
    r->kind = (enum kind)i;
    i = 0;
    rc = get_enum(m, "direction", dir_names, &i, "metric.", err, errlen);
    if (rc == AB_EINVAL)
        return rc;
    r->dir = i == 1 ? STATS_DIR_DECREASE : STATS_DIR_INCREASE;
    return AB_OK;
}

static ab_status
parse_arm(const json_t *a, size_t idx, const struct req *r,
          struct arm_in *out, int *is_control, char *err, size_t errlen)
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
    rc = get_number(a, "sum_sq", &out->sum_sq, r->kind != KIND_BINARY, where,
                    err, errlen);
    if (rc == AB_EINVAL)
        return rc;
    if (rc == AB_ENOTFOUND)
        out->sum_sq = out->sum;           /* binary: y^2 = y */
    if (r->kind == KIND_BINARY && out->sum_sq != out->sum)
        return fail(err, errlen,
                    "%ssum_sq: must equal sum for a binary metric", where);
    if (r->kind == KIND_RATIO) {
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
parse_information(const json_t *v, struct req *r, char *err, size_t errlen)
{
    if (v != NULL && r->method != METHOD_GST)
        return fail(err, errlen, "information: only for method \"gst\"");
    if (r->method != METHOD_GST)
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
parse_prior(const json_t *v, struct req *r, char *err, size_t errlen)
{
    static const char *const pkeys[] = { "mean", "sd", NULL };
    const char *bad;
    if (v == NULL)
        return AB_OK;
    if (r->method != METHOD_BAYES)
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
parse_arms(const json_t *arms, struct req *r, char *err, size_t errlen)
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
    r->arms = calloc(r->n_arms, sizeof(*r->arms));
    if (r->arms == NULL)
        return fail(err, errlen, "arms: out of memory");
    r->control = 0;
    for (size_t j = 0; j < r->n_arms; j++) {
        int is_control = 0;
        rc = parse_arm(json_array_get(arms, j), j, r, &r->arms[j],
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
parse(const json_t *doc, struct req *r, char *err, size_t errlen)
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

    i = r->kind == KIND_BINARY ? METHOD_Z : METHOD_WELCH;
    if (get_enum(doc, "method", method_names, &i, "", err, errlen) ==
        AB_EINVAL)
        return AB_EINVAL;
    r->method = (enum method)i;
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
    if (r->method == METHOD_MSPRT && r->alpha > 0.5)
        return fail(err, errlen, "alpha: must be at most 0.5 for msprt");

    /* method-specific fields: refuse them where they mean nothing */
    r->tuning = STATS_MSPRT_DEFAULT_N_STAR;
    rc = get_number(doc, "tuning", &r->tuning, 0, "", err, errlen);
    if (rc == AB_EINVAL)
        return rc;
    if (rc == AB_OK && r->method != METHOD_MSPRT)
        return fail(err, errlen, "tuning: only for method \"msprt\"");
    if (!(r->tuning > 0) || !isfinite(r->tuning))
        return fail(err, errlen, "tuning: must be a positive number");

    i = 0;
    rc = get_enum(doc, "spending", spend_names, &i, "", err, errlen);
    if (rc == AB_EINVAL)
        return rc;
    if (rc == AB_OK && r->method != METHOD_GST)
        return fail(err, errlen, "spending: only for method \"gst\"");
    r->spending = i == 1 ? STATS_GST_POCOCK
                         : i == 2 ? STATS_GST_POWER
                                  : i == 3 ? STATS_GST_HSD : STATS_GST_OBF;
    rc = get_number(doc, "rho", &r->rho, 0, "", err, errlen);
    if (rc == AB_EINVAL)
        return rc;
    r->has_rho = rc == AB_OK;
    if (r->has_rho && r->method != METHOD_GST)
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
    if (r->cuped && r->kind == KIND_RATIO)
        return fail(err, errlen,
                    "cuped: not supported for metric.kind \"ratio\"");
    if (r->corr != STATS_CORR_NONE &&
        (r->method == METHOD_BAYES || r->method == METHOD_GST))
        return fail(err, errlen,
                    "correction: adjusts p-values; method \"%s\" has none",
                    method_names[r->method]);

    return parse_arms(json_object_get(doc, "arms"), r, err, errlen);
}

/* ---- per-arm summaries ------------------------------------------- */

static struct stats_cuped_moments
cuped_moments(const struct arm_in *a)
{
    struct stats_cuped_moments m = { a->n, a->sum, a->sum_sq, a->pre_sum,
                                     a->pre_sum_sq, a->pre_cross_sum };
    return m;
}

/* theta over the arms whose own statistics are valid (the others carry
 * their status), and the grand covariate mean. */
static void
summarise_cuped(const struct req *r, struct arm_out *out, double *theta)
{
    struct stats_cuped_moments *ok = calloc(r->n_arms, sizeof(*ok));
    size_t k = 0;
    double xbar = 0;
    enum stats_reason why = STATS_REASON_NONE;
    ab_status rc;

    *theta = NAN;
    if (ok == NULL) {
        for (size_t i = 0; i < r->n_arms; i++) {
            out[i].rc = AB_EINTERNAL;
            out[i].why = STATS_REASON_NO_CONVERGENCE;
        }
        return;
    }
    for (size_t i = 0; i < r->n_arms; i++) {
        struct stats_cuped_moments m = cuped_moments(&r->arms[i]);
        out[i].rc = stats_cuped_summary(&m, 0, 0, &out[i].cs, &out[i].why);
        if (out[i].rc == AB_OK)
            ok[k++] = m;
    }
    rc = k > 0 ? stats_cuped_theta(ok, k, theta, &why) : AB_ENUMERIC;
    if (rc == AB_OK)
        rc = stats_cuped_pre_mean(ok, k, &xbar, &why);
    for (size_t i = 0; i < r->n_arms; i++) {
        struct stats_cuped_moments m = cuped_moments(&r->arms[i]);
        if (out[i].rc != AB_OK)
            continue;
        if (rc != AB_OK) {
            out[i].rc = rc;
            out[i].why = why;
            continue;
        }
        out[i].rc = stats_cuped_summary(&m, *theta, xbar, &out[i].cs,
                                        &out[i].why);
        if (out[i].rc == AB_OK)
            out[i].s = out[i].cs.adj;
    }
    free(ok);
}

static void
summarise(const struct req *r, struct arm_out *out, double *theta)
{
    *theta = NAN;
    if (r->cuped) {
        summarise_cuped(r, out, theta);
        return;
    }
    for (size_t i = 0; i < r->n_arms; i++) {
        const struct arm_in *a = &r->arms[i];
        out[i].why = STATS_REASON_NONE;
        if (r->kind == KIND_RATIO) {
            struct stats_ratio_moments m = { a->n, a->sum, a->sum_sq,
                                             a->den_sum, a->den_sum_sq,
                                             a->cross_sum };
            out[i].rc = stats_ratio_summary(&m, &out[i].s, &out[i].why);
        } else {
            struct stats_moments m = { a->n, a->sum, a->sum_sq };
            out[i].rc = stats_moments_summary(&m, &out[i].s, &out[i].why);
            if (out[i].rc == AB_OK && r->kind == KIND_BINARY &&
                a->sum > a->n) {
                out[i].rc = AB_EINVAL;
                out[i].why = STATS_REASON_INCONSISTENT;
            }
        }
    }
}

/* ---- comparisons ------------------------------------------------- */

/* Estimate and standard error of the effect (normal pivot). */
static ab_status
estimate(const struct req *r, const struct arm_out *c,
         const struct arm_out *t, struct stats_result *res,
         enum stats_reason *why)
{
    if (r->cuped)
        return stats_cuped_compare(&c->cs, &t->cs, r->effect, STATS_SIDE_TWO,
                                   r->alpha, 0, res, why);
    return stats_welch_compare(&c->s, &t->s, r->effect, STATS_SIDE_TWO,
                               r->alpha, 0, res, why);
}

static void
compare_fixed(const struct req *r, const struct arm_in *ca,
              const struct arm_in *ta, const struct arm_out *c,
              const struct arm_out *t, struct cmp *o)
{
    struct stats_result res;
    int use_t = r->method == METHOD_WELCH;

    if (r->kind == KIND_BINARY && r->method == METHOD_Z && !r->cuped) {
        struct stats_prop pc = { ca->sum, ca->n }, pt = { ta->sum, ta->n };
        o->rc = stats_prop_ztest(&pc, &pt, r->effect, r->side, r->alpha,
                                 &res, &o->why);
    } else if (r->cuped) {
        o->rc = stats_cuped_compare(&c->cs, &t->cs, r->effect, r->side,
                                    r->alpha, use_t, &res, &o->why);
    } else {
        o->rc = stats_welch_compare(&c->s, &t->s, r->effect, r->side,
                                    r->alpha, use_t, &res, &o->why);
    }
    if (o->rc != AB_OK)
        return;
    o->effect = res.effect;
    o->se = res.se;
    o->lo = res.ci_low;
    o->hi = res.ci_high;
    o->p = res.p_value;
    o->has_p = 1;
}

static void
compare_bayes(const struct req *r, const struct arm_in *ca,
              const struct arm_in *ta, const struct arm_out *c,
              const struct arm_out *t, struct cmp *o)
{
    struct stats_bayes_result b;

    if (r->kind == KIND_BINARY && !r->has_prior && !r->cuped) {
        o->rc = stats_bayes_beta(ca->sum, ca->n, ta->sum, ta->n, 1, 1,
                                 r->effect, r->dir, r->side, r->alpha, &b,
                                 &o->why);
    } else {
        struct stats_result res;
        o->rc = estimate(r, c, t, &res, &o->why);
        if (o->rc != AB_OK)
            return;
        o->rc = stats_bayes_normal(res.effect, res.se,
                                   r->has_prior ? &r->prior : NULL, r->dir,
                                   r->side, r->alpha, &b, &o->why);
    }
    if (o->rc != AB_OK)
        return;
    o->effect = b.post_mean;
    o->se = b.post_sd;
    o->lo = b.ci_low;
    o->hi = b.ci_high;
    o->chance = b.chance_to_win;
    o->risk_c = b.risk_control;
    o->risk_t = b.risk_treatment;
    o->has_bayes = 1;
}

static void
compare_msprt(const struct req *r, const struct arm_out *c,
              const struct arm_out *t, struct cmp *o)
{
    struct stats_msprt_opts opts = { r->alpha, r->tuning, r->side, 0, 0 };
    struct stats_msprt_result m;
    const struct stats_msprt_effect *e;

    o->rc = stats_msprt_test(&c->s, &t->s, &opts, NULL, &m, &o->why);
    if (o->rc != AB_OK)
        return;
    if (r->effect == STATS_EFFECT_RELATIVE && !m.has_rel) {
        o->rc = AB_ENUMERIC;
        o->why = m.rel_why != STATS_REASON_NONE
                     ? m.rel_why
                     : STATS_REASON_ZERO_CONTROL_MEAN;
        return;
    }
    e = r->effect == STATS_EFFECT_RELATIVE ? &m.rel : &m.abs;
    o->effect = e->estimate;
    o->se = e->se;
    o->lo = e->ci_low;
    o->hi = e->ci_high;
    o->p = e->p_value;
    o->has_p = 1;
}

/* The design of a gst request: the boundaries are the same for every
 * comparison, so they are computed once per request. */
struct gst_plan {
    ab_status rc;
    enum stats_reason why;
    size_t k_max;
    struct stats_gst_bounds b;
};

static void
gst_plan_make(const struct req *r, struct gst_plan *g)
{
    struct stats_gst_design d;
    struct stats_gst_work *work;

    memset(&d, 0, sizeof(d));
    memcpy(d.info, r->info, r->n_info * sizeof(double));
    d.k_max = r->n_info;
    if (r->info[r->n_info - 1] < 1)     /* plan a final look at 1 */
        d.info[d.k_max++] = 1;
    d.side = r->side;
    d.alpha = r->alpha;
    d.alpha_spend = r->spending;
    d.alpha_param = r->rho;
    d.beta_spend = STATS_GST_NONE;
    g->k_max = d.k_max;
    g->why = STATS_REASON_NONE;
    work = malloc(sizeof(*work));
    if (work == NULL) {
        g->rc = AB_EINTERNAL;
        g->why = STATS_REASON_NO_CONVERGENCE;
        return;
    }
    g->rc = stats_gst_bounds(&d, work, &g->b, &g->why);
    free(work);
}

/* The decision at the current look, as stats_gst_decide() takes it
 * (efficacy boundaries only: analyze has no futility), without computing
 * the boundaries again for every arm. */
static void
compare_gst(const struct req *r, const struct gst_plan *g,
            const struct arm_out *c, const struct arm_out *t, struct cmp *o)
{
    struct stats_result res;
    size_t look = r->n_info;
    double cval, z;
    int cross;

    o->rc = estimate(r, c, t, &res, &o->why);
    if (o->rc != AB_OK)
        return;
    if (g->rc != AB_OK) {
        o->rc = g->rc;
        o->why = g->why;
        return;
    }
    o->bounds = g->b;
    o->bounds.k_max = look;   /* report the looks so far */
    cval = g->b.efficacy[look - 1];
    z = res.effect / res.se;
    cross = r->side == STATS_SIDE_GREATER ? z >= cval
            : r->side == STATS_SIDE_LESS  ? z <= -cval
                                          : fabs(z) >= cval;
    o->decision.action = cross               ? STATS_GST_EFFICACY
                         : look == g->k_max ? STATS_GST_ACCEPT
                                             : STATS_GST_CONTINUE;
    o->decision.look = look;
    o->decision.z = z;
    o->effect = res.effect;
    o->se = res.se;
    /* Repeated confidence interval at this look (Jennison & Turnbull
     * 2000, ch. 9): estimate -/+ c_k se, with c_k the efficacy boundary. */
    o->lo = r->side == STATS_SIDE_LESS ? -INFINITY : res.effect - cval * res.se;
    o->hi = r->side == STATS_SIDE_GREATER ? INFINITY
                                          : res.effect + cval * res.se;
    o->significant = cross;
}

/* ---- formatting -------------------------------------------------- */

static json_t *
num(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

/* a count: an integer when it is one (and exact), else a real or null */
static json_t *
count(double x)
{
    if (isfinite(x) && x == floor(x) && fabs(x) <= 9007199254740992.0)
        return json_integer((json_int_t)x);
    return num(x);
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
    json_array_append_new(a, num(lo));
    json_array_append_new(a, num(hi));
    return a;
}

/* Quantile of Beta(a, b) by the Illinois method on gsl_cdf_beta_P:
 * gsl_cdf_beta_Pinv gives up for large parameters. NAN if it fails. */
static double
beta_quantile(double p, double a, double b)
{
    double m = a / (a + b), s = sqrt(a * b / ((a + b) * (a + b) *
                                               (a + b + 1)));
    double lo = fmax(0, m - 40 * s), hi = fmin(1, m + 40 * s);
    double flo = gsl_cdf_beta_P(lo, a, b) - p, fhi = gsl_cdf_beta_P(hi, a, b) - p;
    int side = 0;

    if (!(flo <= 0 && fhi >= 0))
        return NAN;
    for (int i = 0; i < 300 && hi - lo > 1e-16 + 1e-14 * lo; i++) {
        double x = (lo * fhi - hi * flo) / (fhi - flo), fx;
        if (!(x > lo && x < hi))
            x = (lo + hi) / 2;
        fx = gsl_cdf_beta_P(x, a, b) - p;
        if (fx == 0)
            return x;
        if (fx < 0) {
            lo = x;
            flo = fx;
            if (side == -1)
                fhi /= 2;
            side = -1;
        } else {
            hi = x;
            fhi = fx;
            if (side == 1)
                flo /= 2;
            side = 1;
        }
    }
    return (lo + hi) / 2;
}

/* Per-arm interval for the mean: t(n-1) (welch), normal (z, msprt, gst),
 * Beta(1 + x, 1 + n - x) quantiles (binary bayes without a prior). */
static json_t *
arm_interval(const struct req *r, const struct arm_in *a,
             const struct arm_out *o)
{
    double se = sqrt(o->s.var / o->s.n), q;

    if (r->method == METHOD_BAYES && r->kind == KIND_BINARY &&
        !r->has_prior && !r->cuped) {
        return interval(
            beta_quantile(r->alpha / 2, 1 + a->sum, 1 + a->n - a->sum),
            beta_quantile(1 - r->alpha / 2, 1 + a->sum,
                                   1 + a->n - a->sum));
    }
    q = stats_t_quantile(1 - r->alpha / 2, r->method == METHOD_WELCH
                                               ? o->s.n - 1
                                               : INFINITY);
    return interval(o->s.mean - q * se, o->s.mean + q * se);
}

static json_t *
format_arm(const struct req *r, const struct arm_in *a,
           const struct arm_out *o)
{
    json_t *j = json_object();

    json_object_set_new(j, "name", json_string(a->name));
    json_object_set_new(j, "n", count(a->n));
    if (o->rc == AB_OK) {
        json_object_set_new(j, "mean", num(o->s.mean));
        json_object_set_new(j, "variance", num(o->s.var));
        json_object_set_new(j, "ci", arm_interval(r, a, o));
        if (r->cuped)
            json_object_set_new(j, "unadjusted_mean", num(o->cs.raw.mean));
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
format_cmp(const struct req *r, const struct arm_in *c, const struct arm_in *t,
           const struct cmp *o)
{
    json_t *j = json_object();
    int ok = o->rc == AB_OK;
    double good = 0;

    json_object_set_new(j, "arm", json_string(t->name));
    json_object_set_new(j, "control", json_string(c->name));
    json_object_set_new(j, "effect", ok ? num(o->effect) : json_null());
    json_object_set_new(j, "se", ok ? num(o->se) : json_null());
    json_object_set_new(j, "ci", ok ? interval(o->lo, o->hi) : json_null());
    json_object_set_new(j, "p_value",
                        ok && o->has_p ? num(o->p) : json_null());
    json_object_set_new(j, "adjusted_p_value",
                        ok && o->has_p && r->corr != STATS_CORR_NONE
                            ? num(o->p_adj)
                            : json_null());
    json_object_set_new(j, "chance_to_win",
                        ok && o->has_bayes ? num(o->chance) : json_null());
    if (ok && o->has_bayes) {
        json_t *risk = json_object();
        json_object_set_new(risk, "control", num(o->risk_c));
        json_object_set_new(risk, "treatment", num(o->risk_t));
        json_object_set_new(j, "risk", risk);
    } else {
        json_object_set_new(j, "risk", json_null());
    }
    if (ok && r->method == METHOD_GST) {
        json_t *b = json_array();
        for (size_t k = 0; k < o->bounds.k_max; k++) {
            double c_k = o->bounds.efficacy[k];
            json_array_append_new(
                b, num(r->side == STATS_SIDE_LESS ? -c_k : c_k));
        }
        json_object_set_new(j, "boundaries", b);
        json_object_set_new(j, "decision",
                            json_string(action_name(o->decision.action)));
        json_object_set_new(j, "z", num(o->decision.z));
    } else {
        json_object_set_new(j, "boundaries", json_null());
    }
    json_object_set_new(j, "significant", ok ? json_boolean(o->significant)
                                             : json_null());
    /* verdict: which way a significant effect goes, for this metric */
    if (ok && o->significant)
        good = r->dir == STATS_DIR_DECREASE ? -o->effect : o->effect;
    json_object_set_new(j, "verdict",
                        json_string(!ok ? "unknown"
                                        : good > 0   ? "better"
                                          : good < 0 ? "worse"
                                                     : "inconclusive"));
    set_status(j, o->rc, o->why);
    return j;
}

static json_t *
format_srm(const struct req *r, const struct arm_out *o)
{
    double *counts = calloc(r->n_arms, sizeof(double));
    double *weights = calloc(r->n_arms, sizeof(double));
    struct stats_srm s;
    enum stats_reason why = STATS_REASON_NONE;
    ab_status rc = AB_EINTERNAL;
    json_t *j = json_object();

    (void)o;
    if (counts != NULL && weights != NULL) {
        for (size_t i = 0; i < r->n_arms; i++) {
            counts[i] = r->arms[i].n;
            weights[i] = r->arms[i].has_weight ? r->arms[i].weight : 1;
        }
        rc = stats_srm_test(counts, weights, r->n_arms, 0, &s, &why);
    }
    free(counts);
    free(weights);
    if (rc == AB_OK) {
        json_object_set_new(j, "p_value", num(s.p_value));
        json_object_set_new(j, "mismatch", json_boolean(s.mismatch));
        json_object_set_new(j, "chi2", num(s.chi2));
        json_object_set_new(j, "df", num(s.df));
    } else {
        json_object_set_new(j, "p_value", json_null());
        json_object_set_new(j, "mismatch", json_null());
    }
    json_object_set_new(j, "weights",
                        json_string(r->arms[0].has_weight ? "configured"
                                                          : "equal"));
    set_status(j, rc, why);
    return j;
}

/* ---- entry point ------------------------------------------------- */

ab_status
api_analyze(const json_t *doc, json_t **out, char *err, size_t errlen)
{
    struct req r;
    struct arm_out *arms = NULL;
    struct cmp *cmps = NULL;
    double *p = NULL, *adj = NULL, theta;
    size_t *work = NULL, n_p = 0;
    struct gst_plan *gst = NULL;
    json_t *ans, *ja, *jc;
    ab_status rc;

    memset(&r, 0, sizeof(r));
    rc = parse(doc, &r, err, errlen);
    if (rc != AB_OK)
        goto done;
    arms = calloc(r.n_arms, sizeof(*arms));
    cmps = calloc(r.n_arms, sizeof(*cmps));
    p = calloc(r.n_arms, sizeof(*p));
    adj = calloc(r.n_arms, sizeof(*adj));
    work = calloc(r.n_arms, sizeof(*work));
    if (arms == NULL || cmps == NULL || p == NULL || adj == NULL ||
        work == NULL) {
        rc = AB_EINTERNAL;
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    summarise(&r, arms, &theta);
    if (r.method == METHOD_GST) {
        gst = malloc(sizeof(*gst));
        if (gst == NULL) {
            rc = AB_EINTERNAL;
            snprintf(err, errlen, "out of memory");
            goto done;
        }
        gst_plan_make(&r, gst);
    }

    for (size_t i = 0; i < r.n_arms; i++) {
        const struct arm_out *c = &arms[r.control], *t = &arms[i];
        struct cmp *o = &cmps[i];
        if (i == r.control)
            continue;
        o->why = STATS_REASON_NONE;
        if (c->rc != AB_OK || t->rc != AB_OK) {
            o->rc = c->rc != AB_OK ? c->rc : t->rc;
            o->why = c->rc != AB_OK ? c->why : t->why;
            /* a binary z test re-checks the counts itself */
            if (!(r.kind == KIND_BINARY && r.method == METHOD_Z &&
                  !r.cuped))
                continue;
        }
        switch (r.method) {
        case METHOD_WELCH:
        case METHOD_Z:
            compare_fixed(&r, &r.arms[r.control], &r.arms[i], c, t, o);
            break;
        case METHOD_BAYES:
            compare_bayes(&r, &r.arms[r.control], &r.arms[i], c, t, o);
            break;
        case METHOD_MSPRT:
            compare_msprt(&r, c, t, o);
            break;
        case METHOD_GST:
            compare_gst(&r, gst, c, t, o);
            break;
        }
        if (o->rc == AB_OK && o->has_p)
            p[n_p++] = o->p;
    }

    /* the family: every comparison with a p-value */
    if (n_p > 0 &&
        stats_p_adjust(p, n_p, r.corr, adj, work, NULL) == AB_OK) {
        size_t k = 0;
        for (size_t i = 0; i < r.n_arms; i++) {
            struct cmp *o = &cmps[i];
            if (i == r.control || o->rc != AB_OK || !o->has_p)
                continue;
            o->p_adj = adj[k++];
            o->significant = o->p_adj <= r.alpha;
        }
    }
    for (size_t i = 0; i < r.n_arms; i++) {
        struct cmp *o = &cmps[i];
        if (i == r.control || o->rc != AB_OK || !o->has_bayes)
            continue;
        /* Bayesian: significant when the credible interval excludes 0 */
        o->significant = o->lo > 0 || o->hi < 0;
    }

    ans = json_object();
    ja = json_array();
    jc = json_array();
    for (size_t i = 0; i < r.n_arms; i++) {
        json_array_append_new(ja, format_arm(&r, &r.arms[i], &arms[i]));
        if (i != r.control)
            json_array_append_new(jc, format_cmp(&r, &r.arms[r.control],
                                                 &r.arms[i], &cmps[i]));
    }
    json_object_set_new(ans, "arms", ja);
    json_object_set_new(ans, "comparisons", jc);
    json_object_set_new(ans, "srm", format_srm(&r, arms));
    if (r.cuped)
        json_object_set_new(ans, "theta", num(theta));
    *out = ans;
done:
    free(r.arms);
    free(arms);
    free(cmps);
    free(p);
    free(adj);
    free(work);
    free(gst);
    return rc;
}
