/* db_fold.h -- the aggregation fold and its freshness, in PostgreSQL
 * (sql/migrations/006_fold.sql: arbiter.fold, arbiter.fold_status; the
 * watermark argument is written there). */
#ifndef SQL_DB_FOLD_H
#define SQL_DB_FOLD_H

#include <stdint.h>

#include "lib/status.h"

struct db;

struct db_fold_result {
    int64_t folded;    /* events folded by this call */
    int64_t watermark; /* every transaction id below it is folded */
    int64_t pending;   /* committed events at or above it, capped at
                        * 10,000 (0: caught up) */
};

/* Fold up to about max_events committed raw events into the aggregates,
 * in one transaction (exactly once: the watermark moves with them).
 * Serialized with every other fold by an advisory lock: a second caller
 * waits, then folds what is left. AB_EDB on failure (nothing folded). */
ab_status db_fold_run(struct db *db, int max_events,
                      struct db_fold_result *out);

struct db_fold_status {
    int64_t watermark;
    int64_t folded_at_ms;   /* when the watermark last moved (epoch ms) */
    int64_t pending_events; /* committed, not yet folded */
    double lag_seconds;     /* age of the oldest of them; 0 when none */
    int64_t events_total;   /* folded since the migration */
};

/* How fresh the folded statistics are (arbiter.fold_status()). A decision
 * must not act while lag_seconds exceeds its bound (see README,
 * "Ingestion"): wait for the fold, and say so. */
ab_status db_fold_status(struct db *db, struct db_fold_status *out);

#endif /* SQL_DB_FOLD_H */
