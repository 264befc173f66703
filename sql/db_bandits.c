/* db_bandits.c -- the bandit side of the libpq layer (see db_bandits.h and
 * sql/migrations/003_bandits.sql). Uses the connection of sql/db.c through
 * sql/db_int.h (db_run: one execute path).
 *
 * No statistics here: the estimators are bandits/estimate.c (inverse
 * propensity weighting, Horvitz and Thompson 1952; per-period
 * stratification), fed with the sums arbiter.bandit_periods() returns.
 * Publishing a weights version is a single statement (a data-modifying
 * CTE, PostgreSQL docs section 7.8.4), so the definition, the history row,
 * the audit row and the NOTIFY commit together or not at all.
 */
#include "sql/db_bandits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/db_int.h"

/* Run one statement expecting 'want' through the one execute path (with
 * its reconnect-and-retry rule); NULL (reported) on failure. */
static PGresult *
query(struct db *db, const char *what, const char *sql, int n,
      const char *const *params, ExecStatusType want)
{
    PGresult *res = db_run(db, what, sql, n, params, (int)want, DB_RETRY);
    if (!db_res_ok(res, (int)want)) {
        PQclear(res);
        return NULL;
    }
    return res;
}

/* ---- the running bandits ------------------------------------------------ */

#define MS(expr) "(extract(epoch FROM " expr ") * 1000)::bigint"

void
db_bandit_list_free(struct db_bandit_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].key);
        free(rows[i].definition);
        free(rows[i].leader_arm);
        for (size_t k = 0; k < rows[i].n_history; k++)
            free(rows[i].history[k].arm);
        free(rows[i].history);
    }
    free(rows);
}

/* One streak point of bandit_state.p_best_history (element h.x), as the
 * four columns point_at() reads. */
#define POINT_COLS                                                          \
    "(h.x->>'at_ms')::bigint, (h.x->>'weights_version')::bigint,"          \
    " h.x->>'arm', (h.x->>'p_best')::float8"

static struct db_pbest_point
point_at(const PGresult *res, int r, int col)
{
    return (struct db_pbest_point){
        db_get_i64(res, r, col, 0), db_get_i64(res, r, col + 1, 0),
        db_get_str(res, r, col + 2), db_get_f64(res, r, col + 3)};
}

/* The streak histories of the listed rows (ordered by id), as typed rows:
 * one per history entry, ordered by experiment and position. */
static ab_status
read_histories(struct db *db, struct db_bandit_row *rows, size_t n)
{
    if (n == 0)
        return AB_OK;
    PGresult *res = query(
        db, "bandit history points",
        "SELECT s.experiment_id, " POINT_COLS
        " FROM arbiter.bandit_state s"
        " JOIN arbiter.experiments e ON e.id = s.experiment_id,"
        " jsonb_array_elements(s.p_best_history) WITH ORDINALITY AS h(x, o)"
        " WHERE e.state = 'running'"
        "   AND e.definition->>'strategy' = 'bandit'"
        "   AND jsonb_typeof(s.p_best_history) = 'array'"
        " ORDER BY s.experiment_id, h.o",
        0, NULL, PGRES_TUPLES_OK);
    if (res == NULL)
        return AB_EDB;
    size_t i = 0, cap = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        int64_t id = db_get_i64(res, r, 0, 0);
        while (i < n && rows[i].id < id) {
            i++;
            cap = 0;
        }
        if (i == n || rows[i].id != id)
            continue; /* started after the list was read */
        struct db_bandit_row *b = &rows[i];
        if (b->n_history == cap) {
            cap = cap ? 2 * cap : 16;
            b->history = ab_xrealloc(b->history, cap * sizeof(*b->history));
        }
        b->history[b->n_history++] = point_at(res, r, 1);
    }
    PQclear(res);
    return AB_OK;
}

ab_status
db_bandit_list(struct db *db, struct db_bandit_row **out, size_t *n_out)
{
    /* clang-format off */
    PGresult *res = query(
        db, "bandit list",
        "SELECT e.id, e.key, e.definition::text, e.version,"
        " e.weights_version, " MS("now()") ","
        " " MS("coalesce(e.started_at, e.updated_at)") ","
        " s.experiment_id IS NOT NULL, " MS("s.last_run_at") ","
        " s.leader_arm, " MS("s.leader_since") ","
        " coalesce(s.promoted_version, 0)"
        " FROM arbiter.experiments e"
        " LEFT JOIN arbiter.bandit_state s ON s.experiment_id = e.id"
        " WHERE e.state = 'running'"
        "   AND e.definition->>'strategy' = 'bandit'"
        " ORDER BY e.id",
        0, NULL, PGRES_TUPLES_OK);
    /* clang-format on */
    if (res == NULL)
        return AB_EDB;
    size_t n = (size_t)PQntuples(res);
    struct db_bandit_row *rows = ab_xcalloc(n ? n : 1, sizeof(*rows));
    for (size_t i = 0; i < n; i++) {
        int r = (int)i;
        struct db_bandit_row *b = &rows[i];
        b->id = db_get_i64(res, r, 0, 0);
        b->key = db_get_str(res, r, 1);
        b->definition = db_get_str(res, r, 2);
        b->version = db_get_i64(res, r, 3, 0);
        b->weights_version = db_get_i64(res, r, 4, 0);
        b->now_ms = db_get_i64(res, r, 5, 0);
        b->started_ms = db_get_i64(res, r, 6, -1);
        b->has_state = PQgetvalue(res, r, 7)[0] == 't';
        b->last_run_ms = db_get_i64(res, r, 8, -1);
        b->leader_arm = db_get_str(res, r, 9);
        b->leader_since_ms = db_get_i64(res, r, 10, -1);
        b->promoted_version = db_get_i64(res, r, 11, 0);
    }
    PQclear(res);
    if (read_histories(db, rows, n) != AB_OK) {
        db_bandit_list_free(rows, n);
        return AB_EDB;
    }
    *out = rows;
    *n_out = n;
    return AB_OK;
}

ab_status
db_bandit_arm_stats(struct db *db, int64_t experiment_id, const char *metric,
                    const char *const *arms, size_t n_arms, double *n,
                    double *sum, double *sum_sq)
{
    char id[32];
    snprintf(id, sizeof(id), "%lld", (long long)experiment_id);
    const char *params[2] = {id, metric};
    PGresult *res = query(db, "bandit arm stats",
                          "SELECT arm, n, sum, sum_sq FROM arbiter.arm_stats"
                          " WHERE experiment_id = $1::bigint"
                          "   AND metric = $2",
                          2, params, PGRES_TUPLES_OK);
    if (res == NULL)
        return AB_EDB;
    for (size_t k = 0; k < n_arms; k++)
        n[k] = sum[k] = sum_sq[k] = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        const char *arm = PQgetvalue(res, r, 0);
        for (size_t k = 0; k < n_arms; k++) {
            if (strcmp(arms[k], arm) == 0) {
                n[k] = db_get_f64(res, r, 1);
                sum[k] = db_get_f64(res, r, 2);
                sum_sq[k] = db_get_f64(res, r, 3);
                break;
            }
        }
    }
    PQclear(res);
    return AB_OK;
}

/* ---- publishing a weights version ------------------------------------- */

static const char publish_sql[] =
    "WITH e AS ("
    "  UPDATE arbiter.experiments SET definition = $3::jsonb,"
    "    version = version + 1, weights_version = weights_version + 1,"
    "    updated_at = now()"
    "  WHERE id = $1::bigint AND version = $2::bigint AND state = 'running'"
    "  RETURNING id, key, state, weights_version),"
    " w AS (INSERT INTO arbiter.weights_history"
    "  (experiment_id, weights_version, weights, source, inputs)"
    "  SELECT id, weights_version, $4::jsonb, $5, $6::jsonb FROM e),"
    " d AS (INSERT INTO arbiter.decision_log"
    "  (experiment_id, action, from_state, to_state, actor, reason, details)"
    "  SELECT id, $7, state, state, 'engine', $8,"
    "    $9::jsonb || jsonb_build_object('weights_version', weights_version)"
    "  FROM e),"
    " n AS (SELECT pg_notify('" DB_CONFIG_CHANNEL "', key) FROM e)"
    " SELECT e.weights_version FROM e, n";

ab_status
db_bandit_publish(struct db *db, int64_t experiment_id,
                  int64_t expect_version, const char *definition,
                  const char *weights, const char *source, const char *inputs,
                  const char *action, const char *reason, const char *details,
                  int64_t *weights_version)
{
    char id[32], ver[32];
    snprintf(id, sizeof(id), "%lld", (long long)experiment_id);
    snprintf(ver, sizeof(ver), "%lld", (long long)expect_version);
    const char *params[9] = {id,     ver,    definition, weights, source,
                             inputs, action, reason,     details};
    PGresult *res = query(db, "bandit publish", publish_sql, 9, params,
                          PGRES_TUPLES_OK);
    if (res == NULL)
        return AB_EDB;
    ab_status rc = AB_OK;
    if (PQntuples(res) == 0)
        rc = AB_ECONFLICT; /* changed since it was read, or not running */
    else
        *weights_version = db_get_i64(res, 0, 0, 0);
    PQclear(res);
    return rc;
}

/* ---- the job's memory ---------------------------------------------------- */

ab_status
db_bandit_state_save(struct db *db, int64_t experiment_id,
                     const struct db_bandit_state *st)
{
    char id[32], since[32], promoted[32];
    snprintf(id, sizeof(id), "%lld", (long long)experiment_id);
    snprintf(since, sizeof(since), "%lld", (long long)st->leader_since_ms);
    snprintf(promoted, sizeof(promoted), "%lld",
             (long long)st->promoted_version);
    const char *params[8] = {
        id,
        st->phase,
        st->p_best,
        st->leader_arm,
        st->leader_since_ms >= 0 ? since : NULL,
        st->p_best_history,
        st->promoted_arm,
        st->promoted_version > 0 ? promoted : NULL,
    };
    PGresult *res = query(
        db, "bandit state",
        "INSERT INTO arbiter.bandit_state AS s (experiment_id, last_run_at,"
        " runs, phase, p_best, leader_arm, leader_since, p_best_history,"
        " promoted_arm, promoted_version, updated_at)"
        " VALUES ($1::bigint, now(), 1, $2, $3::jsonb, $4,"
        "  to_timestamp($5::bigint / 1000.0), $6::jsonb, $7, $8::bigint,"
        "  now())"
        " ON CONFLICT (experiment_id) DO UPDATE SET"
        "  last_run_at = now(), runs = s.runs + 1, phase = excluded.phase,"
        "  p_best = excluded.p_best, leader_arm = excluded.leader_arm,"
        "  leader_since = excluded.leader_since,"
        "  p_best_history = excluded.p_best_history,"
        "  promoted_arm = coalesce(excluded.promoted_arm, s.promoted_arm),"
        "  promoted_version = coalesce(excluded.promoted_version,"
        "                              s.promoted_version),"
        "  updated_at = now()",
        8, params, PGRES_COMMAND_OK);
    if (res == NULL)
        return AB_EDB;
    PQclear(res);
    return AB_OK;
}

#define TS(col) \
    "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

void
db_bandit_job_clear(struct db_bandit_job *j)
{
    free(j->phase);
    for (size_t k = 0; k < j->n_p_best; k++)
        free(j->p_best[k].arm);
    free(j->p_best);
    free(j->leader_arm);
    for (size_t k = 0; k < j->n_history; k++)
        free(j->history[k].arm);
    free(j->history);
    free(j->promoted_arm);
    *j = (struct db_bandit_job){0};
}

/* Milliseconds truncated, as to_char's MS field shows them. */
#define FLOOR_MS(expr) "floor(extract(epoch FROM " expr ") * 1000)::bigint"

/* One statement (one snapshot): the row's scalars on every line, then one
 * line per P(best) entry (kind 0, in the jsonb's order) and per streak
 * point (kind 1, oldest first); a single line of NULLs when both are
 * empty. */
static const char job_sql[] =
    "SELECT " FLOOR_MS("s.last_run_at") ", s.runs, s.phase, s.leader_arm,"
    " " FLOOR_MS("s.leader_since") ", s.promoted_arm,"
    " s.promoted_version, x.kind, x.at_ms, x.wv, x.arm, x.p"
    " FROM arbiter.bandit_state s LEFT JOIN LATERAL ("
    "  SELECT 0 AS kind, p.o, NULL::bigint AS at_ms, NULL::bigint AS wv,"
    "   p.key AS arm, p.value::float8 AS p"
    "  FROM jsonb_each(s.p_best) WITH ORDINALITY AS p(key, value, o)"
    "  WHERE jsonb_typeof(s.p_best) = 'object'"
    "   AND jsonb_typeof(p.value) = 'number'"
    "  UNION ALL"
    "  SELECT 1, h.o, " POINT_COLS
    "  FROM jsonb_array_elements(CASE jsonb_typeof(s.p_best_history)"
    "   WHEN 'array' THEN s.p_best_history ELSE '[]' END)"
    "   WITH ORDINALITY AS h(x, o)) x ON true"
    " WHERE s.experiment_id = $1::bigint"
    " ORDER BY x.kind, x.o";

/* The entry lines of job_sql into j's two arrays. */
static void
job_entries(const PGresult *res, struct db_bandit_job *j)
{
    int n = PQntuples(res);
    for (int r = 0; r < n; r++) {
        if (PQgetisnull(res, r, 7))
            continue;
        if (db_get_i64(res, r, 7, 0) == 0) {
            if (j->p_best == NULL)
                j->p_best = ab_xcalloc((size_t)n, sizeof(*j->p_best));
            j->p_best[j->n_p_best++] = (struct db_arm_p){
                db_get_str(res, r, 10), db_get_f64(res, r, 11)};
        } else {
            if (j->history == NULL)
                j->history = ab_xcalloc((size_t)n, sizeof(*j->history));
            j->history[j->n_history++] = point_at(res, r, 8);
        }
    }
}

ab_status
db_bandit_job_get(struct db *db, int64_t experiment_id,
                  struct db_bandit_job *out, bool *found)
{
    char id[32];
    snprintf(id, sizeof(id), "%lld", (long long)experiment_id);
    const char *params[1] = {id};
    PGresult *res = query(db, "bandit job", job_sql, 1, params,
                          PGRES_TUPLES_OK);
    if (res == NULL)
        return AB_EDB;
    *out = (struct db_bandit_job){0};
    *found = PQntuples(res) > 0;
    if (*found) {
        out->last_run_ms = db_get_i64(res, 0, 0, -1);
        out->runs = db_get_i64(res, 0, 1, 0);
        out->phase = db_get_str(res, 0, 2);
        out->leader_arm = db_get_str(res, 0, 3);
        out->leader_since_ms = db_get_i64(res, 0, 4, -1);
        out->promoted_arm = db_get_str(res, 0, 5);
        out->promoted_version = db_get_i64(res, 0, 6, 0);
        job_entries(res, out);
    }
    PQclear(res);
    return AB_OK;
}

ab_status
db_bandit_history_json(struct db *db, int64_t experiment_id, int limit,
                       char **out)
{
    char id[32], lim[16];
    snprintf(id, sizeof(id), "%lld", (long long)experiment_id);
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *params[2] = {id, lim};
    return db_text(
        db, "bandit history",
        "SELECT coalesce(json_agg(json_build_object("
        " 'weights_version', h.weights_version, 'source', h.source,"
        " 'weights', h.weights, 'inputs', h.inputs,"
        " 'created_at', " TS(
            "h.created_at") ")"
                            " ORDER BY h.weights_version), '[]')::text"
                            " FROM (SELECT * FROM arbiter.weights_history"
                            "       WHERE experiment_id = $1::bigint"
                            "       ORDER BY weights_version DESC LIMIT "
                            "$2::int) h",
        2, params, out);
}

/* ---- per-period sums ---------------------------------------------------- */

void
db_bandit_periods_free(struct db_bandit_period *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(rows[i].arm);
    free(rows);
}

ab_status
db_bandit_periods(struct db *db, int64_t experiment_id, const char *metric,
                  const char *kind, struct db_bandit_period **out,
                  size_t *n_out)
{
    char id[32];
    snprintf(id, sizeof(id), "%lld", (long long)experiment_id);
    const char *params[3] = {id, metric, kind};
    PGresult *res = query(db, "bandit periods",
                          "SELECT * FROM arbiter.bandit_periods("
                          "$1::bigint, $2, $3)",
                          3, params, PGRES_TUPLES_OK);
    if (res == NULL)
        return AB_EDB;
    size_t n = (size_t)PQntuples(res);
    struct db_bandit_period *rows = ab_xcalloc(n ? n : 1, sizeof(*rows));
    for (size_t i = 0; i < n; i++) {
        int r = (int)i;
        struct db_bandit_period *p = &rows[i];
        p->weights_version = db_get_i64(res, r, 0, 0);
        p->arm = db_get_str(res, r, 1);
        p->units = db_get_f64(res, r, 2);
        p->sum = db_get_f64(res, r, 3);
        p->sum_sq = db_get_f64(res, r, 4);
        p->ipw_units = db_get_f64(res, r, 5);
        p->sum_w = db_get_f64(res, r, 6);
        p->sum_wy = db_get_f64(res, r, 7);
        p->sum_w2 = db_get_f64(res, r, 8);
        p->sum_w2y = db_get_f64(res, r, 9);
        p->sum_w2y2 = db_get_f64(res, r, 10);
    }
    PQclear(res);
    *out = rows;
    *n_out = n;
    return AB_OK;
}

/* ---- sample ratio per period ------------------------------------------- */

void
db_bandit_srm_free(struct db_bandit_srm *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(rows[i].arm);
    free(rows);
}

ab_status
db_bandit_srm_counts(struct db *db, int64_t experiment_id,
                     struct db_bandit_srm **out, size_t *n_out)
{
    char id[32];
    snprintf(id, sizeof(id), "%lld", (long long)experiment_id);
    const char *params[1] = {id};
    PGresult *res = query(
        db, "bandit srm counts",
        "WITH c AS (SELECT weights_version, arm, count(*) AS units"
        "  FROM arbiter.exposure_units WHERE experiment_id = $1::bigint"
        "  GROUP BY 1, 2)"
        " SELECT h.weights_version, w.key, w.value::float8,"
        "  coalesce(c.units, 0)"
        " FROM arbiter.weights_history h"
        " CROSS JOIN LATERAL jsonb_each_text(h.weights) w"
        " LEFT JOIN c ON c.weights_version = h.weights_version"
        "  AND c.arm = w.key"
        " WHERE h.experiment_id = $1::bigint"
        "  AND h.weights_version IN (SELECT weights_version FROM c)"
        " ORDER BY 1, 2",
        1, params, PGRES_TUPLES_OK);
    if (res == NULL)
        return AB_EDB;
    size_t n = (size_t)PQntuples(res);
    struct db_bandit_srm *rows = ab_xcalloc(n ? n : 1, sizeof(*rows));
    for (size_t i = 0; i < n; i++) {
        int r = (int)i;
        rows[i].weights_version = db_get_i64(res, r, 0, 0);
        rows[i].arm = db_get_str(res, r, 1);
        rows[i].weight = db_get_f64(res, r, 2);
        rows[i].units = db_get_f64(res, r, 3);
    }
    PQclear(res);
    *out = rows;
    *n_out = n;
    return AB_OK;
}
