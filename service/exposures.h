/* exposures.h -- the asynchronous exposure writer. The assign path copies
 * each exposure into its own thread's fixed-size ring (lock-free, single
 * producer, single consumer: no mutex, no allocation, no write to a cache
 * line another HTTP thread writes); one writer thread drains every ring,
 * coalesces per (experiment, unit) in a hash table and upserts batches
 * into PostgreSQL. While the database is down, coalesced exposures are
 * kept in memory (at most 'limit' units) and written when it is back; an
 * exposure that finds its ring full, or a new unit past the limit, is
 * dropped and counted.
 */
#ifndef SERVICE_EXPOSURES_H
#define SERVICE_EXPOSURES_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "sql/db.h"

/* One exposure as the assign path records it (strings borrowed; the
 * writer copies them). */
struct exposure {
    int64_t experiment_id;
    const char *unit;
    const char *arm;
    int32_t bucket_version;
    int64_t weights_version;
    double propensity;
    int64_t ts_ms;
};

/* ---- the merge rule ----------------------------------------------------
 * The writer keeps one tally per (experiment, unit) and merges every
 * exposure of that unit into it. The result does not depend on the order
 * in which exposures arrive (threads interleave): a higher bucket version
 * re-randomized the unit and replaces the tally (lower versions are
 * superseded and not counted, as the upsert in sql/db.c does with the
 * stored row); under one version the earliest exposure's arm, weights
 * version and propensity are kept and counts add up; last_ms is the
 * latest of all. */
struct exposure_tally {
    int32_t bucket_version;
    int64_t weights_version;
    double propensity;
    int64_t first_ms, last_ms, count;
};

enum exposure_merge {
    EXPOSURE_SUPERSEDED, /* an older bucket version: only last_ms moved */
    EXPOSURE_COUNTED,    /* counted; the tally's first exposure stays */
    EXPOSURE_FIRST       /* counted, and now the first of its version:
                            the caller keeps this exposure's arm */
};

/* Merge x (its bucket_version, weights_version, propensity, ts_ms; unit
 * and arm are the caller's) into t, a tally started from one exposure.
 * Pure. */
enum exposure_merge exposure_merge(struct exposure_tally *t,
                                   const struct exposure *x);

/* Start the writer thread. It borrows connections from 'lender' (which
 * must outlive the writer) and keeps at most 'limit' exposures. */
struct exposure_writer *exposure_writer_new(const struct db_lender *lender,
                                            size_t limit);
/* Push one exposure (copied into this thread's ring; the strings are
 * borrowed for the call only). Never blocks, never allocates after the
 * thread's first push. Units longer than CORE_UNIT_MAX bytes or arms
 * longer than CORE_KEY_MAX are refused by the callers before this. */
void exposure_writer_push(struct exposure_writer *w, const struct exposure *x);
/* Flush what is queued (bounded by timeout_ms), stop the thread, free. */
void exposure_writer_stop(struct exposure_writer *w, int timeout_ms);

#endif /* SERVICE_EXPOSURES_H */
