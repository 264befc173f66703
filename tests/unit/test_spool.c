/* test_spool.c -- the spool's file format and crash rules (service/spool.h):
 * the record layout byte for byte, replay in order across a restart, the
 * replay offset kept in events.offset, a torn tail or a bad checksum cut
 * at start-up, the byte limit, one process per directory, and the poison
 * file. Each test works in its own fresh directory under /tmp.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "service/spool.h"

#define HDR 16

static int
setup(void **state)
{
    char *dir = strdup("/tmp/arbiter-test-spool-XXXXXX");
    if (dir == NULL || mkdtemp(dir) == NULL)
        return -1;
    *state = dir;
    return 0;
}

static int
teardown(void **state)
{
    char *dir = *state, cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    int rc = system(cmd);
    free(dir);
    return rc == 0 ? 0 : -1;
}

static size_t
read_file(const char *dir, const char *name, unsigned char *buf, size_t cap)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void
append_raw(const char *dir, const void *bytes, size_t n)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/events.spool", dir);
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, bytes, n), (ssize_t)n);
    close(fd);
}

static void
append1(struct spool *s, const char *text)
{
    char *p[1] = {(char *)text};
    size_t len[1] = {strlen(text)};
    assert_int_equal(spool_append(s, p, len, 1), AB_OK);
}

static void
expect_peek(struct spool *s, const char *want)
{
    char *got = NULL;
    size_t len = 0;
    assert_int_equal(spool_peek(s, &got, &len), AB_OK);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(got, want, len);
    free(got);
}

static void
expect_empty(struct spool *s)
{
    char *got = NULL;
    size_t len;
    assert_int_equal(spool_peek(s, &got, &len), AB_ENOTFOUND);
    assert_null(got);
}

/* "ARBS" | u32le length | u32le XXH32(payload, 0) | u32le 0 | payload.
 * XXH32(b"hello", 0) = 0xfb0077f9: Python xxhash 3.2
 * (xxhash.xxh32(b"hello", 0).intdigest()), not the library under test. */
static void
test_record_layout_is_the_documented_one(void **state)
{
    struct spool *s;
    assert_int_equal(spool_open(*state, 1 << 20, &s), AB_OK);
    append1(s, "hello");
    unsigned char buf[64];
    size_t n = read_file(*state, "events.spool", buf, sizeof(buf));
    static const unsigned char want[HDR + 5] = {
        'A', 'R', 'B', 'S', 5, 0, 0, 0, 0xf9, 0x77, 0x00, 0xfb, 0, 0, 0, 0,
        'h', 'e', 'l', 'l', 'o'};
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
    assert_int_equal(spool_pending(s), HDR + 5);
    spool_close(s);
}

/* Records come back in order, across a restart; peeks run ahead until
 * an advance or a rewind; a full replay empties the file. */
static void
test_replay_in_order_across_restart(void **state)
{
    struct spool *s;
    assert_int_equal(spool_open(*state, 1 << 20, &s), AB_OK);
    char *p[3] = {"one", "two", "three"};
    size_t len[3] = {3, 3, 5};
    assert_int_equal(spool_append(s, p, len, 3), AB_OK);
    spool_close(s);

    assert_int_equal(spool_open(*state, 1 << 20, &s), AB_OK);
    assert_int_equal(spool_pending(s), 3 * HDR + 11);
    expect_peek(s, "one");
    expect_peek(s, "two");
    spool_rewind(s); /* the replay of both failed */
    expect_peek(s, "one");
    assert_int_equal(spool_advance(s), AB_OK);
    assert_int_equal(spool_pending(s), 2 * HDR + 8);
    assert_int_equal(spool_replayed_total(s), HDR + 3);
    spool_close(s);

    /* the offset survives the restart: "one" is not replayed again */
    assert_int_equal(spool_open(*state, 1 << 20, &s), AB_OK);
    expect_peek(s, "two");
    expect_peek(s, "three");
    expect_empty(s);
    assert_int_equal(spool_advance(s), AB_OK);
    assert_int_equal(spool_pending(s), 0);
    unsigned char buf[8];
    assert_int_equal(read_file(*state, "events.spool", buf, sizeof(buf)), 0);
    spool_close(s);
}

/* A crash mid-append leaves a partial record (never acknowledged): it is
 * cut at start-up, whatever part of it reached the disk. */
static void
test_torn_tail_is_cut(void **state)
{
    struct spool *s;
    assert_int_equal(spool_open(*state, 1 << 20, &s), AB_OK);
    append1(s, "kept");
    spool_close(s);
    /* a header announcing 100 bytes, then only 3 of them */
    static const unsigned char torn[] = {'A', 'R', 'B', 'S', 100, 0, 0, 0,
                                         1, 2, 3, 4, 0, 0, 0, 0, 'a', 'b',
                                         'c'};
    append_raw(*state, torn, sizeof(torn));
    assert_int_equal(spool_open(*state, 1 << 20, &s), AB_OK);
    assert_int_equal(spool_pending(s), HDR + 4);
    expect_peek(s, "kept");
    expect_empty(s);
    spool_close(s);
    unsigned char buf[64];
    assert_int_equal(read_file(*state, "events.spool", buf, sizeof(buf)),
                     HDR + 4);
    /* half a header is cut too */
    append_raw(*state, "ARB", 3);
    assert_int_equal(spool_open(*state, 1 << 20, &s), AB_OK);
    assert_int_equal(spool_pending(s), HDR + 4);
    spool_close(s);
}

/* A record whose checksum does not match ends the file there: it and
 * everything after it are cut. */
static void
test_bad_checksum_cuts_from_there(void **state)
{
    struct spool *s;
    assert_int_equal(spool_open(*state, 1 << 20, &s), AB_OK);
    append1(s, "good");
    append1(s, "flip");
    append1(s, "after");
    spool_close(s);
    char path[512];
    snprintf(path, sizeof(path), "%s/events.spool", (char *)*state);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    /* one payload byte of the second record: "flip" -> "flop" */
    assert_int_equal(pwrite(fd, "o", 1, (off_t)(2 * HDR + 4 + 2)), 1);
    close(fd);
    assert_int_equal(spool_open(*state, 1 << 20, &s), AB_OK);
    expect_peek(s, "good");
    expect_empty(s);
    assert_int_equal(spool_pending(s), HDR + 4);
    spool_close(s);
}

/* The limit counts bytes not yet replayed: a batch that would pass it is
 * refused whole (AB_EBUSY), and replaying makes room again. */
static void
test_byte_limit(void **state)
{
    struct spool *s;
    assert_int_equal(spool_open(*state, 2 * (HDR + 10), &s), AB_OK);
    append1(s, "0123456789");
    char *p[2] = {"abcdefghij", "ABCDEFGHIJ"};
    size_t len[2] = {10, 10};
    assert_int_equal(spool_append(s, p, len, 2), AB_EBUSY);
    assert_int_equal(spool_pending(s), HDR + 10);
    append1(s, "abcdefghij"); /* exactly at the limit */
    assert_int_equal(spool_append(s, p + 1, len + 1, 1), AB_EBUSY);
    expect_peek(s, "0123456789");
    assert_int_equal(spool_advance(s), AB_OK);
    append1(s, "ABCDEFGHIJ");
    expect_peek(s, "abcdefghij");
    expect_peek(s, "ABCDEFGHIJ");
    spool_close(s);
}

/* One process per directory: a second open is AB_ECONFLICT (flock). */
static void
test_one_owner_per_directory(void **state)
{
    struct spool *a, *b = NULL;
    assert_int_equal(spool_open(*state, 1 << 20, &a), AB_OK);
    assert_int_equal(spool_open(*state, 1 << 20, &b), AB_ECONFLICT);
    assert_null(b);
    spool_close(a);
    assert_int_equal(spool_open(*state, 1 << 20, &b), AB_OK);
    spool_close(b);
}

/* A record the database refuses goes, one line, to events.poison. */
static void
test_quarantine_appends_a_line(void **state)
{
    struct spool *s;
    assert_int_equal(spool_open(*state, 1 << 20, &s), AB_OK);
    assert_int_equal(spool_quarantine(s, "{\"batch\":1}", 11), AB_OK);
    assert_int_equal(spool_quarantine(s, "{\"batch\":2}", 11), AB_OK);
    unsigned char buf[64];
    size_t n = read_file(*state, "events.poison", buf, sizeof(buf));
    assert_int_equal(n, 24);
    assert_memory_equal(buf, "{\"batch\":1}\n{\"batch\":2}\n", 24);
    spool_close(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_record_layout_is_the_documented_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_in_order_across_restart,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_is_cut, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_checksum_cuts_from_there,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_byte_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_owner_per_directory, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_quarantine_appends_a_line,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
