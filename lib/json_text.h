/* json_text.h -- JSON text out of jansson trees, with numbers as typed.
 *
 * jansson prints every real with "%.17g" (or the precision asked for), so a
 * user's 0.05 comes back as 0.050000000000000003. ab_json_text() prints each
 * real with the fewest significant digits (15, 16 or 17) that parse back to
 * the very same double: 0.05 stays 0.05, 0.1 + 0.2 is 0.30000000000000004,
 * and no information is lost. Integers (json_integer) print exactly.
 *
 * ab_json_string_lossy() makes a JSON string of any bytes: each invalid UTF-8
 * sequence becomes U+FFFD, so a log line or a message built from what a
 * caller sent is always valid UTF-8 and never refused by jansson.
 */
#ifndef LIB_JSON_TEXT_H
#define LIB_JSON_TEXT_H

#include <stddef.h>

#include <jansson.h>

/* json_dumps(j, flags) with the shortest round-trip reals; NULL only when
 * out of memory or when jansson refuses j. Free with free(). Any
 * JSON_REAL_PRECISION in flags is ignored. */
char *ab_json_text(const json_t *j, size_t flags);

/* The shortest "%.Ng" (N = 15..17) of x that strtod reads back as x, with
 * ".0" added when it would read as an integer; "null" for NaN/infinity
 * (which JSON cannot carry). out needs 32 bytes. Returns strlen(out). */
int ab_json_real_shortest(double x, char out[32]);

/* A new JSON string from s (len bytes), invalid UTF-8 replaced by U+FFFD
 * and NUL bytes by U+FFFD too (lib/utf8.h: the one validator and its
 * NUL rule); NULL only when out of memory. */
json_t *ab_json_string_lossy(const char *s, size_t len);

/* Pieces of a text for writers that build JSON without a json_t tree on a
 * hot path, each byte for byte what ab_json_text(tree, JSON_COMPACT |
 * JSON_ENSURE_ASCII) writes for the same value inside the tree:
 *   ab_json_string_put()   s (NUL-terminated UTF-8) as a JSON string, with
 *                          its quotes, into out (cap bytes, NUL-terminated;
 *                          6 * strlen(s) + 3 always suffice); returns its
 *                          length, or (size_t)-1 when s is not UTF-8
 *                          (jansson refuses it) or it does not fit.
 *                          Printable ASCII is copied without jansson.
 *   ab_json_real_text()    x as a JSON real; returns strlen(out), or -1 for
 *                          NaN and infinity (no JSON text). A per-thread
 *                          cache of 64 values keeps jansson and printf off
 *                          the path for values seen before. */
size_t ab_json_string_put(char *out, size_t cap, const char *s);
int ab_json_real_text(double x, char out[32]);

#endif /* LIB_JSON_TEXT_H */
