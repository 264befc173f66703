/* strbuf.h -- a growable text buffer written with printf formats.
 *
 * The one writer behind every text exposition we build in memory (the
 * /metrics families of lib/metrics.c, service/verdicts.c and
 * service/holdback.c). Allocation aborts on out-of-memory (ab_xrealloc),
 * so appending cannot fail; the caller bounds what it appends. */
#ifndef LIB_STRBUF_H
#define LIB_STRBUF_H
#include <stddef.h>

struct strbuf {
    char *p;    /* NUL-terminated after the first append */
    size_t len; /* bytes written, without the NUL */
    size_t cap; /* bytes allocated */
};

/* Starts an empty buffer of 'cap' bytes (at least 1); release with
 * strbuf_free() or take sb->p (the caller then frees it). */
void strbuf_init(struct strbuf *sb, size_t cap);

/* Appends the formatted text, doubling the buffer as needed. */
__attribute__((format(printf, 2, 3))) void strbuf_printf(struct strbuf *sb,
                                                         const char *fmt,
                                                         ...);

/* Frees the text; the buffer is empty again (NULL is a no-op). */
void strbuf_free(struct strbuf *sb);
#endif /* LIB_STRBUF_H */
