/* db_rollout.h -- rollout state and decisions in PostgreSQL
 * (sql/migrations/005_rollouts.sql). */
#ifndef SQL_DB_ROLLOUT_H
#define SQL_DB_ROLLOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/status.h"

struct db;

struct db_rollout {
    char phase[32];
    int step;
    int64_t phase_started_ms;
    bool approved;
    int64_t last_units;
    int64_t last_units_ms;
    char *tests;    /* JSON object text (owned) */
    char *evidence; /* JSON object text (owned) */
};
void db_rollout_clear(struct db_rollout *r);

/* AB_ENOTFOUND when the experiment has no rollout state yet. */
ab_status db_rollout_load(struct db *db, int64_t experiment_id,
                          struct db_rollout *out);

/* One decision, applied atomically with its audit row and a NOTIFY:
 *   state       new experiment state, or NULL to keep it
 *   served_arm  arm served to every unit (promoted / rolled_back), or NULL
 *   definition  new canonical definition, or NULL to keep it
 *   weights     new weights {"arm": percent} (raises weights_version and
 *               records the history), or NULL
 *   rollout     state to store, or NULL to keep it
 * AB_ECONFLICT when the experiment is no longer at expect_version (changed
 * by someone else since it was read: the caller re-reads next tick), or no
 * longer in one of from_states (comma separated; NULL: any). */
struct db_decision {
    const char *key;
    int64_t expect_version; /* 0: do not check */
    const char *from_states;
    const char *state;
    const char *served_arm;
    const char *definition;
    const char *weights;
    const char *weights_source; /* 'rollout', 'manual' */
    const struct db_rollout *rollout;
    const char *action;  /* advance, promote, rollback, pause, ... */
    const char *actor;   /* 'engine' or 'admin' */
    const char *reason;
    const char *details; /* JSON object text: the numbers behind it */
};
ab_status db_decision_apply(struct db *db, const struct db_decision *d);

/* Errors of one metric per weights period: JSON array text of
 * [share_t, errors_c, errors_t] (new string, free()). */
ab_status db_error_periods_json(struct db *db, int64_t experiment_id,
                                const char *metric, const char *control,
                                const char *candidate, char **out);

/* served_arm of every promoted / rolled-back experiment: JSON object text
 * {"key": "arm"} (new string) -- the snapshot loader reads it. */
ab_status db_served_arms_json(struct db *db, char **out);

#endif /* SQL_DB_ROLLOUT_H */
