/* log.h -- JSON lines on stderr: {"ts":"...","level":"info","msg":"...",...}.
 * Fields are given as key/value pairs of strings; values are escaped.
 * Tokens and secrets are never passed here (the callers' rule; the database
 * URL is logged with its password removed, see log_redact_url()). */
#ifndef LIB_LOG_H
#define LIB_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
/* "debug" | "info" | "warn" | "error"; -1 when unknown. */
int log_level_parse(const char *name);

/* log_msg(LOG_INFO, "listening", "addr", addr, NULL): pairs end with NULL. */
void log_msg(enum log_level level, const char *msg, ...)
    __attribute__((sentinel));

/* Copy url into out with any password replaced by "***". */
void log_redact_url(const char *url, char *out, size_t len);

#endif /* LIB_LOG_H */
