/* rollout.c -- rollout rules (see rollout.h for the rules in prose).
 *
 * The shape follows Argo Rollouts and Flagger (steps gated by analysis,
 * instant abort on a failed check) with the analysis replaced by
 * always-valid sequential tests, so the gates may be checked at every tick
 * without inflating the error rates (Johari et al. 2017).
 */
#include "core/rollout.h"

#include <stdio.h>
#include <string.h>

void
core_rollout_config_default(struct core_rollout_config *c)
{
    /* the fields not named are 0 or off (holdback_share 0: no holdback) */
    *c = (struct core_rollout_config){
        .alpha = 0.05,
        .rollback_alpha = 0.02,
        .tuning = 5000,
        .auto_promote = true,
        .steps = {10000, 50000, 100000, 250000, 500000, 1000000},
        .n_steps = 6,
        .step_min_s = 60,
        .step_min_units = 100,
        .smoke_s = 60,
        .rollback_window_s = 600,
        .shadow_min_s = 60,
        .shadow_min_units = 100,
        .then = CORE_THEN_CANARY,
        .min_test_units = 100,
        .plan_power = 0.99,
        .plan_error_ratio = 2,
        .plan_regression = 0.10,
        .holdback_s = 86400,
        .holdback_alpha = 0.05,
    };
    core_shadow_config_default(&c->paired);
}

const char *
core_rollout_action_name(enum core_rollout_action a)
{
    switch (a) {
    case CORE_ACTION_NONE: return "none";
    case CORE_ACTION_ADVANCE: return "advance";
    case CORE_ACTION_WAIT: return "wait_approval";
    case CORE_ACTION_PROMOTE: return "promote";
    case CORE_ACTION_ROLLBACK: return "rollback";
    case CORE_ACTION_PAUSE: return "pause";
    case CORE_ACTION_STOP: return "stop";
    case CORE_ACTION_CONVERT: return "convert";
    }
    return "none";
}

static const char *const phase_names[] = {"ramp", "waiting_approval",
                                          "smoke", "switched", "shadow",
                                          "holdback"};

const char *
core_rollout_phase_name(enum core_rollout_phase p)
{
    return (size_t)p < AB_ARRAY_LEN(phase_names) ? phase_names[p] : "ramp";
}

ab_status
core_rollout_phase_parse(const char *s, enum core_rollout_phase *out)
{
    for (size_t i = 0; i < AB_ARRAY_LEN(phase_names); i++)
        if (strcmp(s, phase_names[i]) == 0) {
            *out = (enum core_rollout_phase)i;
            return AB_OK;
        }
    return AB_EINVAL;
}

size_t
core_rollout_candidate(const struct core_experiment *e)
{
    for (size_t i = 0; i < e->n_arms; i++)
        if (i != e->control)
            return i;
    return e->control;
}

void
core_rollout_state_init(const struct core_experiment *e,
                        const struct core_rollout_config *c, int64_t now_ms,
                        struct core_rollout_state *st)
{
    (void)c;
    memset(st, 0, sizeof(*st));
    st->phase_started_ms = now_ms;
    st->last_units_ms = now_ms;
    switch (e->strategy) {
    case CORE_STRATEGY_BLUE_GREEN: st->phase = CORE_PHASE_SMOKE; break;
    case CORE_STRATEGY_SHADOW: st->phase = CORE_PHASE_SHADOW; break;
    default: st->phase = CORE_PHASE_RAMP; break;
    }
}

static void
set(struct core_rollout_decision *d, enum core_rollout_action a,
    const char *reason)
{
    d->action = a;
    snprintf(d->reason, sizeof(d->reason), "%s", reason);
}

/* A failed check, named: "guardrail \"latency\" failed ...". */
static void
set_failed(struct core_rollout_decision *d, enum core_rollout_action a,
           const struct core_rollout_evidence *ev, const char *then)
{
    d->action = a;
    snprintf(d->reason, sizeof(d->reason), "%s%s",
             ev->failed_test[0] ? ev->failed_test : "a check failed", then);
}

static bool
elapsed(const struct core_rollout_state *st,
        const struct core_rollout_evidence *ev, int64_t s)
{
    return ev->now_ms - st->phase_started_ms >= s * 1000;
}

static void
new_phase(struct core_rollout_decision *d, enum core_rollout_phase p,
          int64_t now_ms)
{
    d->next.phase = p;
    d->next.phase_started_ms = now_ms;
    d->next.approved = false;
}

static void
decide_ab(const struct core_experiment *e, const struct core_rollout_config *c,
          const struct core_rollout_state *st,
          const struct core_rollout_evidence *ev,
          struct core_rollout_decision *d)
{
    if (ev->guardrails == CORE_VERDICT_HARM || ev->errors_failed) {
        set_failed(d, CORE_ACTION_STOP, ev, "");
        return;
    }
    if (ev->primary == CORE_VERDICT_HARM) {
        set(d, CORE_ACTION_STOP, "the treatment is significantly worse");
        return;
    }
    if (ev->primary == CORE_VERDICT_WIN) {
        if (c->auto_promote && ev->best_arm < e->n_arms) {
            set(d, CORE_ACTION_PROMOTE,
                "significant win on the primary metric");
            d->promote_arm = ev->best_arm;
        } else {
            set(d, CORE_ACTION_STOP,
                "significant win on the primary metric (concluded)");
        }
        return;
    }
    if ((c->max_duration_s > 0 && elapsed(st, ev, c->max_duration_s)) ||
        (c->max_units > 0 && ev->min_units >= (double)c->max_units))
        set(d, CORE_ACTION_STOP,
            "planned end reached without a significant result");
}

static void
decide_canary(const struct core_experiment *e,
              const struct core_rollout_config *c,
              const struct core_rollout_state *st,
              const struct core_rollout_evidence *ev,
              struct core_rollout_decision *d)
{
    if (ev->guardrails == CORE_VERDICT_HARM || ev->errors_failed) {
        set_failed(d, CORE_ACTION_ROLLBACK, ev, "");
        return;
    }
    if (ev->primary == CORE_VERDICT_HARM) {
        set(d, CORE_ACTION_ROLLBACK,
            "the candidate is significantly worse on the primary metric");
        return;
    }
    bool gates = elapsed(st, ev, c->step_min_s) &&
                 ev->min_units >= (double)c->step_min_units;
    bool evidence = ev->guardrails == CORE_VERDICT_WIN;
    if (gates && c->require_evidence && !evidence) {
        if (c->step_max_s > 0 && elapsed(st, ev, c->step_max_s))
            set(d, CORE_ACTION_PAUSE,
                "inconclusive at a gate that demands evidence");
        return;
    }
    if (!gates)
        return;
    /* the candidate is about to take all traffic (or be promoted): from
     * then on nothing compares it with the control, so the last partial
     * step waits (before asking for an approval) until its checks could
     * have caught the stated harm with the planned power */
    bool final = st->step + 1 >= c->n_steps ||
                 c->steps[st->step + 1] >= CORE_SCALE;
    if (final && !ev->informative && st->step < c->n_steps &&
        c->steps[st->step] < CORE_SCALE) {
        if (c->step_max_s > 0 && elapsed(st, ev, c->step_max_s))
            set(d, CORE_ACTION_PAUSE,
                "the last partial step did not reach the planned power "
                "before step_max_s");
        return;
    }
    if (c->manual_approval && !st->approved) {
        if (st->phase != CORE_PHASE_WAITING) {
            set(d, CORE_ACTION_WAIT, "step gates passed; waiting for approval");
            d->next.phase = CORE_PHASE_WAITING;
        }
        return;
    }
    size_t next = st->step + 1;
    if (c->adaptive && evidence && next + 1 < c->n_steps &&
        c->steps[next + 1] < CORE_SCALE)
        next++; /* strong evidence: skip a step, never the last partial one */
    if (next >= c->n_steps) {
        set(d, CORE_ACTION_PROMOTE, "every step passed");
        d->promote_arm = core_rollout_candidate(e);
        return;
    }
    set(d, CORE_ACTION_ADVANCE,
        next > st->step + 1 ? "step passed; evidence strong, step skipped"
                            : "step passed");
    d->candidate_weight = c->steps[next];
    new_phase(d, CORE_PHASE_RAMP, ev->now_ms);
    d->next.step = next;
}

static void
decide_blue_green(const struct core_experiment *e,
                  const struct core_rollout_config *c,
                  const struct core_rollout_state *st,
                  const struct core_rollout_evidence *ev,
                  struct core_rollout_decision *d)
{
    bool failed = ev->guardrails == CORE_VERDICT_HARM || ev->errors_failed ||
                  ev->primary == CORE_VERDICT_HARM;
    if (st->phase == CORE_PHASE_SWITCHED) {
        if (failed) {
            set_failed(d, CORE_ACTION_ROLLBACK, ev,
                       " after the switch: back to the previous arm");
            return;
        }
        if (elapsed(st, ev, c->rollback_window_s)) {
            set(d, CORE_ACTION_PROMOTE,
                "rollback window passed with every check holding");
            d->promote_arm = core_rollout_candidate(e);
        }
        return;
    }
    /* smoke: the new arm takes no live traffic */
    if (failed) {
        set_failed(d, CORE_ACTION_STOP, ev, " in the smoke checks");
        return;
    }
    if (elapsed(st, ev, c->smoke_s) &&
        ev->min_units >= (double)c->step_min_units &&
        (!c->require_evidence || ev->guardrails == CORE_VERDICT_WIN) &&
        (!c->manual_approval || st->approved)) {
        set(d, CORE_ACTION_ADVANCE, "smoke checks passed: switch");
        d->candidate_weight = CORE_SCALE;
        new_phase(d, CORE_PHASE_SWITCHED, ev->now_ms);
    } else if (c->manual_approval && !st->approved &&
               elapsed(st, ev, c->smoke_s) && !st->approved &&
               st->phase != CORE_PHASE_WAITING &&
               ev->min_units >= (double)c->step_min_units) {
        set(d, CORE_ACTION_WAIT, "smoke checks passed; waiting for approval");
    }
}

static void
decide_shadow(const struct core_experiment *e,
              const struct core_rollout_config *c,
              const struct core_rollout_state *st,
              const struct core_rollout_evidence *ev,
              struct core_rollout_decision *d)
{
    (void)e;
    if (ev->guardrails == CORE_VERDICT_HARM || ev->errors_failed ||
        ev->primary == CORE_VERDICT_HARM) {
        set_failed(d, CORE_ACTION_STOP, ev,
                   ": the shadow arm regressed against the serving arm");
        return;
    }
    if (!elapsed(st, ev, c->shadow_min_s) ||
        ev->min_units < (double)c->shadow_min_units)
        return;
    if (c->require_evidence && ev->guardrails != CORE_VERDICT_WIN)
        return;
    switch (c->then) {
    case CORE_THEN_STOP:
        set(d, CORE_ACTION_STOP, "shadow comparison passed");
        break;
    case CORE_THEN_BLUE_GREEN:
        set(d, CORE_ACTION_CONVERT, "shadow comparison passed: blue-green");
        d->convert_to = CORE_STRATEGY_BLUE_GREEN;
        d->candidate_weight = 0;
        new_phase(d, CORE_PHASE_SMOKE, ev->now_ms);
        break;
    case CORE_THEN_CANARY:
        set(d, CORE_ACTION_CONVERT, "shadow comparison passed: canary");
        d->convert_to = CORE_STRATEGY_CANARY;
        d->candidate_weight = c->n_steps ? c->steps[0] : CORE_SCALE / 100;
        new_phase(d, CORE_PHASE_RAMP, ev->now_ms);
        d->next.step = 0;
        break;
    }
}

void
core_rollout_decide(const struct core_experiment *e,
                    const struct core_rollout_config *c,
                    const struct core_rollout_state *st,
                    const struct core_rollout_evidence *ev,
                    struct core_rollout_decision *d)
{
    memset(d, 0, sizeof(*d));
    d->action = CORE_ACTION_NONE;
    d->next = *st;
    /* traffic bookkeeping for the no-traffic rule */
    if ((int64_t)ev->total_units > st->last_units) {
        d->next.last_units = (int64_t)ev->total_units;
        d->next.last_units_ms = ev->now_ms;
    }
    /* a failed guardrail acts before anything else, SRM included: rolling
     * back is always safe, promoting is what SRM must block */
    bool harm = ev->guardrails == CORE_VERDICT_HARM || ev->errors_failed;
    if (!harm && ev->srm_mismatch) {
        set(d, CORE_ACTION_PAUSE, "sample ratio mismatch (p < 0.001)");
        return;
    }
    if (!harm && c->no_traffic_s > 0 &&
        ev->now_ms - d->next.last_units_ms >= c->no_traffic_s * 1000) {
        set(d, CORE_ACTION_PAUSE, "no traffic");
        return;
    }
    switch (e->strategy) {
    case CORE_STRATEGY_AB: decide_ab(e, c, st, ev, d); break;
    case CORE_STRATEGY_CANARY: decide_canary(e, c, st, ev, d); break;
    case CORE_STRATEGY_BLUE_GREEN: decide_blue_green(e, c, st, ev, d); break;
    case CORE_STRATEGY_SHADOW: decide_shadow(e, c, st, ev, d); break;
    case CORE_STRATEGY_BANDIT: break; /* service/reweight.c decides */
    }
}
