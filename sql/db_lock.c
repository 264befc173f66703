/* db_lock.c -- the decision leader's session lock (see db_lock.h).
 * A bigint advisory key k shows in pg_locks as classid = k >> 32,
 * objid = k & 0xffffffff, objsubid = 1 (PostgreSQL docs, "pg_locks",
 * and section 13.3.5 "Advisory Locks"). */
#include "sql/db_lock.h"

#include <stdio.h>

#include "sql/db_int.h"

static ab_status
lock_bool(struct db *db, const char *what, const char *sql, int64_t key,
          bool *out)
{
    char k[32];
    snprintf(k, sizeof(k), "%lld", (long long)key);
    const char *params[1] = {k};
    /* DB_ONCE: the lock is the session's; a retry on a new connection
     * would answer for another session (service/leader.c starts over from
     * a fresh connection on AB_EDB instead) */
    PGresult *res = db_run(db, what, sql, 1, params, PGRES_TUPLES_OK, DB_ONCE);
    ab_status rc = AB_OK;
    if (!db_res_ok(res, PGRES_TUPLES_OK) || PQntuples(res) != 1)
        rc = AB_EDB;
    else
        *out = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    return rc;
}

ab_status
db_leader_try_lock(struct db *db, int64_t key, bool *held)
{
    return lock_bool(db, "leader lock",
                     "SELECT pg_try_advisory_lock($1::bigint)", key, held);
}

ab_status
db_leader_held(struct db *db, int64_t key, bool *held)
{
    return lock_bool(db, "leader check",
                     "SELECT EXISTS (SELECT 1 FROM pg_locks"
                     " WHERE locktype = 'advisory' AND granted"
                     "   AND pid = pg_backend_pid()"
                     "   AND classid = ($1::bigint >> 32)::oid"
                     "   AND objid = ($1::bigint & 4294967295)::oid"
                     "   AND objsubid = 1)",
                     key, held);
}

ab_status
db_leader_release(struct db *db, int64_t key)
{
    bool released;
    return lock_bool(db, "leader unlock",
                     "SELECT pg_advisory_unlock($1::bigint)", key, &released);
}
