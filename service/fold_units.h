/* fold_units.h -- the leader's fold with the per-unit values in memory,
 * checkpointed in bulk (sql/migrations/012_fold_checkpoint.sql has the
 * protocol and the argument).
 *
 * Per batch (one transaction): the raw events of [w0, w1) arrive as one
 * delta per (experiment, metric, unit, arm); the old value of each unit
 * comes from memory (or, the first time the leader sees the unit since
 * its last reset, from unit_metrics, in one statement for the batch);
 * the per-arm changes are computed here, by the rules of
 * arbiter.contribution(), and written with the new watermark. The units'
 * new values stay in memory, marked dirty.
 * Per checkpoint (every checkpoint_ms, or sooner when the dirty units
 * exceed FOLD_UNITS_MAX_DIRTY): every dirty unit written once, absolute
 * values, with unit_watermark := watermark.
 *
 * Memory is trusted only while fold_state holds the two watermarks this
 * leader left there (checked under the fold lock at every batch and
 * checkpoint). Anything else -- a first batch, a fold by another process,
 * any failed statement or commit -- drops the memory and starts over from
 * the checkpoint: arbiter.fold_units_sync() refolds the raw events after
 * it into unit_metrics, in its own transaction.
 *
 * Single-threaded: the leader thread only. */
#ifndef SERVICE_FOLD_UNITS_H
#define SERVICE_FOLD_UNITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/status.h"

struct db;
struct fold_units;

/* dirty units that force a checkpoint before checkpoint_ms */
#define FOLD_UNITS_MAX_DIRTY 2000000
/* after a checkpoint, a memory of more units than this is dropped (they
 * are all clean then: unit_metrics holds them) */
#define FOLD_UNITS_MAX_HELD 4000000
/* units per statement of a checkpoint */
#define FOLD_UNITS_CHUNK 20000

struct fold_units *fold_units_new(int64_t checkpoint_ms);
void fold_units_free(struct fold_units *u);

struct fold_units_result {
    int64_t folded;    /* events folded by the batch */
    int64_t watermark; /* after it */
    bool more;         /* committed events wait beyond it */
};

/* One batch of at most about max_events events, exactly once (see
 * above). AB_EDB: nothing folded, memory dropped. */
ab_status fold_units_batch(struct fold_units *u, struct db *db,
                           int max_events, struct fold_units_result *out);

/* A checkpoint, if one is due at now_ms (or force and anything is
 * unwritten). AB_EDB: nothing written, memory dropped. */
ab_status fold_units_checkpoint(struct fold_units *u, struct db *db,
                                int64_t now_ms, bool force);

/* Units held in memory, and those of them not yet checkpointed. */
size_t fold_units_held(const struct fold_units *u);
size_t fold_units_dirty(const struct fold_units *u);

#endif /* SERVICE_FOLD_UNITS_H */
