/* db_rollout.c -- rollout state and decisions (see db_rollout.h). A
 * decision is one transaction: the experiment row, the weights history,
 * the rollout state, the audit row and the NOTIFY commit together. */
#include "sql/db_rollout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/db_int.h"

void
db_rollout_clear(struct db_rollout *r)
{
    free(r->tests);
    free(r->evidence);
    r->tests = r->evidence = NULL;
}

/* A statement of the decision transaction: run, check, report. */
static ab_status
step(struct db *db, const char *what, const char *sql, int n,
     const char *const *params, ExecStatusType want)
{
    PGresult *res = db_run(db, what, sql, n, params, (int)want, DB_RETRY);
    ab_status rc = db_res_ok(res, (int)want) ? AB_OK : AB_EDB;
    PQclear(res);
    return rc;
}

ab_status
db_rollout_load(struct db *db, int64_t experiment_id, struct db_rollout *out)
{
    char id[32];
    snprintf(id, sizeof(id), "%lld", (long long)experiment_id);
    const char *params[1] = {id};
    PGresult *res = db_run(
        db, "rollout load",
        "SELECT phase, step, (extract(epoch FROM phase_started_at) * 1000)"
        "::bigint, approved, last_units,"
        " (extract(epoch FROM last_units_at) * 1000)::bigint, tests::text,"
        " evidence::text FROM arbiter.rollout_state WHERE experiment_id ="
        " $1::bigint",
        1, params, PGRES_TUPLES_OK, DB_RETRY);
    ab_status rc = AB_OK;
    if (!db_res_ok(res, PGRES_TUPLES_OK)) {
        rc = AB_EDB;
    } else if (PQntuples(res) == 0) {
        rc = AB_ENOTFOUND;
    } else {
        snprintf(out->phase, sizeof(out->phase), "%s", PQgetvalue(res, 0, 0));
        out->step = (int)strtol(PQgetvalue(res, 0, 1), NULL, 10);
        out->phase_started_ms = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
        out->approved = PQgetvalue(res, 0, 3)[0] == 't';
        out->last_units = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
        out->last_units_ms = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
        out->tests = ab_xstrdup(PQgetvalue(res, 0, 6));
        out->evidence = ab_xstrdup(PQgetvalue(res, 0, 7));
    }
    PQclear(res);
    return rc;
}

/* ---- a decision: one transaction of up to five statements ---------------- */

/* Lock the row and check version and state: its id and state into id[32],
 * from[32]; AB_ECONFLICT when it moved on. */
static ab_status
decision_lock(struct db *db, const struct db_decision *d, char *id, char *from)
{
    char ver[32];
    snprintf(ver, sizeof(ver), "%lld", (long long)d->expect_version);
    const char *p1[3] = {d->key, ver, d->from_states};
    PGresult *res =
        db_run(db, "decision lock",
               "SELECT id, state FROM arbiter.experiments WHERE key = $1"
               " AND ($2::bigint = 0 OR version = $2::bigint)"
               " AND ($3::text IS NULL OR"
               "      state = ANY (string_to_array($3, ','))) FOR UPDATE",
               3, p1, PGRES_TUPLES_OK, DB_RETRY);
    ab_status rc = AB_OK;
    if (!db_res_ok(res, PGRES_TUPLES_OK)) {
        rc = AB_EDB;
    } else if (PQntuples(res) == 0) {
        rc = AB_ECONFLICT;
    } else {
        snprintf(id, 32, "%s", PQgetvalue(res, 0, 0));
        snprintf(from, 32, "%s", PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    return rc;
}

static ab_status
decision_update(struct db *db, const struct db_decision *d, const char *id)
{
    const char *p2[6] = {id, d->state, d->served_arm, d->definition,
                         d->weights, d->weights_source ? d->weights_source
                                                       : "rollout"};
    return step(db, "decision update",
                "WITH e AS (UPDATE arbiter.experiments SET"
                "  state = coalesce($2, state),"
                "  served_arm = CASE WHEN $2 IN ('promoted', 'rolled_back')"
                "               THEN $3 ELSE served_arm END,"
                "  definition = coalesce($4::jsonb, definition),"
                "  version = version + 1, updated_at = now(),"
                "  weights_version = weights_version +"
                "                    ($5::jsonb IS NOT NULL)::int,"
                "  stopped_at = CASE WHEN $2 IN ('stopped', 'promoted',"
                "               'rolled_back') THEN now() ELSE stopped_at END"
                "  WHERE id = $1::bigint RETURNING id, weights_version)"
                " INSERT INTO arbiter.weights_history (experiment_id,"
                "  weights_version, weights, source)"
                " SELECT id, weights_version, $5::jsonb, $6 FROM e"
                " WHERE $5::jsonb IS NOT NULL",
                6, p2, PGRES_COMMAND_OK);
}

static ab_status
rollout_save(struct db *db, const struct db_rollout *r, const char *id)
{
    char stepno[16], started[32], units[32], units_at[32];
    snprintf(stepno, sizeof(stepno), "%d", r->step);
    snprintf(started, sizeof(started), "%lld", (long long)r->phase_started_ms);
    snprintf(units, sizeof(units), "%lld", (long long)r->last_units);
    snprintf(units_at, sizeof(units_at), "%lld", (long long)r->last_units_ms);
    const char *p3[9] = {id,
                         r->phase,
                         stepno,
                         started,
                         r->approved ? "true" : "false",
                         units,
                         units_at,
                         r->tests ? r->tests : "{}",
                         r->evidence ? r->evidence : "{}"};
    return step(db, "rollout save",
                "INSERT INTO arbiter.rollout_state (experiment_id, phase,"
                " step, phase_started_at, approved, last_units,"
                " last_units_at, tests, evidence, updated_at)"
                " VALUES ($1::bigint, $2, $3::int,"
                " to_timestamp($4::bigint / 1000.0), $5::boolean,"
                " $6::bigint, to_timestamp($7::bigint / 1000.0),"
                " $8::jsonb, $9::jsonb, now())"
                " ON CONFLICT (experiment_id) DO UPDATE SET"
                " phase = excluded.phase, step = excluded.step,"
                " phase_started_at = excluded.phase_started_at,"
                /* an approval committed while the engine evaluated the
                 * same step must survive its save (lost update, found when
                 * the fold job shifted the leader's tick: test_rollouts'
                 * manual approval was overwritten) */
                " approved = excluded.approved OR"
                "  (rollout_state.approved AND"
                "   rollout_state.step = excluded.step AND"
                "   excluded.phase = 'waiting_approval'),"
                " last_units = excluded.last_units,"
                " last_units_at = excluded.last_units_at,"
                " tests = excluded.tests, evidence = excluded.evidence,"
                " updated_at = now()",
                9, p3, PGRES_COMMAND_OK);
}

static ab_status
decision_log(struct db *db, const struct db_decision *d, const char *id,
             const char *from)
{
    const char *to = d->state ? d->state : from;
    const char *p4[7] = {id,
                         d->action,
                         from,
                         to,
                         d->actor ? d->actor : "engine",
                         d->reason ? d->reason : "",
                         d->details ? d->details : "{}"};
    return step(db, "decision log",
                "INSERT INTO arbiter.decision_log (experiment_id, action,"
                " from_state, to_state, actor, reason, details)"
                " VALUES ($1::bigint, $2, $3, $4, $5, $6, $7::jsonb)",
                7, p4, PGRES_COMMAND_OK);
}

static ab_status
decision_statements(struct db *db, const struct db_decision *d)
{
    char id[32], from[32];
    ab_status rc = decision_lock(db, d, id, from);
    bool touches = d->state || d->definition || d->weights;
    if (rc == AB_OK && touches)
        rc = decision_update(db, d, id);
    if (rc == AB_OK && d->rollout)
        rc = rollout_save(db, d->rollout, id);
    if (rc == AB_OK && d->action)
        rc = decision_log(db, d, id, from);
    if (rc == AB_OK && touches) {
        const char *p5[1] = {d->key};
        rc = step(db, "decision notify",
                  "SELECT pg_notify('" DB_CONFIG_CHANNEL "', $1)", 1, p5,
                  PGRES_TUPLES_OK);
    }
    return rc;
}

ab_status
db_decision_apply(struct db *db, const struct db_decision *d)
{
    if (db_begin(db) != AB_OK)
        return AB_EDB;
    ab_status rc = decision_statements(db, d);
    if (rc != AB_OK) {
        db_rollback(db);
        return rc;
    }
    return db_commit(db);
}

ab_status
db_error_periods_json(struct db *db, int64_t experiment_id, const char *metric,
                      const char *control, const char *candidate, char **out)
{
    char id[32];
    snprintf(id, sizeof(id), "%lld", (long long)experiment_id);
    const char *params[4] = {id, metric, control, candidate};
    return db_text(db, "error periods",
                   "SELECT coalesce(json_agg(json_build_array(share_t,"
                   " errors_c, errors_t) ORDER BY weights_version), '[]')::text"
                   " FROM arbiter.error_periods($1::bigint, $2, $3, $4)",
                   4, params, out);
}

ab_status
db_served_arms_json(struct db *db, char **out)
{
    return db_text(db, "served arms",
                   "SELECT coalesce(json_object_agg(key, served_arm),"
                   " '{}')::text FROM arbiter.experiments"
                   " WHERE served_arm IS NOT NULL",
                   0, NULL, out);
}
