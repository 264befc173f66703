/* db_snapshot.c -- experiment rows and their change marks for the
 * assignment snapshot (see db_snapshot.h). */
#include "sql/db_snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/db_int.h"
#include "sql/pgarray.h"

#define ROW_COLS                                                              \
    "id, key, definition::text, state, version, weights_version,"            \
    " served_arm, xmin::text"

static PGresult *
query(struct db *db, const char *what, const char *sql, int n,
      const char *const *params)
{
    PGresult *res = db_run(db, what, sql, n, params, PGRES_TUPLES_OK, DB_RETRY);
    if (!db_res_ok(res, PGRES_TUPLES_OK)) {
        PQclear(res);
        return NULL;
    }
    return res;
}

ab_status
db_snapshot_marks(struct db *db, struct db_snapshot_mark **out, size_t *n_out)
{
    PGresult *res = query(db, "snapshot marks",
                          "SELECT id, key, xmin::text FROM arbiter.experiments",
                          0, NULL);
    if (res == NULL)
        return AB_EDB;
    size_t n = (size_t)PQntuples(res);
    struct db_snapshot_mark *m = ab_xcalloc(n ? n : 1, sizeof(*m));
    for (size_t i = 0; i < n; i++) {
        m[i].id = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
        m[i].key = ab_xstrdup(PQgetvalue(res, (int)i, 1));
        m[i].mark = ab_xstrdup(PQgetvalue(res, (int)i, 2));
    }
    PQclear(res);
    *out = m;
    *n_out = n;
    return AB_OK;
}

void
db_snapshot_marks_free(struct db_snapshot_mark *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++) {
        free(m[i].key);
        free(m[i].mark);
    }
    free(m);
}

static void
read_row(PGresult *res, int i, struct db_snapshot_row *r)
{
    r->id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
    r->key = ab_xstrdup(PQgetvalue(res, i, 1));
    r->definition = ab_xstrdup(PQgetvalue(res, i, 2));
    r->state = ab_xstrdup(PQgetvalue(res, i, 3));
    r->version = strtoll(PQgetvalue(res, i, 4), NULL, 10);
    r->weights_version = strtoll(PQgetvalue(res, i, 5), NULL, 10);
    r->served_arm =
        PQgetisnull(res, i, 6) ? NULL : ab_xstrdup(PQgetvalue(res, i, 6));
    r->mark = ab_xstrdup(PQgetvalue(res, i, 7));
}

ab_status
db_snapshot_rows_by_id(struct db *db, const int64_t *ids, size_t n,
                       struct db_snapshot_row **out, size_t *n_out)
{
    struct pgarray a;
    pgarray_begin(&a);
    for (size_t i = 0; i < n; i++)
        pgarray_int(&a, ids[i]);
    const char *params[1] = {pgarray_end(&a)};
    PGresult *res = query(db, "snapshot rows",
                          "SELECT " ROW_COLS " FROM arbiter.experiments"
                          " WHERE id = ANY ($1::bigint[])",
                          1, params);
    free(a.p);
    if (res == NULL)
        return AB_EDB;
    size_t got = (size_t)PQntuples(res);
    struct db_snapshot_row *r = ab_xcalloc(got ? got : 1, sizeof(*r));
    for (size_t i = 0; i < got; i++)
        read_row(res, (int)i, &r[i]);
    PQclear(res);
    *out = r;
    *n_out = got;
    return AB_OK;
}

ab_status
db_snapshot_row_by_key(struct db *db, const char *key,
                       struct db_snapshot_row *out)
{
    const char *params[1] = {key};
    PGresult *res = query(db, "snapshot row",
                          "SELECT " ROW_COLS " FROM arbiter.experiments"
                          " WHERE key = $1",
                          1, params);
    if (res == NULL)
        return AB_EDB;
    ab_status rc = AB_ENOTFOUND;
    if (PQntuples(res) > 0) {
        read_row(res, 0, out);
        rc = AB_OK;
    }
    PQclear(res);
    return rc;
}

void
db_snapshot_row_clear(struct db_snapshot_row *r)
{
    if (r == NULL)
        return;
    free(r->key);
    free(r->definition);
    free(r->state);
    free(r->served_arm);
    free(r->mark);
    memset(r, 0, sizeof(*r));
}

void
db_snapshot_rows_free(struct db_snapshot_row *r, size_t n)
{
    for (size_t i = 0; r && i < n; i++)
        db_snapshot_row_clear(&r[i]);
    free(r);
}
