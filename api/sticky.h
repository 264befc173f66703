/* sticky.h -- bounded in-memory cache of (experiment, unit) -> first arm.
 * Sharded, each shard a chained hash table with FIFO eviction. Thread-safe.
 */
#ifndef API_STICKY_H
#define API_STICKY_H

#include <stddef.h>
#include <stdint.h>

struct sticky_cache;

struct sticky_cache *sticky_cache_new(size_t capacity);
void sticky_cache_free(struct sticky_cache *c);
/* Copy the arm into out (NUL-terminated); 1 when found, 0 otherwise. */
int sticky_cache_get(struct sticky_cache *c, int64_t experiment_id,
                     const char *unit, char *out, size_t out_len);
void sticky_cache_put(struct sticky_cache *c, int64_t experiment_id,
                      const char *unit, const char *arm);
size_t sticky_cache_size(struct sticky_cache *c);

#endif /* API_STICKY_H */
