/* db_audit.c -- see db_audit.h. Both statements go through db_text (one
 * row, one text column). */
#include "sql/db_audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/db.h"

ab_status
db_audit_append(struct db *db, const char *key, const char *action,
                const char *actor, const char *reason, const char *details)
{
    static const char sql[] =
        "WITH e AS (SELECT id, state FROM arbiter.experiments WHERE key = $1),"
        " ins AS (INSERT INTO arbiter.decision_log"
        "   (experiment_id, action, from_state, to_state, actor, reason,"
        "    details)"
        "   SELECT id, $2, state, state, $3, $4, $5::jsonb FROM e"
        "   RETURNING id)"
        " SELECT count(*)::text FROM ins";
    const char *params[] = {key, action, actor, reason, details};
    char *n = NULL;
    ab_status rc = db_text(db, "audit append", sql, 5, params, &n);
    if (rc == AB_OK && strcmp(n, "0") == 0)
        rc = AB_ENOTFOUND;
    free(n);
    return rc;
}

ab_status
db_exposed_running_json(struct db *db, const char *unit, int64_t ts_ms,
                        char **out)
{
    static const char sql[] =
        "SELECT coalesce(json_agg(e.key ORDER BY e.key), '[]')::text"
        "  FROM arbiter.exposure_units u"
        "  JOIN arbiter.experiments e ON e.id = u.experiment_id"
        " WHERE u.unit = $1 AND e.state = 'running'"
        "   AND u.first_seen <= to_timestamp($2::double precision / 1000)";
    char ts[32];
    snprintf(ts, sizeof(ts), "%lld", (long long)ts_ms);
    const char *params[] = {unit, ts};
    return db_text(db, "exposed running", sql, 2, params, out);
}
