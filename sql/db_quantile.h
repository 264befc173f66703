/* db_quantile.h -- reading the quantile sketches of an experiment (table
 * arbiter.quantile_buckets, kept by the fold: 013_quantiles.sql).
 * O(buckets), whatever the event count: about 115 buckets per decade of
 * values at the stored relative accuracy of 1 %. */
#ifndef SQL_DB_QUANTILE_H
#define SQL_DB_QUANTILE_H

#include <stdint.h>

#include "lib/status.h"

struct db;

/* Every bucket of one experiment as a JSON object text
 *   {"metric": {"arm": [[bucket, count], ...]}}
 * buckets ascending ("{}" when none). New string in *out (free()). */
ab_status db_quantile_buckets_json(struct db *db, int64_t experiment_id,
                                   char **out);

#endif /* SQL_DB_QUANTILE_H */
