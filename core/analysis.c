/* analysis.c -- one typed analysis (analysis.h). The statistics live in
 * stats/ (each file cites its formula and reference); this file only
 * dispatches: per-arm summaries, comparisons, the family adjustment, the
 * verdict and the sample-ratio check.
 */
#include "core/analysis.h"

#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/metric_kind.h"
#include "stats/delta.h"
#include "stats/msprt.h"
#include "stats/prop.h"
#include "stats/srm.h"
#include "stats/welch.h"

static const char *const method_names[] = { "welch", "z", "msprt", "gst",
                                            "bayes" };

const char *
core_analysis_method_name(enum core_analysis_method m)
{
    return (size_t)m < AB_ARRAY_LEN(method_names) ? method_names[m] : "welch";
}

ab_status
core_analysis_method_parse(const char *s, enum core_analysis_method *out)
{
    for (size_t i = 0; i < AB_ARRAY_LEN(method_names); i++)
        if (strcmp(s, method_names[i]) == 0) {
            *out = (enum core_analysis_method)i;
            return AB_OK;
        }
    return AB_EINVAL;
}

const char *
core_analysis_verdict_name(enum core_analysis_verdict v)
{
    switch (v) {
    case CORE_ANALYSIS_BETTER: return "better";
    case CORE_ANALYSIS_WORSE: return "worse";
    case CORE_ANALYSIS_INCONCLUSIVE: return "inconclusive";
    case CORE_ANALYSIS_UNKNOWN: break;
    }
    return "unknown";
}

void
core_analysis_req_init(struct core_analysis_req *r, enum core_metric_kind kind,
                       enum core_analysis_method method)
{
    /* the fields not named are 0, false or NULL */
    *r = (struct core_analysis_req){.kind = kind,
                                    .dir = STATS_DIR_INCREASE,
                                    .method = method,
                                    .effect = STATS_EFFECT_ABSOLUTE,
                                    .alpha = 0.05,
                                    .side = STATS_SIDE_TWO,
                                    .tuning = STATS_MSPRT_DEFAULT_N_STAR,
                                    .spending = STATS_GST_OBF,
                                    .corr = STATS_CORR_NONE};
}

struct core_analysis *
core_analysis_new(size_t n_arms)
{
    struct core_analysis *a = ab_xcalloc(1, sizeof(*a));
    size_t n = n_arms > 0 ? n_arms : 1;
    a->cap = n_arms;
    a->arms = ab_xcalloc(n, sizeof(*a->arms));
    a->cmps = ab_xcalloc(n, sizeof(*a->cmps));
    a->p = ab_xcalloc(n, sizeof(*a->p));
    a->adj = ab_xcalloc(n, sizeof(*a->adj));
    a->order = ab_xcalloc(n, sizeof(*a->order));
    a->moments = ab_xcalloc(n, sizeof(*a->moments));
    return a;
}

void
core_analysis_free(struct core_analysis *a)
{
    if (a == NULL)
        return;
    free(a->arms);
    free(a->cmps);
    free(a->p);
    free(a->adj);
    free(a->order);
    free(a->moments);
    free(a->gst);
    free(a);
}

ab_status
core_analysis_arm_summary(enum core_metric_kind kind,
                          const struct core_analysis_arm *a,
                          struct stats_summary *out, enum stats_reason *why)
{
    struct stats_ratio_moments m = { a->n, a->sum, a->sum_sq, a->den_sum,
                                     a->den_sum_sq, a->cross_sum };
    struct stats_summary s;
    ab_status rc = core_metric_kind_summary(kind, &m, &s, why);
    if (rc == AB_OK && core_metric_kind_def(kind)->values_01 &&
        a->sum > a->n) {
        *why = STATS_REASON_INCONSISTENT; /* more conversions than units */
        return AB_EINVAL;
    }
    if (rc == AB_OK)
        *out = s;
    return rc;
}

/* ---- per-arm summaries ------------------------------------------- */

static struct stats_cuped_moments
cuped_moments(const struct core_analysis_arm *a)
{
    struct stats_cuped_moments m = { a->n, a->sum, a->sum_sq, a->pre_sum,
                                     a->pre_sum_sq, a->pre_cross_sum };
    return m;
}

/* theta over the arms whose own statistics are valid (the others carry
 * their status), and the grand covariate mean. */
static void
summarise_cuped(const struct core_analysis_req *r,
                struct core_analysis_arm_out *out, double *theta,
                struct stats_cuped_moments *ok)
{
    size_t k = 0;
    double xbar = 0;
    enum stats_reason why = STATS_REASON_NONE;
    ab_status rc;

    *theta = NAN;
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
}

static void
summarise(const struct core_analysis_req *r, struct core_analysis *an)
{
    struct core_analysis_arm_out *out = an->arms;
    an->theta = NAN;
    if (r->cuped) {
        summarise_cuped(r, out, &an->theta, an->moments);
        return;
    }
    for (size_t i = 0; i < r->n_arms; i++) {
        out[i].why = STATS_REASON_NONE;
        out[i].rc = core_analysis_arm_summary(r->kind, &r->arms[i], &out[i].s,
                                              &out[i].why);
    }
}

/* ---- comparisons ------------------------------------------------- */

/* Estimate and standard error of the effect (normal pivot). */
static ab_status
estimate(const struct core_analysis_req *r, const struct core_analysis_arm_out *c,
         const struct core_analysis_arm_out *t, struct stats_result *res,
         enum stats_reason *why)
{
    if (r->cuped)
        return stats_cuped_compare(&c->cs, &t->cs, r->effect, STATS_SIDE_TWO,
                                   r->alpha, 0, res, why);
    return stats_welch_compare(&c->s, &t->s, r->effect, STATS_SIDE_TWO,
                               r->alpha, 0, res, why);
}

static void
compare_fixed(const struct core_analysis_req *r, const struct core_analysis_arm *ca,
              const struct core_analysis_arm *ta, const struct core_analysis_arm_out *c,
              const struct core_analysis_arm_out *t, struct core_analysis_cmp *o)
{
    struct stats_result res;
    int use_t = r->method == CORE_METHOD_WELCH;

    if (r->kind == CORE_METRIC_BINARY && r->method == CORE_METHOD_Z && !r->cuped) {
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
compare_bayes(const struct core_analysis_req *r, const struct core_analysis_arm *ca,
              const struct core_analysis_arm *ta, const struct core_analysis_arm_out *c,
              const struct core_analysis_arm_out *t, struct core_analysis_cmp *o)
{
    struct stats_bayes_result b;

    if (r->kind == CORE_METRIC_BINARY && !r->has_prior && !r->cuped) {
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

ab_status
core_analysis_msprt(enum core_metric_kind kind, const struct stats_summary *c,
                    const struct stats_summary *t,
                    const struct stats_msprt_opts *o, bool pooled,
                    struct stats_msprt_state *running,
                    struct stats_msprt_result *out, enum stats_reason *why)
{
    struct stats_summary pc = *c, pt = *t;
    if (pooled && kind == CORE_METRIC_BINARY && pc.n + pt.n > 0) {
        double p = (pc.mean * pc.n + pt.mean * pt.n) / (pc.n + pt.n);
        double v = p * (1 - p);
        if (v > 0)
            pc.var = pt.var = v;
    }
    return stats_msprt_test(&pc, &pt, o, running, out, why);
}

static void
compare_msprt(const struct core_analysis_req *r, const struct core_analysis_arm_out *c,
              const struct core_analysis_arm_out *t, struct core_analysis_cmp *o)
{
    struct stats_msprt_opts opts = { r->alpha, r->tuning, r->side, 0, 0 };
    struct stats_msprt_result m;
    const struct stats_msprt_effect *e;

    o->rc = core_analysis_msprt(r->kind, &c->s, &t->s, &opts, false, NULL, &m,
                                &o->why);
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
gst_plan_make(const struct core_analysis_req *r, struct gst_plan *g,
              struct stats_gst_work *work)
{
    struct stats_gst_design d;

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
    g->rc = stats_gst_bounds(&d, work, &g->b, &g->why);
}

/* The decision at the current look, as stats_gst_decide() takes it
 * (efficacy boundaries only: analyze has no futility), without computing
 * the boundaries again for every arm. */
static void
compare_gst(const struct core_analysis_req *r, const struct gst_plan *g,
            const struct core_analysis_arm_out *c, const struct core_analysis_arm_out *t, struct core_analysis_cmp *o)
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

/* The interval of one arm's mean. */
static void
arm_interval(const struct core_analysis_req *r,
             const struct core_analysis_arm *a,
             struct core_analysis_arm_out *o)
{
    double se = sqrt(o->s.var / o->s.n), q;

    if (r->method == CORE_METHOD_BAYES && r->kind == CORE_METRIC_BINARY &&
        !r->has_prior && !r->cuped) {
        o->ci_low = beta_quantile(r->alpha / 2, 1 + a->sum, 1 + a->n - a->sum);
        o->ci_high = beta_quantile(1 - r->alpha / 2, 1 + a->sum,
                                   1 + a->n - a->sum);
        return;
    }
    q = stats_t_quantile(1 - r->alpha / 2, r->method == CORE_METHOD_WELCH
                                               ? o->s.n - 1
                                               : INFINITY);
    o->ci_low = o->s.mean - q * se;
    o->ci_high = o->s.mean + q * se;
}

static void
srm_check(const struct core_analysis_req *r, struct core_analysis *an)
{
    struct core_analysis_srm *o = &an->srm;
    struct stats_srm s;
    double *counts = an->p, *weights = an->adj; /* free before the family */

    memset(o, 0, sizeof(*o));
    o->why = STATS_REASON_NONE;
    o->configured = r->arms[0].has_weight;
    if (r->mixed_weights) {
        o->rc = AB_EINVAL;
        o->why = STATS_REASON_MIXED_WEIGHTS;
        return;
    }
    for (size_t i = 0; i < r->n_arms; i++) {
        counts[i] = r->arms[i].n;
        weights[i] = r->arms[i].has_weight ? r->arms[i].weight : 1;
    }
    o->rc = stats_srm_test(counts, weights, r->n_arms, 0, &s, &o->why);
    if (o->rc != AB_OK)
        return;
    o->p_value = s.p_value;
    o->mismatch = s.mismatch;
    o->chi2 = s.chi2;
    o->df = s.df;
}

static void
compare_one(const struct core_analysis_req *r, struct core_analysis *an,
            const struct gst_plan *gst, size_t i)
{
    const struct core_analysis_arm_out *c = &an->arms[r->control];
    const struct core_analysis_arm_out *t = &an->arms[i];
    const struct core_analysis_arm *ca = &r->arms[r->control], *ta = &r->arms[i];
    struct core_analysis_cmp *o = &an->cmps[i];

    o->why = STATS_REASON_NONE;
    if (c->rc != AB_OK || t->rc != AB_OK) {
        o->rc = c->rc != AB_OK ? c->rc : t->rc;
        o->why = c->rc != AB_OK ? c->why : t->why;
        /* a binary z test re-checks the counts itself */
        if (!(r->kind == CORE_METRIC_BINARY && r->method == CORE_METHOD_Z &&
              !r->cuped))
            return;
    }
    switch (r->method) {
    case CORE_METHOD_WELCH:
    case CORE_METHOD_Z:
        compare_fixed(r, ca, ta, c, t, o);
        break;
    case CORE_METHOD_BAYES:
        compare_bayes(r, ca, ta, c, t, o);
        break;
    case CORE_METHOD_MSPRT:
        compare_msprt(r, c, t, o);
        break;
    case CORE_METHOD_GST:
        compare_gst(r, gst, c, t, o);
        break;
    }
}

/* significance (adjusted p <= alpha; bayes: the credible interval
 * excludes 0; gst: set by compare_gst) and the verdict it implies */
static void
family(const struct core_analysis_req *r, struct core_analysis *an)
{
    size_t n_p = 0;
    for (size_t i = 0; i < r->n_arms; i++) {
        struct core_analysis_cmp *o = &an->cmps[i];
        if (i != r->control && o->rc == AB_OK && o->has_p)
            an->p[n_p++] = o->p;
    }
    if (n_p > 0 && stats_p_adjust(an->p, n_p, r->corr, an->adj, an->order,
                                  NULL) == AB_OK) {
        size_t k = 0;
        for (size_t i = 0; i < r->n_arms; i++) {
            struct core_analysis_cmp *o = &an->cmps[i];
            if (i == r->control || o->rc != AB_OK || !o->has_p)
                continue;
            o->p_adj = an->adj[k++];
            o->significant = o->p_adj <= r->alpha;
        }
    }
    for (size_t i = 0; i < r->n_arms; i++) {
        struct core_analysis_cmp *o = &an->cmps[i];
        double good = 0;
        if (i == r->control)
            continue;
        if (o->rc == AB_OK && o->has_bayes)
            o->significant = o->lo > 0 || o->hi < 0;
        if (o->rc == AB_OK && o->significant)
            good = r->dir == STATS_DIR_DECREASE ? -o->effect : o->effect;
        o->verdict = o->rc != AB_OK ? CORE_ANALYSIS_UNKNOWN
                     : good > 0     ? CORE_ANALYSIS_BETTER
                     : good < 0     ? CORE_ANALYSIS_WORSE
                                    : CORE_ANALYSIS_INCONCLUSIVE;
    }
}

ab_status
core_analysis_run(const struct core_analysis_req *r, struct core_analysis *an)
{
    struct gst_plan gst;

    if (r->n_arms < 2 || r->n_arms > an->cap || r->control >= r->n_arms ||
        (r->cuped && !core_metric_kind_def(r->kind)->cuped) ||
        (r->method == CORE_METHOD_GST && r->n_info == 0))
        return AB_EINVAL;
    memset(an->arms, 0, r->n_arms * sizeof(*an->arms));
    memset(an->cmps, 0, r->n_arms * sizeof(*an->cmps));
    summarise(r, an);
    for (size_t i = 0; i < r->n_arms; i++)
        if (an->arms[i].rc == AB_OK)
            arm_interval(r, &r->arms[i], &an->arms[i]);
    if (r->method == CORE_METHOD_GST) {
        if (an->gst == NULL)
            an->gst = ab_xmalloc(sizeof(*an->gst));
        gst_plan_make(r, &gst, an->gst);
    }
    for (size_t i = 0; i < r->n_arms; i++)
        if (i != r->control)
            compare_one(r, an, &gst, i);
    srm_check(r, an);
    family(r, an);
    return AB_OK;
}
