/* spool.h -- the local, fsync'd spool that makes an event batch durable
 * while PostgreSQL is unreachable. Append-only file of records, replayed in
 * order; one process per spool directory (flock).
 *
 *   record = "ARBS" | u32le payload length | u32le XXH32(payload, 0) |
 *            u32le 0 | payload
 *
 * A record whose header or checksum does not match at start-up is a torn
 * write from a crash (never acknowledged: the ack waits for fsync) and is
 * cut off. Replay progress is kept in events.offset; replaying a record
 * twice is harmless because every batch carries an id that PostgreSQL
 * remembers (arbiter.ingest_batches).
 */
#ifndef SERVICE_SPOOL_H
#define SERVICE_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/status.h"

struct spool;

/* Open (creating dir if needed). AB_ECONFLICT when another process holds
 * it; AB_EINTERNAL on I/O errors. */
ab_status spool_open(const char *dir, size_t max_bytes, struct spool **out);
void spool_close(struct spool *s);

/* Append records and fsync once. AB_EBUSY when they would pass max_bytes;
 * AB_EINTERNAL on I/O errors (nothing is acknowledged then). */
ab_status spool_append(struct spool *s, char *const *payloads,
                       const size_t *lens, size_t n);

/* Bytes written and not yet replayed. */
uint64_t spool_pending(const struct spool *s);
uint64_t spool_replayed_total(const struct spool *s);

/* The next record to replay: a new buffer in *payload (free()). Successive
 * peeks return successive records (so a replay can group several in one
 * transaction) until spool_advance() or spool_rewind(). AB_ENOTFOUND when
 * no record is left after the peeked ones. */
ab_status spool_peek(struct spool *s, char **payload, size_t *len);
/* Mark every record peeked since the last advance/rewind as replayed; when
 * everything is replayed the file is truncated. */
ab_status spool_advance(struct spool *s);
/* Keep a record that can never be replayed (the database refuses it) out
 * of the way: append it, one line, to DIR/events.poison and fsync, so an
 * operator can inspect and re-send it. AB_EINTERNAL on I/O errors. */
ab_status spool_quarantine(struct spool *s, const char *payload, size_t len);
/* Forget the peeks (their replay failed): the next peek starts again at
 * the oldest unreplayed record. */
void spool_rewind(struct spool *s);

#endif /* SERVICE_SPOOL_H */
