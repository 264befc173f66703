/* migrations.h -- sql/migrations/NNN_name.sql, embedded in the binary at
 * build time (scripts/embed-sql.sh writes $(BUILD)/gen/migrations.c), in
 * version order. */
#ifndef SQL_MIGRATIONS_H
#define SQL_MIGRATIONS_H

#include <stddef.h>

#include "sql/db.h"

extern const struct db_migration db_migrations[];
extern const size_t db_n_migrations;

#endif /* SQL_MIGRATIONS_H */
