/* test_multiple.c -- Holm and Benjamini-Hochberg adjusted p-values. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "stats/multiple.h"
#include "tests/unit/ab_test.h"

static const double P[] = { 0.01, 0.04, 0.03, 0.005 };

static void
test_holm_golden_r(void **state)
{
    double adj[4];
    size_t work[4];
    (void)state;
    assert_int_equal(stats_p_adjust(P, 4, STATS_CORR_HOLM, adj, work, NULL),
                     AB_OK);
    /* R 4.2 p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") */
    assert_close(adj[0], 0.03, 1e-15);
    assert_close(adj[1], 0.06, 1e-15);
    assert_close(adj[2], 0.06, 1e-15);
    assert_close(adj[3], 0.02, 1e-15);
}

static void
test_bh_golden_r_and_in_place(void **state)
{
    double p[4] = { 0.01, 0.04, 0.03, 0.005 };
    size_t work[4];
    (void)state;
    /* R p.adjust(c(0.01, 0.04, 0.03, 0.005), "BH"); adj aliases p */
    assert_int_equal(stats_p_adjust(p, 4, STATS_CORR_BH, p, work, NULL),
                     AB_OK);
    assert_close(p[0], 0.02, 1e-15);
    assert_close(p[1], 0.04, 1e-15);
    assert_close(p[2], 0.04, 1e-15);
    assert_close(p[3], 0.02, 1e-15);
}

static void
test_adjust_caps_at_one_and_refuses_bad_p(void **state)
{
    const double p[] = { 0.5, 0.9 }, bad[] = { 0.5, NAN }, big[] = { 2 };
    double adj[2];
    size_t work[2];
    enum stats_reason why;
    (void)state;
    assert_int_equal(stats_p_adjust(p, 2, STATS_CORR_HOLM, adj, work, NULL),
                     AB_OK);
    /* R p.adjust(c(0.5, 0.9), "holm") = 1 1 (2 * 0.5, then the
     * running maximum) */
    assert_close(adj[0], 1.0, 1e-15);
    assert_close(adj[1], 1.0, 1e-15);
    assert_int_equal(stats_p_adjust(bad, 2, STATS_CORR_BH, adj, work, &why),
                     AB_EINVAL);
    assert_int_equal(why, STATS_REASON_NOT_FINITE);
    assert_int_equal(stats_p_adjust(big, 1, STATS_CORR_BH, adj, work, &why),
                     AB_EINVAL);
    assert_int_equal(why, STATS_REASON_BAD_PARAMETER);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_holm_golden_r),
        cmocka_unit_test(test_bh_golden_r_and_in_place),
        cmocka_unit_test(test_adjust_caps_at_one_and_refuses_bad_p),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
