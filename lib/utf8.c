/* utf8.c -- the one UTF-8 validator (see utf8.h for the NUL rule). */
#include "lib/utf8.h"

size_t
ab_utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return c ? 1 : 0; /* NUL refused (utf8.h) */
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* the second byte's range */
    if (c >= 0xC2 && c <= 0xDF)         /* C0, C1: overlong 2-byte forms */
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong 3-byte forms */
        if (c == 0xED)
            hi = 0x9F; /* surrogates D800-DFFF */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong 4-byte forms */
        if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else
        return 0; /* a continuation byte, or F5-FF */
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

bool
ab_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        size_t len = ab_utf8_len(p, end);
        if (len == 0)
            return false;
        p += len;
    }
    return true;
}
