/* analyze.h -- one statistical analysis as a JSON document in, a JSON
 * document out: the body of `arbiter analyze` (stdin -> stdout) and of
 * POST /v1/analyze. Works from per-arm sufficient statistics only.
 *
 * Request (unknown fields are refused):
 *   metric      {"kind": "mean"|"binary"|"sum"|"ratio",
 *                "direction": "increase"|"decrease"}     kind required
 *   method      "welch"|"z"|"msprt"|"gst"|"bayes"
 *                                 default: "z" for binary, else "welch"
 *   effect      "absolute"|"relative"                 default "absolute"
 *   alpha       number in (0, 1); msprt (0, 0.5]          default 0.05
 *   sided       "two"|"greater"|"less"                      default "two"
 *   tuning      msprt: units per arm where it is tightest   default 5000
 *   spending    gst: "obf"|"pocock"|"power"|"hsd"         default "obf"
 *   rho         gst: power-family rho (> 0) or HSD gamma
 *   information gst: increasing information fractions of the looks so far
 *               (the last is the current look; if it is < 1 a final look
 *               at 1 is planned)                               required
 *   prior       bayes: {"mean", "sd"} on the effect; absent: improper
 *   cuped       bool: adjust with the pre_* covariate (not for ratio)
 *   correction  "none"|"holm"|"bh" across the comparisons  default "none"
 *   arms        [{"name", "n", "sum", "sum_sq", "den_sum", "den_sum_sq",
 *                 "cross_sum", "pre_sum", "pre_sum_sq", "pre_cross_sum",
 *                 "weight", "control"}], at least 2; the first is the
 *               control unless one has "control": true
 *
 * Answer: {"arms": [{"name", "n", "mean", "variance", "ci", "status",
 * "reason"}], "comparisons": [{"arm", "control", "effect", "se", "ci",
 * "p_value", "adjusted_p_value", "chance_to_win", "risk", "boundaries",
 * "decision", "z", "significant", "verdict", "status", "reason",
 * "reason_code"}], "srm": {"p_value", "mismatch", "chi2", "df", "weights",
 * "status", "reason"}, "theta" (cuped)}. Values that do not exist (NaN,
 * one-sided infinite ends, the p-value of a Bayesian or gst analysis) are
 * null; a degenerate input sets "status" ("invalid" or "numeric"), a
 * stable "reason_code" and a human "reason" instead of failing the
 * request.
 *
 * Per method:
 *   welch  Welch t (Welch-Satterthwaite df); binary metrics use 0/1 data
 *   z      normal pivot; binary metrics: two-proportion z test (pooled
 *          statistic, unpooled Wald interval)
 *   bayes  normal model on the effect (flat prior, or "prior"); binary
 *          metrics without a prior: Beta-Binomial with Beta(1,1) priors.
 *          effect/se/ci are the posterior mean, sd and credible interval;
 *          risk = {"control", "treatment"}: expected loss of shipping each
 *          (effect units; Beta-Binomial: probability points)
 *   msprt  always-valid p-value and interval of THIS look (stats/msprt.h);
 *          the running minimum/intersection needs the caller's state
 *          across looks, which a one-shot request does not carry
 *   gst    boundaries (z scale) of the looks so far, "decision" at the
 *          current look ("continue" | "efficacy" | "accept"), "z", and the
 *          repeated confidence interval effect -/+ c_k se (Jennison &
 *          Turnbull 2000, ch. 9); hsd without rho uses gamma = -4
 * significant: adjusted p <= alpha (welch, z, msprt), the credible
 * interval excludes 0 (bayes), the efficacy boundary is crossed (gst).
 * verdict: "better" | "worse" for a significant effect, given
 * metric.direction; "inconclusive" otherwise. SRM weights default to an
 * equal split when no arm has a "weight"; mismatch means p < 0.001.
 * CUPED with msprt/gst/bayes uses the adjusted arms throughout.
 */
#ifndef CODEC_ANALYZE_H
#define CODEC_ANALYZE_H

#include <jansson.h>
#include <stddef.h>

#include "core/analysis.h"
#include "lib/status.h"

/* Analyse one request document (the JSON above -> core_analysis_run() ->
 * the answer above); on AB_OK stores a new JSON answer in
 * *out. On AB_EINVAL writes a human message naming the field to err. */
ab_status api_analyze(const json_t *req, json_t **out, char *err,
                      size_t errlen);

/* The answer document of a typed request and its result (the "Answer"
 * above); GET /results formats its per-metric analyses with it. New
 * reference. */
json_t *codec_analysis_json(const struct core_analysis_req *r,
                            const struct core_analysis *an);

#endif /* CODEC_ANALYZE_H */
