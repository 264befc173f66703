/* log.c -- JSON-lines logger on jansson (see log.h). One fputs per line
 * under a lock so lines from several threads never interleave. */
#include "lib/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/json_text.h"

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static enum log_level min_level = LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void
log_set_level(enum log_level level)
{
    min_level = level;
}

int
log_enabled(enum log_level level)
{
    return level >= min_level;
}

int
log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

static json_t *
lossy(const char *s)
{
    return s ? ab_json_string_lossy(s, strlen(s)) : json_null();
}

char *
log_format(enum log_level level, const char *ts, const char *msg,
           const json_t *fields)
{
    json_t *line = json_object();
    if (line == NULL)
        return NULL;
    json_object_set_new(line, "ts", lossy(ts));
    json_object_set_new(line, "level", json_string(level_names[level]));
    json_object_set_new(line, "msg", lossy(msg));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)fields, k, v) {
        json_t *key = lossy(k); /* keys too must be UTF-8 */
        const char *ks = key ? json_string_value(key) : "?";
        if (strcmp(ks, "ts") == 0 || strcmp(ks, "level") == 0 ||
            strcmp(ks, "msg") == 0) {
            char alt[16];
            snprintf(alt, sizeof(alt), "_%s", ks);
            json_object_set(line, alt, v);
        } else
            json_object_set(line, ks, v);
        json_decref(key);
    }
    char *text = ab_json_text(line, JSON_COMPACT);
    json_decref(line);
    return text;
}

void
log_json(enum log_level level, const char *msg, json_t *fields)
{
    if (level < min_level) {
        json_decref(fields);
        return;
    }
    char ts[96];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
    char *text = log_format(level, ts, msg, fields);
    json_decref(fields);
    pthread_mutex_lock(&log_lock);
    if (text)
        fprintf(stderr, "%s\n", text);
    else /* out of memory: still say something, as valid JSON */
        fprintf(stderr, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":"
                        "\"log line lost: out of memory\"}\n",
                ts, level_names[level]);
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
    free(text);
}

void
log_msg(enum log_level level, const char *msg, ...)
{
    if (level < min_level)
        return;
    json_t *fields = json_object();
    va_list ap;
    va_start(ap, msg);
    for (const char *k = va_arg(ap, const char *); k != NULL;
         k = va_arg(ap, const char *)) {
        const char *v = va_arg(ap, const char *);
        json_t *key = lossy(k);
        if (fields && key)
            json_object_set_new(fields, json_string_value(key), lossy(v));
        json_decref(key);
    }
    va_end(ap);
    log_json(level, msg, fields);
}
