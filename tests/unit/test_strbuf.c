/* test_strbuf.c -- the growable printf buffer (lib/strbuf.c): appends that
 * fit, appends that force one or several doublings, and the exact text. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lib/strbuf.h"

static void
test_small_appends_concatenate(void **state)
{
    (void)state;
    struct strbuf sb;
    strbuf_init(&sb, 64);
    strbuf_printf(&sb, "%s=%d", "a", 1);
    strbuf_printf(&sb, ",%s=%.2f", "b", 2.5);
    assert_string_equal(sb.p, "a=1,b=2.50");
    assert_int_equal(sb.len, 10);
    assert_int_equal(sb.cap, 64);
    strbuf_free(&sb);
    assert_null(sb.p);
    assert_int_equal(sb.len, 0);
}

static void
test_growth_keeps_every_byte(void **state)
{
    (void)state;
    struct strbuf sb;
    strbuf_init(&sb, 1); /* every append must grow */
    char want[8192];
    size_t n = 0;
    for (int i = 0; i < 1000; i++) {
        strbuf_printf(&sb, "%d;", i);
        n += (size_t)snprintf(want + n, sizeof(want) - n, "%d;", i);
    }
    assert_int_equal(sb.len, strlen(want));
    assert_string_equal(sb.p, want);
    assert_true(sb.cap > sb.len);
    strbuf_free(&sb);
}

static void
test_one_long_append(void **state)
{
    (void)state;
    struct strbuf sb;
    char line[5000];
    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    strbuf_init(&sb, 16);
    strbuf_printf(&sb, "<%s>", line);
    assert_int_equal(sb.len, sizeof(line) + 1);
    assert_int_equal(sb.p[0], '<');
    assert_int_equal(sb.p[sb.len - 1], '>');
    assert_int_equal(sb.p[sb.len], '\0');
    strbuf_free(&sb);
    strbuf_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_appends_concatenate),
        cmocka_unit_test(test_growth_keeps_every_byte),
        cmocka_unit_test(test_one_long_append),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
