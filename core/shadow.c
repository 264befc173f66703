/* shadow.c -- paired shadow analysis and its decision (see shadow.h).
 *
 * Each harm check is the normal-mixture confidence sequence of the mean
 * of a per-request difference d_i (Robbins 1970; Howard, Ramdas,
 * McAuliffe & Sekhon 2021, sec. 3.5): with n pairs, mean m and variance
 * s^2 of the d_i it covers the true mean at every n at once with
 * probability 1 - alpha, so the leader may look every tick. The d_i of a
 * 0/1 comparison take the values -1, 0, 1 and their moments follow from
 * the counts: with a pairs at +1 and b at -1, m = (a - b) / n and
 * s^2 = (a + b - n m^2) / (n - 1). A difference that never varies (every
 * request disagrees, say) has no sampling error: its interval is the
 * point m.
 */
#include "core/shadow.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const double core_shadow_quantiles[CORE_SHADOW_N_QUANTILES] = {
    0.5, 0.9, 0.95, 0.99, 0.999};

const char *
core_shadow_verdict_name(enum core_shadow_verdict v)
{
    switch (v) {
    case CORE_SHADOW_NO_DATA: return "no_data";
    case CORE_SHADOW_WAITING: return "waiting";
    case CORE_SHADOW_HOLDING: return "holding";
    case CORE_SHADOW_REGRESSED: return "regressed";
    }
    return "no_data";
}

/* One check on n differences of mean m and variance v. */
static void
check(double n, double m, double v, double alpha, double n_star,
      double min_pairs, struct core_shadow_check *out)
{
    memset(out, 0, sizeof(*out));
    if (!(n >= min_pairs) || n < 2 || !isfinite(m) || !isfinite(v))
        return;
    if (v < 0)
        v = 0;
    struct stats_summary d = {n, m, v};
    if (v == 0) {
        out->mean.n = n;
        out->mean.mean = m;
        out->mean.cs_low = out->mean.cs_high = m;
        out->tested = true;
        return;
    }
    out->tested = stats_paired_mean(&d, alpha, n_star, &out->mean) == AB_OK;
}

/* Moments of -1/0/1 differences: 'plus' at +1, 'minus' at -1 out of n. */
static void
ternary(double n, double plus, double minus, double *m, double *v)
{
    *m = n > 0 ? (plus - minus) / n : 0;
    *v = n > 1 ? (plus + minus - n * *m * *m) / (n - 1) : 0;
}

static void
reported(const struct core_shadow_config *c, double alpha,
         const struct core_shadow_summary *s, double *work,
         struct core_shadow_analysis *a)
{
    if (s->n_compared > 0) {
        a->has_agreement =
            stats_paired_agreement((uint64_t)s->n_agree,
                                   (uint64_t)s->n_compared, alpha,
                                   &a->agreement) == AB_OK;
        if (stats_binom_p_greater((uint64_t)(s->n_compared - s->n_agree),
                                  (uint64_t)s->n_compared,
                                  c->max_disagreement,
                                  &a->p_disagreement_exceeds) != AB_OK)
            a->p_disagreement_exceeds = NAN;
    }
    if (s->n_labelled > 0) {
        a->acc_control = (s->both_right + s->only_control_right) /
                         s->n_labelled;
        a->acc_candidate = (s->both_right + s->only_candidate_right) /
                           s->n_labelled;
        a->has_mcnemar = stats_mcnemar((uint64_t)s->only_control_right,
                                       (uint64_t)s->only_candidate_right,
                                       &a->mcnemar) == AB_OK;
    }
    struct stats_summary lat = {s->n_latency, s->lat_diff_mean,
                                s->lat_diff_var};
    a->has_latency_t =
        stats_paired_mean(&lat, alpha, 0, &a->latency_t) == AB_OK;
    if (s->n_lat_diffs > 0) {
        a->has_quantiles = true;
        for (size_t i = 0; i < CORE_SHADOW_N_QUANTILES; i++)
            a->lat_quantiles[i] = stats_quantile_sorted(
                s->lat_diffs, s->n_lat_diffs, core_shadow_quantiles[i]);
    }
    a->has_wilcoxon = s->n_score_diffs > 0 &&
                      stats_wilcoxon(s->score_diffs, s->n_score_diffs, work,
                                     &a->wilcoxon) == AB_OK;
}

/* A tested check against its limit. higher_is_worse: harm when the
 * always-valid lower bound is above the limit, proven safe when the upper
 * bound is below it; else the mirror (accuracy: a drop is the harm). */
static void
limit(struct core_shadow_check *k, double lim, bool higher_is_worse)
{
    k->limit = lim;
    double worst = higher_is_worse ? k->mean.cs_low : -k->mean.cs_high;
    double best = higher_is_worse ? k->mean.cs_high : -k->mean.cs_low;
    double l = higher_is_worse ? lim : -lim;
    k->harm = k->tested && worst > l;
    k->safe = k->tested && best < l;
}

void
core_shadow_analyze(const struct core_shadow_config *c, double alpha,
                    double rollback_alpha, double n_star,
                    const struct core_shadow_summary *s, double *work,
                    struct core_shadow_analysis *a)
{
    memset(a, 0, sizeof(*a));
    a->alpha = alpha;
    a->check_alpha = rollback_alpha / 4;
    reported(c, alpha, s, work, a);

    double min = (double)c->min_pairs, m, v;
    double p = s->n_compared > 0
                   ? (s->n_compared - s->n_agree) / s->n_compared
                   : 0;
    v = s->n_compared > 1 ? s->n_compared * p * (1 - p) / (s->n_compared - 1)
                          : 0;
    check(s->n_compared, p, v, a->check_alpha, n_star, min, &a->disagreement);
    limit(&a->disagreement, c->max_disagreement, true);

    check(s->n_latency, s->lat_diff_mean, s->lat_diff_var, a->check_alpha,
          n_star, min, &a->latency);
    limit(&a->latency, c->max_latency_increase * fabs(s->lat_control_mean),
          true);

    ternary(s->n_pairs, s->err_only_candidate, s->err_only_control, &m, &v);
    check(s->n_pairs, m, v, a->check_alpha, n_star, min, &a->errors);
    limit(&a->errors, c->max_error_increase, true);

    ternary(s->n_labelled, s->only_candidate_right, s->only_control_right, &m,
            &v);
    check(s->n_labelled, m, v, a->check_alpha, n_star, min, &a->accuracy);
    limit(&a->accuracy, -c->max_accuracy_drop, false);
}

/* The four paired checks in the order they are reported, with the words
 * of their messages: "paired check <name>: <before><mean><after>,
 * always-valid <lower|upper> bound <b> <cmp> <limit word><limit><unit>". */
struct check_row {
    const char *name;
    const struct core_shadow_check *k;
    double margin;
    int prec;           /* significant digits */
    bool sign;          /* the mean with its sign (a difference) */
    const char *before; /* before the mean */
    const char *after;  /* after the mean */
    bool upper;         /* harm is the upper bound below the limit */
    const char *max;    /* before the limit */
    const char *unit;   /* after the limit */
};

static bool
harm_reason(const struct check_row *r, char *reason, size_t len)
{
    if (!r->k->harm)
        return false;
    char mean[48];
    if (r->sign)
        snprintf(mean, sizeof(mean), "%+.*g", r->prec, r->k->mean.mean);
    else
        snprintf(mean, sizeof(mean), "%.*g", r->prec, r->k->mean.mean);
    snprintf(reason, len,
             "paired check %s: %s%s%s, always-valid %s bound %.*g %s "
             "%s%.*g%s",
             r->name, r->before, mean, r->after, r->upper ? "upper" : "lower",
             r->prec, r->upper ? r->k->mean.cs_high : r->k->mean.cs_low,
             r->upper ? "<" : ">", r->max, r->prec, r->k->limit, r->unit);
    return true;
}

enum core_shadow_verdict
core_shadow_decide(const struct core_shadow_config *c,
                   const struct core_shadow_summary *s,
                   const struct core_shadow_analysis *a, char *reason,
                   size_t len)
{
    if (len)
        reason[0] = '\0';
    if (s->n_pairs <= 0)
        return CORE_SHADOW_NO_DATA;
    const struct check_row rows[] = {
        {"disagreement", &a->disagreement, c->max_disagreement, 3, false,
         "rate ", "", false, "max ", ""},
        {"latency", &a->latency, c->max_latency_increase, 4, true, "",
         " ms per request", false, "max ", " ms"},
        {"errors", &a->errors, c->max_error_increase, 3, true, "",
         " error rate", false, "max ", ""},
        {"accuracy", &a->accuracy, c->max_accuracy_drop, 3, true, "", "",
         true, "", ""},
    };
    for (size_t i = 0; i < AB_ARRAY_LEN(rows); i++)
        if (harm_reason(&rows[i], reason, len))
            return CORE_SHADOW_REGRESSED;
    if (s->n_pairs < (double)c->min_pairs) {
        snprintf(reason, len, "waiting for %lld pairs (%.0f so far)",
                 (long long)c->min_pairs, s->n_pairs);
        return CORE_SHADOW_WAITING;
    }
    for (size_t i = 0; i < AB_ARRAY_LEN(rows); i++)
        if (rows[i].margin > 0 && rows[i].k->tested && !rows[i].k->safe) {
            snprintf(reason, len,
                     "waiting for paired check %s to be proven within its "
                     "limit %.4g",
                     rows[i].name, rows[i].k->limit);
            return CORE_SHADOW_WAITING;
        }
    snprintf(reason, len, "every paired check holds");
    return CORE_SHADOW_HOLDING;
}
