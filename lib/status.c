/* status.c -- status names and aborting allocators (see status.h). */
#include "lib/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *
ab_status_name(ab_status rc)
{
    switch (rc) {
    case AB_OK: return "ok";
    case AB_EINVAL: return "invalid";
    case AB_ENOTFOUND: return "not_found";
    case AB_ECONFLICT: return "conflict";
    case AB_ETOOBIG: return "too_big";
    case AB_ENUMERIC: return "numeric";
    case AB_EDB: return "database_unavailable";
    case AB_EBUSY: return "busy";
    case AB_EINTERNAL: return "internal";
    }
    return "internal";
}

static void
oom(size_t n)
{
    fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"out of memory\","
                    "\"bytes\":%zu}\n", n);
    abort();
}

void *
ab_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

void *
ab_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p == NULL)
        oom(count * size);
    return p;
}

void *
ab_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n);
    return q;
}

char *
ab_xstrdup(const char *s)
{
    return ab_xstrndup(s, strlen(s));
}

char *
ab_xstrndup(const char *s, size_t n)
{
    char *p = ab_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}
