/* log.h -- structured logs: one JSON object per line on stderr,
 *   {"ts":"2026-12-03T13:40:00.123Z","level":"info","msg":"listening",
 *    "host":"::","port":8080,"threads":2}
 * built with jansson, so the line is always valid JSON and valid UTF-8
 * (invalid bytes in a value become U+FFFD), never cut (no fixed buffer),
 * and typed: numbers are JSON numbers printed with the shortest digits that
 * read back as the same value (lib/json_text.h), booleans are booleans.
 *
 * Secrets are never passed here (the callers' rule): the database
 * connection string is logged through sql/conninfo.h, which keeps host,
 * port, database and user only. */
#ifndef LIB_LOG_H
#define LIB_LOG_H

#include <stddef.h>

#include <jansson.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
/* "debug" | "info" | "warn" | "error"; -1 when unknown. */
int log_level_parse(const char *name);
/* Whether a message of this level would be written. */
int log_enabled(enum log_level level);

/* log_msg(LOG_INFO, "spool replayed", "dir", dir, NULL): string fields as
 * key/value pairs ending with NULL; a NULL value is JSON null. */
void log_msg(enum log_level level, const char *msg, ...)
    __attribute__((sentinel));

/* Typed fields: an object whose members are copied into the line after ts,
 * level and msg (a member named ts, level or msg is refused with a "_"
 * prefix). Takes the reference: log_json(LOG_INFO, "listening",
 * json_pack("{s:s,s:i}", "host", host, "port", port)). NULL fields (e.g. a
 * failed json_pack) log the message alone. */
void log_json(enum log_level level, const char *msg, json_t *fields);

/* The line log_json() would write, without the trailing newline and with
 * the timestamp given (for tests); free() it. */
char *log_format(enum log_level level, const char *ts, const char *msg,
                 const json_t *fields);

#endif /* LIB_LOG_H */
