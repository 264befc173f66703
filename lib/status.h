/* status.h -- status codes and allocation helpers shared by every module.
 *
 * The one header that stats/, bandits/, core/ and sql/ may all include.
 * Pure code returns an ab_status and never prints; the API layer maps a
 * status to an HTTP code and a stable error word (ab_status_name()).
 */
#ifndef LIB_STATUS_H
#define LIB_STATUS_H

#include <stddef.h>

typedef enum ab_status {
    AB_OK = 0,
    AB_EINVAL,    /* the caller's input is invalid */
    AB_ENOTFOUND, /* no such object */
    AB_ECONFLICT, /* duplicate key or illegal state change */
    AB_ETOOBIG,   /* over a size or count limit */
    AB_ENUMERIC,  /* a numeric method could not produce a finite answer */
    AB_EDB,       /* the database failed or is unreachable */
    AB_EBUSY,     /* a bounded queue or spool is full: retry later */
    AB_EINTERNAL  /* a bug or an exhausted resource of ours */
} ab_status;

/* Stable lowercase word for rc: "ok", "invalid", "not_found", ... */
const char *ab_status_name(ab_status rc);

/* Allocation that aborts on out-of-memory, as Redis and h2o do. */
void *ab_xmalloc(size_t n);
void *ab_xcalloc(size_t count, size_t size);
void *ab_xrealloc(void *p, size_t n);
char *ab_xstrdup(const char *s);
char *ab_xstrndup(const char *s, size_t n);

#define AB_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define KB ((size_t)1024)
#define MB ((size_t)1024 * 1024)

#endif /* LIB_STATUS_H */
