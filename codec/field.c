/* field.c -- the codecs' shared field checks, names and numbers (field.h). */
#include "codec/field.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

bool
codec_name_find(const struct codec_name *table, size_t n, const char *name,
                int *out)
{
    if (name == NULL)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(table[i].name, name) == 0) {
            *out = table[i].value;
            return true;
        }
    return false;
}

const char *
codec_name_of(const struct codec_name *table, size_t n, int value)
{
    for (size_t i = 0; i < n; i++)
        if (table[i].value == value)
            return table[i].name;
    return "unknown";
}

void
codec_name_choices(const struct codec_name *table, size_t n, char *buf,
                   size_t len)
{
    size_t w = 0;
    if (len > 0)
        buf[0] = '\0';
    for (size_t i = 0; i < n && w < len; i++) {
        int k = snprintf(buf + w, len - w, "%s%s", i ? " " : "",
                         table[i].name);
        if (k < 0)
            return;
        w += (size_t)k; /* past len: truncated, still NUL-terminated */
    }
}

const char *
codec_quote(char buf[CODEC_QUOTE_MAX + 1], const char *s)
{
    size_t n = strlen(s);
    if (n <= CODEC_QUOTE_MAX)
        return s;
    memcpy(buf, s, CODEC_QUOTE_MAX); /* a cut character: api/reply.c */
    buf[CODEC_QUOTE_MAX] = '\0';
    return buf;
}

ab_status
codec_vbad(char *err, size_t len, const char *path, const char *fmt,
           va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap); /* truncation is acceptable */
    if (err != NULL && len > 0)
        snprintf(err, len, "%s: %s", path, msg);
    return AB_EINVAL;
}

ab_status
codec_bad(char *err, size_t len, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ab_status rc = codec_vbad(err, len, path, fmt, ap);
    va_end(ap);
    return rc;
}

void
codec_join(char *buf, size_t n, const char *path, const char *field)
{
    if (path[0] == '\0')
        snprintf(buf, n, "%s", field);
    else
        snprintf(buf, n, "%s.%s", path, field);
}

ab_status
codec_check_fields(const json_t *obj, const char *path,
                   const char *const *allowed, char *err, size_t len)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        bool ok = false;
        for (size_t i = 0; allowed[i] != NULL && !ok; i++)
            ok = strcmp(k, allowed[i]) == 0;
        if (!ok) {
            char f[160], q[CODEC_QUOTE_MAX + 1];
            codec_join(f, sizeof(f), path, codec_quote(q, k));
            return codec_bad(err, len, f, "unknown field");
        }
    }
    (void)v;
    return AB_OK;
}

bool
codec_percent_parse(const json_t *v, uint32_t *out)
{
    double x = json_is_number(v) ? json_number_value(v) : NAN;
    if (!isfinite(x) || x < 0 || x > 100)
        return false;
    double scaled = x * 1e4, r = round(scaled);
    if (fabs(scaled - r) > 1e-6)
        return false;
    *out = (uint32_t)r;
    return true;
}

json_t *
codec_scaled_json(uint32_t m, uint32_t unit)
{
    if (m % unit == 0)
        return json_integer((json_int_t)(m / unit));
    return json_real((double)m / (double)unit);
}

json_t *
codec_percent_json(uint32_t millionths)
{
    return codec_scaled_json(millionths, 10000);
}

/* ---- scalar members ------------------------------------------------------ */

ab_status
codec_get_int(const json_t *obj, const char *path, const char *field,
              const struct codec_int *spec, int64_t *out, char *err,
              size_t len)
{
    json_t *v = json_object_get(obj, field);
    if (v == NULL || (json_is_null(v) && spec->null_is == CODEC_NULL_ABSENT))
        return AB_OK;
    if (!json_is_integer(v) || json_integer_value(v) < spec->min ||
        json_integer_value(v) > spec->max) {
        char f[160];
        codec_join(f, sizeof(f), path, field);
        if (spec->want != NULL)
            return codec_bad(err, len, f, "must be %s", spec->want);
        return codec_bad(err, len, f,
                         "must be an integer between %lld and %lld",
                         (long long)spec->min, (long long)spec->max);
    }
    *out = (int64_t)json_integer_value(v);
    return AB_OK;
}

static bool
in_range(const struct codec_num *spec, double x)
{
    return isfinite(x) && !(x < spec->lo) && !(x > spec->hi) &&
           !(spec->lo_open && x == spec->lo) &&
           !(spec->hi_open && x == spec->hi);
}

ab_status
codec_get_number(const json_t *obj, const char *path, const char *field,
                 const struct codec_num *spec, double *out, bool *is_null,
                 char *err, size_t len)
{
    json_t *v = json_object_get(obj, field);
    if (v == NULL || (json_is_null(v) && spec->null_is == CODEC_NULL_ABSENT))
        return AB_OK;
    bool nullable = spec->null_is == CODEC_NULL_VALUE;
    if (nullable && json_is_null(v)) {
        *is_null = true;
        *out = 0;
        return AB_OK;
    }
    double x = json_is_number(v) ? json_number_value(v) : NAN;
    if (!in_range(spec, x)) {
        char f[160];
        codec_join(f, sizeof(f), path, field);
        if (spec->want != NULL)
            return codec_bad(err, len, f, "must be %s%s",
                             nullable ? "null or " : "", spec->want);
        if (!json_is_number(v))
            return codec_bad(err, len, f, "must be a number");
        return codec_bad(err, len, f, "must be in %s%g, %g%s",
                         spec->lo_open ? "(" : "[", spec->lo, spec->hi,
                         spec->hi_open ? ")" : "]");
    }
    if (nullable)
        *is_null = false;
    *out = x;
    return AB_OK;
}

ab_status
codec_get_bool(const json_t *obj, const char *path, const char *field,
               enum codec_null null_is, bool *out, char *err, size_t len)
{
    json_t *v = json_object_get(obj, field);
    if (v == NULL || (json_is_null(v) && null_is == CODEC_NULL_ABSENT))
        return AB_OK;
    if (!json_is_boolean(v)) {
        char f[160];
        codec_join(f, sizeof(f), path, field);
        return codec_bad(err, len, f, "must be true or false");
    }
    *out = json_is_true(v);
    return AB_OK;
}

/* ---- numbers ------------------------------------------------------------ */

json_t *
codec_real_or_null(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

double
codec_num_or(const json_t *v, double dflt)
{
    return json_is_number(v) ? json_number_value(v) : dflt;
}

/* ---- times -------------------------------------------------------------- */

void
codec_time_format(int64_t ms, char out[CODEC_TIME_LEN])
{
    int64_t secs = ms / 1000, milli = ms % 1000;
    if (milli < 0) { /* before 1970: floor, as the database does */
        secs -= 1;
        milli += 1000;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t len = strftime(out, CODEC_TIME_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + len, CODEC_TIME_LEN - len, ".%03dZ", (int)milli);
}

json_t *
codec_time_json(int64_t ms)
{
    if (ms < 0)
        return json_null();
    char buf[CODEC_TIME_LEN];
    codec_time_format(ms, buf);
    return json_string(buf);
}
