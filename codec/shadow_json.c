/* shadow_json.c -- the paired shadow analysis answer in JSON (see
 * shadow_json.h; the config is in shadow_config_json.c). */
#include "codec/shadow_json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "codec/field.h"

/* ---- the analysis answer ------------------------------------------------- */

static json_t *
check_json(const struct core_shadow_check *k, double alpha)
{
    if (!k->tested)
        return json_pack("{s:b,s:b,s:b,s:o}", "tested", 0, "harm", 0, "safe",
                         0, "limit", codec_real_or_null(k->limit));
    return json_pack("{s:b,s:b,s:b,s:o,s:f,s:o,s:o,s:o,s:f}", "tested", 1,
                     "harm", k->harm, "safe", k->safe, "limit",
                     codec_real_or_null(k->limit), "n", k->mean.n, "mean",
                     codec_real_or_null(k->mean.mean), "cs_low",
                     codec_real_or_null(k->mean.cs_low), "cs_high",
                     codec_real_or_null(k->mean.cs_high), "alpha", alpha);
}

static json_t *
agreement_json(const struct core_shadow_config *c,
               const struct core_shadow_summary *s,
               const struct core_shadow_analysis *a)
{
    if (!a->has_agreement)
        return json_null();
    return json_pack("{s:f,s:f,s:f,s:o,s:o,s:s,s:f,s:o}", "compared",
                     s->n_compared, "agree", s->n_agree, "rate",
                     a->agreement.rate, "ci_low",
                     codec_real_or_null(a->agreement.ci_low), "ci_high",
                     codec_real_or_null(a->agreement.ci_high), "interval",
                     "clopper_pearson", "max_disagreement",
                     c->max_disagreement, "p_disagreement_exceeds_max",
                     codec_real_or_null(a->p_disagreement_exceeds));
}

static json_t *
accuracy_json(const struct core_shadow_summary *s,
              const struct core_shadow_analysis *a)
{
    if (s->n_labelled <= 0)
        return json_null();
    json_t *mc = json_null();
    if (a->has_mcnemar)
        mc = json_pack("{s:f,s:f,s:f,s:f,s:f,s:s,s:f,s:i}",
                       "control_only_right", a->mcnemar.b,
                       "candidate_only_right", a->mcnemar.c, "p_exact",
                       a->mcnemar.p_exact, "chi2", a->mcnemar.chi2, "p_chi2",
                       a->mcnemar.p_chi2, "method",
                       stats_mcnemar_method_name(a->mcnemar.method),
                       "p_value", a->mcnemar.p_value, "exact_below",
                       STATS_MCNEMAR_EXACT_BELOW);
    return json_pack("{s:f,s:f,s:f,s:o}", "labelled", s->n_labelled,
                     "control", a->acc_control, "candidate",
                     a->acc_candidate, "mcnemar", mc);
}

static json_t *
latency_json(const struct core_shadow_summary *s,
             const struct core_shadow_analysis *a)
{
    if (s->n_latency <= 0)
        return json_null();
    json_t *q = json_object();
    for (size_t i = 0; a->has_quantiles && i < CORE_SHADOW_N_QUANTILES;
         i++) {
        char k[16];
        snprintf(k, sizeof(k), "p%g", core_shadow_quantiles[i] * 100);
        json_object_set_new(q, k, codec_real_or_null(a->lat_quantiles[i]));
    }
    json_t *t = json_null();
    if (a->has_latency_t)
        t = json_pack("{s:f,s:f,s:f,s:f,s:o,s:o}", "t", a->latency_t.t, "df",
                      a->latency_t.df, "p_value", a->latency_t.p_value, "sd",
                      a->latency_t.sd, "cs_low",
                      codec_real_or_null(a->latency_t.cs_low), "cs_high",
                      codec_real_or_null(a->latency_t.cs_high));
    return json_pack("{s:f,s:o,s:o,s:o,s:o,s:I,s:o}", "n", s->n_latency,
                     "control_mean_ms",
                     codec_real_or_null(s->lat_control_mean),
                     "candidate_mean_ms",
                     codec_real_or_null(s->lat_candidate_mean),
                     "diff_mean_ms", codec_real_or_null(s->lat_diff_mean),
                     "diff_quantiles_ms", q, "quantile_sample",
                     (json_int_t)s->n_lat_diffs, "paired_t", t);
}

static json_t *
scores_json(const struct core_shadow_summary *s,
            const struct core_shadow_analysis *a)
{
    if (s->n_scores <= 0)
        return json_null();
    json_t *w = json_null();
    if (a->has_wilcoxon)
        w = json_pack("{s:s,s:f,s:f,s:f,s:f,s:f,s:f}", "test",
                      "wilcoxon_signed_rank", "nonzero", a->wilcoxon.n_used,
                      "r_plus", a->wilcoxon.r_plus, "r_minus",
                      a->wilcoxon.r_minus, "statistic",
                      a->wilcoxon.statistic, "z", a->wilcoxon.z, "p_value",
                      a->wilcoxon.p_value);
    return json_pack("{s:f,s:I,s:o}", "n", s->n_scores, "sample",
                     (json_int_t)s->n_score_diffs, "shift", w);
}

json_t *
api_shadow_analysis_json(const struct core_shadow_config *c,
                         const struct core_shadow_summary *s,
                         const struct core_shadow_analysis *a,
                         enum core_shadow_verdict v, const char *reason)
{
    json_t *checks = json_pack(
        "{s:o,s:o,s:o,s:o}", "disagreement",
        check_json(&a->disagreement, a->check_alpha), "latency",
        check_json(&a->latency, a->check_alpha), "errors",
        check_json(&a->errors, a->check_alpha), "accuracy",
        check_json(&a->accuracy, a->check_alpha));
    json_t *errors = json_pack(
        "{s:f,s:f,s:f,s:f}", "control", s->err_control, "candidate",
        s->err_candidate, "control_only", s->err_only_control,
        "candidate_only", s->err_only_candidate);
    return json_pack(
        "{s:s,s:s,s:f,s:f,s:f,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "verdict",
        core_shadow_verdict_name(v), "reason", reason, "pairs", s->n_pairs,
        "units", s->n_units, "alpha", a->alpha, "agreement",
        agreement_json(c, s, a), "accuracy", accuracy_json(s, a), "latency",
        latency_json(s, a), "errors", errors, "scores", scores_json(s, a),
        "checks", checks, "config", api_shadow_config_json(c));
}
