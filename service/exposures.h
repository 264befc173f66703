/* exposures.h -- the asynchronous exposure writer. The assign path pushes
 * into a bounded queue (a mutex held for a pointer swap, never for I/O);
 * one thread coalesces per (experiment, unit) and upserts batches into
 * PostgreSQL. While the database is down, coalesced exposures are kept in
 * memory (bounded by the same limit) and written when it is back; past the
 * limit new exposures are dropped and counted.
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

/* Start the writer thread. It borrows connections from 'lender' (which
 * must outlive the writer) and keeps at most 'limit' exposures. */
struct exposure_writer *exposure_writer_new(const struct db_lender *lender,
                                            size_t limit);
/* Push one exposure (copied). Never blocks on I/O. */
void exposure_writer_push(struct exposure_writer *w, const struct exposure *x);
/* Flush what is queued (bounded by timeout_ms), stop the thread, free. */
void exposure_writer_stop(struct exposure_writer *w, int timeout_ms);

#endif /* SERVICE_EXPOSURES_H */
