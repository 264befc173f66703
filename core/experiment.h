/* experiment.h -- the experiment model: what a snapshot holds and what the
 * assignment reads. Built from the stored JSON definition by
 * codec/experiment_json.c; immutable once it is in a snapshot.
 *
 * Weights, coverage and layer ranges are integers in millionths of traffic
 * (CORE_SCALE), so arm boundaries use exact integer arithmetic.
 */
#ifndef CORE_EXPERIMENT_H
#define CORE_EXPERIMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/status.h"

#define CORE_SCALE 1000000u /* 100 % of traffic */
#define CORE_KEY_MAX 64     /* experiment, arm, metric, layer keys */
#define CORE_UNIT_MAX 256   /* bytes of a unit id */

enum core_strategy {
    CORE_STRATEGY_AB,
    CORE_STRATEGY_CANARY,
    CORE_STRATEGY_BLUE_GREEN,
    CORE_STRATEGY_SHADOW,
    CORE_STRATEGY_BANDIT
};

enum core_state {
    CORE_STATE_DRAFT,
    CORE_STATE_RUNNING,
    CORE_STATE_PAUSED,
    CORE_STATE_STOPPED,
    CORE_STATE_PROMOTED,   /* serves served_arm (the winner) to every unit */
    CORE_STATE_ROLLED_BACK /* serves served_arm (control) to every unit */
};
#define CORE_N_STATES (CORE_STATE_ROLLED_BACK + 1)

struct core_arm {
    char *name;      /* [A-Za-z0-9_.-]{1,64} */
    char *model;     /* model reference such as "ranker@2.0.1"; may be "" */
    uint32_t weight; /* millionths; the arms' weights sum to CORE_SCALE */
    bool control;
};

enum core_op {
    CORE_OP_EQ,
    CORE_OP_NE,
    CORE_OP_IN,
    CORE_OP_NOT_IN,
    CORE_OP_LT,
    CORE_OP_LE,
    CORE_OP_GT,
    CORE_OP_GE,
    CORE_OP_SEMVER_EQ,
    CORE_OP_SEMVER_LT,
    CORE_OP_SEMVER_LE,
    CORE_OP_SEMVER_GT,
    CORE_OP_SEMVER_GE,
    CORE_OP_EXISTS
};

/* A parsed semantic version (semver.org 2.0.0: precedence ignores build
 * metadata; a pre-release sorts before its release). */
struct core_semver {
    uint64_t major, minor, patch;
    char pre[64]; /* pre-release identifiers, "" when none */
};

/* One targeting rule; an experiment's rules are ANDed. */
struct core_rule {
    char *attribute;
    enum core_op op;
    char **values; /* string forms of the operand(s); 1 unless IN/NOT_IN */
    size_t n_values;
    double number;             /* numeric ops: the operand */
    struct core_semver semver; /* semver ops: the operand */
};

/* A unit pinned to an arm (QA). Sorted by unit for bsearch. */
struct core_forced {
    char *unit;
    size_t arm;
};

enum core_metric_kind {
    CORE_METRIC_BINARY,
    CORE_METRIC_SUM,
    CORE_METRIC_MEAN,
    CORE_METRIC_RATIO,
    CORE_METRIC_QUANTILE /* per-request values; the q-quantile per arm
                            (stats/ddsketch.h, stats/quantile.h) */
};
enum core_direction { CORE_INCREASE, CORE_DECREASE };
enum core_role { CORE_ROLE_PRIMARY, CORE_ROLE_SECONDARY, CORE_ROLE_GUARDRAIL };

/* A drift watch on a metric whose events carry feature or score values
 * (stats/drift.h; run by service/drift_job.c). No pointers. */
struct core_drift {
    bool on;
    int64_t reference_s; /* the reference: values of the first reference_s
                            seconds from the first value (and at least
                            min_values values), default 3600 */
    int64_t window_s;    /* the current window: the last window_s seconds
                            after the reference, default 3600 */
    int64_t interval_s;  /* at most one look this often, default 60 */
    uint32_t bins;       /* PSI bins, 2..100, default 10 */
    double alpha;        /* chance a stationary stream is ever flagged,
                            default 0.01 */
    int64_t min_values;  /* per window before a look, default 100 */
};

struct core_metric {
    char *name;
    enum core_metric_kind kind;
    enum core_direction direction;
    enum core_role role;
    char *covariate; /* pre-period covariate name for CUPED, or NULL */
    double q;        /* CORE_METRIC_QUANTILE: the quantile, (0, 1); else 0 */
    struct core_drift drift; /* "drift": off unless declared */
};

/* Allocation policies of a bandit experiment (names as in bandits/bandit.h:
 * "uniform", "thompson", "top_two", "ucb1", "kl_ucb", "eps_greedy"). */
enum core_bandit_policy {
    CORE_BANDIT_UNIFORM,
    CORE_BANDIT_THOMPSON,
    CORE_BANDIT_TOP_TWO,
    CORE_BANDIT_UCB1,
    CORE_BANDIT_KL_UCB,
    CORE_BANDIT_EPS_GREEDY
};

/* The "bandit" object of a bandit experiment (service/reweight.c runs it). No
 * pointers, so core_experiment_free() and _clone() need nothing for it. */
struct core_bandit {
    enum core_bandit_policy policy;
    size_t metric;          /* index into metrics; SIZE_MAX: none declared */
    int64_t interval_s;     /* reweight cadence, >= 1 */
    double floor;           /* minimum share of each non-pinned arm */
    bool control_pinned;    /* the control arm keeps control_share */
    double control_share;   /* fraction of traffic, [0, 1) */
    int64_t burn_in;        /* units (all arms) before adapting */
    int64_t min_units;      /* units an arm needs before it is reweighted */
    bool promote;           /* false: promote_threshold is null */
    double promote_threshold; /* P(best) an arm must keep, (0.5, 1) */
    int64_t promote_after_s;  /* for this long */
    int64_t seed;           /* >= 0; the rng of version v: (seed, v) */
};

static inline bool
core_bandit_equal(const struct core_bandit *a, const struct core_bandit *b)
{
    return a->policy == b->policy && a->metric == b->metric &&
           a->interval_s == b->interval_s && a->floor == b->floor &&
           a->control_pinned == b->control_pinned &&
           a->control_share == b->control_share && a->burn_in == b->burn_in &&
           a->min_units == b->min_units && a->promote == b->promote &&
           a->promote_threshold == b->promote_threshold &&
           a->promote_after_s == b->promote_after_s && a->seed == b->seed;
}

struct core_experiment {
    int64_t id; /* database id; 0 before it is stored */
    char *key;  /* [A-Za-z0-9_.-]{1,64}, starts with a letter or digit */
    char *description;
    enum core_strategy strategy;
    enum core_state state;
    char *unit_type;
    struct core_arm *arms;
    size_t n_arms;
    size_t control;    /* index of the control arm */
    uint32_t coverage; /* millionths of eligible units that are included */
    struct core_rule *rules;
    size_t n_rules;
    struct core_forced *forced; /* sorted by unit */
    size_t n_forced;
    char *layer;                 /* NULL: not in a layer */
    uint32_t layer_lo, layer_hi; /* this experiment's [lo, hi) of the layer */
    char *salt;                  /* defaults to the key */
    uint32_t bucket_version;     /* re-randomizes on purpose when raised */
    uint32_t min_bucket_version; /* sticky units first seen under an older
                                    version are re-randomized */
    bool sticky;
    int64_t weights_version; /* raised on every change of the weights */
    struct core_metric *metrics;
    size_t n_metrics;
    int64_t version; /* row version, raised on every change */
    /* strategy bandit only (zero otherwise): see codec/experiment_json.h */
    struct core_bandit bandit;
    /* automated rollout (core/rollout.h): the canonical "rollout" object of
     * the definition as JSON text, parsed by codec/rollout_json.c; NULL when
     * the definition has none (defaults apply) */
    char *rollout;
    /* promoted / rolled back: the arm served to every unit (index into
     * arms), set from the database row, not the definition */
    size_t served_arm;
    /* hash v1 seeds of this experiment, derived once by
     * core_assign_prepare() when a snapshot is built (core/assign.h);
     * core_assign() derives them per call while seeded is false */
    bool seeded;
    uint64_t seed_arm, seed_coverage, seed_layer;
    /* each arm's optional "value" as compact JSON text (any JSON: what an
     * OpenFeature client is served), parallel to arms; an entry is NULL
     * when that arm has none, the array NULL when no arm has one. Kept
     * apart from struct core_arm so that its positional initializers stay
     * complete. */
    char **arm_values;
};

/* Arm i's value (JSON text) or NULL. */
static inline const char *
core_arm_value(const struct core_experiment *e, size_t i)
{
    return e->arm_values ? e->arm_values[i] : NULL;
}

/* Release everything e owns, then e itself. NULL is a no-op. */
void core_experiment_free(struct core_experiment *e);

const char *core_strategy_name(enum core_strategy s);
const char *core_state_name(enum core_state s);
/* Parse a name; AB_EINVAL when unknown. '*out' is written only on AB_OK. */
ab_status core_strategy_parse(const char *name, enum core_strategy *out);
ab_status core_state_parse(const char *name, enum core_state *out);

/* True when a and b hold the same definition and the same id, state and
 * versions (deep comparison; NULL equals only NULL). */
bool core_experiment_equal(const struct core_experiment *a,
                           const struct core_experiment *b);

/* A deep copy of e (new; release with core_experiment_free()). Aborts on
 * out-of-memory like ab_xmalloc. */
struct core_experiment *core_experiment_clone(const struct core_experiment *e);

#endif /* CORE_EXPERIMENT_H */
