/* field.h -- what every codec of the model shares: the field checks, the
 * enum-name tables' lookups, the one percent formatter and the one guard
 * for names too long to quote. experiment_json.c and rollout_json.c use
 * these and nothing of their own, so a message or a number reads the same
 * whichever definition it comes from.
 *
 * Errors are written as "path: message" into a caller's buffer (err, len)
 * and returned as AB_EINVAL; nothing here allocates except the json_t it
 * returns (new reference).
 */
#ifndef CODEC_FIELD_H
#define CODEC_FIELD_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/status.h"

/* ---- enum names ---------------------------------------------------------
 * One table per concept, {stable lowercase name, enum value}, declared once
 * beside its codec (experiment_json.c: op, metric kind, direction, role,
 * bandit policy; rollout_json.c: "then"; core/experiment.c: strategy and
 * state, which the model itself names). */
struct codec_name {
    const char *name;
    int value;
};

/* The value named 'name' into *out: false when the table has no such name
 * (or name is NULL); *out is written only on true. */
bool codec_name_find(const struct codec_name *table, size_t n,
                     const char *name, int *out);
/* The name of 'value' (a static string), "unknown" when the table has
 * none. */
const char *codec_name_of(const struct codec_name *table, size_t n,
                          int value);
/* The table's names in its order, separated by spaces ("binary sum mean
 * ratio"), into buf (for "must be one of ..." messages). */
void codec_name_choices(const struct codec_name *table, size_t n, char *buf,
                        size_t len);

/* ---- quoting what a caller sent ------------------------------------------
 * A name quoted in a message is at most its first CODEC_QUOTE_MAX bytes:
 * a message never carries an unbounded caller string. The cut may split a
 * UTF-8 character; api/reply.c shows the stray bytes as '?' (the message
 * stays UTF-8). Returns s itself when short enough, else buf holding the
 * cut copy. */
#define CODEC_QUOTE_MAX 64
const char *codec_quote(char buf[CODEC_QUOTE_MAX + 1], const char *s);

/* ---- field checks -------------------------------------------------------- */

/* Write "path: message" (message from fmt) into err and return AB_EINVAL.
 * err may be NULL (len 0). */
ab_status codec_bad(char *err, size_t len, const char *path, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));
ab_status codec_vbad(char *err, size_t len, const char *path, const char *fmt,
                     va_list ap) __attribute__((format(printf, 4, 0)));

/* "path.field" (or "field" when path is "") into buf. */
void codec_join(char *buf, size_t n, const char *path, const char *field);

/* AB_OK when every member of obj is named in 'allowed' (NULL-terminated);
 * else AB_EINVAL with "path.name: unknown field" for the first other one
 * (the name cut by codec_quote()). */
ab_status codec_check_fields(const json_t *obj, const char *path,
                             const char *const *allowed, char *err,
                             size_t len);

/* ---- scalar members -------------------------------------------------------
 * The one reader for an integer, a number or a boolean member 'field' of a
 * JSON object. An absent member leaves *out as the caller set it (its
 * default); what null means is the caller's choice. Errors read
 * "path.field: must be ..." (codec_bad). */
enum codec_null {
    CODEC_NULL_REFUSED, /* null is a wrong type, like any other */
    CODEC_NULL_ABSENT,  /* null means "not given": *out keeps its default */
    CODEC_NULL_VALUE    /* null is a value: *is_null = true, *out = 0 */
};

/* An integer in [min, max]. Message "must be <want>", or "must be an
 * integer between <min> and <max>" when want is NULL. null_is: REFUSED
 * or ABSENT. */
struct codec_int {
    int64_t min, max;
    enum codec_null null_is;
    const char *want; /* "a non-negative integer", or NULL */
};
ab_status codec_get_int(const json_t *obj, const char *path,
                        const char *field, const struct codec_int *spec,
                        int64_t *out, char *err, size_t len);

/* A finite number in the interval lo..hi (each end open or closed; give
 * -INFINITY/INFINITY to leave an end to the caller). Messages: with want,
 * "must be [null or ]<want>" for any wrong value ("null or" when null is a
 * value); without, "must be a number" for a wrong type and "must be in
 * [lo, hi]" (brackets as the ends) for a value out of range. is_null is
 * written only with CODEC_NULL_VALUE (false when a number was read; an
 * absent member leaves it as the caller set it). */
struct codec_num {
    double lo, hi;
    bool lo_open, hi_open;
    enum codec_null null_is;
    const char *want; /* "a number in (0, 1)", or NULL */
};
ab_status codec_get_number(const json_t *obj, const char *path,
                           const char *field, const struct codec_num *spec,
                           double *out, bool *is_null, char *err, size_t len);

/* true or false ("must be true or false"); null_is: REFUSED or ABSENT. */
ab_status codec_get_bool(const json_t *obj, const char *path,
                         const char *field, enum codec_null null_is,
                         bool *out, char *err, size_t len);

/* ---- percentages ---------------------------------------------------------
 * Traffic is held in millionths (CORE_SCALE = 100 %): a percentage has at
 * most 4 decimals (0.0001 % is one millionth). */

/* A JSON number in [0, 100] with at most 4 decimals into millionths
 * (round(x * 10^4)); false when v is not such a number. */
bool codec_percent_parse(const json_t *v, uint32_t *out);
/* Millionths as a percentage: an integer when whole (50, not 50.0), else
 * the real with at most 4 decimals (12.5). New reference. */
json_t *codec_percent_json(uint32_t millionths);
/* m / unit as an integer when whole, else a real (the general form of
 * codec_percent_json, which is unit 10^4). New reference. */
json_t *codec_scaled_json(uint32_t m, uint32_t unit);

/* ---- numbers --------------------------------------------------------------
 * The one "finite number or null" of every JSON answer: JSON has no NaN or
 * infinity, so a statistic that is not (yet) defined prints as null. */
json_t *codec_real_or_null(double x);
/* A number member's value, or dflt when v is not a number (NULL too): the
 * reading side of codec_real_or_null(). */
double codec_num_or(const json_t *v, double dflt);

/* ---- times ---------------------------------------------------------------
 * Epoch milliseconds as RFC 3339 UTC with milliseconds
 * ("2026-12-03T19:32:54.123Z"), the form the database's to_char gives
 * every other time of the API. */
#define CODEC_TIME_LEN 32
void codec_time_format(int64_t ms, char out[CODEC_TIME_LEN]);
/* That string, or null when ms < 0 (no time). New reference. */
json_t *codec_time_json(int64_t ms);

#endif /* CODEC_FIELD_H */
