/* test_sticky_store.c -- the sticky store's client-side deadline
 * (service/sticky.h) against a server that accepts TCP connections and
 * never answers, as a SIGSTOPped PostgreSQL does (the kernel completes the
 * handshake from the listen backlog; libpq then waits for the startup
 * reply for ever): a lookup returns AB_EDB within its wait, and once both
 * lookup threads are stuck, every further lookup returns at once (the
 * circuit breaker), so 200 lookups cost about one wait, not 200. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/status.h"
#include "service/sticky.h"

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A listener that never accepts; its port in *port. */
static int
black_hole(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 64), 0);
    socklen_t len = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

static void
test_lookup_against_a_stopped_server_is_bounded(void **state)
{
    (void)state;
    int port;
    int fd = black_hole(&port);
    char url[160];
    snprintf(url, sizeof(url),
             "postgresql://arbiter@127.0.0.1:%d/arbiter?connect_timeout=60",
             port);
    struct sticky_cache *c = sticky_cache_new(1000);
    sticky_store_start(c, url, 50);
    double t0 = now_s();
    char *arm = NULL;
    assert_int_equal(sticky_store_get(c, url, 50, 1, "u-0", 1, &arm),
                     AB_EDB);
    double first = now_s() - t0;
    assert_true(first < 0.5); /* 50 ms wait, generous slack for ASan */
    /* both lookup threads are stuck connecting: the breaker is open */
    usleep(60 * 1000);
    t0 = now_s();
    for (int i = 0; i < 200; i++) {
        char unit[16];
        snprintf(unit, sizeof(unit), "u-%d", i);
        assert_int_equal(sticky_store_get(c, url, 50, 1, unit, 1, &arm),
                         AB_EDB);
    }
    double rest = now_s() - t0;
    assert_true(rest < 0.2); /* 200 x 50 ms would be 10 s */
    assert_null(arm);
    /* closing the listener resets the pending connections: the lookup
     * threads fail, see the stop and are joined */
    close(fd);
    sticky_cache_free(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_against_a_stopped_server_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
