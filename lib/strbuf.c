/* strbuf.c -- a growable printf buffer (see strbuf.h).
 *
 * vsnprintf into what is left; when the text does not fit, grow to twice
 * the capacity plus the text's length and write it again, so one append
 * reallocates at most once. */
#include "lib/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/status.h"

void
strbuf_init(struct strbuf *sb, size_t cap)
{
    sb->cap = cap > 0 ? cap : 1;
    sb->p = ab_xmalloc(sb->cap);
    sb->p[0] = '\0';
    sb->len = 0;
}

void
strbuf_printf(struct strbuf *sb, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(sb->p + sb->len, sb->cap - sb->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < sb->cap - sb->len) {
            sb->len += (size_t)n;
            return;
        }
        sb->cap = 2 * sb->cap + (n > 0 ? (size_t)n : 0);
        sb->p = ab_xrealloc(sb->p, sb->cap);
    }
}

void
strbuf_free(struct strbuf *sb)
{
    if (!sb)
        return;
    free(sb->p);
    sb->p = NULL;
    sb->len = sb->cap = 0;
}
