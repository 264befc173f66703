/* rollout_eval.c -- the evidence of a rollout tick (see rollout_eval.h for
 * the tests and their references). */
#include "core/rollout_eval.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/analysis.h"
#include "core/metric_kind.h"
#include "stats/delta.h"
#include "stats/power.h"
#include "stats/srm.h"

void
core_eval_tests_init(struct core_eval_tests *t)
{
    for (size_t m = 0; m < CORE_EVAL_MAX_METRICS; m++)
        for (size_t a = 0; a < CORE_EVAL_MAX_ARMS; a++) {
            stats_msprt_state_init(&t->primary[m][a]);
            stats_msprt_state_init(&t->harm[m][a]);
            stats_msprt_state_init(&t->safe[m][a]);
        }
    t->errors_p = 1;
    t->srm_p = 1;
    t->srm_version = 0;
}

static const struct core_eval_stats *
at(const struct core_eval_input *in, size_t m, size_t a)
{
    return &in->stats[m * CORE_EVAL_MAX_ARMS + a];
}

ab_status
core_eval_summary(const struct core_metric *m,
                  const struct core_eval_stats *s, double min_units,
                  struct stats_summary *out)
{
    enum stats_reason why;
    if (s->n < min_units)
        return AB_ENUMERIC;
    /* the analysis' own per-kind summary (core/metric_kind.h, under
     * core_analysis_arm_summary()), as GET /results; without its check of
     * binary sums against n, which the engine's inputs (and the simulator's
     * normal draws) need not pass */
    struct stats_ratio_moments rm = {s->n,       s->sum,
                                     s->sum_sq,  s->den_sum,
                                     s->den_sum_sq, s->cross_sum};
    return core_metric_kind_summary(m->kind, &rm, out, &why);
}

/* Binary metrics are tested against "no difference" with the pooled
 * variance p (1 - p) in both arms (the score / pooled z test, "pooled" in
 * core_analysis_msprt()): with the per-arm variance, an arm with few
 * successes gets a small variance and a spuriously large z exactly when
 * its rate is low, which for a small canary arm rolled harmless candidates
 * back well above the nominal rate (simulated: 4 % of rollouts for a 2 %
 * budget). The non-inferiority (safety) test keeps the per-arm variances. */
#define POOLED true

static struct core_eval_line *
add_line(struct core_eval_report *rep)
{
    if (rep->n_lines == AB_ARRAY_LEN(rep->lines))
        return NULL;
    struct core_eval_line *l = &rep->lines[rep->n_lines++];
    memset(l, 0, sizeof(*l));
    return l;
}

/* Tests that may roll back: every guardrail x treatment arm, and the
 * error-count test. Each gets rollback_alpha / their number (Bonferroni),
 * so the probability that a harmless candidate is rolled back stays at or
 * below rollback_alpha over the whole rollout. */
static double
harm_tests(const struct core_experiment *e, const struct core_rollout_config *c)
{
    double n = 0;
    for (size_t m = 0; m < e->n_metrics; m++)
        if (e->metrics[m].role == CORE_ROLE_GUARDRAIL)
            n += (double)(e->n_arms - 1);
    if (c->error_metric[0] != '\0' && e->n_arms == 2 &&
        e->strategy != CORE_STRATEGY_SHADOW)
        n += 1;
    if (e->strategy != CORE_STRATEGY_AB) /* a worse primary rolls back */
        for (size_t m = 0; m < e->n_metrics; m++)
            if (e->metrics[m].role == CORE_ROLE_PRIMARY) {
                n += (double)(e->n_arms - 1);
                break;
            }
    return n > 0 ? n : 1;
}

double
core_rollout_alpha_harm(const struct core_experiment *e,
                        const struct core_rollout_config *c)
{
    return c->rollback_alpha / harm_tests(e, c);
}

enum stats_side
core_guardrail_harm_side(const struct core_metric *m)
{
    return m->direction == CORE_DECREASE ? STATS_SIDE_GREATER
                                         : STATS_SIDE_LESS;
}

static void
primary(const struct core_experiment *e, const struct core_rollout_config *c,
        const struct core_eval_input *in, struct core_eval_tests *t,
        struct core_rollout_evidence *ev, struct core_eval_report *rep)
{
    ev->primary = CORE_VERDICT_NONE;
    ev->best_arm = e->n_arms;
    size_t mi = e->n_metrics;
    for (size_t i = 0; i < e->n_metrics && mi == e->n_metrics; i++)
        if (e->metrics[i].role == CORE_ROLE_PRIMARY)
            mi = i;
    if (mi == e->n_metrics || /* a quantile primary is reported, not tested */
        e->metrics[mi].kind == CORE_METRIC_QUANTILE)
        return;
    const struct core_metric *m = &e->metrics[mi];
    struct stats_summary sc;
    if (core_eval_summary(m, at(in, mi, e->control),
                          (double)c->min_test_units, &sc) != AB_OK)
        return;
    double k = e->n_arms > 1 ? (double)(e->n_arms - 1) : 1;
    size_t tested = 0, wins = 0, harms = 0;
    double best = -INFINITY;
    for (size_t a = 0; a < e->n_arms; a++) {
        struct stats_summary st;
        if (a == e->control ||
            core_eval_summary(m, at(in, mi, a), (double)c->min_test_units,
                              &st) != AB_OK)
            continue;
        struct stats_msprt_opts o = {c->alpha / k, c->tuning, STATS_SIDE_TWO,
                                     0, 0};
        struct stats_msprt_result r;
        if (core_analysis_msprt(m->kind, &sc, &st, &o, POOLED,
                                &t->primary[mi][a], &r, NULL) != AB_OK)
            continue;
        tested++;
        enum core_verdict v = CORE_VERDICT_OPEN;
        if (r.abs.reject) {
            bool up = r.abs.ci_low_running > 0;
            v = (m->direction == CORE_INCREASE) == up ? CORE_VERDICT_WIN
                                                      : CORE_VERDICT_HARM;
        }
        /* where a worse primary rolls back (every strategy but ab), harm
         * is one of the harm tests: the two-sided running p at 2 x its
         * share of rollback_alpha is the one-sided test at that share */
        if (v == CORE_VERDICT_HARM && e->strategy != CORE_STRATEGY_AB &&
            !(r.abs.p_running <= 2 * c->rollback_alpha / harm_tests(e, c)))
            v = CORE_VERDICT_OPEN;
        double good = m->direction == CORE_INCREASE ? r.abs.estimate
                                                    : -r.abs.estimate;
        if (v == CORE_VERDICT_WIN) {
            wins++;
            if (good > best) {
                best = good;
                ev->best_arm = a;
            }
        } else if (v == CORE_VERDICT_HARM)
            harms++;
        struct core_eval_line *l = add_line(rep);
        if (l) {
            *l = (struct core_eval_line){CORE_EVAL_PRIMARY,
                                         mi,
                                         a,
                                         sc.mean,
                                         r.abs.estimate,
                                         r.abs.se,
                                         r.abs.ci_low_running,
                                         r.abs.ci_high_running,
                                         r.abs.p_running,
                                         NAN,
                                         0,
                                         v};
        }
    }
    if (tested == 0)
        return;
    ev->primary = wins > 0              ? CORE_VERDICT_WIN
                  : harms == tested     ? CORE_VERDICT_HARM
                                        : CORE_VERDICT_OPEN;
}

static void
guardrails(const struct core_experiment *e,
           const struct core_rollout_config *c,
           const struct core_eval_input *in, struct core_eval_tests *t,
           struct core_rollout_evidence *ev, struct core_eval_report *rep)
{
    size_t n = 0, safe = 0, harm = 0;
    double alpha_harm = c->rollback_alpha / harm_tests(e, c);
    for (size_t mi = 0; mi < e->n_metrics; mi++) {
        const struct core_metric *m = &e->metrics[mi];
        if (m->role != CORE_ROLE_GUARDRAIL ||
            m->kind == CORE_METRIC_QUANTILE) /* core/quantile_guard.h */
            continue;
        for (size_t a = 0; a < e->n_arms; a++) {
            if (a == e->control)
                continue;
            n++;
            struct stats_summary sc, st;
            if (core_eval_summary(m, at(in, mi, e->control),
                                  (double)c->min_test_units, &sc) != AB_OK ||
                core_eval_summary(m, at(in, mi, a), (double)c->min_test_units,
                                  &st) != AB_OK)
                continue;
            bool lower_better = m->direction == CORE_DECREASE;
            double bound = c->margin * fabs(sc.mean);
            struct stats_msprt_opts oh = {
                alpha_harm, c->tuning, core_guardrail_harm_side(m), 0, 0};
            struct stats_msprt_result rh;
            if (core_analysis_msprt(m->kind, &sc, &st, &oh, POOLED,
                                    &t->harm[mi][a], &rh, NULL) != AB_OK)
                continue;
            bool harmed = lower_better ? rh.abs.ci_low_running > bound
                                       : rh.abs.ci_high_running < -bound;
            /* non-inferiority by the margin, in metric units: H0 is
             * "worse by bound or more" (msprt.h: LESS d0 = +margin_abs,
             * GREATER d0 = -margin_abs) */
            struct stats_msprt_opts os = {
                c->alpha, c->tuning,
                lower_better ? STATS_SIDE_LESS : STATS_SIDE_GREATER, bound,
                0};
            struct stats_msprt_result rs;
            double p_safe = NAN;
            bool proven = false;
            if (core_analysis_msprt(m->kind, &sc, &st, &os, !POOLED,
                                    &t->safe[mi][a], &rs, NULL) == AB_OK) {
                proven = rs.abs.reject != 0;
                p_safe = rs.abs.p_running;
            }
            enum core_verdict v = harmed   ? CORE_VERDICT_HARM
                                  : proven ? CORE_VERDICT_WIN
                                           : CORE_VERDICT_OPEN;
            if (harmed) {
                harm++;
                if (ev->failed_guardrail[0] == '\0') {
                    size_t len = strlen(m->name);
                    if (len >= sizeof(ev->failed_guardrail))
                        len = sizeof(ev->failed_guardrail) - 1;
                    memcpy(ev->failed_guardrail, m->name, len);
                    ev->failed_guardrail[len] = '\0';
                    snprintf(ev->failed_test, sizeof(ev->failed_test),
                             "guardrail \"%s\" failed (%s)",
                             ev->failed_guardrail,
                             lower_better ? "significantly higher"
                                          : "significantly lower");
                }
            } else if (proven)
                safe++;
            struct core_eval_line *l = add_line(rep);
            if (l)
                *l = (struct core_eval_line){CORE_EVAL_GUARDRAIL,
                                             mi,
                                             a,
                                             sc.mean,
                                             rh.abs.estimate,
                                             rh.abs.se,
                                             rh.abs.ci_low_running,
                                             rh.abs.ci_high_running,
                                             p_safe,
                                             rh.abs.p_running,
                                             bound,
                                             v};
        }
    }
    ev->guardrails = n == 0         ? CORE_VERDICT_NONE
                     : harm > 0     ? CORE_VERDICT_HARM
                     : safe == n    ? CORE_VERDICT_WIN
                                    : CORE_VERDICT_OPEN;
}

static void
errors(const struct core_experiment *e, const struct core_rollout_config *c,
       const struct core_eval_input *in,
       struct core_eval_tests *t, struct core_rollout_evidence *ev,
       struct core_eval_report *rep)
{
    struct stats_count_period p[256];
    size_t k = 0;
    for (size_t i = 0; i < in->n_errors && k < AB_ARRAY_LEN(p); i++)
        if (in->errors[i].share_t > 0 && in->errors[i].share_t < 1)
            p[k++] = in->errors[i];
    if (k == 0)
        return;
    struct stats_counts_result r;
    if (stats_counts_test(p, k, 0, STATS_SIDE_GREATER, &r, NULL) != AB_OK)
        return;
    if (r.p_value < t->errors_p)
        t->errors_p = r.p_value;
    ev->errors_failed = t->errors_p <= c->rollback_alpha / harm_tests(e, c);
    if (ev->errors_failed && ev->failed_test[0] == '\0')
        snprintf(ev->failed_test, sizeof(ev->failed_test),
                 "error metric \"%s\" failed (error count significantly "
                 "higher)", c->error_metric);
    rep->errors_tested = true;
    rep->errors_c = r.errors_c;
    rep->errors_t = r.errors_t;
    rep->errors_p = r.p_value;
    rep->errors_p_running = t->errors_p;
}

static void
traffic(const struct core_experiment *e, const struct core_eval_input *in,
        struct core_eval_tests *t, struct core_rollout_evidence *ev,
        struct core_eval_report *rep)
{
    double c[CORE_EVAL_MAX_ARMS], w[CORE_EVAL_MAX_ARMS], min_live = INFINITY;
    size_t live = 0;
    for (size_t a = 0; a < e->n_arms; a++) {
        c[a] = in->srm_units ? in->srm_units[a] : 0;
        w[a] = (double)e->arms[a].weight;
        if (w[a] > 0) {
            live++;
            if (c[a] < min_live)
                min_live = c[a];
        }
    }
    ev->srm_p = 1;
    ev->srm_mismatch = false;
    if (t->srm_version != in->weights_version) {
        t->srm_version = in->weights_version;
        t->srm_p = 1;
    }
    if (live == 2 && e->n_arms == 2) {
        /* anytime-valid: units of the candidate ~ Binomial(N, share) */
        size_t cand = e->control == 0 ? 1 : 0;
        struct stats_count_period p = {c[e->control], c[cand],
                                       w[cand] / (w[0] + w[1])};
        struct stats_counts_result r;
        if (stats_counts_test(&p, 1, 0, STATS_SIDE_TWO, &r, NULL) == AB_OK) {
            if (r.p_value < t->srm_p)
                t->srm_p = r.p_value;
            ev->srm_p = t->srm_p;
            ev->srm_mismatch = t->srm_p < STATS_SRM_THRESHOLD;
        }
    } else if (live >= 2) {
        struct stats_srm srm;
        if (stats_srm_test(c, w, e->n_arms, 0, &srm, NULL) == AB_OK) {
            ev->srm_p = srm.p_value;
            ev->srm_mismatch = srm.mismatch != 0;
            rep->srm_chi2 = srm.chi2;
        }
    }
    /* blue-green and shadow compare arms that do not all take live
     * traffic: count units with data instead */
    if (e->strategy == CORE_STRATEGY_BLUE_GREEN ||
        e->strategy == CORE_STRATEGY_SHADOW || live < 2) {
        min_live = INFINITY;
        for (size_t a = 0; a < e->n_arms; a++) {
            double best = 0;
            for (size_t m = 0; m < e->n_metrics; m++)
                if (at(in, m, a)->units_with_events > best)
                    best = at(in, m, a)->units_with_events;
            if (best < min_live)
                min_live = best;
        }
    }
    ev->min_units = isfinite(min_live) ? min_live : 0;
    ev->total_units = in->total_units;
}

/* The units per arm at which the harm test of metric m has plan_power at
 * the stated harm (rollout.h), from the control's observed statistics and
 * the observed candidate/control ratio. false when it cannot be planned
 * yet (too few units to estimate the control). */
static bool
plan_metric(const struct core_experiment *e,
            const struct core_rollout_config *c,
            const struct core_eval_input *in, size_t mi, size_t cand,
            double alpha_harm, struct core_eval_plan *p)
{
    const struct core_metric *m = &e->metrics[mi];
    const struct core_eval_stats *sc = at(in, mi, e->control);
    const struct core_eval_stats *st = at(in, mi, cand);
    memset(p, 0, sizeof(*p));
    p->metric = mi;
    p->have_control = sc->n;
    p->have_candidate = st->n;
    p->units_control = p->units_candidate = INFINITY;
    struct stats_summary s;
    if (core_eval_summary(m, sc, (double)c->min_test_units, &s) != AB_OK ||
        !(st->n > 0))
        return false;
    double ratio = st->n / sc->n;
    struct stats_power_plan pl = {0};
    pl.alpha = alpha_harm;
    pl.power = c->plan_power;
    pl.ratio = ratio;
    pl.side = core_guardrail_harm_side(m);
    double sign = pl.side == STATS_SIDE_GREATER ? 1 : -1;
    if (m->kind == CORE_METRIC_BINARY) {
        /* the bad outcome's rate times plan_error_ratio. No bad outcome
         * in either arm: nothing to multiply, the plan is min_test_units;
         * none in the control only: planned at half an outcome (0.5 / n),
         * which keeps the step waiting while the harm test looks */
        bool dec = m->direction == CORE_DECREASE;
        double bad_c = dec ? sc->sum : sc->n - sc->sum;
        double bad_tn = dec ? st->sum : st->n - st->sum;
        if (bad_c + bad_tn == 0) {
            p->units_control = p->units_candidate = (double)c->min_test_units;
            p->reached = sc->n >= p->units_control &&
                         st->n >= p->units_candidate;
            return true;
        }
        double bad = bad_c > 0 ? bad_c / sc->n : 0.5 / sc->n;
        if (bad > 0.5)
            bad = 0.5;
        double bad_t = bad * c->plan_error_ratio;
        if (bad_t > 1)
            bad_t = 1;
        pl.sd_c = sqrt(bad * (1 - bad));
        pl.sd_t = sqrt(bad_t * (1 - bad_t));
        pl.mde = sign * (bad_t - bad - c->margin * bad);
        if (!(fabs(pl.mde) > 0))
            pl.mde = sign * (bad_t - bad);
    } else {
        double sd = sqrt(s.var);
        pl.sd_c = pl.sd_t = sd;
        pl.mde = sign * c->plan_regression * fabs(s.mean);
    }
    p->harm_abs = pl.mde;
    double n_power = 0, n_exp = 0;
    if (!(pl.sd_c > 0 || pl.sd_t > 0) || !(fabs(pl.mde) > 0)) {
        /* nothing varies (or a zero mean): the test needs no more units */
        p->units_control = p->units_candidate = (double)c->min_test_units;
    } else if (stats_power_n_msprt(&pl, c->tuning, &n_power, &n_exp, NULL) ==
               AB_OK) {
        p->units_control = ceil(n_power);
        p->units_candidate = ceil(n_power * ratio);
    } else {
        return false;
    }
    if (p->units_control < (double)c->min_test_units)
        p->units_control = (double)c->min_test_units;
    if (p->units_candidate < (double)c->min_test_units)
        p->units_candidate = (double)c->min_test_units;
    p->reached = sc->n >= p->units_control && st->n >= p->units_candidate;
    return true;
}

/* Whether every check that may roll back was informative (rollout.h). */
static void
plan(const struct core_experiment *e, const struct core_rollout_config *c,
     const struct core_eval_input *in, struct core_rollout_evidence *ev,
     struct core_eval_report *rep)
{
    ev->informative = true;
    ev->planned_units = 0;
    if (e->n_arms != 2)
        return; /* plans are for two-arm rollouts */
    size_t cand = core_rollout_candidate(e);
    double alpha_harm = c->rollback_alpha / harm_tests(e, c);
    for (size_t mi = 0; mi < e->n_metrics; mi++) {
        const struct core_metric *m = &e->metrics[mi];
        if ((m->role != CORE_ROLE_GUARDRAIL &&
             strcmp(m->name, c->error_metric) != 0) ||
            m->kind == CORE_METRIC_QUANTILE) /* no mean-based plan */
            continue;
        struct core_eval_plan *p = &rep->plans[rep->n_plans];
        bool ok = plan_metric(e, c, in, mi, cand, alpha_harm, p);
        rep->n_plans++;
        if (!ok || !p->reached)
            ev->informative = false;
        if (ok && isfinite(p->units_control) &&
            p->units_control > ev->planned_units)
            ev->planned_units = p->units_control;
    }
}

ab_status
core_rollout_evaluate(const struct core_experiment *e,
                      const struct core_rollout_config *c,
                      const struct core_eval_input *in,
                      struct core_eval_tests *tests,
                      struct core_rollout_evidence *ev,
                      struct core_eval_report *rep)
{
    if (e->n_arms > CORE_EVAL_MAX_ARMS || e->n_metrics > CORE_EVAL_MAX_METRICS)
        return AB_EINVAL;
    memset(ev, 0, sizeof(*ev));
    memset(rep, 0, sizeof(*rep));
    ev->now_ms = in->now_ms;
    traffic(e, in, tests, ev, rep);
    primary(e, c, in, tests, ev, rep);
    guardrails(e, c, in, tests, ev, rep);
    if (c->error_metric[0] != '\0' && e->n_arms == 2 &&
        e->strategy != CORE_STRATEGY_SHADOW)
        errors(e, c, in, tests, ev, rep);
    rep->alpha_harm = c->rollback_alpha / harm_tests(e, c);
    plan(e, c, in, ev, rep);
    if (ev->primary == CORE_VERDICT_HARM && ev->failed_test[0] == '\0')
        snprintf(ev->failed_test, sizeof(ev->failed_test),
                 "the primary metric is significantly worse");
    return AB_OK;
}
