/* test_log.c -- the structured logger and the JSON number printer:
 * typed values, valid UTF-8 whatever the input, no truncation, and reals
 * printed with the shortest digits that read back as the same double.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "lib/json_text.h"
#include "lib/log.h"

static void
expect_text(json_t *j, const char *want)
{
    char *got = ab_json_text(j, JSON_COMPACT);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
    json_decref(j);
}

/* what a user typed comes back as typed */
static void
test_reals_as_typed(void **state)
{
    (void)state;
    expect_text(json_pack("{s:f}", "alpha", 0.05), "{\"alpha\":0.05}");
    expect_text(json_pack("[f,f,f,f]", 0.1, 2.5, 1e-7, 123456.789),
                "[0.1,2.5,1e-07,123456.789]");
    /* not typeable shorter: 17 digits kept, nothing lost */
    expect_text(json_pack("[f]", 0.1 + 0.2), "[0.30000000000000004]");
    expect_text(json_pack("[f,f]", 1.0, -0.0), "[1.0,-0.0]");
    expect_text(json_pack("[I,f]", (json_int_t)9007199254740993LL, 1e300),
                "[9007199254740993,1e+300]");
    /* numbers inside strings are text, untouched */
    expect_text(json_pack("{s:s}", "x", "0.050000000000000003"),
                "{\"x\":\"0.050000000000000003\"}");
}

/* every double round-trips through the shortest form */
static void
test_round_trip(void **state)
{
    (void)state;
    unsigned long long s = 88172645463325252ULL;
    char buf[32];
    for (int i = 0; i < 200000; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        double x;
        memcpy(&x, &s, sizeof(x));
        if (x != x || x - x != 0) /* NaN, infinities */
            continue;
        ab_json_real_shortest(x, buf);
        assert_true(strtod(buf, NULL) == x);
        /* when 15 digits suffice, 15 digits are used */
        char p15[32];
        snprintf(p15, sizeof(p15), "%.15g", x);
        if (strtod(p15, NULL) == x)
            assert_int_equal(strncmp(buf, p15, strlen(p15)), 0);
    }
}

static json_t *
parse(const char *line)
{
    json_error_t e;
    json_t *j = json_loads(line, 0, &e);
    if (j == NULL)
        fail_msg("not JSON: %s (%s)", line, e.text);
    return j;
}

static void
test_typed_fields(void **state)
{
    (void)state;
    json_t *f = json_pack("{s:s,s:i,s:f,s:b,s:n}", "host", "::", "port", 8080,
                          "alpha", 0.05, "ok", 1, "none");
    char *line = log_format(LOG_INFO, "2026-12-03T00:00:00.000Z", "listening",
                            f);
    json_decref(f);
    assert_string_equal(line,
                        "{\"ts\":\"2026-12-03T00:00:00.000Z\",\"level\":\"info\","
                        "\"msg\":\"listening\",\"host\":\"::\",\"port\":8080,"
                        "\"alpha\":0.05,\"ok\":true,\"none\":null}");
    free(line);
}

static void
test_invalid_utf8_and_escapes(void **state)
{
    (void)state;
    /* a lone continuation byte, an overlong '/', a surrogate, a cut
     * sequence; quotes, backslash and control characters */
    const char bad[] = "a\x80" "b\xC0\xAF" "c\xED\xA0\x80" "d\"\\\n\x01\xE2\x82";
    json_t *f = json_object();
    json_object_set_new(f, "detail", ab_json_string_lossy(bad, strlen(bad)));
    char *line = log_format(LOG_WARN, "t", "bad \xFF input", f);
    json_decref(f);
    json_t *j = parse(line); /* jansson's decoder refuses invalid UTF-8 */
    assert_string_equal(json_string_value(json_object_get(j, "msg")),
                        "bad \xEF\xBF\xBD input");
    const char *d = json_string_value(json_object_get(j, "detail"));
    assert_non_null(strstr(d, "d\"\\\n\x01"));
    assert_int_equal(strncmp(d, "a\xEF\xBF\xBD" "b", 5), 0);
    json_decref(j);
    free(line);
}

/* a 100 KiB value is written whole, and the line is still JSON */
static void
test_no_truncation(void **state)
{
    (void)state;
    size_t n = 100 * 1024;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    big[n - 1] = '"';
    big[n] = '\0';
    json_t *f = json_object();
    json_object_set_new(f, "big", json_string(big));
    char *line = log_format(LOG_ERROR, "t", "m", f);
    json_decref(f);
    json_t *j = parse(line);
    assert_string_equal(json_string_value(json_object_get(j, "big")), big);
    json_decref(j);
    free(line);
    free(big);
}

/* reserved names are not overwritten */
static void
test_reserved_keys(void **state)
{
    (void)state;
    json_t *f = json_pack("{s:s,s:i}", "msg", "spoof", "level", 3);
    char *line = log_format(LOG_DEBUG, "t", "real", f);
    json_decref(f);
    assert_string_equal(line, "{\"ts\":\"t\",\"level\":\"debug\",\"msg\":"
                              "\"real\",\"_msg\":\"spoof\",\"_level\":3}");
    free(line);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reals_as_typed),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_typed_fields),
        cmocka_unit_test(test_invalid_utf8_and_escapes),
        cmocka_unit_test(test_no_truncation),
        cmocka_unit_test(test_reserved_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
