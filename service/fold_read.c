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
nudge(struct app *app, struct db *db)
{
    if (leader_is_leader(app->leader))
        leader_wake(app->leader);
    else if (db_fold_nudge(db) != AB_OK)
        log_msg(LOG_WARN, "fold nudge failed; waiting for the leader's "
                          "tick", NULL);
}

/* No leader: fold here with the SQL fold, up to the horizon. */
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
        r->watermark = f.watermark;
        if (f.pending == 0 && f.watermark < r->horizon)
            sleep_ms(FOLD_READ_POLL_MS); /* a writer still running holds
                                          * the watermark back */
    } while (r->watermark < r->horizon && ab_now_ms() < deadline);
}

void
fold_read_wait(struct app *app, struct db *db, int64_t max_wait_ms,
               struct fold_read *out)
{
    *out = (struct fold_read){0};
    int64_t start = ab_now_ms(), deadline = start + max_wait_ms;
    struct db_fold_horizon h;
    if (db == NULL ||
        db_fold_horizon(db, LEADER_LOCK_KEY, &h) != AB_OK) {
        out->error = true;
        return;
    }
    out->horizon = h.horizon;
    out->watermark = h.watermark;
    if (h.watermark < h.horizon && !h.leader) {
        fold_here(db, deadline, out);
    } else if (h.watermark < h.horizon) {
        /* still stalled where a wait timed out: a short wait only, in
         * case the fold can move now */
        if (h.watermark == atomic_load(&stalled_at) &&
            max_wait_ms > FOLD_READ_STALLED_MS)
            deadline = start + FOLD_READ_STALLED_MS;
        int64_t last_nudge = 0;
        while (out->watermark < out->horizon) {
            int64_t now = ab_now_ms();
            if (now >= deadline)
                break;
            if (now - last_nudge >= FOLD_READ_RENUDGE_MS) {
                nudge(app, db);
                last_nudge = now;
            }
            sleep_ms(FOLD_READ_POLL_MS);
            if (db_fold_watermark(db, &out->watermark) != AB_OK)
                break;
        }
    }
    out->caught_up = out->watermark >= out->horizon;
    out->waited_ms = ab_now_ms() - start;
    if (!out->folded_here)
        atomic_store(&stalled_at, out->caught_up ? -1 : out->watermark);
}

json_t *
fold_read_json(struct db *db, const struct fold_read *r, int64_t max_age_ms)
{
    struct db_fold_status st;
    if (db == NULL || r->error || db_fold_status(db, &st) != AB_OK)
        return json_pack("{s:s}", "status", "unavailable");
    int64_t lag_ms = (int64_t)(st.lag_seconds * 1000.0);
    return json_pack(
        "{s:I,s:I,s:b,s:I,s:s,s:I,s:f,s:I,s:I,s:b}", "horizon",
        (json_int_t)r->horizon, "watermark", (json_int_t)st.watermark,
        "caught_up", st.watermark >= r->horizon, "waited_ms",
        (json_int_t)r->waited_ms, "folded_by",
        r->folded_here ? "request" : "leader", "folded_at_ms",
        (json_int_t)st.folded_at_ms, "lag_seconds", st.lag_seconds,
        "lag_events", (json_int_t)st.pending_events, "max_age_ms",
        (json_int_t)max_age_ms, "stale", lag_ms > max_age_ms);
}
