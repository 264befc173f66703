/* db_rollout.c -- rollout state and decisions (see db_rollout.h). A
 * decision is one transaction: the experiment row, the weights history,
 * the rollout state, the audit row and the NOTIFY commit together. */
#include <libpq-fe.h> /* before db.h: it declares db_conn() */

#include "sql/db_rollout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/db.h"

void
db_rollout_clear(struct db_rollout *r)
{
    free(r->tests);
    free(r->evidence);
    r->tests = r->evidence = NULL;
}

static PGresult *
exec(PGconn *conn, const char *sql, int n, const char *const *params)
{
    return PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
}

ab_status
db_rollout_load(struct db *db, int64_t experiment_id, struct db_rollout *out)
{
    char id[32];
    snprintf(id, sizeof(id), "%lld", (long long)experiment_id);
    const char *params[1] = {id};
    PGconn *conn = db_conn(db);
    if (conn == NULL)
        return AB_EDB;
    PGresult *res = exec(
        conn,
        "SELECT phase, step, (extract(epoch FROM phase_started_at) * 1000)"
        "::bigint, approved, last_units,"
        " (extract(epoch FROM last_units_at) * 1000)::bigint, tests::text,"
        " evidence::text FROM arbiter.rollout_state WHERE experiment_id ="
        " $1::bigint",
        1, params);
    ab_status rc = AB_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_report(db, "rollout load", res);
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

static bool
simple(struct db *db, PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        db_report(db, sql, res);
    PQclear(res);
    return ok;
}

ab_status
db_decision_apply(struct db *db, const struct db_decision *d)
{
    PGconn *conn = db_conn(db);
    if (conn == NULL)
        return AB_EDB;
    ab_status rc = AB_OK;
    PGresult *res = NULL;
    char ver[32];
    snprintf(ver, sizeof(ver), "%lld", (long long)d->expect_version);
    if (!simple(db, conn, "BEGIN"))
        return AB_EDB;

    /* lock the row and check version and state */
    const char *p1[3] = {d->key, ver, d->from_states};
    res = exec(conn,
               "SELECT id, state FROM arbiter.experiments WHERE key = $1"
               " AND ($2::bigint = 0 OR version = $2::bigint)"
               " AND ($3::text IS NULL OR"
               "      state = ANY (string_to_array($3, ','))) FOR UPDATE",
               3, p1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_report(db, "decision lock", res);
        rc = AB_EDB;
        goto done;
    }
    if (PQntuples(res) == 0) {
        rc = AB_ECONFLICT;
        goto done;
    }
    char id[32], from[32];
    snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
    snprintf(from, sizeof(from), "%s", PQgetvalue(res, 0, 1));
    PQclear(res);

    bool touches = d->state || d->definition || d->weights;
    if (!touches)
        goto rollout;
    const char *p2[6] = {id, d->state, d->served_arm, d->definition,
                         d->weights, d->weights_source ? d->weights_source
                                                       : "rollout"};
    res = exec(conn,
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
               6, p2);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        db_report(db, "decision update", res);
        rc = AB_EDB;
        goto done;
    }
    PQclear(res);
    res = NULL;

rollout:
    if (d->rollout) {
        const struct db_rollout *r = d->rollout;
        char step[16], started[32], units[32], units_at[32];
        snprintf(step, sizeof(step), "%d", r->step);
        snprintf(started, sizeof(started), "%lld",
                 (long long)r->phase_started_ms);
        snprintf(units, sizeof(units), "%lld", (long long)r->last_units);
        snprintf(units_at, sizeof(units_at), "%lld",
                 (long long)r->last_units_ms);
        const char *p3[9] = {id,        r->phase, step,
                             started,   r->approved ? "true" : "false",
                             units,     units_at, r->tests ? r->tests : "{}",
                             r->evidence ? r->evidence : "{}"};
        res = exec(conn,
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
                   /* an approval committed while the engine evaluated
                    * the same step must survive its save (lost update,
                    * found when the fold job shifted the leader's tick:
                    * test_rollouts' manual approval was overwritten) */
                   " approved = excluded.approved OR"
                   "  (rollout_state.approved AND"
                   "   rollout_state.step = excluded.step AND"
                   "   excluded.phase = 'waiting_approval'),"
                   " last_units = excluded.last_units,"
                   " last_units_at = excluded.last_units_at,"
                   " tests = excluded.tests, evidence = excluded.evidence,"
                   " updated_at = now()",
                   9, p3);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            db_report(db, "rollout save", res);
            rc = AB_EDB;
            goto done;
        }
        PQclear(res);
    }

    if (d->action) {
        const char *to = d->state ? d->state : from;
        const char *p4[7] = {id,       d->action, from,
                             to,       d->actor ? d->actor : "engine",
                             d->reason ? d->reason : "",
                             d->details ? d->details : "{}"};
        res = exec(conn,
                   "INSERT INTO arbiter.decision_log (experiment_id, action,"
                   " from_state, to_state, actor, reason, details)"
                   " VALUES ($1::bigint, $2, $3, $4, $5, $6, $7::jsonb)",
                   7, p4);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            db_report(db, "decision log", res);
            rc = AB_EDB;
            goto done;
        }
        PQclear(res);
    }
    if (touches) {
        const char *p5[1] = {d->key};
        res = exec(conn, "SELECT pg_notify('" DB_CONFIG_CHANNEL "', $1)", 1,
                   p5);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            db_report(db, "decision notify", res);
            rc = AB_EDB;
            goto done;
        }
        PQclear(res);
        res = NULL;
    }
    if (!simple(db, conn, "COMMIT"))
        rc = AB_EDB;
    return rc;
done:
    PQclear(res);
    simple(db, conn, "ROLLBACK");
    return rc;
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
