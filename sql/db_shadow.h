/* db_shadow.h -- paired observations of shadow experiments (issue 16;
 * sql/migrations/014_shadow_pairs.sql holds the statements' logic). Each
 * call is one statement answering a JSON document (new string, free()). */
#ifndef SQL_DB_SHADOW_H
#define SQL_DB_SHADOW_H

#include <stdint.h>

#include "lib/status.h"

struct db;

/* Store pairs (flat JSON array, see arbiter.shadow_pairs_add):
 * {"accepted": n, "duplicates": m}. */
ab_status db_shadow_pairs_add(struct db *db, int64_t experiment_id,
                              const char *pairs, char **out);

/* Label pairs: {"labelled", "unchanged"} or {"unknown": [...]} or
 * {"conflicting": [...]} (nothing written then). */
ab_status db_shadow_labels_set(struct db *db, int64_t experiment_id,
                               const char *labels, char **out);

/* Counts, moments and the recent samples (arbiter.shadow_summary). */
ab_status db_shadow_summary(struct db *db, int64_t experiment_id,
                            double score_tolerance, int sample, char **out);

#endif /* SQL_DB_SHADOW_H */
