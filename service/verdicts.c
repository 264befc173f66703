/* verdicts.c -- the latest rollout decision per experiment, in memory.
 *
 * A record per experiment key: the last applied decision (verdict word,
 * phase, step, share, reason, time, the row version it was made on) and a
 * counter per action. Few experiments and one writer (the leader's tick):
 * a linear array under one mutex is enough; readers copy out.
 *
 * Which answer wins (verdicts_get): a decision changes the experiment row,
 * so the row version it was made on (expect_version) is below every
 * version the snapshot can hold after it. While the snapshot still holds
 * that version, the decision is newer than the snapshot (the reload after
 * NOTIFY is under way) and it is the answer; once the snapshot has moved
 * on, the snapshot's state is (a manual promote, a restart after a
 * rollback, another leader's decision), with the recorded phase, step and
 * reason kept while the experiment is still running.
 */
#include "service/verdicts.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/strbuf.h"

#define N_ACTIONS (CORE_ACTION_CONVERT + 1)

struct record {
    struct verdict v;
    uint64_t decisions[N_ACTIONS];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct record *records;
static size_t n_records, cap_records;

static const char *
verdict_of_action(enum core_rollout_action a)
{
    switch (a) {
    case CORE_ACTION_PROMOTE: return "promote";
    case CORE_ACTION_ROLLBACK: return "rollback";
    case CORE_ACTION_PAUSE: return "paused";
    case CORE_ACTION_STOP: return "stopped";
    case CORE_ACTION_NONE:
    case CORE_ACTION_ADVANCE:
    case CORE_ACTION_WAIT:
    case CORE_ACTION_CONVERT: break;
    }
    return "continue";
}

static const char *
verdict_of_state(enum core_state s)
{
    switch (s) {
    case CORE_STATE_PROMOTED: return "promote";
    case CORE_STATE_ROLLED_BACK: return "rollback";
    case CORE_STATE_PAUSED: return "paused";
    case CORE_STATE_STOPPED: return "stopped";
    case CORE_STATE_DRAFT:
    case CORE_STATE_RUNNING: break;
    }
    return "continue";
}

/* Under lock. NULL when absent and !create. */
static struct record *
find(const char *key, bool create)
{
    for (size_t i = 0; i < n_records; i++)
        if (strcmp(records[i].v.experiment, key) == 0)
            return &records[i];
    if (!create)
        return NULL;
    if (n_records == cap_records) {
        cap_records = cap_records ? 2 * cap_records : 16;
        records = ab_xrealloc(records, cap_records * sizeof(*records));
    }
    struct record *r = &records[n_records++];
    memset(r, 0, sizeof(*r));
    snprintf(r->v.experiment, sizeof(r->v.experiment), "%s", key);
    r->v.step = -1;
    return r;
}

void
verdicts_record(const struct core_experiment *e,
                const struct core_rollout_decision *d, ab_status rc,
                int64_t now_ms)
{
    if (rc != AB_OK)
        return;
    size_t cand = core_rollout_candidate(e);
    double share = d->action == CORE_ACTION_ADVANCE ||
                           d->action == CORE_ACTION_CONVERT
                       ? (double)d->candidate_weight / 1e4
                       : (double)e->arms[cand].weight / 1e4;
    if (d->action == CORE_ACTION_PROMOTE)
        share = 100;
    else if (d->action == CORE_ACTION_ROLLBACK)
        share = 0;
    pthread_mutex_lock(&lock);
    struct record *r = find(e->key, true);
    r->v.verdict = verdict_of_action(d->action);
    r->v.phase = core_rollout_phase_name(d->next.phase);
    r->v.step = (int64_t)d->next.step;
    r->v.share = share;
    /* a tick where no rule fired has no reason of its own */
    snprintf(r->v.reason, sizeof(r->v.reason), "%s",
             d->reason[0] ? d->reason : "no rule fired at the last evaluation");
    r->v.decided_at_ms = now_ms;
    r->v.version = e->version;
    r->v.action = core_rollout_action_name(d->action);
    if ((size_t)d->action < N_ACTIONS)
        r->decisions[d->action]++;
    pthread_mutex_unlock(&lock);
}

void
verdicts_get(const struct core_experiment *e, struct verdict *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->experiment, sizeof(out->experiment), "%s", e->key);
    out->step = -1;
    out->phase = "";
    out->action = "none";
    out->share = (double)e->arms[core_rollout_candidate(e)].weight / 1e4;
    pthread_mutex_lock(&lock);
    const struct record *r = find(e->key, false);
    bool have = r != NULL;
    if (have)
        *out = r->v;
    pthread_mutex_unlock(&lock);
    if (have && e->version <= out->version)
        return; /* the decision is at least as new as the snapshot */
    if (have && e->state == CORE_STATE_RUNNING &&
        strcmp(out->verdict, "continue") == 0)
        return; /* still running: the recorded phase and step hold */
    /* the snapshot has moved past the last decision, or there is none */
    const char *from_state = verdict_of_state(e->state);
    bool same = have && strcmp(out->verdict, from_state) == 0;
    out->verdict = from_state;
    if (e->state == CORE_STATE_PROMOTED)
        out->share = e->served_arm != e->control ? 100 : 0;
    else if (e->state == CORE_STATE_ROLLED_BACK)
        out->share = 0;
    else if (e->state == CORE_STATE_RUNNING || e->state == CORE_STATE_DRAFT)
        out->share =
            (double)e->arms[core_rollout_candidate(e)].weight / 1e4;
    if (same)
        return;
    if (e->state == CORE_STATE_RUNNING) {
        out->phase = "";
        out->step = -1;
        snprintf(out->reason, sizeof(out->reason), "%s",
                 have ? "the experiment changed after the last decision"
                      : "no rollout decision yet");
    } else {
        snprintf(out->reason, sizeof(out->reason), "the experiment is %s",
                 core_state_name(e->state));
    }
}

/* ---- metrics ------------------------------------------------------------- */

static const char *const verdict_words[] = {"continue", "promote", "rollback",
                                            "paused", "stopped"};

/* The folded experiments' series (labelled == false): state and verdict
 * gauges become counts of experiments, decisions are summed; a share
 * cannot be summed and is left out. */
struct folded {
    bool any;
    uint64_t states[CORE_N_STATES];
    uint64_t verdicts[AB_ARRAY_LEN(verdict_words)];
    uint64_t decisions[N_ACTIONS];
};

static void
decisions_of(const char *key, uint64_t counts[N_ACTIONS])
{
    memset(counts, 0, N_ACTIONS * sizeof(counts[0]));
    pthread_mutex_lock(&lock);
    const struct record *r = find(key, false);
    if (r)
        memcpy(counts, r->decisions, N_ACTIONS * sizeof(counts[0]));
    pthread_mutex_unlock(&lock);
}

static void
fold_into(struct folded *f, const struct core_experiment *e,
          const struct verdict *v)
{
    f->any = true;
    for (int k = 0; k < CORE_N_STATES; k++)
        f->states[k] += (int)e->state == k;
    for (size_t k = 0; k < AB_ARRAY_LEN(verdict_words); k++)
        f->verdicts[k] += strcmp(v->verdict, verdict_words[k]) == 0;
    uint64_t counts[N_ACTIONS];
    decisions_of(e->key, counts);
    for (int a = 0; a < N_ACTIONS; a++)
        f->decisions[a] += counts[a];
}

enum family { F_STATE, F_VERDICT, F_DECISIONS };

static const char *
value_word(enum family fam, size_t k)
{
    switch (fam) {
    case F_STATE: return core_state_name((enum core_state)k);
    case F_VERDICT: return verdict_words[k];
    case F_DECISIONS: break;
    }
    return core_rollout_action_name((enum core_rollout_action)k);
}

/* One label set's rows of a family: an experiment's key with its own
 * counts (0/1 for the state and verdict gauges), or "other" with the
 * folded ones. */
static void
family_rows(struct strbuf *t, enum family fam, const char *experiment,
            const struct folded *x)
{
    static const char *const metric[] = {"arbiter_experiment_state",
                                         "arbiter_rollout_verdict",
                                         "arbiter_rollout_decisions_total"};
    static const char *const label[] = {"state", "verdict", "action"};
    const uint64_t *counts = fam == F_STATE     ? x->states
                             : fam == F_VERDICT ? x->verdicts
                                                : x->decisions;
    size_t n = fam == F_STATE     ? CORE_N_STATES
               : fam == F_VERDICT ? AB_ARRAY_LEN(verdict_words)
                                  : N_ACTIONS;
    for (size_t k = 0; k < n; k++)
        strbuf_printf(t, "%s{experiment=\"%s\",%s=\"%s\"} %llu\n",
                      metric[fam], experiment, label[fam], value_word(fam, k),
                      (unsigned long long)counts[k]);
}

/* A family: every labelled experiment, then "other" when any was
 * folded. */
static void
family(struct strbuf *t, enum family fam, const char *head,
       const struct core_experiment *const *exps, size_t n,
       const bool *labelled, const struct folded *one,
       const struct folded *other)
{
    strbuf_printf(t, "%s", head);
    for (size_t i = 0; i < n; i++)
        if (labelled == NULL || labelled[i])
            family_rows(t, fam, exps[i]->key, &one[i]);
    if (other->any)
        family_rows(t, fam, "other", other);
}

/* Experiment keys are [A-Za-z0-9_.-]: nothing to escape in a label. */
void
verdicts_metrics_render(const struct core_experiment *const *exps, size_t n,
                        const bool *labelled, char **out, size_t *len)
{
    struct strbuf t;
    strbuf_init(&t, 4096);
    struct verdict *v = ab_xcalloc(n ? n : 1, sizeof(*v));
    struct folded *one = ab_xcalloc(n ? n : 1, sizeof(*one));
    struct folded f = {0};
    for (size_t i = 0; i < n; i++) {
        verdicts_get(exps[i], &v[i]);
        fold_into(labelled && !labelled[i] ? &f : &one[i], exps[i], &v[i]);
    }
    family(&t, F_STATE,
           "# HELP arbiter_experiment_state 1 for the experiment's "
           "current state\n# TYPE arbiter_experiment_state gauge\n",
           exps, n, labelled, one, &f);
    strbuf_printf(&t,
                  "# HELP arbiter_rollout_candidate_share Percent of traffic "
                  "the candidate arm is served\n"
                  "# TYPE arbiter_rollout_candidate_share gauge\n");
    for (size_t i = 0; i < n; i++)
        if (labelled == NULL || labelled[i])
            strbuf_printf(
                &t,
                "arbiter_rollout_candidate_share{experiment=\"%s\"} "
                "%.17g\n",
                exps[i]->key, v[i].share);
    family(&t, F_VERDICT,
           "# HELP arbiter_rollout_verdict 1 for the verdict the "
           "verdict route answers\n# TYPE arbiter_rollout_verdict gauge\n",
           exps, n, labelled, one, &f);
    family(&t, F_DECISIONS,
           "# HELP arbiter_rollout_decisions_total Rollout decisions "
           "applied by this process (the decision leader), by action\n"
           "# TYPE arbiter_rollout_decisions_total counter\n",
           exps, n, labelled, one, &f);
    free(v);
    free(one);
    *out = t.p;
    *len = t.len;
}

void
verdicts_reset(void)
{
    pthread_mutex_lock(&lock);
    free(records);
    records = NULL;
    n_records = cap_records = 0;
    pthread_mutex_unlock(&lock);
}
