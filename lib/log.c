/* log.c -- JSON-lines logger (see log.h). One fputs per line under a lock
 * so lines from several threads never interleave. */
#include "lib/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum log_level min_level = LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void
log_set_level(enum log_level level)
{
    min_level = level;
}

int
log_level_parse(const char *name)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

/* Append s as a JSON string body (without quotes) to buf. */
static size_t
put_escaped(char *buf, size_t pos, size_t cap, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char tmp[8];
        const char *rep = NULL;
        size_t n = 1;
        switch (*p) {
        case '"': rep = "\\\""; n = 2; break;
        case '\\': rep = "\\\\"; n = 2; break;
        case '\n': rep = "\\n"; n = 2; break;
        case '\r': rep = "\\r"; n = 2; break;
        case '\t': rep = "\\t"; n = 2; break;
        default:
            if (*p < 0x20) {
                snprintf(tmp, sizeof(tmp), "\\u%04x", *p);
                rep = tmp;
                n = 6;
            }
        }
        if (pos + n + 8 >= cap)
            break;
        if (rep)
            memcpy(buf + pos, rep, n);
        else
            buf[pos] = (char)*p;
        pos += n;
    }
    return pos;
}

void
log_msg(enum log_level level, const char *msg, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if (level < min_level)
        return;
    char line[4096];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line),
                     "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\","
                     "\"level\":\"%s\",\"msg\":\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                     names[level]);
    size_t pos = put_escaped(line, (size_t)n, sizeof(line), msg);
    va_list ap;
    va_start(ap, msg);
    const char *k;
    while ((k = va_arg(ap, const char *)) != NULL) {
        const char *v = va_arg(ap, const char *);
        if (pos + 8 >= sizeof(line))
            break;
        memcpy(line + pos, "\",\"", 3);
        pos = put_escaped(line, pos + 3, sizeof(line), k);
        memcpy(line + pos, "\":\"", 3);
        pos = put_escaped(line, pos + 3, sizeof(line), v ? v : "");
    }
    va_end(ap);
    memcpy(line + pos, "\"}\n", 4);
    pthread_mutex_lock(&log_lock);
    fputs(line, stderr);
    pthread_mutex_unlock(&log_lock);
}

void
log_redact_url(const char *url, char *out, size_t len)
{
    /* postgresql://user:secret@host/db  ->  postgresql://user:***@host/db;
     * key=value strings: password=... -> password=*** */
    const char *scheme = strstr(url, "://");
    const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *colon = at ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3))
                           : NULL;
    if (colon) {
        snprintf(out, len, "%.*s:***%s", (int)(colon - url), url, at);
        return;
    }
    const char *pw = strstr(url, "password=");
    if (pw) {
        const char *end = strchr(pw, ' ');
        snprintf(out, len, "%.*spassword=***%s", (int)(pw - url), url,
                 end ? end : "");
        return;
    }
    snprintf(out, len, "%s", url);
}
