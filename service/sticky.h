/* sticky.h -- bounded in-memory cache of (experiment, unit) -> first arm.
 * Sharded, each shard a chained hash table with FIFO eviction. Thread-safe.
 */
#ifndef SERVICE_STICKY_H
#define SERVICE_STICKY_H

#include <stddef.h>
#include <stdint.h>

#include "lib/status.h"

struct sticky_cache;

struct sticky_cache *sticky_cache_new(size_t capacity);
void sticky_cache_free(struct sticky_cache *c);
/* Copy the arm into out (NUL-terminated); 1 when found and first seen
 * under a bucket version >= min_bucket_version, 0 otherwise. */
int sticky_cache_get(struct sticky_cache *c, int64_t experiment_id,
                     const char *unit, uint32_t min_bucket_version, char *out,
                     size_t out_len);
/* Remember a unit's first arm under bucket_version. The first arm wins,
 * unless the entry is from an older bucket version (re-randomized). */
void sticky_cache_put(struct sticky_cache *c, int64_t experiment_id,
                      const char *unit, const char *arm,
                      uint32_t bucket_version);
size_t sticky_cache_size(struct sticky_cache *c);

/* ---- the store behind the cache: lookups with a client-side deadline ----
 *
 * A lookup in PostgreSQL never runs on the caller's thread. The cache owns
 * STICKY_LOOKUP_THREADS lookup threads, each with its own connection
 * (opened on first use, server-side statement_timeout = wait_ms); the
 * caller queues the question and waits on a condition variable for at most
 * wait_ms of wall time. That bound holds whatever the server does: a
 * server that is stopped (SIGSTOP), partitioned away or slow leaves a
 * lookup thread blocked in libpq, never an HTTP worker.
 *
 * Circuit breaker: while every lookup thread has been busy with one
 * question for longer than wait_ms (a stalled server), lookups fail at
 * once instead of each spending wait_ms; so a batch naming hundreds of
 * sticky experiments costs at most STICKY_LOOKUP_THREADS waits, not one
 * per experiment. The queue is bounded (STICKY_QUEUE_MAX); a full queue
 * fails at once too. The lookup threads start (and connect) on
 * sticky_store_start(), or on the first lookup.
 *
 * Returns AB_OK with a new string in *arm (free()), AB_ENOTFOUND when the
 * store has no arm for the unit at a version >= min_bucket_version, AB_EDB
 * when the store could not answer in time (the caller falls back to the
 * hash: README "Stickiness when the store is slow or down"). */
#define STICKY_LOOKUP_THREADS 2
#define STICKY_QUEUE_MAX 256
void sticky_store_start(struct sticky_cache *c, const char *database_url,
                        int wait_ms);
ab_status sticky_store_get(struct sticky_cache *c, const char *database_url,
                           int wait_ms, int64_t experiment_id,
                           const char *unit, uint32_t min_bucket_version,
                           char **arm);

#endif /* SERVICE_STICKY_H */
