/* conninfo.h -- what may be said about a database connection string.
 *
 * The string is parsed with libpq's own parser (PQconninfoParse), so every
 * syntax libpq accepts is understood the way libpq understands it: URLs
 * (postgresql://user:secret@host:port/db?password=...), key=value strings
 * with spaces around '=', single-quoted values with spaces and \' escapes.
 * Only host (or hostaddr), port, dbname and user are kept; anything else,
 * the password first, never leaves this function. A password given by
 * PGPASSWORD or a passfile is never in the string at all.
 */
#ifndef SQL_CONNINFO_H
#define SQL_CONNINFO_H

#include <stddef.h>

/* Write "host=H port=P dbname=D user=U" (only the parts present; empty
 * when none) into out. A string libpq cannot parse gives
 * "(unparsable connection string)": a string that does not parse may
 * still hold a secret, so none of it is copied. Returns 0 when parsed,
 * -1 when not. */
int db_conninfo_describe(const char *conninfo, char *out, size_t len);

#endif /* SQL_CONNINFO_H */
