/* fold_read.h -- read your writes without folding in the request.
 *
 * GET /results and GET /bandit used to run the SQL fold (arbiter.fold())
 * before reading, which made the leader's in-memory fold see a watermark
 * it had not moved, drop its memory and resync from the checkpoint. Now a
 * reader:
 *   1. notes the horizon: the xmax of a snapshot taken when it arrives
 *      (every transaction committed before it has a smaller xid, so a
 *      watermark at or above the horizon means everything the caller
 *      wrote before asking is folded -- sql/migrations/006_fold.sql);
 *   2. wakes the leader's fold (leader_wake() in this process, a NOTIFY
 *      from any other: service/leader.h), and again every
 *      FOLD_READ_RENUDGE_MS while it waits;
 *   3. polls the watermark every FOLD_READ_POLL_MS until it passes the
 *      horizon or max_wait_ms have gone by (the configured freshness
 *      bound, ARBITER_FOLD_MAX_AGE_MS); on timeout it reads what is
 *      folded and says how old it is -- never an error status. While the
 *      watermark stays where a wait of this process timed out (a long
 *      writing transaction holds the fold back), later readers wait only
 *      FOLD_READ_STALLED_MS, so that stalled statistics do not hold HTTP
 *      workers for the bound each.
 * When no session holds the leader lock (a single process before its
 * first tick, or between a leader's death and its successor's tick),
 * nothing would fold: the reader then runs the SQL fold itself, as before
 * (no leader holds memory that it could invalidate).
 */
#ifndef SERVICE_FOLD_READ_H
#define SERVICE_FOLD_READ_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

struct app;
struct db;

#define FOLD_READ_POLL_MS 10
#define FOLD_READ_RENUDGE_MS 100
#define FOLD_READ_STALLED_MS 300

struct fold_read {
    int64_t horizon;   /* see above; 0 when it could not be read */
    int64_t watermark; /* the fold's, as last seen */
    int64_t unit_watermark; /* the checkpoint's, as last seen */
    bool units;        /* the reader waits for unit_watermark */
    int64_t waited_ms; /* spent waiting (or folding, folded_here) */
    bool caught_up;    /* watermark (units: unit_watermark) >= horizon */
    bool folded_here;  /* no leader: this request ran the SQL fold */
    bool error;        /* the database could not be asked */
};

/* Steps 1-3 above, bounded by max_wait_ms (>= 0). Fills *out. units: the
 * reader also reads per-unit values (unit_metrics: GET /bandit's
 * estimates), which the leader writes only at its checkpoints; it then
 * asks for a checkpoint with the wake and waits for unit_watermark to pass
 * the horizon. */
void fold_read_wait(struct app *app, struct db *db, int64_t max_wait_ms,
                    bool units, struct fold_read *out);

/* The freshness report, a new JSON object:
 *   {"horizon", "watermark", "caught_up", "waited_ms", "folded_by"
 *    ("leader" | "request"), "folded_at_ms", "lag_seconds" (the age of the
 *    oldest committed event not in the statistics, 0 when none),
 *    "lag_events", "max_age_ms" (the configured bound), "stale" (lag
 *    above it), and for a units reader "unit_watermark"}
 * or {"status": "unavailable"} when the database cannot say. */
json_t *fold_read_json(struct db *db, const struct fold_read *r,
                       int64_t max_age_ms);

#endif /* SERVICE_FOLD_READ_H */
