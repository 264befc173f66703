/* test_power.c -- sample size for an MDE, fixed horizon and mSPRT. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "stats/power.h"
#include "tests/unit/ab_test.h"

static void
test_power_fixed_golden(void **state)
{
    struct stats_power_plan p = { 1, 1, 0.2, 0.05, 0.8, STATS_SIDE_TWO, 1 };
    double n, pw;
    (void)state;
    assert_int_equal(stats_power_n_fixed(&p, &n, NULL), AB_OK);
    /* statsmodels NormalIndPower().power(0.2, 392.4430, 0.05) =
     * 0.7999999745518878, so n is 392.443 to 4 decimals */
    assert_close(n, 392.443, 1e-6);
    assert_int_equal(stats_power_fixed(&p, n, &pw, NULL), AB_OK);
    assert_close(pw, 0.8, 1e-12);
    /* one-sided closed form 2 (z_.95 + z_.8)^2 / 0.04 (scipy ndtri) */
    p.side = STATS_SIDE_GREATER;
    assert_int_equal(stats_power_n_fixed(&p, &n, NULL), AB_OK);
    assert_close(n, 309.1278616009883, 1e-12);
}

static void
test_power_msprt_needs_more_units(void **state)
{
    struct stats_power_plan p = { 1, 1, 0.1, 0.05, 0.8, STATS_SIDE_TWO, 1 };
    double fixed, np, ne;
    (void)state;
    assert_int_equal(stats_power_n_fixed(&p, &fixed, NULL), AB_OK);
    assert_int_equal(stats_power_n_msprt(&p, 0, &np, &ne, NULL), AB_OK);
    assert_true(np > fixed);
    assert_true(ne > 0 && ne < np);
}

static void
test_power_degenerate(void **state)
{
    struct stats_power_plan p = { 0, 0, 0.2, 0.05, 0.8, STATS_SIDE_TWO, 1 };
    double n;
    enum stats_reason why;
    (void)state;
    assert_int_equal(stats_power_n_fixed(&p, &n, &why), AB_ENUMERIC);
    assert_int_equal(why, STATS_REASON_ZERO_VARIANCE);
    p.sd_c = p.sd_t = 1;
    p.mde = -0.2;
    p.side = STATS_SIDE_GREATER;       /* effect points the other way */
    assert_int_equal(stats_power_n_fixed(&p, &n, &why), AB_EINVAL);
    assert_int_equal(why, STATS_REASON_BAD_PARAMETER);
    p.side = STATS_SIDE_TWO;
    p.mde = NAN;
    assert_int_equal(stats_power_n_fixed(&p, &n, &why), AB_EINVAL);
    assert_int_equal(why, STATS_REASON_NOT_FINITE);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_power_fixed_golden),
        cmocka_unit_test(test_power_msprt_needs_more_units),
        cmocka_unit_test(test_power_degenerate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
