/* db_snapshot.h -- what the assignment snapshot reads: experiment rows with
 * a change mark, so that a reload fetches and parses only the experiments
 * that changed (service/app.c).
 *
 * The change mark is the row's xmin (the transaction that wrote the row's
 * current version): every UPDATE of a row gives it a new one, whatever
 * column changed (definition, state, weights, served arm), and a row that
 * was not written keeps it. A mark that changes for another reason (a
 * VACUUM FREEZE on a very old server) only costs one needless re-parse.
 */
#ifndef SQL_DB_SNAPSHOT_H
#define SQL_DB_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/status.h"

struct db;

/* One experiment's identity and change mark. */
struct db_snapshot_mark {
    int64_t id;
    char *key;
    char *mark; /* xmin as text */
};

/* One experiment row as the snapshot needs it. */
struct db_snapshot_row {
    int64_t id;
    char *key;
    char *definition; /* canonical definition JSON */
    char *state;
    int64_t version, weights_version;
    char *served_arm; /* NULL unless promoted / rolled back */
    char *mark;
};

/* Every experiment's mark, in no particular order: a new array in *out
 * (release with db_snapshot_marks_free()). AB_EDB on failure. */
ab_status db_snapshot_marks(struct db *db, struct db_snapshot_mark **out,
                            size_t *n_out);
void db_snapshot_marks_free(struct db_snapshot_mark *m, size_t n);

/* The rows of the given ids (those that still exist), in no particular
 * order: a new array in *out (release with db_snapshot_rows_free()). */
ab_status db_snapshot_rows_by_id(struct db *db, const int64_t *ids, size_t n,
                                 struct db_snapshot_row **out, size_t *n_out);
/* The row of one key: AB_ENOTFOUND when there is none. *out is written
 * only on AB_OK (release with db_snapshot_row_clear()). */
ab_status db_snapshot_row_by_key(struct db *db, const char *key,
                                 struct db_snapshot_row *out);
void db_snapshot_row_clear(struct db_snapshot_row *r);
void db_snapshot_rows_free(struct db_snapshot_row *r, size_t n);

#endif /* SQL_DB_SNAPSHOT_H */
