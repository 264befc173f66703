/* pgarray.h -- building PostgreSQL array literals ('{"a","b"}') for
 * parameters of unnest()-style batch statements. Pure string work. */
#ifndef SQL_PGARRAY_H
#define SQL_PGARRAY_H

#include <stddef.h>
#include <stdint.h>

struct pgarray {
    char *p;
    size_t len, cap;
    size_t n; /* elements so far */
};

void pgarray_begin(struct pgarray *a);
/* A quoted text element (\ and " escaped); s == NULL writes NULL. */
void pgarray_text(struct pgarray *a, const char *s);
void pgarray_int(struct pgarray *a, int64_t v);
/* %.17g: round-trips every finite double. */
void pgarray_double(struct pgarray *a, double v);
/* Close the literal; a->p is then the parameter (free(a->p) after). */
const char *pgarray_end(struct pgarray *a);

#endif /* SQL_PGARRAY_H */
