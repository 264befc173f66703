/* db_stats.h -- reading the per-arm sufficient statistics of an experiment
 * (view arbiter.arm_stats: O(arms x metrics) whatever the event count). */
#ifndef SQL_DB_STATS_H
#define SQL_DB_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/status.h"

struct db;

/* One arbiter.arm_stats row, typed: metric, arm, n (the analysis
 * population), exposed_units, units_with_events and the sums (counts as
 * doubles, exactly as PostgreSQL prints them: shortest round-trip). */
struct db_arm_stat {
    char *metric, *arm;            /* new strings */
    double n, exposed_units, units_with_events;
    double sum, sum_sq, den_sum, den_sum_sq, cross_sum;
    double pre_sum, pre_sum_sq, pre_cross_sum;
};

/* The arm_stats rows of one experiment, ordered by metric and arm: a new
 * array in *out (release with db_arm_stats_free()), its length in *n_out
 * (0 and NULL for an unknown key). */
ab_status db_arm_stats_read(struct db *db, const char *key,
                            struct db_arm_stat **out, size_t *n_out);
void db_arm_stats_free(struct db_arm_stat *rows, size_t n);

/* The row of (metric, arm), or NULL. */
const struct db_arm_stat *db_arm_stat_find(const struct db_arm_stat *rows,
                                           size_t n, const char *metric,
                                           const char *arm);

/* Units of one experiment with an outcome credited to an arm other than
 * their exposure's (ramps that moved a non-sticky unit, explicit arms):
 * arbiter.units_in_several_arms for one experiment, a count the fold
 * keeps (arbiter.attr_units, 015_attribution.sql): one row to read. */
ab_status db_units_in_several_arms(struct db *db, int64_t experiment_id,
                                   int64_t *out);

/* Per arm, the units in its population through an outcome there while
 * exposed in another arm (arbiter.arm_population.moved_units, kept by the
 * fold), as a JSON object text {"arm": units} over every arm (0 without).
 * New string (free()). */
ab_status db_moved_units_json(struct db *db, int64_t experiment_id,
                              char **out);

/* Units first exposed under one weights version, per arm, as a JSON object
 * text {"arm": units}: the sample-ratio-mismatch check compares them with
 * the weights of that version (a ramp or a bandit changes the weights, and
 * earlier units were drawn under other ones). New string (free()). */
ab_status db_srm_counts_json(struct db *db, int64_t experiment_id,
                             int64_t weights_version, char **out);

#endif /* SQL_DB_STATS_H */
