/* fold_read.c -- read your writes by waiting for the leader's fold (see
 * fold_read.h). */
#include "service/fold_read.h"

#include <stdatomic.h>
#include <time.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "service/app.h"
#include "service/fold.h"
#include "service/leader.h"
#include "sql/db_fold.h"
#include "sql/db_fold_wait.h"

/* The watermark at which the last wait of this process timed out (-1:
 * none). A long writing transaction elsewhere holds the fold back for as
 * long as it runs; every reader would then wait the whole bound on an
 * HTTP worker. While the watermark has not moved since a wait timed out,
 * readers wait only FOLD_READ_STALLED_MS (and nudge the fold, in case it
 * can move now). */
static _Atomic int64_t stalled_at = -1;

static void
sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Wake whichever process leads: this one directly, another by NOTIFY. */
static void
nudge(struct app *app, struct db *db, bool units)
{
    if (leader_is_leader(app->leader))
        leader_wake(app->leader, units);
    else if (db_fold_nudge(db, units) != AB_OK)
        log_msg(LOG_WARN, "fold nudge failed; waiting for the leader's "
                          "tick", NULL);
}

/* What the reader waits for: the fold's watermark, or for readers of
 * per-unit values the checkpoint's. */
static int64_t
reached(const struct fold_read *r)
{
    return r->units ? r->unit_watermark : r->watermark;
}

/* No leader: fold here with the SQL fold (which syncs unit_metrics too),
 * up to the horizon. */
static void
fold_here(struct db *db, int64_t deadline, struct fold_read *r)
{
    r->folded_here = true;
    do {
        struct db_fold_result f;
        if (db_fold_run(db, FOLD_BATCH_EVENTS, &f) != AB_OK) {
            log_msg(LOG_WARN, "fold before a read failed", NULL);
            return;
        }
        r->watermark = r->unit_watermark = f.watermark;
        if (f.pending == 0 && f.watermark < r->horizon)
            sleep_ms(FOLD_READ_POLL_MS); /* a writer still running holds
                                          * the watermark back */
    } while (r->watermark < r->horizon && ab_now_ms() < deadline);
}

/* A leader folds: wake it and poll, up to the deadline. */
static void
wait_leader(struct app *app, struct db *db, int64_t deadline,
            struct fold_read *r)
{
    int64_t last_nudge = 0;
    while (reached(r) < r->horizon) {
        int64_t now = ab_now_ms();
        if (now >= deadline)
            break;
        if (now - last_nudge >= FOLD_READ_RENUDGE_MS) {
            nudge(app, db, r->units);
            last_nudge = now;
        }
        sleep_ms(FOLD_READ_POLL_MS);
        if (db_fold_watermark(db, &r->watermark, &r->unit_watermark) !=
            AB_OK)
            break;
    }
}

void
fold_read_wait(struct app *app, struct db *db, int64_t max_wait_ms,
               bool units, struct fold_read *out)
{
    *out = (struct fold_read){.units = units};
    int64_t start = ab_now_ms(), deadline = start + max_wait_ms;
    struct db_fold_horizon h;
    if (db == NULL ||
        db_fold_horizon(db, LEADER_LOCK_KEY, &h) != AB_OK) {
        out->error = true;
        return;
    }
    out->horizon = h.horizon;
    out->watermark = h.watermark;
    out->unit_watermark = h.unit_watermark;
    if (reached(out) < h.horizon && !h.leader) {
        fold_here(db, deadline, out);
    } else if (reached(out) < h.horizon) {
        /* still stalled where a wait timed out: a short wait only, in
         * case the fold can move now */
        if (h.watermark == atomic_load(&stalled_at) &&
            max_wait_ms > FOLD_READ_STALLED_MS)
            deadline = start + FOLD_READ_STALLED_MS;
        wait_leader(app, db, deadline, out);
    }
    out->caught_up = reached(out) >= out->horizon;
    out->waited_ms = ab_now_ms() - start;
    if (!out->folded_here)
        atomic_store(&stalled_at, out->watermark >= out->horizon
                                      ? -1
                                      : out->watermark);
}

json_t *
fold_read_json(struct db *db, const struct fold_read *r, int64_t max_age_ms)
{
    struct db_fold_status st;
    if (db == NULL || r->error || db_fold_status(db, &st) != AB_OK)
        return json_pack("{s:s}", "status", "unavailable");
    int64_t lag_ms = (int64_t)(st.lag_seconds * 1000.0);
    json_t *out = json_pack(
        "{s:I,s:I,s:b,s:I,s:s,s:I,s:f,s:I,s:I,s:b}", "horizon",
        (json_int_t)r->horizon, "watermark", (json_int_t)st.watermark,
        "caught_up", r->caught_up, "waited_ms",
        (json_int_t)r->waited_ms, "folded_by",
        r->folded_here ? "request" : "leader", "folded_at_ms",
        (json_int_t)st.folded_at_ms, "lag_seconds", st.lag_seconds,
        "lag_events", (json_int_t)st.pending_events, "max_age_ms",
        (json_int_t)max_age_ms, "stale", lag_ms > max_age_ms);
    if (r->units) /* the reader reads unit_metrics too */
        json_object_set_new(out, "unit_watermark",
                            json_integer((json_int_t)r->unit_watermark));
    return out;
}
