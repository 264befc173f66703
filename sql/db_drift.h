/* db_drift.h -- drift watch state in PostgreSQL
 * (sql/migrations/018_drift.sql). Each call answers JSON text (new
 * string, free()). */
#ifndef SQL_DB_DRIFT_H
#define SQL_DB_DRIFT_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/status.h"

struct db;

/* arbiter.drift_reference(): the watch's state, capturing its reference
 * when complete (at most cap values). */
ab_status db_drift_reference_json(struct db *db, int64_t experiment_id,
                                  const char *metric, int64_t reference_s,
                                  int64_t min_values, int64_t cap,
                                  char **out);

/* arbiter.drift_current(): the newest cap values of the current window. */
ab_status db_drift_current_json(struct db *db, int64_t experiment_id,
                                const char *metric, int64_t window_s,
                                int64_t cap, char **out);

/* Record a look: looks, the newest value's time, whether it rejected
 * (flagged latches), the result (JSON object text). */
ab_status db_drift_save(struct db *db, int64_t experiment_id,
                        const char *metric, int64_t looks,
                        int64_t last_seen_ms, bool drift, const char *result);

/* The rows of arbiter.drift for one experiment, a JSON array. */
ab_status db_drift_results_json(struct db *db, const char *key, char **out);

#endif /* SQL_DB_DRIFT_H */
