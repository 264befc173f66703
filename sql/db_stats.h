/* db_stats.h -- reading the per-arm sufficient statistics of an experiment
 * (view arbiter.arm_stats: O(arms x metrics) whatever the event count). */
#ifndef SQL_DB_STATS_H
#define SQL_DB_STATS_H

#include <stdint.h>

#include "lib/status.h"

struct db;

/* arbiter.arm_stats rows of one experiment as a JSON array text:
 * [{"metric","kind","direction","role","arm","n","exposed_units",
 *   "units_with_events","sum","sum_sq","den_sum","den_sum_sq","cross_sum",
 *   "pre_sum","pre_sum_sq","pre_cross_sum"}], ordered by metric and arm.
 * New string in *out (free()). */
ab_status db_arm_stats_json(struct db *db, const char *key, char **out);

/* Units first exposed under one weights version, per arm, as a JSON object
 * text {"arm": units}: the sample-ratio-mismatch check compares them with
 * the weights of that version (a ramp or a bandit changes the weights, and
 * earlier units were drawn under other ones). New string (free()). */
ab_status db_srm_counts_json(struct db *db, int64_t experiment_id,
                             int64_t weights_version, char **out);

#endif /* SQL_DB_STATS_H */
