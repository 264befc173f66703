/* test_utf8.c -- the one UTF-8 validator (lib/utf8.c): RFC 3629 section 4
 * and the NUL rule of lib/utf8.h. The byte sequences are the boundary cases
 * of RFC 3629's table and of Markus Kuhn's UTF-8 decoder stress test
 * (https://www.cl.cam.ac.uk/~mgk25/ucs/examples/UTF-8-test.txt, sections
 * 2-5); Python's bytes.decode("utf-8") agrees on each (NUL aside, which
 * Python accepts and arbiter refuses on purpose).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "lib/json_text.h"
#include "lib/utf8.h"

struct sample {
    const char *bytes;
    size_t len;
    bool valid;
    const char *what;
};

#define S(lit, ok, what)                                                     \
    {                                                                        \
        lit, sizeof(lit) - 1, ok, what                                       \
    }

static const struct sample samples[] = {
    S("", true, "empty"),
    S("plain ascii", true, "ASCII"),
    S("\x7f", true, "U+007F, last 1-byte"),
    S("\xc2\x80", true, "U+0080, first 2-byte"),
    S("\xdf\xbf", true, "U+07FF, last 2-byte"),
    S("\xe0\xa0\x80", true, "U+0800, first 3-byte"),
    S("\xed\x9f\xbf", true, "U+D7FF, before the surrogates"),
    S("\xee\x80\x80", true, "U+E000, after the surrogates"),
    S("\xef\xbf\xbf", true, "U+FFFF"),
    S("\xf0\x90\x80\x80", true, "U+10000, first 4-byte"),
    S("\xf4\x8f\xbf\xbf", true, "U+10FFFF, last code point"),
    S("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", true, "mixed text"),
    /* overlong forms */
    S("\xc0\x80", false, "overlong NUL (modified UTF-8)"),
    S("\xc0\xaf", false, "overlong '/' in 2 bytes"),
    S("\xc1\xbf", false, "overlong U+007F"),
    S("\xe0\x80\xaf", false, "overlong '/' in 3 bytes"),
    S("\xe0\x9f\xbf", false, "overlong U+07FF in 3 bytes"),
    S("\xf0\x80\x80\xaf", false, "overlong '/' in 4 bytes"),
    S("\xf0\x8f\xbf\xbf", false, "overlong U+FFFF in 4 bytes"),
    /* surrogates */
    S("\xed\xa0\x80", false, "U+D800, first high surrogate"),
    S("\xed\xbf\xbf", false, "U+DFFF, last low surrogate"),
    S("\xed\xa0\x80\xed\xb0\x80", false, "surrogate pair (CESU-8)"),
    /* out of range and impossible bytes */
    S("\xf4\x90\x80\x80", false, "U+110000"),
    S("\xf5\x80\x80\x80", false, "F5 lead byte"),
    S("\xf8\x88\x80\x80\x80", false, "5-byte form"),
    S("\xfe", false, "FE"),
    S("\xff", false, "FF"),
    S("\x80", false, "lone continuation byte"),
    S("a\xbf", false, "continuation byte after ASCII"),
    /* truncation */
    S("\xc3", false, "2-byte lead at the end"),
    S("\xe2\x82", false, "3-byte sequence cut after 2"),
    S("\xf0\x9f\x98", false, "4-byte sequence cut after 3"),
    S("\xe2\x82x", false, "3-byte sequence interrupted by ASCII"),
    S("\xf0\x9f\x98\x80\xf0", false, "valid emoji then a cut lead"),
    /* NUL: well-formed UTF-8, refused by arbiter (lib/utf8.h) */
    S("\0", false, "NUL alone"),
    S("a\0b", false, "NUL inside"),
    S("ab\0", false, "NUL at the end"),
};

static void
test_samples(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        const struct sample *t = &samples[i];
        if (ab_utf8_valid(t->bytes, t->len) != t->valid)
            fail_msg("%s: want %s", t->what, t->valid ? "valid" : "invalid");
    }
}

/* The length of each sequence, and no read past 'end' (ASan would see the
 * byte after a 1-byte buffer). */
static void
test_sequence_lengths(void **state)
{
    (void)state;
    const unsigned char one[] = {0x41}, two[] = {0xc3, 0xa9},
                        three[] = {0xe2, 0x82, 0xac},
                        four[] = {0xf0, 0x9f, 0x98, 0x80};
    assert_int_equal(ab_utf8_len(one, one + 1), 1);
    assert_int_equal(ab_utf8_len(two, two + 2), 2);
    assert_int_equal(ab_utf8_len(three, three + 3), 3);
    assert_int_equal(ab_utf8_len(four, four + 4), 4);
    assert_int_equal(ab_utf8_len(four, four + 1), 0);
    assert_int_equal(ab_utf8_len(three, three + 2), 0);
    const unsigned char nul[] = {0x00};
    assert_int_equal(ab_utf8_len(nul, nul + 1), 0);
}

/* Every 2-byte lead against every second byte: valid exactly for C2-DF
 * followed by 80-BF (RFC 3629's table). */
static void
test_two_byte_table(void **state)
{
    (void)state;
    for (unsigned a = 0x80; a <= 0xff; a++)
        for (unsigned b = 0; b <= 0xff; b++) {
            unsigned char s[2] = {(unsigned char)a, (unsigned char)b};
            bool want = a >= 0xc2 && a <= 0xdf && b >= 0x80 && b <= 0xbf;
            if (ab_utf8_valid((const char *)s, 2) != want)
                fail_msg("%02x %02x: want %d", a, b, want);
        }
}

/* The lossy JSON string uses the same validator: each invalid byte and
 * each NUL becomes U+FFFD, valid text passes unchanged. */
static void
test_lossy_string_agrees(void **state)
{
    (void)state;
    const char in[] = "a\0b\xc0\xaf\xe2\x82\xac";
    json_t *j = ab_json_string_lossy(in, sizeof(in) - 1);
    assert_non_null(j);
    assert_string_equal(json_string_value(j),
                        "a\xef\xbf\xbd"
                        "b\xef\xbf\xbd\xef\xbf\xbd\xe2\x82\xac");
    assert_int_equal(json_string_length(j), 14); /* 1+3+1+3+3+3 */
    json_decref(j);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_samples),
        cmocka_unit_test(test_sequence_lengths),
        cmocka_unit_test(test_two_byte_table),
        cmocka_unit_test(test_lossy_string_agrees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
