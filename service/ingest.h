/* ingest.h -- durable, group-committed outcome ingestion.
 *
 *   handler --submit(batch)--> [queue, bounded] --> writer thread
 *      writer: take every waiting batch (up to GROUP_MAX events), one
 *      transaction (COPY into a staging table, arbiter.ingest_raw: raw
 *      events, idempotency keys, batch ids -- no aggregate, those are
 *      folded later by service/fold.h); on failure append them to the
 *      spool and fsync; then wake the handlers. A handler answers 2xx only
 *      when its batch is committed or spooled. A group the database
 *      refuses for good is committed again one request at a time: the
 *      request at fault alone is refused (AB_EINVAL, before any 2xx).
 *   While the spool holds unreplayed records, new batches are spooled too
 *   (so replay stays in order) and the writer replays the spool into
 *   PostgreSQL, oldest first, exactly once (batch ids).
 */
#ifndef SERVICE_INGEST_H
#define SERVICE_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/status.h"

struct app;
struct ingest;

struct ingest_event {
    int64_t experiment_id;
    char *event_id; /* owned; NULL */
    char *unit;     /* owned */
    char *arm;      /* owned; NULL: resolve from the exposure */
    char *arm_hint; /* owned */
    char *metric;   /* owned */
    double value;
    int64_t ts_ms;
    char *attributes; /* owned JSON text; NULL */
};

struct ingest_config {
    const char *spool_dir;
    size_t spool_max;      /* bytes */
    size_t queue_max;      /* events waiting for the writer */
    int retention_days;    /* raw events kept */
    /* client-side bound (ms) of the writer's connect and of each group
     * commit (0: INGEST_COMMIT_TIMEOUT_MS). A commit that misses it is
     * abandoned, its connection dropped and its batches spooled, so an
     * event post is answered within about this bound even when
     * PostgreSQL is stopped. The abandoned transaction may still commit
     * when the server resumes: the spool replay of the same batch ids is
     * then a no-op (ingest_batches, db_events.h), exactly once. A spool
     * replay may take longer, while no request waits behind it for longer
     * than the bound (db_set_patience). */
    int commit_timeout_ms;
};

#define INGEST_COMMIT_TIMEOUT_MS 2000

ab_status ingest_new(struct app *app, const struct ingest_config *cfg,
                     struct ingest **out);
/* Refuse new batches (AB_EBUSY), write or spool every queued one (their
 * submitters are answered), replay the spool for up to timeout_ms, and
 * stop the writer thread. Idempotent. */
void ingest_drain(struct ingest *ing, int timeout_ms);
/* Drain (if not done) and free. NULL is a no-op. */
void ingest_free(struct ingest *ing);
/* ingest_drain() then ingest_free(). */
void ingest_stop(struct ingest *ing, int timeout_ms);

struct ingest_result {
    int accepted;
    int duplicates;
    bool spooled; /* durable locally; duplicates are counted at replay */
};

/* Make n events durable (takes ownership of evs and their strings). Blocks
 * until committed or spooled. AB_EBUSY: queue or spool full, nothing kept
 * (answer 503 + Retry-After). AB_EINTERNAL: neither database nor spool
 * could take it (answer 503). */
ab_status ingest_submit(struct ingest *ing, struct ingest_event *evs,
                        size_t n, struct ingest_result *out);

/* The asynchronous form: returns at once; cb(arg, rc, result) is called
 * from the writer thread once the batch is committed or spooled (rc AB_OK,
 * result valid during the call) or could not be made durable (rc
 * AB_EINTERNAL or AB_EBUSY, result NULL), or was refused by the database
 * for its own content (rc AB_EINVAL, result NULL: nothing stored). A refusal up front (AB_EBUSY:
 * queue full or draining) is returned here and cb is never called. evs is
 * taken in either case. */
typedef void ingest_done_fn(void *arg, ab_status rc,
                            const struct ingest_result *result);
ab_status ingest_submit_async(struct ingest *ing, struct ingest_event *evs,
                              size_t n, ingest_done_fn *cb, void *arg);

void ingest_event_clear(struct ingest_event *e);

/* A leader job (leader_job_fn): create the monthly partitions accepted
 * timestamps can fall in and apply the retention, at the first tick and
 * hourly; arg is the ingest. */
struct db;
void ingest_maintain_job(void *arg, struct db *db, int64_t now_ms);

#endif /* SERVICE_INGEST_H */
