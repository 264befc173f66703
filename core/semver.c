/* semver.c -- semantic versions: parse and precedence.
 *
 * Grammar (Semantic Versioning 2.0.0, https://semver.org/spec/v2.0.0.html,
 * sections 2, 9, 10 and 11), with two liberties taken for client version
 * strings: a leading 'v' and missing minor/patch ("1", "1.2" = "1.2.0"):
 *
 *   version  ::= ['v'] num ['.' num ['.' num]] ['-' ident {'.' ident}]
 *                ['+' build {'.' build}]
 *   num      ::= '0' | [1-9][0-9]*                  (no leading zeros)
 *   ident    ::= num | [0-9A-Za-z-]* with a non-digit
 *   build    ::= [0-9A-Za-z-]+                      (ignored)
 *
 * Precedence (section 11): compare major, minor, patch numerically; a
 * version with a pre-release is lower than the same version without;
 * pre-releases compare identifier by identifier, numeric identifiers
 * numerically and below alphanumeric ones, alphanumeric ones in ASCII
 * order; a shorter list of equal identifiers is lower.
 * Build metadata does not take part in precedence.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/assign.h"

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool
is_ident_char(char c)
{
    return is_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           c == '-';
}

/* A numeric component at *sp; advances *sp. */
static ab_status
parse_num(const char **sp, uint64_t *out)
{
    const char *s = *sp;
    uint64_t v = 0;
    if (!is_digit(*s))
        return AB_EINVAL;
    if (s[0] == '0' && is_digit(s[1]))
        return AB_EINVAL; /* leading zero */
    while (is_digit(*s)) {
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return AB_EINVAL;
        v = v * 10 + d;
        s++;
    }
    *sp = s;
    *out = v;
    return AB_OK;
}

/* Dot-separated identifiers up to '+' or the end; checks each one.
 * 'numeric_rules': pre-release numeric identifiers have no leading zero. */
static ab_status
scan_idents(const char **sp, bool numeric_rules)
{
    const char *s = *sp;
    for (;;) {
        const char *start = s;
        bool all_digits = true;
        while (is_ident_char(*s)) {
            if (!is_digit(*s))
                all_digits = false;
            s++;
        }
        size_t len = (size_t)(s - start);
        if (len == 0)
            return AB_EINVAL;
        if (numeric_rules && all_digits && len > 1 && start[0] == '0')
            return AB_EINVAL;
        if (*s != '.')
            break;
        s++;
    }
    *sp = s;
    return AB_OK;
}

ab_status
core_semver_parse(const char *s, struct core_semver *out)
{
    struct core_semver v;
    memset(&v, 0, sizeof(v));
    if (s == NULL)
        return AB_EINVAL;
    if (*s == 'v')
        s++;
    if (parse_num(&s, &v.major) != AB_OK)
        return AB_EINVAL;
    if (*s == '.') {
        s++;
        if (parse_num(&s, &v.minor) != AB_OK)
            return AB_EINVAL;
        if (*s == '.') {
            s++;
            if (parse_num(&s, &v.patch) != AB_OK)
                return AB_EINVAL;
        }
    }
    if (*s == '-') {
        const char *pre = ++s;
        if (scan_idents(&s, true) != AB_OK)
            return AB_EINVAL;
        size_t len = (size_t)(s - pre);
        if (len >= sizeof(v.pre))
            return AB_EINVAL;
        memcpy(v.pre, pre, len);
        v.pre[len] = '\0';
    }
    if (*s == '+') {
        s++;
        if (scan_idents(&s, false) != AB_OK)
            return AB_EINVAL;
    }
    if (*s != '\0')
        return AB_EINVAL;
    *out = v;
    return AB_OK;
}

static int
cmp_u64(uint64_t a, uint64_t b)
{
    return (a > b) - (a < b);
}

/* Compare two pre-release identifiers of lengths la, lb. */
static int
cmp_ident(const char *a, size_t la, const char *b, size_t lb)
{
    bool na = true, nb = true;
    for (size_t i = 0; i < la; i++)
        na = na && is_digit(a[i]);
    for (size_t i = 0; i < lb; i++)
        nb = nb && is_digit(b[i]);
    if (na && nb) {
        /* no leading zeros: the longer number is larger */
        if (la != lb)
            return la < lb ? -1 : 1;
        int c = memcmp(a, b, la);
        return (c > 0) - (c < 0);
    }
    if (na != nb)
        return na ? -1 : 1;
    size_t n = la < lb ? la : lb;
    int c = memcmp(a, b, n);
    if (c != 0)
        return (c > 0) - (c < 0);
    return (la > lb) - (la < lb);
}

int
core_semver_cmp(const struct core_semver *a, const struct core_semver *b)
{
    int c = cmp_u64(a->major, b->major);
    if (c == 0)
        c = cmp_u64(a->minor, b->minor);
    if (c == 0)
        c = cmp_u64(a->patch, b->patch);
    if (c != 0)
        return c;
    if (a->pre[0] == '\0' || b->pre[0] == '\0')
        return (a->pre[0] == '\0') - (b->pre[0] == '\0');
    const char *pa = a->pre, *pb = b->pre;
    for (;;) {
        size_t la = strcspn(pa, "."), lb = strcspn(pb, ".");
        c = cmp_ident(pa, la, pb, lb);
        if (c != 0)
            return c;
        pa += la;
        pb += lb;
        if (*pa == '\0' || *pb == '\0')
            return (*pa != '\0') - (*pb != '\0');
        pa++;
        pb++;
    }
}
