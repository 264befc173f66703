/* exposures.h -- the asynchronous exposure writer. The assign path pushes
 * into a bounded queue (a mutex held for a pointer swap, never for I/O);
 * one thread coalesces per (experiment, unit) and upserts batches into
 * PostgreSQL. While the database is down, coalesced exposures are kept in
 * memory (bounded by the same limit) and written when it is back; past the
 * limit new exposures are dropped and counted.
 */
#ifndef API_EXPOSURES_H
#define API_EXPOSURES_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct app;
struct exposure;

struct exposure_writer *exposure_writer_new(struct app *app, size_t limit);
/* Push one exposure (copied). Never blocks on I/O. */
void exposure_writer_push(struct exposure_writer *w, const struct exposure *x);
/* Flush what is queued (bounded by timeout_ms), stop the thread, free. */
void exposure_writer_stop(struct exposure_writer *w, int timeout_ms);

#endif /* API_EXPOSURES_H */
