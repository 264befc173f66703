/* db_fold_wait.h -- read your writes without folding in the request: the
 * horizon a reader waits for, the watermark it watches, and the nudge that
 * wakes the leader's fold in another process (LISTEN/NOTIFY on the channel
 * DB_FOLD_CHANNEL). The watermark argument is in
 * sql/migrations/006_fold.sql; service/fold_read.h uses these calls. */
#ifndef SQL_DB_FOLD_WAIT_H
#define SQL_DB_FOLD_WAIT_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/status.h"

struct db;

#define DB_FOLD_CHANNEL "arbiter_fold"

struct db_fold_horizon {
    /* pg_snapshot_xmax of a snapshot taken now: every transaction that
     * committed before this call has an xid below it, so once the fold's
     * watermark reaches it, everything committed before the call is
     * folded */
    int64_t horizon;
    int64_t watermark; /* fold_state.watermark now */
    int64_t unit_watermark; /* fold_state.unit_watermark: unit_metrics
                             * holds every event below it */
    bool leader;       /* some session holds the leader lock (leader_key) */
};

/* The horizon, the watermark and whether a leader is there to fold. */
ab_status db_fold_horizon(struct db *db, int64_t leader_key,
                          struct db_fold_horizon *out);
/* fold_state.watermark and unit_watermark now. */
ab_status db_fold_watermark(struct db *db, int64_t *watermark,
                            int64_t *unit_watermark);
/* NOTIFY DB_FOLD_CHANNEL: the leader folds now instead of at its next
 * tick; with checkpoint, it also writes its per-unit values to
 * unit_metrics (payload "checkpoint"). */
ab_status db_fold_nudge(struct db *db, bool checkpoint);
/* LISTEN DB_FOLD_CHANNEL on this connection (the leader's). */
ab_status db_fold_listen(struct db *db);
/* The nudges that arrived on this connection since the last call (reads
 * what the socket holds; never blocks; 0 on a broken connection):
 * DB_FOLD_NUDGED, with DB_FOLD_NUDGED_CHECKPOINT when one asked for a
 * checkpoint. */
#define DB_FOLD_NUDGED 1
#define DB_FOLD_NUDGED_CHECKPOINT 2
int db_fold_nudged(struct db *db);

#endif /* SQL_DB_FOLD_WAIT_H */
