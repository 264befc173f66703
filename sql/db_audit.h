/* db_audit.h -- small statements for the ecosystem routes: a note in an
 * experiment's audit trail (Flagger's events), and which running
 * experiments exposed a unit (OpenFeature tracking). */
#ifndef SQL_DB_AUDIT_H
#define SQL_DB_AUDIT_H

#include <stdint.h>

#include "lib/status.h"

struct db;

/* Append a row to arbiter.decision_log for experiment 'key' without
 * changing its state (from_state = to_state = the current state).
 * details: JSON object text. AB_ENOTFOUND: no such experiment; AB_EDB. */
ab_status db_audit_append(struct db *db, const char *key, const char *action,
                          const char *actor, const char *reason,
                          const char *details);

/* Keys of the running experiments whose first exposure of 'unit' is at or
 * before ts_ms: a JSON array text (new string, free()). AB_EDB. */
ab_status db_exposed_running_json(struct db *db, const char *unit,
                                  int64_t ts_ms, char **out);

#endif /* SQL_DB_AUDIT_H */
