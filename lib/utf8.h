/* utf8.h -- the one UTF-8 validator: RFC 3629 section 4 (no overlong
 * forms, no surrogates D800-DFFF, nothing above U+10FFFF, no truncated
 * sequence).
 *
 * NUL: U+0000 is well-formed UTF-8, but arbiter refuses it in every text
 * it reads or writes, so these functions treat a 0x00 byte as invalid.
 * Identifiers (experiment keys, units, arm and metric names) are C strings,
 * where a NUL would silently cut the name; RFC 8259 forbids a raw control
 * character in JSON text and jansson refuses "\u0000" in strings (arbiter
 * never sets JSON_ALLOW_NUL). Hence: a request body, query parameter or
 * path key holding a NUL byte is a 400 (invalid_utf8), and the JSON text
 * arbiter emits (error messages, log lines: ab_json_string_lossy()) holds
 * U+FFFD where the input had a NUL.
 */
#ifndef LIB_UTF8_H
#define LIB_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length (1 to 4) of the well-formed, non-NUL UTF-8 sequence that starts
 * at p, reading no byte at or past end (p < end); 0 when there is none. */
size_t ab_utf8_len(const unsigned char *p, const unsigned char *end);

/* Whether the n bytes at s are well-formed UTF-8 without a NUL. */
bool ab_utf8_valid(const char *s, size_t n);

#endif /* LIB_UTF8_H */
