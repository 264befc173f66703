/* test_root.c -- the bracketed root finder (stats/root.h). Roots with a
 * closed form: sqrt(2), ln 2 (increasing and decreasing functions), the
 * stopping rules, and the refusals (no bracket, a failing function). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "stats/root.h"
#include "tests/unit/ab_test.h"

static int calls;

static double
sq_minus_2(double x, void *arg)
{
    (void)arg;
    calls++;
    return x * x - 2;
}

static double
ln2_minus_x(double x, void *arg) /* decreasing */
{
    (void)arg;
    calls++;
    return log(2) - x;
}

static double
cubic(double x, void *arg)
{
    double shift = *(double *)arg;
    calls++;
    return (x - shift) * (x - shift) * (x - shift);
}

static double
nan_after_two(double x, void *arg)
{
    (void)arg;
    return ++calls > 2 ? NAN : x * x - 0.3;
}

static const struct stats_root_tol TIGHT = {.x_abs = 1e-15,
                                            .x_rel = 1e-15,
                                            .f_abs = 0,
                                            .max_iter = 200,
                                            .strict = true};

static void
test_root_sqrt2_to_rounding(void **state)
{
    double r = 0;
    (void)state;
    calls = 0;
    assert_int_equal(
        stats_root_illinois(sq_minus_2, NULL, 0, 2, -2, 2, &TIGHT, &r), AB_OK);
    assert_close(r, M_SQRT2, 1e-14);
    /* superlinear: far fewer steps than bisection's ~50 */
    assert_true(calls < 20);
}

static void
test_root_decreasing_function(void **state)
{
    double r = 0;
    (void)state;
    assert_int_equal(stats_root_illinois(ln2_minus_x, NULL, 0, 1, log(2),
                                         log(2) - 1, &TIGHT, &r),
                     AB_OK);
    assert_close(r, M_LN2, 1e-14);
}

static void
test_root_flat_cubic_converges_inside_bracket(void **state)
{
    /* a triple root: plain regula falsi stalls on one end; Illinois
     * halving keeps both ends moving */
    double shift = 0.7, r = 0;
    const struct stats_root_tol tol = {
        .x_abs = 1e-10, .max_iter = 200, .strict = true};
    (void)state;
    assert_int_equal(stats_root_illinois(cubic, &shift, 0, 1, cubic(0, &shift),
                                         cubic(1, &shift), &tol, &r),
                     AB_OK);
    assert_true(fabs(r - 0.7) < 1e-3); /* f is ~1e-10 within 5e-4 */
    assert_true(r > 0 && r < 1);
}

static void
test_root_endpoint_is_a_root(void **state)
{
    double r = -1;
    (void)state;
    assert_int_equal(
        stats_root_illinois(sq_minus_2, NULL, M_SQRT2, 3, 0, 7, &TIGHT, &r),
        AB_OK);
    assert_true(r == M_SQRT2);
}

static void
test_root_residual_rule_stops_early(void **state)
{
    double r = 0;
    const struct stats_root_tol loose = {
        .f_abs = 1e-3, .max_iter = 200, .strict = true};
    (void)state;
    assert_int_equal(
        stats_root_illinois(sq_minus_2, NULL, 0, 2, -2, 2, &loose, &r), AB_OK);
    assert_true(fabs(r * r - 2) <= 1e-3);
}

static void
test_root_no_bracket_is_einval(void **state)
{
    double r = 42;
    (void)state;
    assert_int_equal(
        stats_root_illinois(sq_minus_2, NULL, 2, 3, 2, 7, &TIGHT, &r),
        AB_EINVAL);
    assert_int_equal(
        stats_root_illinois(sq_minus_2, NULL, 2, 1, -1, 2, &TIGHT, &r),
        AB_EINVAL);
    assert_true(r == 42); /* untouched */
}

static void
test_root_failing_function_is_enumeric(void **state)
{
    double r = 42;
    (void)state;
    calls = 0;
    assert_int_equal(
        stats_root_illinois(nan_after_two, NULL, 0, 1, -0.3, 0.7, &TIGHT, &r),
        AB_ENUMERIC);
    assert_true(r == 42);
}

static void
test_root_out_of_iterations(void **state)
{
    double r = 42;
    struct stats_root_tol tol = TIGHT;
    (void)state;
    tol.max_iter = 2;
    assert_int_equal(
        stats_root_illinois(sq_minus_2, NULL, 0, 2, -2, 2, &tol, &r),
        AB_ENUMERIC);
    tol.strict = false; /* then the midpoint of the last bracket */
    assert_int_equal(
        stats_root_illinois(sq_minus_2, NULL, 0, 2, -2, 2, &tol, &r), AB_OK);
    assert_true(r > 1 && r < 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_root_sqrt2_to_rounding),
        cmocka_unit_test(test_root_decreasing_function),
        cmocka_unit_test(test_root_flat_cubic_converges_inside_bracket),
        cmocka_unit_test(test_root_endpoint_is_a_root),
        cmocka_unit_test(test_root_residual_rule_stops_early),
        cmocka_unit_test(test_root_no_bracket_is_einval),
        cmocka_unit_test(test_root_failing_function_is_enumeric),
        cmocka_unit_test(test_root_out_of_iterations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
