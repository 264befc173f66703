/* sticky.h -- bounded in-memory cache of (experiment, unit) -> first arm.
 * Sharded, each shard a chained hash table with FIFO eviction. Thread-safe.
 */
#ifndef SERVICE_STICKY_H
#define SERVICE_STICKY_H

#include <stddef.h>
#include <stdint.h>

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

#endif /* SERVICE_STICKY_H */
