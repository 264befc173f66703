/* fold.c -- the fold as a leader job, and freshness for readers (see
 * fold.h). The set-based work and the exactly-once argument live in SQL
 * (006_fold.sql); this file decides when to fold and reports how fresh the
 * statistics are. */
#include "service/fold.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "service/fold_units.h"
#include "service/leader.h"
#include "sql/db_fold.h"

struct fold {
    _Atomic int64_t m_events;    /* counter: events folded */
    _Atomic int64_t m_runs;      /* counter: fold transactions */
    _Atomic int64_t m_errors;    /* counter: failed folds */
    _Atomic int64_t m_lag_ms;    /* gauge: age of the oldest unfolded */
    _Atomic int64_t m_lag_events; /* gauge: committed, not folded */
    _Atomic int64_t m_rate;      /* gauge: events/s of the last busy tick */
    _Atomic int64_t m_watermark; /* gauge */
    _Atomic int64_t m_held;      /* gauge: unit values in memory */
    _Atomic int64_t m_dirty;     /* gauge: of them, not checkpointed */
    _Atomic int64_t m_ckpt_errors; /* counter: failed checkpoints */
    struct fold_units *units;    /* leader thread only */
    struct leader *leader;       /* fold_set_leader(), or NULL */
};

struct fold *
fold_new(int64_t checkpoint_ms)
{
    struct fold *f = ab_xcalloc(1, sizeof(*f));
    f->units = fold_units_new(checkpoint_ms);
    metrics_register("arbiter_fold_units_held",
                     "Per-unit values the leader's fold holds in memory.",
                     METRICS_GAUGE, &f->m_held);
    metrics_register("arbiter_fold_units_dirty",
                     "Per-unit values folded but not yet checkpointed to "
                     "unit_metrics.",
                     METRICS_GAUGE, &f->m_dirty);
    metrics_register("arbiter_fold_checkpoint_errors_total",
                     "Checkpoints of the per-unit values that failed (the "
                     "fold restarts from the previous one).",
                     METRICS_COUNTER, &f->m_ckpt_errors);
    metrics_register("arbiter_fold_events_total",
                     "Raw events folded into the aggregates (this process).",
                     METRICS_COUNTER, &f->m_events);
    metrics_register("arbiter_fold_runs_total",
                     "Fold transactions run by this process.",
                     METRICS_COUNTER, &f->m_runs);
    metrics_register("arbiter_fold_errors_total",
                     "Fold transactions that failed (nothing folded; "
                     "retried at the next tick).",
                     METRICS_COUNTER, &f->m_errors);
    metrics_register("arbiter_fold_lag_seconds",
                     "Age of the oldest committed event not yet in the "
                     "aggregates (0: none; as of the leader's last tick).",
                     METRICS_GAUGE_MILLI, &f->m_lag_ms);
    metrics_register("arbiter_fold_lag_events",
                     "Committed events not yet in the aggregates (as of the "
                     "leader's last tick).",
                     METRICS_GAUGE, &f->m_lag_events);
    metrics_register("arbiter_fold_events_per_second",
                     "Fold throughput over the leader's last tick that "
                     "folded anything.",
                     METRICS_GAUGE, &f->m_rate);
    metrics_register("arbiter_fold_watermark",
                     "Transaction id below which every event is folded.",
                     METRICS_GAUGE, &f->m_watermark);
    return f;
}

void
fold_free(struct fold *f)
{
    if (f == NULL)
        return;
    fold_units_free(f->units);
    free(f);
}

void
fold_set_leader(struct fold *f, struct leader *l)
{
    f->leader = l;
}

void
fold_job(void *arg, struct db *db, int64_t now_ms)
{
    struct fold *f = arg;
    int64_t start = ab_now_ms(), folded = 0;
    (void)now_ms;
    for (;;) {
        struct fold_units_result r;
        if (fold_units_batch(f->units, db, FOLD_BATCH_EVENTS, &r) != AB_OK) {
            atomic_fetch_add(&f->m_errors, 1);
            log_msg(LOG_WARN, "fold failed; retried at the next tick", NULL);
            break;
        }
        atomic_fetch_add(&f->m_runs, 1);
        atomic_fetch_add(&f->m_events, r.folded);
        atomic_store(&f->m_watermark, r.watermark);
        folded += r.folded;
        if (!r.more || ab_now_ms() - start >= FOLD_TICK_BUDGET_MS)
            break;
    }
    /* a reader of unit_metrics (GET /bandit) may ask for the checkpoint
     * now (service/fold_read.h) */
    bool force = leader_take_checkpoint(f->leader);
    if (fold_units_checkpoint(f->units, db, ab_now_ms(), force) != AB_OK) {
        atomic_fetch_add(&f->m_ckpt_errors, 1);
        log_msg(LOG_WARN, "fold checkpoint failed; the fold restarts from "
                          "the previous one", NULL);
    }
    atomic_store(&f->m_held, (int64_t)fold_units_held(f->units));
    atomic_store(&f->m_dirty, (int64_t)fold_units_dirty(f->units));
    int64_t spent = ab_now_ms() - start;
    if (folded > 0)
        atomic_store(&f->m_rate, folded * 1000 / (spent > 0 ? spent : 1));
    /* events keep coming: fold again FOLD_BUSY_GAP_MS after this run
     * instead of at the next tick (the lag is then a batch's time plus
     * the gap, not a tick plus a batch); an idle fold waits for the tick
     * or a reader */
    if (folded > 0)
        leader_wake_after(f->leader, FOLD_BUSY_GAP_MS);
    struct db_fold_status st;
    if (db_fold_status(db, &st) == AB_OK) {
        atomic_store(&f->m_lag_ms, (int64_t)(st.lag_seconds * 1000.0));
        atomic_store(&f->m_lag_events, st.pending_events);
        atomic_store(&f->m_watermark, st.watermark);
    }
}

bool
fold_stale(struct db *db, int64_t max_age_ms, int64_t *lag_ms)
{
    struct db_fold_status st;
    if (db_fold_status(db, &st) != AB_OK)
        return true;
    int64_t lag = (int64_t)(st.lag_seconds * 1000.0);
    if (lag_ms)
        *lag_ms = lag;
    return lag > max_age_ms;
}

/* ---- decisions wait on stale statistics ----------------------------------- */

struct fold_gate {
    const char *job;
    int64_t max_age_ms;
    bool waiting;
    _Atomic int64_t m_waits;  /* counter: ticks that waited */
    _Atomic int64_t m_age_ms; /* gauge: the lag last seen */
};

struct fold_gate *
fold_gate_new(const char *job, int64_t max_age_ms)
{
    struct fold_gate *g = ab_xcalloc(1, sizeof(*g));
    g->job = job;
    g->max_age_ms = max_age_ms > 0 ? max_age_ms : FOLD_MAX_AGE_MS_DEFAULT;
    bool rollout = strcmp(job, "rollout") == 0;
    metrics_register(rollout ? "arbiter_rollout_stale_waits_total"
                             : "arbiter_bandit_stale_waits_total",
                     "Decision ticks that waited because the folded "
                     "statistics were older than the bound "
                     "(ARBITER_FOLD_MAX_AGE_MS).",
                     METRICS_COUNTER, &g->m_waits);
    metrics_register(rollout ? "arbiter_rollout_statistics_age_seconds"
                             : "arbiter_bandit_statistics_age_seconds",
                     "Age of the oldest committed event not yet folded, as "
                     "this job last saw it before deciding.",
                     METRICS_GAUGE_MILLI, &g->m_age_ms);
    return g;
}

void
fold_gate_free(struct fold_gate *g)
{
    free(g);
}

bool
fold_gate_check(struct fold_gate *g, struct db *db)
{
    int64_t lag = -1;
    bool stale = fold_stale(db, g->max_age_ms, &lag);
    atomic_store(&g->m_age_ms, lag);
    char lag_s[32], max_s[32];
    snprintf(lag_s, sizeof(lag_s), "%.3f", (double)lag / 1000.0);
    snprintf(max_s, sizeof(max_s), "%.3f", (double)g->max_age_ms / 1000.0);
    if (stale) {
        atomic_fetch_add(&g->m_waits, 1);
        if (!g->waiting)
            log_msg(LOG_WARN,
                    "decisions wait: folded statistics are older than the "
                    "bound",
                    "job", g->job, "lag_seconds", lag < 0 ? "unknown" : lag_s,
                    "max_age_seconds", max_s, NULL);
    } else if (g->waiting) {
        log_msg(LOG_INFO, "decisions resume: folded statistics are fresh",
                "job", g->job, "lag_seconds", lag_s, "max_age_seconds", max_s,
                NULL);
    }
    g->waiting = stale;
    return stale;
}
