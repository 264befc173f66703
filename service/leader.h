/* leader.h -- the decision leader: of all arbiter processes sharing one
 * database, the one holding a PostgreSQL advisory lock runs the periodic
 * jobs, in the order cli/cmd_serve.c registers them: the fold of raw
 * events into arm statistics (service/fold.h, first, so that every later
 * job reads folded numbers), event partitions and retention, bandit
 * reweights, rollout decisions.
 *
 * A thread tries pg_try_advisory_lock(LEADER_LOCK_KEY) on its own
 * connection every tick while it is not the leader. While it is, it checks
 * every tick that its session still holds the lock, then calls every
 * registered job with that connection. The lock belongs to the session:
 * when the process dies or its connection breaks, PostgreSQL releases it
 * and another process takes over at its next tick. Every statement on
 * the leader's connection has a timeout, so a stuck one cannot hold the
 * lock forever. /metrics shows arbiter_leader (1 on the leader),
 * arbiter_leader_ticks_total and arbiter_leader_acquired_total.
 */
#ifndef SERVICE_LEADER_H
#define SERVICE_LEADER_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/status.h"

struct db;

/* Advisory lock key: one bigint (any constant, the same in every build).
 * Distinct from the migration lock (the bigint 7243519) and from the
 * layer locks (the two-int form (7243520, hashtext(layer)), another key
 * space); held through sql/db_lock.h. */
#define LEADER_LOCK_KEY 7243520

/* A job, called on the leader once per tick with the leader's connection
 * and the process clock (epoch ms). It must not keep 'db'. */
typedef void leader_job_fn(void *arg, struct db *db, int64_t now_ms);

struct leader;

/* A leader that ticks every tick_ms (>= 10), holding the lock on its own
 * connection to database_url (copied); stores a new one in *out (release
 * with leader_free()). Registers the three metrics above. */
ab_status leader_new(const char *database_url, int tick_ms,
                     struct leader **out);
/* Register a job before leader_start(); at most 8. 'name' is static. */
void leader_add_job(struct leader *l, const char *name, leader_job_fn *fn,
                    void *arg);
/* Start the thread. */
void leader_start(struct leader *l);
/* Stop the thread (releasing the lock) and free l. NULL is a no-op. */
void leader_free(struct leader *l);

/* True while this process is the leader. */
bool leader_is_leader(const struct leader *l);

/* ---- waking the fold between ticks ------------------------------------------
 *
 * A reader that waits for its writes to be folded (service/fold_read.h)
 * wakes the leader instead of folding itself: leader_wake() in this
 * process, or a NOTIFY on sql/db_fold_wait.h's channel from any process
 * (the leader's connection LISTENs). A wake between ticks checks the lock,
 * then runs only the job given here (the fold), so that a stream of
 * readers does not run the decision jobs more often than every tick_ms.
 * Wakes coalesce: many readers at once cause one run. */
void leader_on_wake(struct leader *l, leader_job_fn *fn, void *arg);
/* Ask for a wake run now (any thread; never blocks); checkpoint: the
 * wake job should also write what it holds in memory (the fold's per-unit
 * values, for readers of unit_metrics), which it learns from
 * leader_take_checkpoint(). A NOTIFY with the payload "checkpoint" asks
 * the same from another process. */
void leader_wake(struct leader *l, bool checkpoint);
/* A wake run in ms milliseconds (replaces an earlier such request). */
void leader_wake_after(struct leader *l, int64_t ms);
/* Whether a checkpoint was asked for since the last call (clears it). */
bool leader_take_checkpoint(struct leader *l);

#endif /* SERVICE_LEADER_H */
