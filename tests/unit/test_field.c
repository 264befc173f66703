/* test_field.c -- the codecs' one set of scalar readers (codec/field.c):
 * absent keeps the default, the three meanings of null, and the exact
 * messages experiment_json.c and rollout_json.c print through them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>

#include "codec/field.h"

static json_t *
doc(const char *text)
{
    json_t *d = json_loads(text, 0, NULL);
    assert_non_null(d);
    return d;
}

static void
test_int_reader(void **state)
{
    (void)state;
    char err[160];
    json_t *d = doc("{\"a\":5,\"b\":null,\"c\":1.5,\"d\":-1}");
    const struct codec_int r = {0, 10, CODEC_NULL_REFUSED, NULL};
    const struct codec_int s = {0, 10, CODEC_NULL_ABSENT, "a small count"};
    int64_t v = 7;
    assert_int_equal(codec_get_int(d, "x", "a", &r, &v, err, sizeof(err)),
                     AB_OK);
    assert_int_equal(v, 5);
    v = 7;
    assert_int_equal(codec_get_int(d, "x", "none", &r, &v, err, sizeof(err)),
                     AB_OK);
    assert_int_equal(v, 7); /* absent: the default stays */
    assert_int_equal(codec_get_int(d, "x", "b", &s, &v, err, sizeof(err)),
                     AB_OK);
    assert_int_equal(v, 7); /* null as absent */
    assert_int_equal(codec_get_int(d, "x", "b", &r, &v, err, sizeof(err)),
                     AB_EINVAL);
    assert_string_equal(err, "x.b: must be an integer between 0 and 10");
    assert_int_equal(codec_get_int(d, "", "c", &r, &v, err, sizeof(err)),
                     AB_EINVAL);
    assert_string_equal(err, "c: must be an integer between 0 and 10");
    assert_int_equal(codec_get_int(d, "x", "d", &s, &v, err, sizeof(err)),
                     AB_EINVAL);
    assert_string_equal(err, "x.d: must be a small count");
    assert_int_equal(v, 7);
    json_decref(d);
}

static void
test_number_reader(void **state)
{
    (void)state;
    char err[160];
    json_t *d = doc("{\"a\":0.5,\"n\":null,\"s\":\"x\",\"lo\":0,\"hi\":1}");
    const struct codec_num plain = {0,   1, true, false, CODEC_NULL_ABSENT,
                                    NULL};
    const struct codec_num worded = {
        0, 1, false, true, CODEC_NULL_VALUE, "a number in [0, 1)"};
    double x = 9;
    bool is_null = true;
    assert_int_equal(codec_get_number(d, "r", "a", &plain, &x, NULL, err,
                                      sizeof(err)),
                     AB_OK);
    assert_true(x == 0.5);
    x = 9;
    assert_int_equal(codec_get_number(d, "r", "n", &plain, &x, NULL, err,
                                      sizeof(err)),
                     AB_OK);
    assert_true(x == 9);
    assert_int_equal(codec_get_number(d, "r", "s", &plain, &x, NULL, err,
                                      sizeof(err)),
                     AB_EINVAL);
    assert_string_equal(err, "r.s: must be a number");
    assert_int_equal(codec_get_number(d, "r", "lo", &plain, &x, NULL, err,
                                      sizeof(err)),
                     AB_EINVAL);
    assert_string_equal(err, "r.lo: must be in (0, 1]");
    assert_int_equal(codec_get_number(d, "r", "hi", &plain, &x, NULL, err,
                                      sizeof(err)),
                     AB_OK);
    assert_int_equal(codec_get_number(d, "b", "n", &worded, &x, &is_null, err,
                                      sizeof(err)),
                     AB_OK);
    assert_true(is_null);
    assert_true(x == 0);
    assert_int_equal(codec_get_number(d, "b", "a", &worded, &x, &is_null, err,
                                      sizeof(err)),
                     AB_OK);
    assert_false(is_null);
    assert_int_equal(codec_get_number(d, "b", "hi", &worded, &x, &is_null,
                                      err, sizeof(err)),
                     AB_EINVAL);
    assert_string_equal(err, "b.hi: must be null or a number in [0, 1)");
    const struct codec_num open = {
        -INFINITY, INFINITY,           false,
        false,     CODEC_NULL_REFUSED, "a number up to 2"};
    assert_int_equal(codec_get_number(d, "b", "n", &open, &x, NULL, err,
                                      sizeof(err)),
                     AB_EINVAL);
    assert_string_equal(err, "b.n: must be a number up to 2");
    json_decref(d);
}

static void
test_bool_reader(void **state)
{
    (void)state;
    char err[160];
    json_t *d = doc("{\"t\":true,\"n\":null,\"s\":1}");
    bool b = false;
    assert_int_equal(codec_get_bool(d, "", "t", CODEC_NULL_REFUSED, &b, err,
                                    sizeof(err)),
                     AB_OK);
    assert_true(b);
    assert_int_equal(codec_get_bool(d, "", "n", CODEC_NULL_ABSENT, &b, err,
                                    sizeof(err)),
                     AB_OK);
    assert_true(b);
    assert_int_equal(codec_get_bool(d, "arms[0]", "n", CODEC_NULL_REFUSED, &b,
                                    err, sizeof(err)),
                     AB_EINVAL);
    assert_string_equal(err, "arms[0].n: must be true or false");
    assert_int_equal(codec_get_bool(d, "", "s", CODEC_NULL_ABSENT, &b, err,
                                    sizeof(err)),
                     AB_EINVAL);
    assert_string_equal(err, "s: must be true or false");
    json_decref(d);
}

/* The one "finite number or null" and its reading side; times as RFC
 * 3339 UTC with milliseconds (expected values from Python's
 * datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat()). */
static void
test_numbers_and_times(void **state)
{
    (void)state;
    json_t *j = codec_real_or_null(0.25);
    assert_true(json_is_real(j) && json_real_value(j) == 0.25);
    json_decref(j);
    assert_true(json_is_null(codec_real_or_null(NAN)));
    assert_true(json_is_null(codec_real_or_null(INFINITY)));
    assert_true(json_is_null(codec_real_or_null(-INFINITY)));
    j = json_integer(7);
    assert_true(codec_num_or(j, 1) == 7);
    json_decref(j);
    assert_true(codec_num_or(NULL, 1) == 1);
    assert_true(isinf(codec_num_or(json_null(), -INFINITY)));

    assert_true(json_is_null(codec_time_json(-1)));
    j = codec_time_json(0);
    assert_string_equal(json_string_value(j), "1970-01-01T00:00:00.000Z");
    json_decref(j);
    j = codec_time_json(1796328774123LL);
    assert_string_equal(json_string_value(j), "2026-12-03T20:12:54.123Z");
    json_decref(j);
    char buf[CODEC_TIME_LEN];
    codec_time_format(1796328774005LL, buf);
    assert_string_equal(buf, "2026-12-03T20:12:54.005Z");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int_reader),
        cmocka_unit_test(test_number_reader),
        cmocka_unit_test(test_bool_reader),
        cmocka_unit_test(test_numbers_and_times),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
