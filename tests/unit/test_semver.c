/* test_semver.c -- semantic versions: parsing (semver.org 2.0.0 grammar
 * plus a leading 'v' and short forms) and precedence, including the
 * ordering example of semver.org 2.0.0 section 11.4.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "core/assign.h"

static struct core_semver
sv(const char *s)
{
    struct core_semver v;
    if (core_semver_parse(s, &v) != AB_OK)
        fail_msg("\"%s\" should parse", s);
    return v;
}

static int
cmp(const char *a, const char *b)
{
    struct core_semver x = sv(a), y = sv(b);
    return core_semver_cmp(&x, &y);
}

static void
test_parse_fields(void **state)
{
    (void)state;
    struct core_semver v = sv("1.2.3");
    assert_int_equal(v.major, 1);
    assert_int_equal(v.minor, 2);
    assert_int_equal(v.patch, 3);
    assert_string_equal(v.pre, "");
    v = sv("v10.20.30-rc.1+build.5");
    assert_int_equal(v.major, 10);
    assert_int_equal(v.minor, 20);
    assert_int_equal(v.patch, 30);
    assert_string_equal(v.pre, "rc.1");
    v = sv("1.2");
    assert_int_equal(v.minor, 2);
    assert_int_equal(v.patch, 0);
    v = sv("7");
    assert_int_equal(v.major, 7);
    assert_int_equal(v.minor, 0);
    v = sv("0.0.0");
    assert_int_equal(v.major, 0);
    v = sv("1.0.0-0A.is.legal");
    assert_string_equal(v.pre, "0A.is.legal");
    v = sv("1.0.0+0.build.1-rc.10000aaa-kk-0.1"); /* build may have 0x */
    assert_string_equal(v.pre, "");
    v = sv("18446744073709551615.0.0");
    assert_true(v.major == UINT64_MAX);
    v = sv("1.0.0-x-y-z.--");
    assert_string_equal(v.pre, "x-y-z.--");
}

static void
test_parse_refusals(void **state)
{
    (void)state;
    /* from semver.org's list of invalid versions, plus our limits */
    static const char *bad[] = {
        "",
        "v",
        "1.",
        "1.2.",
        "1.2.3.4",
        "01.1.1",
        "1.01.1",
        "1.1.01",
        "1.2.3-",
        "1.2.3-0123",
        "1.2.3-alpha..1",
        "1.2.3-alpha.",
        "1.2.3+",
        "1.2.3+build..1",
        "1.2.3-a_b",
        "+invalid",
        "-invalid",
        "a.b.c",
        "1.2.x",
        " 1.2.3",
        "1.2.3 ",
        "V1.2.3",
        "18446744073709551616.0.0",
        /* 64 bytes of pre-release: over the struct's 63 */
        "1.2.3-abcdefghijabcdefghijabcdefghijabcdefghij"
        "abcdefghijabcdefghijabcd",
    };
    for (size_t i = 0; i < AB_ARRAY_LEN(bad); i++) {
        struct core_semver v;
        memset(&v, 0x5a, sizeof(v));
        if (core_semver_parse(bad[i], &v) != AB_EINVAL)
            fail_msg("\"%s\" should be refused", bad[i]);
        assert_int_equal(v.major, 0x5a5a5a5a5a5a5a5aull); /* untouched */
    }
    assert_int_equal(core_semver_parse(NULL, NULL), AB_EINVAL);
    /* 63 bytes of pre-release fit */
    struct core_semver v;
    assert_int_equal(
        core_semver_parse("1.2.3-abcdefghijabcdefghijabcdefghijabcdefghij"
                          "abcdefghijabcdefghijabc",
                          &v),
        AB_OK);
    assert_int_equal(strlen(v.pre), 63);
}

static void
test_precedence_example_of_semver_org(void **state)
{
    (void)state;
    /* semver.org 2.0.0, 11.4: 1.0.0-alpha < 1.0.0-alpha.1 <
     * 1.0.0-alpha.beta < 1.0.0-beta < 1.0.0-beta.2 < 1.0.0-beta.11 <
     * 1.0.0-rc.1 < 1.0.0; and 11.2: 1.0.0 < 2.0.0 < 2.1.0 < 2.1.1 */
    static const char *order[] = {
        "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
        "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",     "1.0.0",
        "2.0.0",        "2.1.0",         "2.1.1",          "10.0.0",
    };
    size_t n = AB_ARRAY_LEN(order);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            int want = (i > j) - (i < j);
            if (cmp(order[i], order[j]) != want)
                fail_msg("cmp(%s, %s) != %d", order[i], order[j], want);
        }
}

static void
test_precedence_details(void **state)
{
    (void)state;
    assert_int_equal(cmp("1.2.3+build.1", "1.2.3+build.2"), 0);
    assert_int_equal(cmp("v1.2", "1.2.0"), 0);
    assert_int_equal(cmp("1.2.3-rc.1+x", "1.2.3-rc.1"), 0);
    assert_int_equal(cmp("1.0.0-2", "1.0.0-10"), -1);   /* numerically */
    assert_int_equal(cmp("1.0.0-10", "1.0.0-9a"), -1);  /* numeric < alnum */
    assert_int_equal(cmp("1.0.0-Z", "1.0.0-a"), -1);    /* ASCII order */
    assert_int_equal(cmp("1.0.0-a.b", "1.0.0-a"), 1);   /* longer is higher */
    assert_int_equal(cmp("1.0.0-alpha", "1.0.0-alphb"), -1);
    assert_int_equal(cmp("1.0.0-ab", "1.0.0-a"), 1);
    assert_int_equal(cmp("1.10.0", "1.9.0"), 1);
    assert_int_equal(cmp("0.0.1", "0.1.0"), -1);
    assert_int_equal(
        cmp("18446744073709551615.0.0", "18446744073709551614.9.9"), 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_precedence_example_of_semver_org),
        cmocka_unit_test(test_precedence_details),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
