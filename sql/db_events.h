/* db_events.h -- outcome events in PostgreSQL: the group-commit write, and
 * partition and retention maintenance (sql/migrations/002_events.sql). */
#ifndef SQL_DB_EVENTS_H
#define SQL_DB_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/status.h"

struct db;

struct db_event {
    int64_t experiment_id;
    const char *event_id;   /* client id, or NULL */
    const char *unit;
    const char *arm;        /* explicit arm, or NULL */
    const char *arm_hint;   /* the snapshot's arm, used when no exposure */
    const char *metric;
    double value;
    int64_t ts_ms;
    const char *attributes; /* JSON object text, or NULL */
    int batch;              /* index into the batch ids of this call */
};

struct db_batch_result {
    int accepted;
    int duplicates;
};

/* Write events of n_batches batches in one transaction: COPY into
 * pg_temp.ingest_stage, then arbiter.ingest_raw (006_fold.sql): raw
 * events, client ids, batch ids; the aggregates are folded later. results[i] gets batch i's counts (a batch committed
 * before reports the counts it had then). AB_EDB: nothing is committed --
 * or, when the connection broke during COMMIT, the outcome is unknown; a
 * retry with the same batch ids is then safe (exactly once). AB_EINVAL:
 * nothing is committed and retrying these events will fail again: the
 * statement failed on a healthy connection with an SQLSTATE that is not
 * transient (transient: classes 08 connection, 40 rollback, 53 resources,
 * 57 operator intervention, 58 system, XX internal, 55P03 lock). A
 * unique violation (23505: an event id or batch id that a concurrent
 * transaction committed while this one waited for it) is retried here at
 * once, a few times, on the same connection: the retry counts those
 * events as duplicates (016_ingest_ack.sql). */
ab_status db_events_write(struct db *db, const char *const *batch_ids,
                          size_t n_batches, const struct db_event *events,
                          size_t n_events, struct db_batch_result *results);

/* The acknowledging write of no event, rolled back: AB_OK when it works
 * at all (so an AB_EINVAL above is about those events, not the schema). */
ab_status db_events_probe(struct db *db);

/* Create monthly partitions covering [from_ms, to_ms]. */
ab_status db_events_partitions(struct db *db, int64_t from_ms, int64_t to_ms);
/* Drop raw events (and idempotency keys) older than cutoff_ms. */
ab_status db_events_retention(struct db *db, int64_t cutoff_ms);

#endif /* SQL_DB_EVENTS_H */
