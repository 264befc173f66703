/* experiment.c -- the experiment model: release, names of strategies and
 * states, and structural equality.
 *
 * Nothing here is numeric: the model only holds integers in millionths of
 * traffic (CORE_SCALE) so that arm boundaries are exact; see core/assign.c
 * for the layout and hash (Kohavi, Tang and Xu, "Trustworthy Online
 * Controlled Experiments", Cambridge 2020, ch. 4 and 14: deterministic
 * hashing into buckets, layers for overlapping experiments).
 */
#include "core/experiment.h"

#include <stdlib.h>
#include <string.h>

static const char *const strategy_names[] = {
    [CORE_STRATEGY_AB] = "ab",
    [CORE_STRATEGY_CANARY] = "canary",
    [CORE_STRATEGY_BLUE_GREEN] = "blue_green",
    [CORE_STRATEGY_SHADOW] = "shadow",
    [CORE_STRATEGY_BANDIT] = "bandit",
};

static const char *const state_names[] = {
    [CORE_STATE_DRAFT] = "draft",
    [CORE_STATE_RUNNING] = "running",
    [CORE_STATE_PAUSED] = "paused",
    [CORE_STATE_STOPPED] = "stopped",
    [CORE_STATE_PROMOTED] = "promoted",
    [CORE_STATE_ROLLED_BACK] = "rolled_back",
};

static void
rule_release(struct core_rule *r)
{
    free(r->attribute);
    for (size_t i = 0; i < r->n_values; i++)
        free(r->values[i]);
    free(r->values);
}

void
core_experiment_free(struct core_experiment *e)
{
    if (e == NULL)
        return;
    free(e->key);
    free(e->description);
    free(e->unit_type);
    for (size_t i = 0; i < e->n_arms; i++) {
        free(e->arms[i].name);
        free(e->arms[i].model);
        if (e->arm_values)
            free(e->arm_values[i]);
    }
    free(e->arms);
    free(e->arm_values);
    for (size_t i = 0; i < e->n_rules; i++)
        rule_release(&e->rules[i]);
    free(e->rules);
    for (size_t i = 0; i < e->n_forced; i++)
        free(e->forced[i].unit);
    free(e->forced);
    free(e->layer);
    free(e->salt);
    for (size_t i = 0; i < e->n_metrics; i++) {
        free(e->metrics[i].name);
        free(e->metrics[i].covariate);
    }
    free(e->metrics);
    free(e->rollout);
    free(e);
}

const char *
core_strategy_name(enum core_strategy s)
{
    if ((size_t)s < AB_ARRAY_LEN(strategy_names))
        return strategy_names[s];
    return "unknown";
}

const char *
core_state_name(enum core_state s)
{
    if ((size_t)s < AB_ARRAY_LEN(state_names))
        return state_names[s];
    return "unknown";
}

ab_status
core_strategy_parse(const char *name, enum core_strategy *out)
{
    if (name == NULL)
        return AB_EINVAL;
    for (size_t i = 0; i < AB_ARRAY_LEN(strategy_names); i++) {
        if (strcmp(name, strategy_names[i]) == 0) {
            *out = (enum core_strategy)i;
            return AB_OK;
        }
    }
    return AB_EINVAL;
}

ab_status
core_state_parse(const char *name, enum core_state *out)
{
    if (name == NULL)
        return AB_EINVAL;
    for (size_t i = 0; i < AB_ARRAY_LEN(state_names); i++) {
        if (strcmp(name, state_names[i]) == 0) {
            *out = (enum core_state)i;
            return AB_OK;
        }
    }
    return AB_EINVAL;
}

/* ---- equality ----------------------------------------------------------- */

static bool
str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool
semver_eq(const struct core_semver *a, const struct core_semver *b)
{
    return a->major == b->major && a->minor == b->minor &&
           a->patch == b->patch && strcmp(a->pre, b->pre) == 0;
}

static bool
rule_eq(const struct core_rule *a, const struct core_rule *b)
{
    if (!str_eq(a->attribute, b->attribute) || a->op != b->op ||
        a->n_values != b->n_values)
        return false;
    for (size_t i = 0; i < a->n_values; i++)
        if (!str_eq(a->values[i], b->values[i]))
            return false;
    if (a->op >= CORE_OP_LT && a->op <= CORE_OP_GE && a->number != b->number)
        return false;
    if (a->op >= CORE_OP_SEMVER_EQ && a->op <= CORE_OP_SEMVER_GE &&
        !semver_eq(&a->semver, &b->semver))
        return false;
    return true;
}

bool
core_experiment_equal(const struct core_experiment *a,
                      const struct core_experiment *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    if (a->id != b->id || !str_eq(a->key, b->key) ||
        !str_eq(a->description, b->description) ||
        a->strategy != b->strategy || a->state != b->state ||
        !str_eq(a->unit_type, b->unit_type) || a->n_arms != b->n_arms ||
        a->control != b->control || a->coverage != b->coverage ||
        a->n_rules != b->n_rules || a->n_forced != b->n_forced ||
        !str_eq(a->layer, b->layer) || a->layer_lo != b->layer_lo ||
        a->layer_hi != b->layer_hi || !str_eq(a->salt, b->salt) ||
        a->bucket_version != b->bucket_version ||
        a->min_bucket_version != b->min_bucket_version ||
        a->sticky != b->sticky || a->weights_version != b->weights_version ||
        a->n_metrics != b->n_metrics || a->version != b->version ||
        !str_eq(a->rollout, b->rollout) ||
        !core_bandit_equal(&a->bandit, &b->bandit))
        return false;
    for (size_t i = 0; i < a->n_arms; i++) {
        const struct core_arm *x = &a->arms[i], *y = &b->arms[i];
        if (!str_eq(x->name, y->name) || !str_eq(x->model, y->model) ||
            !str_eq(core_arm_value(a, i), core_arm_value(b, i)) ||
            x->weight != y->weight || x->control != y->control)
            return false;
    }
    for (size_t i = 0; i < a->n_rules; i++)
        if (!rule_eq(&a->rules[i], &b->rules[i]))
            return false;
    for (size_t i = 0; i < a->n_forced; i++)
        if (!str_eq(a->forced[i].unit, b->forced[i].unit) ||
            a->forced[i].arm != b->forced[i].arm)
            return false;
    for (size_t i = 0; i < a->n_metrics; i++) {
        const struct core_metric *x = &a->metrics[i], *y = &b->metrics[i];
        if (!str_eq(x->name, y->name) || x->kind != y->kind ||
            x->direction != y->direction || x->role != y->role ||
            !str_eq(x->covariate, y->covariate) || x->q != y->q ||
            x->drift.on != y->drift.on ||
            x->drift.reference_s != y->drift.reference_s ||
            x->drift.window_s != y->drift.window_s ||
            x->drift.interval_s != y->drift.interval_s ||
            x->drift.bins != y->drift.bins ||
            x->drift.alpha != y->drift.alpha ||
            x->drift.min_values != y->drift.min_values)
            return false;
    }
    return true;
}

/* ---- deep copy ---------------------------------------------------------- */

static char *
dup_or_null(const char *s)
{
    return s == NULL ? NULL : ab_xstrdup(s);
}

struct core_experiment *
core_experiment_clone(const struct core_experiment *e)
{
    struct core_experiment *c = ab_xmalloc(sizeof(*c));
    *c = *e;
    c->seeded = false; /* a clone is made to be changed: seeds re-derived */
    c->key = dup_or_null(e->key);
    c->description = dup_or_null(e->description);
    c->unit_type = dup_or_null(e->unit_type);
    c->layer = dup_or_null(e->layer);
    c->salt = dup_or_null(e->salt);
    c->arms = ab_xcalloc(e->n_arms, sizeof(*c->arms));
    for (size_t i = 0; i < e->n_arms; i++) {
        c->arms[i] = e->arms[i];
        c->arms[i].name = dup_or_null(e->arms[i].name);
        c->arms[i].model = dup_or_null(e->arms[i].model);
    }
    c->arm_values = NULL;
    if (e->arm_values) {
        c->arm_values = ab_xcalloc(e->n_arms, sizeof(char *));
        for (size_t i = 0; i < e->n_arms; i++)
            c->arm_values[i] = dup_or_null(e->arm_values[i]);
    }
    c->rules = ab_xcalloc(e->n_rules, sizeof(*c->rules));
    for (size_t i = 0; i < e->n_rules; i++) {
        const struct core_rule *r = &e->rules[i];
        c->rules[i] = *r;
        c->rules[i].attribute = dup_or_null(r->attribute);
        c->rules[i].values = NULL;
        if (r->n_values > 0) {
            c->rules[i].values = ab_xcalloc(r->n_values, sizeof(char *));
            for (size_t j = 0; j < r->n_values; j++)
                c->rules[i].values[j] = dup_or_null(r->values[j]);
        }
    }
    c->forced = ab_xcalloc(e->n_forced, sizeof(*c->forced));
    for (size_t i = 0; i < e->n_forced; i++) {
        c->forced[i] = e->forced[i];
        c->forced[i].unit = dup_or_null(e->forced[i].unit);
    }
    c->rollout = dup_or_null(e->rollout);
    c->metrics = ab_xcalloc(e->n_metrics, sizeof(*c->metrics));
    for (size_t i = 0; i < e->n_metrics; i++) {
        c->metrics[i] = e->metrics[i];
        c->metrics[i].name = dup_or_null(e->metrics[i].name);
        c->metrics[i].covariate = dup_or_null(e->metrics[i].covariate);
    }
    return c;
}
