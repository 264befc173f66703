/* holdback.c -- the watch after promotion (see holdback.h for the test and
 * its reference). */
#include "core/holdback.h"

#include <math.h>
#include <string.h>

#include "core/analysis.h"

void
core_holdback_tests_init(struct core_holdback_tests *t)
{
    for (size_t m = 0; m < CORE_EVAL_MAX_METRICS; m++)
        stats_msprt_state_init(&t->worse[m]);
    t->alerted = false;
}

/* The statistics of units new since the baseline. A baseline above the
 * current value (statistics recomputed from scratch since) is ignored. */
static struct core_eval_stats
since(const struct core_eval_stats *now, const struct core_eval_stats *base)
{
    if (base == NULL || base->n > now->n || base->sum_sq > now->sum_sq ||
        base->den_sum_sq > now->den_sum_sq)
        return *now;
    struct core_eval_stats d = {
        now->n - base->n,
        now->sum - base->sum,
        now->sum_sq - base->sum_sq,
        now->den_sum - base->den_sum,
        now->den_sum_sq - base->den_sum_sq,
        now->cross_sum - base->cross_sum,
        now->units_with_events - base->units_with_events};
    return d;
}

static size_t
tested_metrics(const struct core_experiment *e)
{
    size_t n = 0;
    for (size_t m = 0; m < e->n_metrics; m++)
        n += e->metrics[m].role != CORE_ROLE_SECONDARY;
    return n;
}

/* One metric: false when it has too few units (line->tested false). */
static void
test_metric(const struct core_experiment *e,
            const struct core_holdback_config *c, size_t mi, size_t prev,
            size_t prom, const struct core_eval_stats *now,
            const struct core_eval_stats *base, double alpha,
            struct core_holdback_tests *t, struct core_holdback_line *l)
{
    const struct core_metric *m = &e->metrics[mi];
    size_t ip = mi * CORE_EVAL_MAX_ARMS + prev;
    size_t iq = mi * CORE_EVAL_MAX_ARMS + prom;
    struct core_eval_stats sp = since(&now[ip], base ? &base[ip] : NULL);
    struct core_eval_stats sq = since(&now[iq], base ? &base[iq] : NULL);
    memset(l, 0, sizeof(*l));
    l->metric = mi;
    l->n_previous = sp.n;
    l->n_promoted = sq.n;
    l->p_running = t->worse[mi].p_abs;
    l->ci_low = -INFINITY;
    l->ci_high = INFINITY;
    struct stats_summary a, b;
    if (sp.n < c->min_units || sq.n < c->min_units ||
        core_eval_summary(m, &sp, 0, &a) != AB_OK ||
        core_eval_summary(m, &sq, 0, &b) != AB_OK)
        return;
    l->mean_previous = a.mean;
    l->mean_promoted = b.mean;
    l->effect = b.mean - a.mean;
    /* "worse": lower when higher is better, higher when lower is better */
    struct stats_msprt_opts o = {alpha, c->tuning, core_guardrail_harm_side(m),
                                 0, 0};
    struct stats_msprt_result r;
    /* binary: the pooled variance, as the engine's harm test */
    if (core_analysis_msprt(m->kind, &a, &b, &o, true, &t->worse[mi], &r,
                            NULL) != AB_OK)
        return;
    l->tested = true;
    l->ci_low = r.abs.ci_low_running;
    l->ci_high = r.abs.ci_high_running;
    l->p_running = r.abs.p_running;
    l->reversed = r.abs.p_running <= alpha;
}

ab_status
core_holdback_evaluate(const struct core_experiment *e,
                       const struct core_holdback_config *c, size_t previous,
                       size_t promoted, const struct core_eval_stats *stats_now,
                       const struct core_eval_stats *stats_base,
                       int64_t started_ms, int64_t now_ms,
                       struct core_holdback_tests *tests,
                       struct core_holdback_result *out)
{
    if (e == NULL || c == NULL || stats_now == NULL || tests == NULL ||
        out == NULL || previous >= e->n_arms || promoted >= e->n_arms ||
        previous == promoted || e->n_metrics > CORE_EVAL_MAX_METRICS ||
        e->n_arms > CORE_EVAL_MAX_ARMS || c->share == 0 ||
        c->share >= CORE_SCALE || !(c->alpha > 0 && c->alpha <= 0.5) ||
        c->period_s < 0)
        return AB_EINVAL;
    struct core_holdback_result r;
    memset(&r, 0, sizeof(r));
    size_t n_tested = tested_metrics(e);
    r.alpha_each = n_tested ? c->alpha / (double)n_tested : c->alpha;
    r.reversed_metric = SIZE_MAX;
    for (size_t mi = 0; mi < e->n_metrics; mi++) {
        if (e->metrics[mi].role == CORE_ROLE_SECONDARY)
            continue;
        struct core_holdback_line *l = &r.lines[r.n_lines++];
        test_metric(e, c, mi, previous, promoted, stats_now, stats_base,
                    r.alpha_each, tests, l);
        if (l->reversed && r.reversed_metric == SIZE_MAX)
            r.reversed_metric = mi;
    }
    bool reversed = r.reversed_metric != SIZE_MAX;
    r.new_alert = reversed && !tests->alerted;
    if (reversed || tests->alerted) {
        tests->alerted = true;
        r.verdict = CORE_HOLDBACK_REVERSED;
    } else if (c->period_s > 0 && now_ms - started_ms >= c->period_s * 1000)
        r.verdict = CORE_HOLDBACK_ENDED;
    else
        r.verdict = CORE_HOLDBACK_HOLDING;
    *out = r;
    return AB_OK;
}
