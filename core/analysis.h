/* analysis.h -- one statistical analysis, typed: per-arm sufficient
 * statistics in, structs out. The one analysis path of GET /results (which
 * fills the request from sql/db_stats.h's typed rows), POST /v1/analyze and
 * `arbiter analyze` (codec/analyze.c translates their JSON to a request and
 * the result back to JSON; the JSON field names are documented there).
 * The rollout engine (core/rollout_eval.h) and the holdback watch
 * (core/holdback.h) go through the same path: the per-kind summary under
 * core_analysis_arm_summary() for every arm (core_eval_summary()) and
 * core_analysis_msprt() for every sequential test, the
 * function behind method msprt here (there with a running state carried
 * from tick to tick). No I/O; the result and its workspace are allocated
 * once by core_analysis_new().
 *
 *   request --per arm---------> summary (mean, var) or CUPED-adjusted
 *           --per comparison--> welch | z (prop) | bayes | msprt | gst
 *           --family----------> Holm / BH adjusted p-values
 *           --verdict---------> better | worse | inconclusive (direction)
 *           --health----------> SRM chi-square against the weights
 */
#ifndef CORE_ANALYSIS_H
#define CORE_ANALYSIS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/experiment.h"
#include "lib/status.h"
#include "stats/bayes.h"
#include "stats/common.h"
#include "stats/cuped.h"
#include "stats/gst.h"
#include "stats/msprt.h"
#include "stats/multiple.h"

#define CORE_ANALYSIS_MAX_ARMS 1000

enum core_analysis_method {
    CORE_METHOD_WELCH,
    CORE_METHOD_Z,
    CORE_METHOD_MSPRT,
    CORE_METHOD_GST,
    CORE_METHOD_BAYES
};

/* One arm's sufficient statistics (arbiter.arm_stats' columns): n units,
 * sums of the per-unit value y, y^2; ratio: den_sum (d), d^2, y d;
 * CUPED: the covariate x, x^2, x y. weight: SRM only. */
struct core_analysis_arm {
    const char *name;              /* borrowed */
    double n, sum, sum_sq;
    double den_sum, den_sum_sq, cross_sum;
    double pre_sum, pre_sum_sq, pre_cross_sum;
    double weight;
    bool has_weight;
};

struct core_analysis_req {
    enum core_metric_kind kind;
    enum stats_direction dir;
    enum core_analysis_method method;
    enum stats_effect effect;
    double alpha;
    enum stats_side side;
    double tuning;                 /* msprt: STATS_MSPRT_DEFAULT_N_STAR */
    enum stats_gst_spend spending; /* gst */
    double rho;
    bool has_rho;
    double info[STATS_GST_MAX_LOOKS];
    size_t n_info;                 /* gst: the looks so far, >= 1 */
    struct stats_bayes_prior prior;
    bool has_prior;
    bool cuped;                    /* adjust with the pre_* covariate */
    bool mixed_weights;            /* the arms' n span several weightings:
                                      no SRM test (reason mixed_weights) */
    enum stats_correction corr;
    const struct core_analysis_arm *arms; /* borrowed, n_arms >= 2 */
    size_t n_arms;
    size_t control;
};

/* Fill the defaults of a request (alpha 0.05, two-sided, absolute, msprt
 * tuning, obf spending, no correction) for kind and method. */
void core_analysis_req_init(struct core_analysis_req *r,
                            enum core_metric_kind kind,
                            enum core_analysis_method method);

/* Per-arm analysed summary; ci_* the interval of the arm's mean: t(n-1)
 * (welch), normal (z, msprt, gst), Beta(1 + x, 1 + n - x) quantiles
 * (binary bayes without a prior). */
struct core_analysis_arm_out {
    ab_status rc;
    enum stats_reason why;
    struct stats_summary s;        /* analysed metric (adjusted if CUPED) */
    struct stats_cuped_summary cs; /* CUPED only */
    double ci_low, ci_high;
};

enum core_analysis_verdict {
    CORE_ANALYSIS_UNKNOWN,         /* the comparison failed */
    CORE_ANALYSIS_BETTER,
    CORE_ANALYSIS_WORSE,
    CORE_ANALYSIS_INCONCLUSIVE
};

/* One treatment arm against the control. p/p_adj when has_p (welch, z,
 * msprt); chance/risk when has_bayes; bounds/decision for gst. */
struct core_analysis_cmp {
    ab_status rc;
    enum stats_reason why;
    double effect, se, lo, hi, p, p_adj, chance, risk_c, risk_t;
    bool has_p, has_bayes, significant;
    struct stats_gst_bounds bounds;     /* gst only */
    struct stats_gst_decision decision; /* gst only */
    enum core_analysis_verdict verdict;
};

struct core_analysis_srm {
    ab_status rc;
    enum stats_reason why;
    double p_value, chi2, df;
    bool mismatch;
    bool configured;               /* weights given, else an equal split */
};

struct core_analysis {
    size_t cap;                    /* arms it was made for */
    struct core_analysis_arm_out *arms;  /* [n_arms] */
    struct core_analysis_cmp *cmps;      /* [n_arms]; the control's unused */
    struct core_analysis_srm srm;
    double theta;                  /* CUPED's theta, else NaN */
    /* workspace */
    double *p, *adj;
    size_t *order;
    struct stats_cuped_moments *moments;
    struct stats_gst_work *gst;
};

/* A result for up to n_arms arms; release with core_analysis_free(). */
struct core_analysis *core_analysis_new(size_t n_arms);
void core_analysis_free(struct core_analysis *a);

/* Run r into a. AB_EINVAL when r has more arms than a was made for, fewer
 * than 2, a control out of range, or CUPED for a kind it does not apply to
 * (core/metric_kind.h). Degenerate data is not an error: it sets the
 * status and reason of the arm or comparison it affects. */
ab_status core_analysis_run(const struct core_analysis_req *r,
                            struct core_analysis *a);

/* The summary (n, mean, variance of the per-unit value) of one arm of a
 * metric of this kind: the ratio's delta-method variance for ratios;
 * binary: AB_EINVAL (STATS_REASON_INCONSISTENT) when sum > n. Built on
 * core_metric_kind_summary(), which the rollout engine uses. */
ab_status core_analysis_arm_summary(enum core_metric_kind kind,
                                    const struct core_analysis_arm *a,
                                    struct stats_summary *out,
                                    enum stats_reason *why);

/* The always-valid mSPRT of treatment t against control c (stats/msprt.h):
 * the one sequential comparison. GET /results' method msprt calls it for
 * one look (running NULL, pooled false); the rollout engine and the
 * holdback watch with a running state carried from tick to tick and
 * pooled true: a binary metric is then tested against "no difference"
 * with the pooled variance p (1 - p) in both arms (the score test;
 * core/rollout_eval.c says why). Other kinds ignore pooled. Statuses as
 * stats_msprt_test(). */
ab_status core_analysis_msprt(enum core_metric_kind kind,
                              const struct stats_summary *c,
                              const struct stats_summary *t,
                              const struct stats_msprt_opts *o, bool pooled,
                              struct stats_msprt_state *running,
                              struct stats_msprt_result *out,
                              enum stats_reason *why);

const char *core_analysis_method_name(enum core_analysis_method m);
ab_status core_analysis_method_parse(const char *s,
                                     enum core_analysis_method *out);
const char *core_analysis_verdict_name(enum core_analysis_verdict v);

#endif /* CORE_ANALYSIS_H */
