/* reweight.c -- the bandit reweight job and the corrected estimates (see
 * reweight.h).
 *
 * Weights. Per arm k the sufficient statistics of the bandit's metric
 * (n_k units, sum_k, sum_sq_k; binary: n_k exposed units, sum_k
 * converters) go to bandit_weights(): Beta-Bernoulli posteriors for binary
 * metrics, Normal-Inverse-Gamma for sum and mean metrics, mirrored when
 * the metric's direction is "decrease" (bandits/bandit.h; Thompson 1933,
 * Russo 2016, Auer et al. 2002, Garivier and Cappe 2011). The shares
 * become millionths by the largest-remainder method (Balinski and Young,
 * "Fair Representation", 2nd ed. 2001: Hamilton's method), so the
 * stored percentages have 4 decimals and sum to exactly 100
 * (bandits/alloc.h).
 *
 * Randomness. The rng of weights version v is MT19937 seeded with the low
 * 32 bits of splitmix64(seed XOR splitmix64(v)) (Steele, Lea and Flood,
 * "Fast splittable pseudorandom number generators", OOPSLA 2014), so that
 * any version can be recomputed from its recorded inputs
 * (bandit_rng_seed, bandits/alloc.h). With the default
 * quadrature P(best) Thompson and top-two weights draw nothing at all.
 *
 * Promotion (the rule is bandits/promote.h). At each run in the adaptive
 * phase (burn-in done, every arm warm), let L be the arm with the largest P(best). If P_L >= threshold,
 * the streak of L continues (or starts now); otherwise it ends. When a
 * streak has lasted promote_after_s, L gets weight 100 and every other arm
 * 0, with a 'promote' decision (actor 'engine') holding the P(best)
 * history of the streak. The job then leaves the experiment alone while
 * it stays at that weights version (an admin patch of the weights resumes
 * the bandit). A sample-ratio mismatch blocks the promotion (DESIGN.md,
 * "Health checks"): in allocation period v the units first exposed must
 * follow v's weights, so each period's Pearson statistic (stats_srm_test)
 * is chi-square with (weighted arms - 1) degrees of freedom, and, periods
 * being disjoint sets of units, their sum is chi-square with the summed
 * degrees of freedom; p < 0.001 blocks. A unit in an arm of weight 0 is a
 * mismatch outright.
 *
 * Estimates. Under adaptive allocation the naive arm mean is biased (an
 * arm gets more units in the periods in which it looks good). The
 * corrected mean stratifies by allocation period -- the weights version of
 * each unit's first exposure -- and weighs period t by its share N_t / N
 * of all units: sum_t (N_t / N) ybar_kt (post-stratification; pooling the
 * phases of a ramp without it is the Simpson's paradox that Kohavi, Tang
 * and Xu 2020, ch. 3, warn about; bandits/estimate.h). The inverse
 * propensity means (Horvitz and Thompson 1952; Hajek 1971) use the
 * propensity recorded with each unit's first exposure.
 */
#include "service/reweight.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_rng.h>

#include "codec/experiment_json.h"
#include "codec/field.h"
#include "codec/state_json.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "bandits/alloc.h"
#include "bandits/bandit.h"
#include "bandits/estimate.h"
#include "bandits/promote.h"
#include "service/fold.h"
#include "sql/db_bandits.h"
#include "stats/srm.h"

_Static_assert(CORE_SCALE == BANDIT_MILLIONTHS,
               "arm weights and bandit shares use the same unit");

#define HISTORY_MAX 100 /* p_best entries kept for one streak */
#define DUE_SLACK_MS 500 /* a run due within this is run at this tick */

struct reweight {
    struct bandit_workspace *ws;
    gsl_rng *rng;
    _Atomic int64_t m_runs;
    _Atomic int64_t m_reweights;
    _Atomic int64_t m_promotions;
    _Atomic int64_t m_blocked;
    _Atomic int64_t m_errors;
    struct fold_gate *gate; /* no reweight on stale statistics */
};

enum bandit_policy
reweight_policy(enum core_bandit_policy p)
{
    switch (p) {
    case CORE_BANDIT_UNIFORM: return BANDIT_UNIFORM;
    case CORE_BANDIT_THOMPSON: return BANDIT_THOMPSON;
    case CORE_BANDIT_TOP_TWO: return BANDIT_TOP_TWO;
    case CORE_BANDIT_UCB1: return BANDIT_UCB1;
    case CORE_BANDIT_KL_UCB: return BANDIT_KL_UCB;
    case CORE_BANDIT_EPS_GREEDY: return BANDIT_EPS_GREEDY;
    }
    return (enum bandit_policy)BANDIT_N_POLICIES; /* _config_check refuses */
}

ab_status
reweight_new(struct reweight **out)
{
    struct reweight *r = ab_xcalloc(1, sizeof(*r));
    ab_status rc = bandit_workspace_new(BANDIT_MAX_ARMS, &r->ws);
    if (rc != AB_OK) {
        free(r);
        return rc;
    }
    r->rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (r->rng == NULL)
        abort();
    metrics_register("arbiter_bandit_runs_total",
                     "Bandit reweight runs (weights computed).",
                     METRICS_COUNTER, &r->m_runs);
    metrics_register("arbiter_bandit_reweights_total",
                     "Bandit weights versions published.", METRICS_COUNTER,
                     &r->m_reweights);
    metrics_register("arbiter_bandit_promotions_total",
                     "Bandit arms promoted to all traffic.", METRICS_COUNTER,
                     &r->m_promotions);
    metrics_register("arbiter_bandit_promotions_blocked_total",
                     "Bandit promotions held back by a sample-ratio "
                     "mismatch.",
                     METRICS_COUNTER, &r->m_blocked);
    metrics_register("arbiter_bandit_errors_total",
                     "Bandit reweight runs that failed (retried next tick).",
                     METRICS_COUNTER, &r->m_errors);
    *out = r;
    return AB_OK;
}

void
reweight_free(struct reweight *r)
{
    if (r == NULL)
        return;
    fold_gate_free(r->gate);
    bandit_workspace_free(r->ws);
    gsl_rng_free(r->rng);
    free(r);
}

/* ---- numbers ------------------------------------------------------------- */

static json_t *
weights_json(const struct core_experiment *e, const uint32_t *m)
{
    json_t *o = json_object();
    for (size_t k = 0; k < e->n_arms; k++)
        json_object_set_new(o, e->arms[k].name, codec_percent_json(m[k]));
    return o;
}

/* ---- sample ratio over the periods ------------------------------------- */

struct srm_total {
    double chi2, df, p_value;
    int periods;
    bool mismatch;
};

static void
srm_period(const double *counts, const double *weights, size_t k,
           struct srm_total *t)
{
    struct stats_srm one;
    enum stats_reason why;
    if (k < 2 ||
        stats_srm_test(counts, weights, k, 0, &one, &why) != AB_OK)
        return; /* one weighted arm (a promotion) or no units: no test */
    t->periods++;
    if (one.mismatch && one.p_value == 0) {
        t->mismatch = true; /* units in an arm of weight 0 */
        return;
    }
    t->chi2 += one.chi2;
    t->df += one.df;
}

static ab_status
srm_over_periods(struct db *db, int64_t id, struct srm_total *out)
{
    struct db_bandit_srm *rows;
    size_t n;
    ab_status rc = db_bandit_srm_counts(db, id, &rows, &n);
    if (rc != AB_OK)
        return rc;
    struct srm_total t = {0, 0, 1, 0, false};
    double counts[BANDIT_MAX_ARMS], weights[BANDIT_MAX_ARMS];
    size_t k = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || (i > 0 && rows[i].weights_version !=
                                    rows[i - 1].weights_version)) {
            srm_period(counts, weights, k, &t);
            k = 0;
        }
        if (i == n || k == BANDIT_MAX_ARMS)
            continue;
        counts[k] = rows[i].units;
        weights[k] = rows[i].weight;
        k++;
    }
    db_bandit_srm_free(rows, n);
    if (t.mismatch)
        t.p_value = 0;
    else if (t.df > 0)
        t.p_value = gsl_cdf_chisq_Q(t.chi2, t.df);
    t.mismatch = t.mismatch || t.p_value < STATS_SRM_THRESHOLD;
    *out = t;
    return AB_OK;
}

/* ---- one experiment ---------------------------------------------------- */

struct run {
    const struct db_bandit_row *row;
    struct core_experiment *e;
    size_t n;
    struct bandit_arm arms[BANDIT_MAX_ARMS];
    double w[BANDIT_MAX_ARMS], p[BANDIT_MAX_ARMS];
    uint32_t m[BANDIT_MAX_ARMS];
    const char *phase;
    unsigned long rng_seed;
};

static const char *
phase_of(const struct run *run)
{
    const struct core_bandit *b = &run->e->bandit;
    double total = 0;
    for (size_t k = 0; k < run->n; k++)
        total += run->arms[k].n;
    if (total < (double)b->burn_in)
        return "burn_in";
    for (size_t k = 0; k < run->n; k++) {
        if (b->control_pinned && k == run->e->control)
            continue;
        if (run->arms[k].n < (double)b->min_units)
            return "warm_up";
    }
    return "adaptive";
}

static ab_status
compute(struct reweight *r, struct db *db, struct run *run)
{
    struct core_experiment *e = run->e;
    const struct core_bandit *b = &e->bandit;
    const struct core_metric *metric = &e->metrics[b->metric];
    const char *names[BANDIT_MAX_ARMS];
    double n[BANDIT_MAX_ARMS], sum[BANDIT_MAX_ARMS], sum_sq[BANDIT_MAX_ARMS];
    run->n = e->n_arms;
    for (size_t k = 0; k < run->n; k++)
        names[k] = e->arms[k].name;
    ab_status rc = db_bandit_arm_stats(db, e->id, metric->name, names, run->n,
                                       n, sum, sum_sq);
    if (rc != AB_OK)
        return rc;
    for (size_t k = 0; k < run->n; k++) {
        /* sum_sq >= sum^2 / n holds exactly; summation order may break it
         * by an ulp, which the posterior check would refuse */
        double min_sq = n[k] > 0 ? sum[k] * sum[k] / n[k] : 0;
        if (sum_sq[k] < min_sq)
            sum_sq[k] = min_sq;
        run->arms[k] = (struct bandit_arm){n[k], sum[k], sum_sq[k], 1};
    }
    struct bandit_config cfg;
    bandit_config_default(&cfg, reweight_policy(b->policy),
                          metric->kind == CORE_METRIC_BINARY
                              ? BANDIT_REWARD_BINARY
                              : BANDIT_REWARD_GAUSSIAN);
    cfg.lower_is_better = metric->direction == CORE_DECREASE;
    cfg.floor = b->floor;
    cfg.control = b->control_pinned ? (long)e->control : -1;
    cfg.control_share = b->control_pinned ? b->control_share : 0;
    cfg.burn_in = (double)b->burn_in;
    cfg.min_units = (double)b->min_units;
    run->rng_seed = bandit_rng_seed(b->seed, e->weights_version + 1);
    gsl_rng_set(r->rng, run->rng_seed);
    rc = bandit_weights(run->arms, run->n, &cfg, r->rng, r->ws, run->w,
                        run->p);
    if (rc != AB_OK)
        return rc;
    run->phase = phase_of(run);
    return bandit_to_millionths(run->w, run->n, run->m);
}

/* What produced the weights: enough to recompute them. */
static json_t *
inputs_json(const struct run *run)
{
    const struct core_experiment *e = run->e;
    const struct core_bandit *b = &e->bandit;
    const struct core_metric *metric = &e->metrics[b->metric];
    json_t *arms = json_object(), *pb = json_object();
    for (size_t k = 0; k < run->n; k++) {
        json_object_set_new(arms, e->arms[k].name,
                            json_pack("{s:f, s:f, s:f}", "n", run->arms[k].n,
                                      "sum", run->arms[k].sum, "sum_sq",
                                      run->arms[k].sum_sq));
        json_object_set_new(pb, e->arms[k].name, json_real(run->p[k]));
    }
    json_t *in = json_object();
    json_object_set_new(in, "policy",
                        json_string(api_bandit_policy_name(b->policy)));
    json_object_set_new(in, "metric", json_string(metric->name));
    json_object_set_new(in, "kind",
                        json_string(api_metric_kind_name(metric->kind)));
    json_object_set_new(in, "reward",
                        json_string(metric->kind == CORE_METRIC_BINARY
                                        ? "beta_bernoulli"
                                        : "normal_inverse_gamma"));
    json_object_set_new(in, "lower_is_better",
                        json_boolean(metric->direction == CORE_DECREASE));
    json_object_set_new(in, "arms", arms);
    json_object_set_new(in, "seed", json_integer(b->seed));
    json_object_set_new(in, "rng", json_string("mt19937"));
    json_object_set_new(in, "rng_seed",
                        json_integer((json_int_t)run->rng_seed));
    json_object_set_new(in, "from_weights_version",
                        json_integer(e->weights_version));
    json_object_set_new(in, "phase", json_string(run->phase));
    json_object_set_new(in, "p_best", pb);
    json_object_set_new(in, "p_best_method", json_string("quadrature"));
    json_object_set_new(in, "floor", json_real(b->floor));
    json_object_set_new(in, "control_share",
                        b->control_pinned ? json_real(b->control_share)
                                          : json_null());
    json_object_set_new(in, "burn_in", json_integer(b->burn_in));
    json_object_set_new(in, "min_units", json_integer(b->min_units));
    json_t *shares = json_object(); /* before rounding to millionths */
    for (size_t k = 0; k < run->n; k++)
        json_object_set_new(shares, e->arms[k].name, json_real(run->w[k]));
    json_object_set_new(in, "shares", shares);
    return in;
}

/* Publish weights m as the experiment's next weights version. */
static ab_status
publish(struct db *db, const struct run *run, const uint32_t *m,
        const char *source, const char *action, const char *reason,
        json_t *inputs, json_t *details, int64_t *new_version)
{
    struct core_experiment *next = core_experiment_clone(run->e);
    for (size_t k = 0; k < run->n; k++)
        next->arms[k].weight = m[k];
    json_t *def = api_experiment_definition(next);
    json_t *w = weights_json(next, m);
    json_object_set(details, "weights", w);
    char *def_text = json_dumps(def, JSON_COMPACT | JSON_SORT_KEYS);
    char *w_text = json_dumps(w, JSON_COMPACT);
    char *in_text = json_dumps(inputs, JSON_COMPACT);
    char *d_text = json_dumps(details, JSON_COMPACT);
    ab_status rc = db_bandit_publish(db, run->e->id, run->row->version,
                                     def_text, w_text, source, in_text,
                                     action, reason, d_text, new_version);
    free(def_text);
    free(w_text);
    free(in_text);
    free(d_text);
    json_decref(def);
    json_decref(w);
    core_experiment_free(next);
    return rc;
}

/* The experiment of a bandit row when a reweight is due, else NULL. */
static struct core_experiment *
due_experiment(const struct db_bandit_row *row)
{
    char err[256];
    json_error_t jerr;
    struct core_experiment *e = NULL;
    json_t *doc = json_loads(row->definition, 0, &jerr);
    if (doc == NULL || api_experiment_parse(doc, &e, err, sizeof(err)) !=
                           AB_OK) {
        json_decref(doc);
        return NULL; /* app_reload logs definitions that do not parse */
    }
    json_decref(doc);
    e->id = row->id;
    e->version = row->version;
    e->weights_version = row->weights_version;
    e->state = CORE_STATE_RUNNING;
    const struct core_bandit *b = &e->bandit;
    if (e->strategy != CORE_STRATEGY_BANDIT || b->metric >= e->n_metrics ||
        e->n_arms > BANDIT_MAX_ARMS ||
        (row->promoted_version > 0 &&
         row->promoted_version == row->weights_version) ||
        (row->has_state && row->last_run_ms >= 0 &&
         row->now_ms - row->last_run_ms + DUE_SLACK_MS <
             b->interval_s * 1000)) {
        core_experiment_free(e);
        return NULL;
    }
    return e;
}

/* One entry of the streak history as stored (sql/db_bandits.h reads it
 * back as struct db_pbest_point). New reference. */
static json_t *
point_json(int64_t at_ms, int64_t weights_version, const char *arm,
           double p_best)
{
    return json_pack("{s:I, s:I, s:s, s:f}", "at_ms", (json_int_t)at_ms,
                     "weights_version", (json_int_t)weights_version, "arm",
                     arm, "p_best", p_best);
}

/* The P(best) leader and its streak (bandits/promote.h); *hist gets the
 * streak's P(best) history (a new array). AB_EINVAL without arms. */
static ab_status
streak(const struct run *run, struct bandit_promote_step *step, json_t **hist)
{
    const struct db_bandit_row *row = run->row;
    const struct core_experiment *e = run->e;
    const struct core_bandit *b = &e->bandit;
    struct bandit_promote_rule rule = {b->promote, b->promote_threshold,
                                       b->promote_after_s * 1000};
    struct bandit_streak prev = {-1, row->leader_since_ms};
    for (size_t k = 0; row->leader_arm != NULL && k < run->n; k++)
        if (strcmp(row->leader_arm, e->arms[k].name) == 0)
            prev.leader = (long)k;
    bool adaptive = strcmp(run->phase, "adaptive") == 0;
    if (bandit_promote_step(run->p, run->n, adaptive, &rule, &prev, row->now_ms,
                            step) != AB_OK)
        return AB_EINVAL; /* no arms: parse refuses such a definition */
    json_t *h = json_array();
    for (size_t k = 0;
         step->in_streak && step->continued && k < row->n_history; k++) {
        const struct db_pbest_point *q = &row->history[k];
        json_array_append_new(h, point_json(q->at_ms, q->weights_version,
                                            q->arm ? q->arm : "", q->p_best));
    }
    if (step->in_streak) {
        json_array_append_new(h, point_json(row->now_ms, e->weights_version,
                                            e->arms[step->lead].name,
                                            run->p[step->lead]));
        while (json_array_size(h) > HISTORY_MAX)
            json_array_remove(h, 1); /* keep the streak's first entry */
    }
    *hist = h;
    return AB_OK;
}

/* A due promotion is blocked by a sample-ratio mismatch: *ok false (and
 * logged once per streak, when it first became due). */
static ab_status
srm_allows(struct reweight *r, struct db *db, const struct run *run,
           const struct bandit_promote_step *step, struct srm_total *srm,
           bool *ok)
{
    const struct core_experiment *e = run->e;
    const struct core_bandit *b = &e->bandit;
    int64_t now = run->row->now_ms, since = step->since_ms;
    ab_status rc = srm_over_periods(db, e->id, srm);
    if (rc != AB_OK)
        return rc;
    *ok = !(srm->mismatch || !isfinite(srm->p_value));
    if (*ok)
        return AB_OK;
    atomic_fetch_add(&r->m_blocked, 1);
    if (now - since <
        (b->promote_after_s + b->interval_s) * 1000 + DUE_SLACK_MS) {
        char pv[32];
        snprintf(pv, sizeof(pv), "%.3g", srm->p_value);
        log_msg(LOG_WARN, "bandit promotion blocked by a sample-ratio mismatch",
                "experiment", e->key, "arm", e->arms[step->lead].name,
                "p_value", pv, NULL);
    }
    return AB_OK;
}

/* Publish the promotion of the streak's leader: weight 100, others 0. */
static ab_status
publish_promotion(struct reweight *r, struct db *db, const struct run *run,
                  const struct bandit_promote_step *step,
                  const struct srm_total *srm, json_t *inputs, json_t *pb,
                  json_t *hist, int64_t *new_version)
{
    const struct core_experiment *e = run->e;
    const struct core_bandit *b = &e->bandit;
    const char *lead_name = e->arms[step->lead].name;
    int64_t now = run->row->now_ms, since = step->since_ms;
    uint32_t m[BANDIT_MAX_ARMS];
    bandit_promote_weights(step->lead, run->n, CORE_SCALE, m);
    char reason[256];
    snprintf(reason, sizeof(reason),
             "arm \"%s\" kept P(best) >= %g for %.1f s (at least %lld "
             "s required); it now gets all traffic",
             lead_name, b->promote_threshold, (double)(now - since) / 1e3,
             (long long)b->promote_after_s);
    json_t *details = json_pack(
        "{s:s, s:f, s:I, s:f, s:O, s:O, s:s, s:{s:f, s:f, s:f, s:i}}", "arm",
        lead_name, "threshold", b->promote_threshold, "promote_after_s",
        (json_int_t)b->promote_after_s, "held_s", (double)(now - since) / 1e3,
        "p_best", pb, "p_best_history", hist, "policy",
        api_bandit_policy_name(b->policy), "srm", "chi2", srm->chi2, "df",
        srm->df, "p_value", srm->p_value, "periods", srm->periods);
    json_object_set_new(inputs, "promoted", json_string(lead_name));
    ab_status rc = publish(db, run, m, "promote", "promote", reason, inputs,
                           details, new_version);
    json_decref(details);
    if (rc == AB_OK) {
        atomic_fetch_add(&r->m_promotions, 1);
        log_msg(LOG_INFO, "bandit arm promoted", "experiment", e->key, "arm",
                lead_name, NULL);
    }
    return rc;
}

/* Publish the computed weights when they changed (bandits/alloc.h). */
static ab_status
publish_reweight(struct reweight *r, struct db *db, const struct run *run,
                 json_t *inputs, json_t *pb, int64_t *new_version)
{
    const struct core_experiment *e = run->e;
    const struct core_bandit *b = &e->bandit;
    uint32_t current[BANDIT_MAX_ARMS];
    for (size_t k = 0; k < run->n; k++)
        current[k] = e->arms[k].weight;
    if (!bandit_weights_changed(current, run->m, run->n))
        return AB_OK;
    char reason[160];
    snprintf(reason, sizeof(reason), "%s on metric \"%s\" (%s)",
             api_bandit_policy_name(b->policy), e->metrics[b->metric].name,
             run->phase);
    json_t *details =
        json_pack("{s:O, s:s}", "p_best", pb, "phase", run->phase);
    ab_status rc = publish(db, run, run->m, "bandit", "reweight", reason,
                           inputs, details, new_version);
    json_decref(details);
    if (rc == AB_OK)
        atomic_fetch_add(&r->m_reweights, 1);
    return rc;
}

/* The job's memory of this run (bandit_state). */
static void
save_state(struct reweight *r, struct db *db, const struct run *run,
           const struct bandit_promote_step *step, const char *promoted_arm,
           int64_t new_version, json_t *pb, json_t *hist)
{
    char *pb_text = json_dumps(pb, JSON_COMPACT);
    char *hist_text = json_dumps(hist, JSON_COMPACT);
    struct db_bandit_state st = {
        .phase = run->phase,
        .p_best = pb_text,
        .leader_arm = run->e->arms[step->lead].name,
        .leader_since_ms = promoted_arm ? -1 : step->since_ms,
        .p_best_history = promoted_arm ? "[]" : hist_text,
        .promoted_arm = promoted_arm,
        .promoted_version = promoted_arm ? new_version : 0,
    };
    if (db_bandit_state_save(db, run->e->id, &st) != AB_OK)
        atomic_fetch_add(&r->m_errors, 1);
    free(pb_text);
    free(hist_text);
}

static void
reweight_one(struct reweight *r, struct db *db, const struct db_bandit_row *row)
{
    struct core_experiment *e = due_experiment(row);
    if (e == NULL)
        return;
    struct run *run = ab_xcalloc(1, sizeof(*run));
    json_t *inputs = NULL, *hist = NULL, *pb = NULL;
    run->row = row;
    run->e = e;
    ab_status rc = compute(r, db, run);
    if (rc != AB_OK) {
        atomic_fetch_add(&r->m_errors, 1);
        log_msg(LOG_WARN, "bandit weights not computed", "experiment",
                e->key, "error", ab_status_name(rc), NULL);
        goto done;
    }
    atomic_fetch_add(&r->m_runs, 1);
    inputs = inputs_json(run);
    pb = json_incref(json_object_get(inputs, "p_best"));

    struct bandit_promote_step step;
    if (streak(run, &step, &hist) != AB_OK)
        goto done;
    bool promote_now = step.due;
    struct srm_total srm = {0, 0, 1, 0, false};
    if (promote_now) {
        rc = srm_allows(r, db, run, &step, &srm, &promote_now);
        if (rc != AB_OK) {
            atomic_fetch_add(&r->m_errors, 1);
            goto done;
        }
    }
    int64_t new_version = 0;
    if (promote_now)
        rc = publish_promotion(r, db, run, &step, &srm, inputs, pb, hist,
                               &new_version);
    else
        rc = publish_reweight(r, db, run, inputs, pb, &new_version);
    if (rc == AB_ECONFLICT)
        goto done; /* changed under us (an admin): run again next tick */
    if (rc != AB_OK) {
        atomic_fetch_add(&r->m_errors, 1);
        goto done;
    }
    save_state(r, db, run, &step, promote_now ? e->arms[step.lead].name : NULL,
               new_version, pb, hist);
done:
    json_decref(inputs);
    json_decref(hist);
    json_decref(pb);
    free(run);
    core_experiment_free(e);
}

void
reweight_set_fold_max_age(struct reweight *r, int64_t max_age_ms)
{
    fold_gate_free(r->gate);
    r->gate = fold_gate_new("bandit", max_age_ms);
}

void
reweight_job(void *arg, struct db *db, int64_t now_ms)
{
    struct reweight *r = arg;
    struct db_bandit_row *rows = NULL;
    size_t n = 0;
    (void)now_ms; /* due times use the database clock, shared by leaders */
    if (r->gate && fold_gate_check(r->gate, db))
        return; /* statistics older than the bound: wait (and say so) */
    if (db_bandit_list(db, &rows, &n) != AB_OK) {
        atomic_fetch_add(&r->m_errors, 1);
        return;
    }
    for (size_t i = 0; i < n; i++)
        reweight_one(r, db, &rows[i]);
    db_bandit_list_free(rows, n);
}

/* ---- corrected estimates ------------------------------------------------- */

ab_status
reweight_estimates_json(struct db *db, const struct core_experiment *e,
                        json_t **out)
{
    if (e->strategy != CORE_STRATEGY_BANDIT ||
        e->bandit.metric >= e->n_metrics)
        return AB_EINVAL;
    const struct core_metric *metric = &e->metrics[e->bandit.metric];
    struct db_bandit_period *rows = NULL;
    size_t n_rows = 0;
    ab_status rc = db_bandit_periods(db, e->id, metric->name,
                                     api_metric_kind_name(metric->kind),
                                     &rows, &n_rows);
    if (rc != AB_OK)
        return rc;

    /* periods: the distinct weights versions >= 1 (rows are ordered) */
    int64_t *version = ab_xcalloc(n_rows ? n_rows : 1, sizeof(*version));
    double *n_total = ab_xcalloc(n_rows ? n_rows : 1, sizeof(*n_total));
    size_t n_periods = 0;
    double units = 0, unallocated = 0, ipw_total = 0;
    for (size_t i = 0; i < n_rows; i++) {
        units += rows[i].units;
        ipw_total += rows[i].ipw_units;
        if (rows[i].weights_version < 1) {
            unallocated += rows[i].units;
            continue;
        }
        if (n_periods == 0 || version[n_periods - 1] != rows[i].weights_version)
            version[n_periods++] = rows[i].weights_version;
        n_total[n_periods - 1] += rows[i].units;
    }

    json_t *arr = json_array();
    struct bandit_period *per =
        ab_xcalloc(n_periods ? n_periods : 1, sizeof(*per));
    for (size_t k = 0; k < e->n_arms; k++) {
        const char *arm = e->arms[k].name;
        double n = 0, s = 0, ss = 0;
        struct bandit_ipw_sums ipw = {ipw_total, 0, 0, 0, 0, 0};
        double ipw_units = 0;
        for (size_t t = 0; t < n_periods; t++)
            per[t] = (struct bandit_period){n_total[t], 0, 0, 0};
        for (size_t i = 0; i < n_rows; i++) {
            const struct db_bandit_period *p = &rows[i];
            if (strcmp(p->arm, arm) != 0)
                continue;
            n += p->units;
            s += p->sum;
            ss += p->sum_sq;
            ipw.sum_w += p->sum_w;
            ipw.sum_wy += p->sum_wy;
            ipw.sum_w2 += p->sum_w2;
            ipw.sum_w2y += p->sum_w2y;
            ipw.sum_w2y2 += p->sum_w2y2;
            ipw_units += p->ipw_units;
            for (size_t t = 0; t < n_periods; t++) {
                if (version[t] == p->weights_version) {
                    per[t].n = p->units;
                    per[t].sum = p->sum;
                    per[t].sum_sq = p->sum_sq;
                }
            }
        }
        double naive = n > 0 ? s / n : NAN, naive_se = NAN;
        if (n > 1) {
            double var = (ss - s * s / n) / (n - 1);
            naive_se = sqrt(fmax(var, 0) / n);
        }
        struct bandit_estimate pm = {NAN, NAN}, ht = {NAN, NAN},
                               hj = {NAN, NAN};
        if (bandit_period_mean(per, n_periods, &pm) != AB_OK)
            pm = (struct bandit_estimate){NAN, NAN};
        if (ipw_units > 0 &&
            bandit_ipw_mean(&ipw, &ht, &hj) != AB_OK) {
            ht = (struct bandit_estimate){NAN, NAN};
            hj = ht;
        }
        json_t *o = json_object();
        json_object_set_new(o, "arm", json_string(arm));
        json_object_set_new(o, "units", json_integer((json_int_t)n));
        json_object_set_new(o, "naive_mean", codec_real_or_null(naive));
        json_object_set_new(o, "naive_se", codec_real_or_null(naive_se));
        json_object_set_new(o, "corrected_mean", codec_real_or_null(pm.mean));
        json_object_set_new(o, "corrected_se", codec_real_or_null(pm.se));
        json_object_set_new(o, "method", json_string("per_period"));
        json_object_set_new(o, "ipw",
                            json_pack("{s:I, s:o, s:o, s:o, s:o}", "units",
                                      (json_int_t)ipw_units, "ht_mean",
                                      codec_real_or_null(ht.mean), "ht_se",
                                      codec_real_or_null(ht.se), "hajek_mean",
                                      codec_real_or_null(hj.mean), "hajek_se",
                                      codec_real_or_null(hj.se)));
        json_array_append_new(arr, o);
    }
    *out = json_pack("{s:s, s:s, s:b, s:s, s:I, s:I, s:I, s:o}", "metric",
                     metric->name, "kind", api_metric_kind_name(metric->kind),
                     "lower_is_better", metric->direction == CORE_DECREASE,
                     "method", "per_period", "units", (json_int_t)units,
                     "unallocated_units", (json_int_t)unallocated, "periods",
                     (json_int_t)n_periods, "estimates", arr);
    free(per);
    free(version);
    free(n_total);
    db_bandit_periods_free(rows, n_rows);
    return AB_OK;
}
