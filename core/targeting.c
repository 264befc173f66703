/* targeting.c -- do a request's attributes satisfy an experiment's rules?
 *
 * The rules are ANDed; an experiment without rules targets everyone.
 * Attribute values are strings (the caller passes JSON numbers and
 * booleans in their JSON text form). When a request repeats an attribute
 * the first occurrence counts.
 *
 *   eq, ne            byte-wise string equality with the operand
 *   in, not_in        membership in the operand list (byte-wise)
 *   lt le gt ge       the attribute, read as a finite decimal number
 *                     (only 0-9 + - . e E; strtod on the whole string: no
 *                     spaces, no hex, no "inf"/"nan"), compared
 *                     with the operand; a non-numeric attribute never
 *                     matches
 *   semver_*          the attribute, read as a semantic version
 *                     (core/semver.c), compared by semver.org 2.0.0
 *                     precedence; an unparsable version never matches
 *   exists            the attribute is present (any value, even "")
 *
 * A missing attribute matches no rule but 'exists' is false too -- and in
 * particular 'ne' and 'not_in' do NOT match a missing attribute: a rule
 * "country ne US" targets requests that say which country they come from
 * and it is not US, never requests that say nothing (the conservative
 * choice: an experiment never reaches traffic it cannot classify; see
 * Kohavi, Tang and Xu, "Trustworthy Online Controlled Experiments",
 * Cambridge 2020, ch. 20 on triggering: analyse only the traffic the
 * condition can be evaluated on).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/assign.h"

static const char *
attr_find(const struct core_attr *attrs, size_t n_attrs, const char *key)
{
    for (size_t i = 0; i < n_attrs; i++)
        if (attrs[i].key != NULL && strcmp(attrs[i].key, key) == 0)
            return attrs[i].value;
    return NULL;
}

/* The attribute as a finite number; false when it is not one. */
static bool
read_number(const char *s, double *out)
{
    char *end;
    if (*s == '\0' || s[strspn(s, "0123456789+-.eE")] != '\0')
        return false;
    errno = 0;
    double v = strtod(s, &end);
    if (*end != '\0' || errno == ERANGE || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static bool
in_list(const struct core_rule *r, const char *v)
{
    for (size_t i = 0; i < r->n_values; i++)
        if (strcmp(r->values[i], v) == 0)
            return true;
    return false;
}

static bool
rule_match(const struct core_rule *r, const char *v)
{
    if (v == NULL)
        return false; /* a missing attribute matches no rule */
    switch (r->op) {
    case CORE_OP_EXISTS: return true;
    case CORE_OP_EQ: return r->n_values == 1 && strcmp(v, r->values[0]) == 0;
    case CORE_OP_NE: return r->n_values == 1 && strcmp(v, r->values[0]) != 0;
    case CORE_OP_IN: return in_list(r, v);
    case CORE_OP_NOT_IN: return !in_list(r, v);
    case CORE_OP_LT:
    case CORE_OP_LE:
    case CORE_OP_GT:
    case CORE_OP_GE: {
        double x;
        if (!read_number(v, &x))
            return false;
        switch (r->op) {
        case CORE_OP_LT: return x < r->number;
        case CORE_OP_LE: return x <= r->number;
        case CORE_OP_GT: return x > r->number;
        default: return x >= r->number;
        }
    }
    case CORE_OP_SEMVER_EQ:
    case CORE_OP_SEMVER_LT:
    case CORE_OP_SEMVER_LE:
    case CORE_OP_SEMVER_GT:
    case CORE_OP_SEMVER_GE: {
        struct core_semver s;
        if (core_semver_parse(v, &s) != AB_OK)
            return false;
        int c = core_semver_cmp(&s, &r->semver);
        switch (r->op) {
        case CORE_OP_SEMVER_EQ: return c == 0;
        case CORE_OP_SEMVER_LT: return c < 0;
        case CORE_OP_SEMVER_LE: return c <= 0;
        case CORE_OP_SEMVER_GT: return c > 0;
        default: return c >= 0;
        }
    }
    }
    return false;
}

bool
core_rule_match(const struct core_rule *r, const struct core_attr *attrs,
                size_t n_attrs)
{
    return rule_match(r, attr_find(attrs, n_attrs, r->attribute));
}

bool
core_targeting_match(const struct core_experiment *e,
                     const struct core_attr *attrs, size_t n_attrs)
{
    for (size_t i = 0; i < e->n_rules; i++)
        if (!core_rule_match(&e->rules[i], attrs, n_attrs))
            return false;
    return true;
}
