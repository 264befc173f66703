/* rollout.h -- the rollout state machine and decision rules. Pure: the
 * caller (service/rollout_job.c, on the decision leader) measures, this decides.
 *
 * Every analysis tick, for each running experiment, the caller gathers the
 * evidence (always-valid tests on the primary and guardrail metrics, the
 * error-count test, sample-ratio mismatch, units per arm, time in the
 * current step, approvals) and asks core_rollout_decide() what to do:
 *
 *   ab          fixed split. Significant primary win -> promote the winner
 *               (auto_promote) or conclude (stop); significant harm, or a
 *               failed guardrail -> stop; max duration / units reached
 *               without a verdict -> stop (inconclusive).
 *   canary      the candidate's share follows steps (default 1, 5, 10, 25,
 *               50, 100 %). A failed guardrail or error-count test rolls
 *               back at once. A step advances when it has run step_min_s
 *               and has step_min_units per arm (and, with manual approval,
 *               was approved); past the last step the candidate is
 *               promoted. Adaptive: when every guardrail is already proven
 *               non-inferior, the next step is skipped. A gate that demands
 *               evidence pauses when step_max_s passes without it.
 *   blue_green  the new arm takes no live traffic during the smoke period
 *               (its checks run on forced / shadow units); then it takes
 *               all of it at once ("switch"); a guardrail failure within
 *               rollback_window_s rolls back instantly; after the window
 *               it is promoted.
 *   shadow      control serves; the shadow arm runs on mirrored traffic.
 *               A failed guardrail stops; after shadow_min_s and
 *               shadow_min_units with the guardrails holding, the rollout
 *               continues as a canary, a blue-green switch, or stops, as
 *               configured ("then").
 *   all         SRM (p < 0.001) pauses; no traffic for no_traffic_s pauses.
 */
#ifndef CORE_ROLLOUT_H
#define CORE_ROLLOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/experiment.h"
#include "core/shadow.h"
#include "lib/status.h"

#define CORE_ROLLOUT_MAX_STEPS 16

enum core_rollout_then { CORE_THEN_CANARY, CORE_THEN_BLUE_GREEN, CORE_THEN_STOP };

struct core_rollout_config {
    double alpha;            /* always-valid tests, default 0.05 */
    double rollback_alpha;   /* the harm tests that roll back or stop
                                (guardrails, error count) share it
                                (Bonferroni): the probability that a
                                harmless candidate is ever rolled back,
                                however long it runs; default 0.02 */
    double tuning;           /* mSPRT n*, default 5000 */
    double margin;           /* guardrail non-inferiority margin, relative
                                (0.02 = 2 % worse is tolerated), default 0 */
    bool auto_promote;       /* ab: promote the winner, default true */
    int64_t max_duration_s;  /* ab: stop inconclusive after, 0 = never */
    int64_t max_units;       /* ab: ... or after this many units per arm */
    uint32_t steps[CORE_ROLLOUT_MAX_STEPS]; /* candidate share, millionths */
    size_t n_steps;
    int64_t step_min_s;      /* default 60 */
    int64_t step_min_units;  /* per arm, default 100 */
    int64_t step_max_s;      /* with require_evidence; default 0 = none */
    bool require_evidence;   /* a step needs guardrails proven safe */
    bool manual_approval;    /* each step waits for POST .../approve */
    bool adaptive;           /* skip a step when the evidence is strong */
    char error_metric[CORE_KEY_MAX + 1]; /* counted errors, "" = none */
    int64_t smoke_s;         /* blue_green, default 60 */
    int64_t rollback_window_s; /* blue_green, default 600 */
    int64_t shadow_min_s;    /* shadow, default 60 */
    int64_t shadow_min_units; /* shadow, default 100 */
    enum core_rollout_then then; /* shadow, default canary */
    int64_t no_traffic_s;    /* pause when no new units for this long,
                                default 0 = never */
    int64_t min_test_units;  /* units per arm before a mean test counts:
                                the always-valid bounds are asymptotic and
                                a variance from a handful of units is not
                                to be trusted; default 100 */
    /* Planned power of the checks that may roll a canary back. The last
     * partial step (the one before the candidate takes all traffic) waits,
     * besides step_min_s and step_min_units, until every guardrail and the
     * error metric has the units per arm at which its harm test rejects
     * the stated harm with probability plan_power (stats_power_n_msprt at
     * the test's own alpha and tuning, from the control's observed rate or
     * variance). The stated harm: a binary metric whose bad outcome is
     * plan_error_ratio times as frequent as the control's (2: twice the
     * error rate); any other guardrail worse by margin + plan_regression
     * of the control's mean (0.10: 10 %). */
    double plan_power;       /* default 0.99 */
    double plan_error_ratio; /* default 2 */
    double plan_regression;  /* default 0.10 */
    /* The watch after promotion (core/holdback.h; two arms only): the
     * decision that would promote starts a holdback instead, the previous
     * version keeping holdback_share for holdback_s seconds. */
    uint32_t holdback_share; /* millionths, default 0 = off */
    int64_t holdback_s;      /* default 86400; 0 = until a person ends it */
    double holdback_alpha;   /* default 0.05 */
    struct core_shadow_config paired; /* shadow: the paired checks
                                         (core/shadow.h), "paired" */
};

/* Defaults for a strategy (see above). */
void core_rollout_config_default(struct core_rollout_config *c);

/* Where a rollout is; kept in PostgreSQL by the caller between ticks. */
enum core_rollout_phase {
    CORE_PHASE_RAMP,      /* canary steps; ab running; bandit */
    CORE_PHASE_WAITING,   /* canary: gates passed, waiting for approval */
    CORE_PHASE_SMOKE,     /* blue_green before the switch */
    CORE_PHASE_SWITCHED,  /* blue_green after the switch, in the window */
    CORE_PHASE_SHADOW,    /* shadow comparison */
    CORE_PHASE_HOLDBACK   /* promoted, the previous version kept on a
                             holdback (core/holdback.h) */
};

struct core_rollout_state {
    enum core_rollout_phase phase;
    size_t step;              /* canary: index into steps */
    int64_t phase_started_ms; /* when the current step / phase began */
    bool approved;            /* the current step was approved */
    int64_t last_units;       /* units seen at the last tick (no traffic) */
    int64_t last_units_ms;    /* when they last increased */
};

enum core_verdict {
    CORE_VERDICT_NONE,  /* not enough data for the test */
    CORE_VERDICT_OPEN,  /* inconclusive so far */
    CORE_VERDICT_WIN,   /* significantly better (primary) / proven safe
                           (guardrail) */
    CORE_VERDICT_HARM   /* significantly worse / guardrail failed */
};

struct core_rollout_evidence {
    int64_t now_ms;
    double min_units;          /* exposed units of the smallest live arm */
    double total_units;        /* all exposed units */
    bool srm_mismatch;
    double srm_p;
    enum core_verdict primary; /* candidate (or best arm) vs control */
    size_t best_arm;           /* ab: the arm with the significant win */
    enum core_verdict guardrails; /* HARM if any failed, WIN if all proven
                                     safe, else OPEN / NONE */
    char failed_guardrail[CORE_KEY_MAX + 1];
    bool errors_failed;        /* counting-process test rejected */
    char failed_test[CORE_KEY_MAX + 96]; /* what failed, for the reason */
    bool informative;          /* every harm test reached plan_power at
                                  the stated harm (see config) */
    double planned_units;      /* the largest planned units per arm (the
                                  control's) among those tests, 0 if none */
};

enum core_rollout_action {
    CORE_ACTION_NONE,
    CORE_ACTION_ADVANCE,   /* new weights: the next step / the switch */
    CORE_ACTION_WAIT,      /* gates passed; waiting for approval */
    CORE_ACTION_PROMOTE,   /* serve promote_arm to every unit */
    CORE_ACTION_ROLLBACK,  /* serve control to every unit */
    CORE_ACTION_PAUSE,
    CORE_ACTION_STOP,
    CORE_ACTION_CONVERT    /* shadow -> canary / blue_green */
};

struct core_rollout_decision {
    enum core_rollout_action action;
    char reason[CORE_KEY_MAX + 224]; /* human; names what failed */
    uint32_t candidate_weight; /* ADVANCE/CONVERT: new share, millionths */
    size_t promote_arm;       /* PROMOTE */
    struct core_rollout_state next; /* the state after the action */
    enum core_strategy convert_to; /* CONVERT */
};

const char *core_rollout_action_name(enum core_rollout_action a);
const char *core_rollout_phase_name(enum core_rollout_phase p);
ab_status core_rollout_phase_parse(const char *s, enum core_rollout_phase *out);

/* The initial state of a strategy at start (phase and, for canary, step 0
 * whose share the caller applies). */
void core_rollout_state_init(const struct core_experiment *e,
                             const struct core_rollout_config *c,
                             int64_t now_ms, struct core_rollout_state *st);

/* The candidate arm of a two-arm strategy: the non-control arm. */
size_t core_rollout_candidate(const struct core_experiment *e);

/* Decide. Writes *out always (action NONE when nothing is due). */
void core_rollout_decide(const struct core_experiment *e,
                         const struct core_rollout_config *c,
                         const struct core_rollout_state *st,
                         const struct core_rollout_evidence *ev,
                         struct core_rollout_decision *out);

#endif /* CORE_ROLLOUT_H */
