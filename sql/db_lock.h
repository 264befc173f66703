/* db_lock.h -- the decision leader's lock (service/leader.c): a
 * session-level PostgreSQL advisory lock held on one dedicated connection.
 * At most one arbiter instance holds it; the holder runs the background
 * decision jobs. The lock lives and dies with the session, so none of
 * these calls is ever retried on a new connection.
 */
#ifndef SQL_DB_LOCK_H
#define SQL_DB_LOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/status.h"
#include "sql/db.h"

/* Session-level advisory lock 'key' on this connection. _try: *held is
 * whether this session holds it now (pg_try_advisory_lock). _held: whether
 * this very session still holds it (pg_locks; false after a silent
 * reconnect). _release: pg_advisory_unlock. AB_EDB when the connection
 * failed: the session, and with it the lock, may be gone. */
ab_status db_leader_try_lock(struct db *db, int64_t key, bool *held);
ab_status db_leader_held(struct db *db, int64_t key, bool *held);
ab_status db_leader_release(struct db *db, int64_t key);

#endif /* SQL_DB_LOCK_H */
