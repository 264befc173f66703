/* db_fold.h -- the aggregation fold and its freshness, in PostgreSQL
 * (sql/migrations/006_fold.sql: arbiter.fold, arbiter.fold_status; the
 * watermark argument is written there). */
#ifndef SQL_DB_FOLD_H
#define SQL_DB_FOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/status.h"

struct db;

struct db_fold_result {
    int64_t folded;    /* events folded by this call */
    int64_t watermark; /* every transaction id below it is folded */
    int64_t pending;   /* committed events at or above it, capped at
                        * 10,000 (0: caught up) */
};

/* Fold up to about max_events committed raw events into the aggregates,
 * in one transaction (exactly once: the watermark moves with them).
 * Serialized with every other fold by an advisory lock: a second caller
 * waits, then folds what is left. AB_EDB on failure (nothing folded). */
ab_status db_fold_run(struct db *db, int max_events,
                      struct db_fold_result *out);

struct db_fold_status {
    int64_t watermark;
    int64_t folded_at_ms;   /* when the watermark last moved (epoch ms) */
    int64_t pending_events; /* committed, not yet folded */
    double lag_seconds;     /* age of the oldest of them; 0 when none */
    int64_t events_total;   /* folded since the migration */
};

/* How fresh the folded statistics are (arbiter.fold_status()). A decision
 * must not act while lag_seconds exceeds its bound (see README,
 * "Ingestion"): wait for the fold, and say so. */
ab_status db_fold_status(struct db *db, struct db_fold_status *out);

/* ---- the leader's in-memory fold (sql/migrations/012_fold_checkpoint.sql)
 *
 * A batch is one transaction: db_fold_begin() (BEGIN, the fold lock, the
 * range, exposures of new units, the per-unit delta left in a temporary
 * table), db_fold_delta() and db_fold_defs() and db_fold_load() to read
 * it, db_fold_finish() (the arm changes, the watermark, COMMIT). A
 * checkpoint is another: db_fold_checkpoint_begin(), _put() (any number),
 * _commit(). db_fold_abort() rolls back whichever is open. */

struct db_fold_range {
    int64_t w0, w1; /* the batch folds the raw events of [w0, w1) */
    int64_t unit_w; /* unit_metrics holds every event below it */
    int64_t events; /* raw events in the range */
    bool more;      /* max_events cut the range: more is committed */
    int64_t epoch;  /* fold_state.epoch (012_fold_checkpoint.sql) */
};

/* A unit's value (n == 0: no row), or a delta (n, sum of the batch). */
struct db_unit_value {
    int64_t experiment_id;
    const char *metric, *unit, *arm;
    int64_t n;
    double sum;
    int64_t first_us, last_us; /* timestamps, us since the epoch */
    /* a delta only (db_fold_delta): whether the unit belongs to the
     * arm's population before the batch and after it (binary and sum
     * metrics count its values exactly while it does; 015_attribution.sql,
     * pg_temp.fold_members) */
    bool member0, member1;
};

struct db_metric_def {
    int64_t experiment_id;
    const char *name, *kind;
    const char *covariate; /* NULL: none */
};

/* One row of per-arm changes (arm_metric_totals' columns, as deltas). */
struct db_arm_delta {
    int64_t experiment_id;
    const char *arm, *metric;
    int64_t units;
    double sum, sum_sq, den_sum, den_sum_sq, cross_sum;
    double pre_sum, pre_sum_sq, pre_cross_sum;
};

typedef void db_unit_fn(void *arg, const struct db_unit_value *v);
typedef void db_def_fn(void *arg, const struct db_metric_def *d);

/* BEGIN, then arbiter.fold_begin(max_events). On failure nothing is
 * open. */
ab_status db_fold_begin(struct db *db, int max_events,
                        struct db_fold_range *out);
/* The batch's delta per (experiment, metric, unit, arm): n and sum of its
 * events, first_us and last_us their earliest and latest timestamps, and
 * the unit's membership of the arm's population before and after. */
ab_status db_fold_delta(struct db *db, db_unit_fn *fn, void *arg);
/* The (experiment, unit, arm) pairs that join the arm's population in
 * this batch through an exposure recorded in [w0, w1) after the fold held
 * their pre-period values back (015_attribution.sql, attr_held): metric
 * "", member0 false, member1 true, no delta. */
ab_status db_fold_joins(struct db *db, db_unit_fn *fn, void *arg);
/* The metric definitions of the experiments in the batch. */
ab_status db_fold_defs(struct db *db, db_def_fn *fn, void *arg);
/* The unit_metrics rows of these keys that exist (n, value_sum, ts). */
ab_status db_fold_load(struct db *db, const struct db_unit_value *keys,
                       size_t n, db_unit_fn *fn, void *arg);
/* arbiter.fold_finish(w1, events, rows), then COMMIT. AB_OK only when the
 * commit succeeded; on failure nothing is open. */
ab_status db_fold_finish(struct db *db, int64_t w1, int64_t events,
                         const struct db_arm_delta *rows, size_t n);
/* BEGIN, the fold lock, then the two watermarks and the epoch as they
 * are now. */
ab_status db_fold_checkpoint_begin(struct db *db, int64_t *watermark,
                                   int64_t *unit_watermark, int64_t *epoch);
/* Absolute values of n units (arbiter.fold_checkpoint). */
ab_status db_fold_checkpoint_put(struct db *db,
                                 const struct db_unit_value *rows, size_t n);
/* unit_watermark := watermark, then COMMIT. */
ab_status db_fold_checkpoint_commit(struct db *db);
/* Roll back the open batch or checkpoint (no-op when none). */
void db_fold_abort(struct db *db);
/* In a transaction of its own: refold [unit_watermark, watermark) into
 * unit_metrics (arbiter.fold_units_sync()); *watermark gets the
 * watermark, which is then also the unit watermark; *epoch the epoch. */
ab_status db_fold_units_sync(struct db *db, int64_t *watermark,
                             int64_t *epoch);

/* The checkpoint's state: unit_watermark and when it last moved. */
ab_status db_fold_checkpoint_status(struct db *db, int64_t *unit_watermark,
                                    int64_t *checkpointed_at_ms);

#endif /* SQL_DB_FOLD_H */
