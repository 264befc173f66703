/* db_bandits.h -- the bandit side of the libpq layer: the running bandit
 * experiments with the reweight job's memory (arbiter.bandit_state), their
 * arm statistics, publishing a new weights version (definition, history,
 * decision and NOTIFY in one statement), and the per-period sums behind
 * the corrected estimates (sql/migrations/003_bandits.sql).
 */
#ifndef SQL_DB_BANDITS_H
#define SQL_DB_BANDITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/status.h"

struct db;

/* One entry of the P(best) leader's streak (bandit_state.p_best_history),
 * oldest first: when, at which weights version, the leader and its
 * P(best). */
struct db_pbest_point {
    int64_t at_ms;
    int64_t weights_version;
    char *arm;
    double p_best;
};

/* A running bandit experiment and what the job remembers of it, as typed
 * columns. Times are epoch milliseconds of the database clock; -1 when
 * NULL. */
struct db_bandit_row {
    int64_t id;
    char *key;
    char *definition; /* canonical definition JSON */
    int64_t version;
    int64_t weights_version;
    int64_t now_ms;        /* the database's now() when listed */
    int64_t started_ms;
    bool has_state;        /* a bandit_state row exists */
    int64_t last_run_ms;
    char *leader_arm;      /* NULL when none */
    int64_t leader_since_ms;
    struct db_pbest_point *history; /* the streak, oldest first */
    size_t n_history;               /* 0 without state */
    int64_t promoted_version; /* 0 when never promoted */
};
void db_bandit_list_free(struct db_bandit_row *rows, size_t n);

/* Every running experiment of strategy bandit, ordered by id. */
ab_status db_bandit_list(struct db *db, struct db_bandit_row **out,
                         size_t *n_out);

/* Arm statistics of one metric (arbiter.arm_stats: n, sum, sum_sq) for the
 * n_arms named arms, in that order; arms without a row get zeros. The
 * three arrays are caller-owned and written only on AB_OK. */
ab_status db_bandit_arm_stats(struct db *db, int64_t experiment_id,
                              const char *metric, const char *const *arms,
                              size_t n_arms, double *n, double *sum,
                              double *sum_sq);

/* Publish a new weights version, if the experiment is still running at
 * expect_version: replace the definition (version and weights_version
 * raised), record weights_history (weights, source, inputs), write the
 * decision (action, actor 'engine', reason, details) and notify every
 * instance -- one statement. *weights_version gets the new version.
 * AB_ECONFLICT: the row changed, or is no longer running. */
ab_status db_bandit_publish(struct db *db, int64_t experiment_id,
                            int64_t expect_version, const char *definition,
                            const char *weights, const char *source,
                            const char *inputs, const char *action,
                            const char *reason, const char *details,
                            int64_t *weights_version);

/* Upsert the job's memory after a run (last_run_at = now(), runs + 1).
 * leader_since_ms < 0 and promoted_version <= 0 store NULL; leader_arm
 * may be NULL. */
struct db_bandit_state {
    const char *phase;
    const char *p_best;         /* JSON object text */
    const char *leader_arm;
    int64_t leader_since_ms;
    const char *p_best_history; /* JSON array text */
    const char *promoted_arm;
    int64_t promoted_version;
};
ab_status db_bandit_state_save(struct db *db, int64_t experiment_id,
                               const struct db_bandit_state *st);

/* One arm's P(best) at the job's last run. */
struct db_arm_p {
    char *arm;
    double p;
};

/* The job's memory of one experiment (arbiter.bandit_state), as typed
 * columns. Times are epoch milliseconds truncated to the millisecond, -1
 * when NULL; strings are NULL when NULL. */
struct db_bandit_job {
    int64_t last_run_ms;
    int64_t runs;
    char *phase;
    struct db_arm_p *p_best; /* the stored object's entries, in its order */
    size_t n_p_best;
    char *leader_arm;
    int64_t leader_since_ms;
    struct db_pbest_point *history; /* the streak, oldest first */
    size_t n_history;
    char *promoted_arm;
    int64_t promoted_version; /* 0 when NULL (never promoted) */
};
void db_bandit_job_clear(struct db_bandit_job *j);

/* The state row of one experiment into *out (*found false, *out zeroed,
 * when the job has not run for it yet). Clear *out with
 * db_bandit_job_clear() after AB_OK. */
ab_status db_bandit_job_get(struct db *db, int64_t experiment_id,
                            struct db_bandit_job *out, bool *found);

/* The last 'limit' weights versions as a JSON array text, oldest first:
 * [{"weights_version","source","weights","inputs","created_at"}]. A new
 * string (free()). */
ab_status db_bandit_history_json(struct db *db, int64_t experiment_id,
                                 int limit, char **out);

/* arbiter.bandit_periods(): one row per (weights version, arm). */
struct db_bandit_period {
    int64_t weights_version;
    char *arm;
    double units, sum, sum_sq;
    double ipw_units, sum_w, sum_wy, sum_w2, sum_w2y, sum_w2y2;
};
void db_bandit_periods_free(struct db_bandit_period *rows, size_t n);
ab_status db_bandit_periods(struct db *db, int64_t experiment_id,
                            const char *metric, const char *kind,
                            struct db_bandit_period **out, size_t *n_out);

/* Units by weights version of first exposure and arm, with that version's
 * weight of the arm (percent, from arbiter.weights_history), for a
 * per-period sample-ratio check; versions without history are left out.
 * One row per (version, arm of the version's weights). */
struct db_bandit_srm {
    int64_t weights_version;
    char *arm;
    double weight; /* percent */
    double units;
};
void db_bandit_srm_free(struct db_bandit_srm *rows, size_t n);
ab_status db_bandit_srm_counts(struct db *db, int64_t experiment_id,
                               struct db_bandit_srm **out, size_t *n_out);

#endif /* SQL_DB_BANDITS_H */
