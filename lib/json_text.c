/* json_text.c -- see json_text.h. */
#include "lib/json_text.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/utf8.h"

int
ab_json_real_shortest(double x, char out[32])
{
    if (!isfinite(x))
        return snprintf(out, 32, "null");
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(out, 32, "%.*g", prec, x);
        if (strtod(out, NULL) == x)
            break;
    }
    if (strpbrk(out, ".eEn") == NULL && n + 2 < 32) { /* keep it a real */
        memcpy(out + n, ".0", 3);
        n += 2;
    }
    return n;
}

/* Significant digits of a number token's mantissa. A "%.17g" token with
 * at most 15 of them is already what "%.15g" prints (the common case,
 * 0.5 or 1.25): it is kept without formatting anything. */
static int
significant_digits(const char *p, size_t n)
{
    int count = 0, started = 0;
    for (size_t i = 0; i < n && p[i] != 'e' && p[i] != 'E'; i++) {
        if (p[i] < '0' || p[i] > '9')
            continue;
        if (p[i] != '0')
            started = 1;
        count += started;
    }
    return count;
}

static int
number_char(char c)
{
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' ||
           c == 'e' || c == 'E';
}

/* Rewrite, in place, every real number token of text (outside strings)
 * that has more than 15 significant digits; the shortest form is never
 * longer (see below), so the text only shrinks. Integers (no '.', 'e' or
 * 'E') are left alone. */
static void
rewrite_reals(char *text)
{
    char *o = text;
    const char *p = text;
    while (*p) {
        if (*p == '"') { /* a string, escapes included */
            *o++ = *p++;
            while (*p && *p != '"') {
                if (*p == '\\' && p[1])
                    *o++ = *p++;
                *o++ = *p++;
            }
            if (*p)
                *o++ = *p++;
            continue;
        }
        if (*p == '-' || (*p >= '0' && *p <= '9')) {
            size_t n = 0;
            int real = 0;
            while (number_char(p[n])) {
                real |= p[n] == '.' || p[n] == 'e' || p[n] == 'E';
                n++;
            }
            char tok[64], buf[32];
            if (real && n < sizeof(tok) && significant_digits(p, n) > 15) {
                memcpy(tok, p, n);
                tok[n] = '\0';
                int m = ab_json_real_shortest(strtod(tok, NULL), buf);
                if ((size_t)m <= n) { /* never longer: kept otherwise */
                    memcpy(o, buf, (size_t)m);
                    o += m;
                    p += n;
                    continue;
                }
            }
            memmove(o, p, n);
            o += n;
            p += n;
            continue;
        }
        *o++ = *p++;
    }
    *o = '\0';
}

char *
ab_json_text(const json_t *j, size_t flags)
{
    flags &= ~(size_t)JSON_REAL_PRECISION(31);
    char *text = json_dumps(j, flags | JSON_REAL_PRECISION(17));
    if (text != NULL)
        rewrite_reals(text);
    return text;
}

json_t *
ab_json_string_lossy(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    char *buf = malloc(len * 3 + 1); /* each bad byte -> 3-byte U+FFFD */
    if (buf == NULL)
        return NULL;
    size_t o = 0;
    while (p < end) {
        size_t n = ab_utf8_len(p, end);
        if (n == 0) {
            memcpy(buf + o, "\xEF\xBF\xBD", 3);
            o += 3;
            p++;
            continue;
        }
        memcpy(buf + o, p, n);
        o += n;
        p += n;
    }
    json_t *j = json_stringn_nocheck(buf, o);
    free(buf);
    return j;
}

/* ---- pieces of a JSON text, byte for byte as ab_json_text() ------------- */

/* Printable ASCII without '"' and '\\': what every writer copies as it is
 * (JSON_ENSURE_ASCII escapes bytes over 0x7F, and control bytes are
 * escaped always). */
static size_t
plain_prefix(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    while (p[n] >= 0x20 && p[n] < 0x7F && p[n] != '"' && p[n] != '\\')
        n++;
    return n;
}

size_t
ab_json_string_put(char *out, size_t cap, const char *s)
{
    size_t n = plain_prefix(s);
    if (s[n] == '\0') {
        if (n + 2 >= cap)
            return (size_t)-1;
        out[0] = '"';
        memcpy(out + 1, s, n);
        out[n + 1] = '"';
        out[n + 2] = '\0';
        return n + 2;
    }
    json_t *j = json_string(s); /* NULL: not UTF-8 */
    char *text = j ? ab_json_text(j, JSON_ENCODE_ANY | JSON_COMPACT |
                                         JSON_ENSURE_ASCII)
                   : NULL;
    json_decref(j);
    size_t len = text ? strlen(text) : (size_t)-1;
    if (text == NULL || len >= cap)
        len = (size_t)-1;
    else
        memcpy(out, text, len + 1);
    free(text);
    return len;
}

/* 64 slots indexed by a multiplicative hash of the double's bits: a
 * program formats a handful of distinct reals again and again (an arm's
 * propensity), and jansson's "%.17g" runs glibc's multi-precision
 * printf. */
#define REAL_CACHE 64
_Static_assert(REAL_CACHE == 64, "the index is the top 6 bits");
struct real_slot {
    uint64_t bits;
    unsigned char len; /* 0: empty */
    char text[31];
};

int
ab_json_real_text(double x, char out[32])
{
    static _Thread_local struct real_slot cache[REAL_CACHE];
    uint64_t bits;
    memcpy(&bits, &x, sizeof(bits));
    struct real_slot *slot = &cache[(bits * 0x9e3779b97f4a7c15ULL) >> 58];
    if (slot->len == 0 || slot->bits != bits) {
        json_t *j = json_real(x); /* NULL: NaN or infinity */
        char *text = j ? ab_json_text(j, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
        json_decref(j);
        size_t n = text ? strlen(text) : 0;
        if (n == 0 || n >= sizeof(slot->text)) {
            free(text);
            return -1;
        }
        memcpy(slot->text, text, n + 1);
        free(text);
        slot->bits = bits;
        slot->len = (unsigned char)n;
    }
    memcpy(out, slot->text, (size_t)slot->len + 1);
    return slot->len;
}
