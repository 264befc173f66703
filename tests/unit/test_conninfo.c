/* test_conninfo.c -- what the logs say about a connection string: host,
 * port, dbname and user only, for every syntax libpq accepts for a
 * password. PGPASSWORD and passfiles are not part of the string: the
 * end-to-end side (tests/integration/test_redaction.py) starts the server
 * with them and reads its logs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "sql/conninfo.h"

static void
expect(const char *conninfo, const char *want, const char *secret)
{
    char out[512];
    int rc = db_conninfo_describe(conninfo, out, sizeof(out));
    assert_int_equal(rc, 0);
    assert_string_equal(out, want);
    if (secret && strstr(out, secret))
        fail_msg("secret \"%s\" in \"%s\"", secret, out);
}

static void
test_urls(void **state)
{
    (void)state;
    expect("postgresql://arbiter:hunter2@db.example:5433/arbiter",
           "host=db.example port=5433 dbname=arbiter user=arbiter", "hunter2");
    expect("postgres://u:p%40ss%20word@127.0.0.1/x",
           "host=127.0.0.1 dbname=x user=u", "ss");
    expect("postgresql://u@[::1]:6000/db?password=hunter2&sslmode=disable",
           "host=::1 port=6000 dbname=db user=u", "hunter2");
    expect("postgresql:///arbiter?host=/var/run/postgresql&password=hunter2",
           "host=/var/run/postgresql dbname=arbiter", "hunter2");
}

static void
test_key_value(void **state)
{
    (void)state;
    expect("host=db password=hunter2 user=app", "host=db user=app", "hunter2");
    /* spaces around '=' are valid libpq syntax */
    expect("host = db  password = hunter2 dbname = a", "host=db dbname=a",
           "hunter2");
    /* quoted, with spaces, with an escaped quote and backslash */
    expect("password='hunter 2' host=db", "host=db", "hunter");
    expect("password='it\\'s a \\\\secret' port=5432 user='a b'",
           "port=5432 user=a b", "secret");
    expect("hostaddr=10.0.0.1 password=x\\ y", "hostaddr=10.0.0.1", "x");
    expect("", "", NULL);
}

static void
test_unparsable_says_nothing(void **state)
{
    (void)state;
    char out[128];
    /* an unterminated quote: libpq refuses it, and so none of it is
     * copied (it holds the password) */
    assert_int_equal(db_conninfo_describe("host=db password='hunter2", out,
                                       sizeof(out)),
                     -1);
    assert_null(strstr(out, "hunter2"));
    db_conninfo_describe("postgresql://u:hunter2@h:notaport/", out, sizeof(out));
    assert_null(strstr(out, "hunter2"));
    assert_int_equal(db_conninfo_describe("bogus_keyword=1 password=hunter2",
                                       out, sizeof(out)),
                     -1);
    assert_null(strstr(out, "hunter2"));
}

/* a short buffer ends at a whole field */
static void
test_short_buffer(void **state)
{
    (void)state;
    char out[12];
    db_conninfo_describe("host=db port=5432 user=x", out, sizeof(out));
    assert_string_equal(out, "host=db");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_key_value),
        cmocka_unit_test(test_unparsable_says_nothing),
        cmocka_unit_test(test_short_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
