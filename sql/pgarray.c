/* pgarray.c -- array literals (PostgreSQL docs, section 8.15.6 "Array Input
 * and Output Syntax": elements in double quotes, with \ and " escaped). */
#include "sql/pgarray.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/status.h"

static void
put(struct pgarray *a, const char *s, size_t n)
{
    if (a->len + n + 2 > a->cap) {
        a->cap = (a->len + n + 2) * 2;
        a->p = ab_xrealloc(a->p, a->cap);
    }
    memcpy(a->p + a->len, s, n);
    a->len += n;
    a->p[a->len] = '\0';
}

void
pgarray_begin(struct pgarray *a)
{
    memset(a, 0, sizeof(*a));
    put(a, "{", 1);
}

static void
sep(struct pgarray *a)
{
    if (a->n++)
        put(a, ",", 1);
}

void
pgarray_text(struct pgarray *a, const char *s)
{
    sep(a);
    if (s == NULL) {
        put(a, "NULL", 4);
        return;
    }
    put(a, "\"", 1);
    const char *run = s;
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            put(a, run, (size_t)(p - run));
            put(a, "\\", 1);
            run = p;
        }
    }
    put(a, run, strlen(run));
    put(a, "\"", 1);
}

void
pgarray_int(struct pgarray *a, int64_t v)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%lld", (long long)v);
    sep(a);
    put(a, buf, (size_t)n);
}

void
pgarray_double(struct pgarray *a, double v)
{
    char buf[40];
    int n = snprintf(buf, sizeof(buf), "%.17g", v);
    sep(a);
    put(a, buf, (size_t)n);
}

const char *
pgarray_end(struct pgarray *a)
{
    put(a, "}", 1);
    return a->p;
}
