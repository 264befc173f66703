/* leader.c -- leader election by a PostgreSQL session-level advisory lock,
 * and the tick that runs the leader's jobs (see leader.h).
 *
 * Protocol, per tick (tick_ms, 1 s by default):
 *   not leader:  connect if needed; pg_try_advisory_lock(K) -> leader?
 *   leader:      check in pg_locks that this backend still holds K (a
 *                connection that broke and was silently re-opened does
 *                not); if it does, run every job with this connection.
 * Safety rests on PostgreSQL: a session-level advisory lock is held by at
 * most one session and is released when the session ends, including when
 * the process is killed or the network drops it (PostgreSQL docs, section
 * 13.3.5 "Advisory Locks"). A stale leader can therefore run at most one
 * tick after losing its session; the jobs write with optimistic version
 * checks, so such a tick cannot overwrite a newer decision. Takeover time
 * after a leader dies: the time PostgreSQL needs to see the session end
 * (immediate for a killed process on a local socket; the TCP keepalive
 * settings of sql/db.c otherwise) plus one tick.
 */
#include "service/leader.h"
#include "lib/clock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "lib/metrics.h"
#include "sql/db.h"
#include "sql/db_fold_wait.h"
#include "sql/db_lock.h"

#define LEADER_MAX_JOBS 8
#define LEADER_STATEMENT_TIMEOUT_MS 30000

struct leader_job {
    const char *name;
    leader_job_fn *fn;
    void *arg;
};

struct leader {
    char *database_url; /* the leader's own connection */
    int tick_ms;
    struct leader_job jobs[LEADER_MAX_JOBS];
    size_t n_jobs;
    struct leader_job wake_job; /* run alone on a wake (leader_on_wake) */
    atomic_bool wake;           /* leader_wake() was called */
    atomic_bool checkpoint;     /* a wake asked for a checkpoint too */
    _Atomic int64_t wake_at;    /* leader_wake_after(): ab_now_ms, or 0 */
    pthread_t thread;
    bool started;
    atomic_bool stopping;
    _Atomic int64_t m_leader; /* gauge: 1 while leader */
    _Atomic int64_t m_ticks;  /* counter: ticks run as leader */
    _Atomic int64_t m_changes; /* counter: leadership acquired */
};

bool
leader_is_leader(const struct leader *l)
{
    return l != NULL && atomic_load(&l->m_leader) != 0;
}

/* A wake asked for, in this process or (NOTIFY) in another; clears it. */
static bool
woken(struct leader *l, struct db *db)
{
    int nudged = db != NULL ? db_fold_nudged(db) : 0; /* drains them */
    if (nudged & DB_FOLD_NUDGED_CHECKPOINT)
        atomic_store(&l->checkpoint, true);
    int64_t at = atomic_load(&l->wake_at);
    bool due = at != 0 && ab_now_ms() >= at &&
               atomic_compare_exchange_strong(&l->wake_at, &at, 0);
    return atomic_exchange(&l->wake, false) || nudged != 0 || due;
}

/* Sleep until 'until' (ms, ab_now_ms), waking early when asked to stop;
 * true when a wake ended the nap (it then has a wake job to run). */
static bool
nap(struct leader *l, struct db *db, int64_t until)
{
    for (;;) {
        if (atomic_load(&l->stopping))
            return false;
        /* a due tick first: a stream of wakes (a busy fold wakes itself)
         * must not starve the other jobs */
        int64_t left = until - ab_now_ms();
        if (left <= 0)
            return false;
        if (woken(l, db) && l->wake_job.fn != NULL)
            return true;
        /* 5 ms steps: a reader waits on this (service/fold_read.h) */
        int step = left < 5 ? (int)left : 5;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void
set_leader(struct leader *l, bool on)
{
    int64_t was = atomic_exchange(&l->m_leader, on ? 1 : 0);
    if (was == (on ? 1 : 0))
        return;
    if (on) {
        atomic_fetch_add(&l->m_changes, 1);
        log_msg(LOG_INFO, "leadership acquired", NULL);
    } else {
        log_msg(LOG_WARN, "leadership lost", NULL);
    }
}

static void *
leader_main(void *arg)
{
    struct leader *l = arg;
    struct db *db = NULL;
    bool wake_run = false;
    int64_t next_tick = 0;
    while (!atomic_load(&l->stopping)) {
        int64_t start = ab_now_ms();
        bool held = false;
        if (db == NULL) {
            if (db_open(l->database_url, &db) != AB_OK) {
                db = NULL;
            } else {
                /* a stuck statement must not hold the lock forever */
                db_set_timeout(db, LEADER_STATEMENT_TIMEOUT_MS);
                if (db_fold_listen(db) != AB_OK)
                    log_msg(LOG_WARN, "leader: LISTEN failed; other "
                                      "processes' readers wait for the "
                                      "next tick", NULL);
            }
        }
        if (db != NULL) {
            ab_status rc = leader_is_leader(l)
                               ? db_leader_held(db, LEADER_LOCK_KEY, &held)
                               : db_leader_try_lock(db, LEADER_LOCK_KEY,
                                                    &held);
            if (rc != AB_OK) {
                /* the session (and with it the lock) may be gone: start
                 * from a fresh connection */
                db_close(db);
                db = NULL;
                held = false;
            }
        }
        /* LISTEN again on becoming the leader: a connection libpq
         * reopened silently has lost it */
        if (held && !leader_is_leader(l) && db_fold_listen(db) != AB_OK)
            log_msg(LOG_WARN, "leader: LISTEN failed; other processes' "
                              "readers wait for the next tick", NULL);
        set_leader(l, held);
        if (held && wake_run) {
            l->wake_job.fn(l->wake_job.arg, db, ab_now_ms());
        } else if (held) {
            atomic_fetch_add(&l->m_ticks, 1);
            for (size_t i = 0; i < l->n_jobs && !atomic_load(&l->stopping);
                 i++)
                l->jobs[i].fn(l->jobs[i].arg, db, ab_now_ms());
        }
        if (!wake_run)
            next_tick = start + l->tick_ms;
        wake_run = nap(l, db, next_tick);
    }
    if (db != NULL && leader_is_leader(l))
        db_leader_release(db, LEADER_LOCK_KEY);
    set_leader(l, false);
    db_close(db);
    return NULL;
}

ab_status
leader_new(const char *database_url, int tick_ms, struct leader **out)
{
    if (database_url == NULL || tick_ms < 10)
        return AB_EINVAL;
    struct leader *l = ab_xcalloc(1, sizeof(*l));
    l->database_url = ab_xstrdup(database_url);
    l->tick_ms = tick_ms;
    metrics_register("arbiter_leader",
                     "1 while this process holds the decision-leader lock.",
                     METRICS_GAUGE, &l->m_leader);
    metrics_register("arbiter_leader_ticks_total",
                     "Ticks this process ran as the decision leader.",
                     METRICS_COUNTER, &l->m_ticks);
    metrics_register("arbiter_leader_acquired_total",
                     "Times this process became the decision leader.",
                     METRICS_COUNTER, &l->m_changes);
    *out = l;
    return AB_OK;
}

void
leader_add_job(struct leader *l, const char *name, leader_job_fn *fn,
               void *arg)
{
    if (l->started || l->n_jobs == LEADER_MAX_JOBS)
        abort(); /* a programming error, caught by the first test run */
    l->jobs[l->n_jobs].name = name;
    l->jobs[l->n_jobs].fn = fn;
    l->jobs[l->n_jobs].arg = arg;
    l->n_jobs++;
}

void
leader_on_wake(struct leader *l, leader_job_fn *fn, void *arg)
{
    if (l->started)
        abort(); /* a programming error, caught by the first test run */
    l->wake_job = (struct leader_job){"wake", fn, arg};
}

void
leader_wake(struct leader *l, bool checkpoint)
{
    if (l == NULL)
        return;
    if (checkpoint)
        atomic_store(&l->checkpoint, true);
    atomic_store(&l->wake, true);
}

void
leader_wake_after(struct leader *l, int64_t ms)
{
    if (l != NULL)
        atomic_store(&l->wake_at, ab_now_ms() + (ms > 0 ? ms : 1));
}

bool
leader_take_checkpoint(struct leader *l)
{
    return l != NULL && atomic_exchange(&l->checkpoint, false);
}

void
leader_start(struct leader *l)
{
    if (pthread_create(&l->thread, NULL, leader_main, l) != 0)
        abort();
    l->started = true;
}

void
leader_free(struct leader *l)
{
    if (l == NULL)
        return;
    atomic_store(&l->stopping, true);
    if (l->started)
        pthread_join(l->thread, NULL);
    free(l->database_url);
    free(l);
}
