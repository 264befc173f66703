/* test_msprt.c -- unit tests of stats/msprt.c, the normal-mixture SPRT /
 * asymptotic confidence sequence. The random-case agreement with an
 * independent scipy implementation lives in
 * tests/oracle/test_stats_seq_msprt.py; here: golden cases, properties,
 * degenerate inputs and the running state.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "stats/msprt.h"
#include "tests/unit/ab_test.h"

static const struct stats_msprt_opts two05 = {0.05, 5000, STATS_SIDE_TWO, 0,
                                              0};

/* Golden: control n=4000 mean 10 var 4, treatment n=4200 mean 10.2 var
 * 4.5, alpha 0.05, n_star 5000. Values from the published formulas
 * (Waudby-Smith et al. 2023 rho; Johari et al. 2017 eq. (7)) evaluated
 * with /usr/bin/python3 math (see tests/oracle/test_stats_seq_msprt.py):
 * rho2 0.001587230920347513, t_eff 4103.448275862069, z 4.394353744020395,
 * log LR 7.361738760121856, p 0.0006350932241755144,
 * CI [0.06167019502990395, 0.3383298049700946]. */
static void
test_golden_two_sided(void **state)
{
    struct stats_summary c = {4000, 10.0, 4.0}, t = {4200, 10.2, 4.5};
    struct stats_msprt_result r;
    enum stats_reason why = STATS_REASON_NONE;

    (void)state;
    assert_int_equal(stats_msprt_test(&c, &t, &two05, NULL, &r, &why),
                     AB_OK);
    assert_near(r.rho2, 0.001587230920347513, 1e-18);
    assert_near(r.t_eff, 4103.448275862069, 1e-9);
    assert_near(r.abs.z, 4.394353744020395, 1e-12);
    assert_near(r.abs.log_lr, 7.361738760121856, 1e-12);
    assert_near(r.abs.p_value, 0.0006350932241755144, 1e-15);
    assert_near(r.abs.ci_low, 0.06167019502990395, 1e-12);
    assert_near(r.abs.ci_high, 0.3383298049700946, 1e-12);
    assert_int_equal(r.abs.reject, 1);
    assert_int_equal(r.has_rel, 1);
    assert_near(r.rel.estimate, 0.02, 1e-15);
}

static void
test_default_n_star_is_5000(void **state)
{
    struct stats_summary c = {300, 1.0, 2.0}, t = {310, 1.3, 2.5};
    struct stats_msprt_opts o = two05;
    struct stats_msprt_result a, b;

    (void)state;
    assert_int_equal(stats_msprt_test(&c, &t, &o, NULL, &a, NULL), AB_OK);
    o.n_star = 0;
    assert_int_equal(stats_msprt_test(&c, &t, &o, NULL, &b, NULL), AB_OK);
    assert_true(a.rho2 == b.rho2 && a.abs.p_value == b.abs.p_value);
}

/* The interval excludes the null exactly when p <= alpha (same LR). */
static void
test_interval_and_p_value_agree(void **state)
{
    (void)state;
    for (int i = 0; i < 200; i++) {
        struct stats_summary c = {1000, 5.0, 9.0};
        struct stats_summary t = {1000, 5.0 + 0.002 * i, 9.0};
        struct stats_msprt_result r;
        assert_int_equal(stats_msprt_test(&c, &t, &two05, NULL, &r, NULL),
                         AB_OK);
        assert_int_equal(r.abs.p_value <= 0.05,
                         r.abs.ci_low > 0 || r.abs.ci_high < 0);
    }
}

/* rho2 makes the boundary (nearly) tightest at t = n_star: over all
 * mixing parameters, z_crit at t = n_star is minimal at r = 8.211968 with
 * value 3.035122413 (scipy minimize_scalar on the closed form, alpha
 * 0.05); the Waudby-Smith et al. (2023) choice r = 7.936154601737565
 * gives 3.0352089903762534, within 3e-5 of the optimum. */
static void
test_boundary_tightest_at_n_star(void **state)
{
    double rho2, zc, zo;

    (void)state;
    assert_int_equal(stats_msprt_rho2(0.05, 5000, &rho2, NULL), AB_OK);
    assert_near(rho2 * 5000, 7.936154601737565, 1e-12);
    assert_int_equal(
        stats_msprt_z_crit(rho2 * 5000, 0.05, STATS_SIDE_TWO, &zc, NULL),
        AB_OK);
    assert_near(zc, 3.0352089903762534, 1e-13);
    assert_int_equal(
        stats_msprt_z_crit(8.211968202080074, 0.05, STATS_SIDE_TWO, &zo, NULL),
        AB_OK);
    assert_near(zo, 3.035122413028551, 1e-12);
    /* tuned for 1000 units, the boundary at 5000 is wider */
    assert_int_equal(stats_msprt_rho2(0.05, 1000, &rho2, NULL), AB_OK);
    assert_int_equal(
        stats_msprt_z_crit(rho2 * 5000, 0.05, STATS_SIDE_TWO, &zo, NULL),
        AB_OK);
    assert_true(zo > zc + 0.1);
}

static void
test_one_sided_bracketed_and_mirrored(void **state)
{
    struct stats_summary c = {800, 0.10, 0.09}, t = {820, 0.12, 0.1056};
    struct stats_msprt_opts g = {0.05, 2000, STATS_SIDE_GREATER, 0, 0};
    struct stats_msprt_opts l = {0.05, 2000, STATS_SIDE_LESS, 0, 0};
    struct stats_msprt_result rg, rl;
    double two_a, two_2a, one;

    (void)state;
    for (double r = 0.01; r < 100; r *= 1.7) {
        assert_int_equal(
            stats_msprt_z_crit(r, 0.05, STATS_SIDE_GREATER, &one, NULL),
            AB_OK);
        assert_int_equal(
            stats_msprt_z_crit(r, 0.05, STATS_SIDE_TWO, &two_a, NULL),
            AB_OK);
        assert_int_equal(
            stats_msprt_z_crit(r, 0.10, STATS_SIDE_TWO, &two_2a, NULL),
            AB_OK);
        assert_true(one > two_2a && one < two_a);
    }
    /* GREATER on (c, t) equals LESS on (t, c) */
    assert_int_equal(stats_msprt_test(&c, &t, &g, NULL, &rg, NULL), AB_OK);
    assert_int_equal(stats_msprt_test(&t, &c, &l, NULL, &rl, NULL), AB_OK);
    assert_near(rg.abs.p_value, rl.abs.p_value, 1e-15);
    assert_near(rg.abs.ci_low, -rl.abs.ci_high, 1e-15);
    assert_true(isinf(rg.abs.ci_high) && rg.abs.ci_high > 0);
    assert_true(isinf(rl.abs.ci_low) && rl.abs.ci_low < 0);
}

/* Non-inferiority: GREATER with margin m tests H0 effect <= -m, so a
 * zero observed effect with a large sample rejects it. */
static void
test_non_inferiority_margin(void **state)
{
    struct stats_summary c = {50000, 0.30, 0.21}, t = {50000, 0.30, 0.21};
    struct stats_msprt_opts o = {0.05, 5000, STATS_SIDE_GREATER, 0.01,
                                 0.05};
    struct stats_msprt_result r;

    (void)state;
    assert_int_equal(stats_msprt_test(&c, &t, &o, NULL, &r, NULL), AB_OK);
    assert_near(r.abs.null_value, -0.01, 0);
    assert_near(r.rel.null_value, -0.05, 0);
    assert_int_equal(r.abs.reject, 1);
    assert_int_equal(r.rel.reject, 1);
    assert_true(r.abs.ci_low > -0.01);
    o.margin_abs = 0;
    assert_int_equal(stats_msprt_test(&c, &t, &o, NULL, &r, NULL), AB_OK);
    assert_int_equal(r.abs.reject, 0);
}

static void
test_running_state(void **state)
{
    struct stats_msprt_state st;
    struct stats_summary c = {0, 0.0, 1.0}, t = {0, 0.0, 1.0};
    struct stats_msprt_result r;
    double prev_p = 1, prev_lo = -INFINITY, prev_hi = INFINITY;
    /* a fixed pseudo-path of treatment means: the running p never rises
     * and the running interval never widens */
    static const double path[] = {0.3,  -0.1, 0.05, 0.12, 0.08,
                                  0.02, 0.2,  -0.05, 0.1, 0.01};

    (void)state;
    stats_msprt_state_init(&st);
    for (size_t i = 0; i < AB_ARRAY_LEN(path); i++) {
        c.n = t.n = 100.0 * (double)(i + 1);
        t.mean = path[i];
        assert_int_equal(stats_msprt_test(&c, &t, &two05, &st, &r, NULL),
                         AB_OK);
        assert_int_equal(st.n_looks, i + 1);
        assert_true(r.abs.p_running <= prev_p);
        assert_true(r.abs.p_running <= r.abs.p_value);
        assert_true(r.abs.ci_low_running >= prev_lo);
        assert_true(r.abs.ci_high_running <= prev_hi);
        assert_true(r.abs.ci_low_running >= r.abs.ci_low);
        prev_p = r.abs.p_running;
        prev_lo = r.abs.ci_low_running;
        prev_hi = r.abs.ci_high_running;
    }
    assert_near(st.p_abs, prev_p, 0);
    /* the big first-look effect (0.3 at n = 100) is remembered */
    assert_true(prev_p < 0.5);
}

static void
test_degenerate_inputs(void **state)
{
    struct stats_msprt_state st, before;
    struct stats_msprt_result r, sentinel;
    enum stats_reason why;
    struct {
        struct stats_summary c, t;
        struct stats_msprt_opts o;
        ab_status rc;
        enum stats_reason why;
    } cases[] = {
        {{1, 1, 1}, {100, 1, 1}, two05, AB_ENUMERIC, STATS_REASON_FEW_UNITS},
        {{100, 1, 1}, {0, 1, 1}, two05, AB_ENUMERIC, STATS_REASON_FEW_UNITS},
        {{-5, 1, 1}, {100, 1, 1}, two05, AB_EINVAL, STATS_REASON_NEGATIVE},
        {{100, 1, -1}, {100, 1, 1}, two05, AB_EINVAL, STATS_REASON_NEGATIVE},
        {{100, NAN, 1}, {100, 1, 1}, two05, AB_EINVAL,
         STATS_REASON_NOT_FINITE},
        {{100, 1, 1}, {100, 1, INFINITY}, two05, AB_EINVAL,
         STATS_REASON_NOT_FINITE},
        {{100, 1, 0}, {100, 2, 0}, two05, AB_ENUMERIC,
         STATS_REASON_ZERO_VARIANCE},
        {{100, 1, 1}, {100, 1, 1}, {0, 5000, STATS_SIDE_TWO, 0, 0},
         AB_EINVAL, STATS_REASON_BAD_PARAMETER},
        {{100, 1, 1}, {100, 1, 1}, {0.7, 5000, STATS_SIDE_TWO, 0, 0},
         AB_EINVAL, STATS_REASON_BAD_PARAMETER},
        {{100, 1, 1}, {100, 1, 1}, {0.05, -1, STATS_SIDE_TWO, 0, 0},
         AB_EINVAL, STATS_REASON_BAD_PARAMETER},
        {{100, 1, 1}, {100, 1, 1}, {0.05, 5000, STATS_SIDE_TWO, 0.1, 0},
         AB_EINVAL, STATS_REASON_BAD_PARAMETER},
        {{100, 1, 1}, {100, 1, 1}, {0.05, 5000, STATS_SIDE_GREATER, -0.1, 0},
         AB_EINVAL, STATS_REASON_BAD_PARAMETER},
        {{100, 1, 1}, {100, 1, 1}, {NAN, 5000, STATS_SIDE_TWO, 0, 0},
         AB_EINVAL, STATS_REASON_NOT_FINITE},
        {{1e308, 1e308, 1e308}, {100, -1e308, 1e308}, two05, AB_ENUMERIC,
         STATS_REASON_OVERFLOW},
    };

    (void)state;
    stats_msprt_state_init(&st);
    memset(&sentinel, 0x5a, sizeof(sentinel));
    for (size_t i = 0; i < AB_ARRAY_LEN(cases); i++) {
        r = sentinel;
        before = st;
        why = STATS_REASON_NONE;
        assert_int_equal(stats_msprt_test(&cases[i].c, &cases[i].t,
                                          &cases[i].o, &st, &r, &why),
                         cases[i].rc);
        assert_int_equal(why, cases[i].why);
        assert_memory_equal(&r, &sentinel, sizeof(r));
        assert_memory_equal(&st, &before, sizeof(st));
    }
}

static void
test_zero_control_mean_keeps_absolute(void **state)
{
    struct stats_summary c = {500, 0.0, 1.0}, t = {500, 0.2, 1.0};
    struct stats_msprt_result r;

    (void)state;
    assert_int_equal(stats_msprt_test(&c, &t, &two05, NULL, &r, NULL),
                     AB_OK);
    assert_int_equal(r.has_rel, 0);
    assert_int_equal(r.rel_why, STATS_REASON_ZERO_CONTROL_MEAN);
    assert_true(isfinite(r.abs.p_value));
    assert_true(r.rel.p_value == 0 && r.rel.estimate == 0);
}

static void
test_helpers_reject_bad_input(void **state)
{
    double v = 42;

    (void)state;
    assert_int_equal(stats_msprt_rho2(0, 5000, &v, NULL), AB_EINVAL);
    assert_int_equal(stats_msprt_rho2(0.05, 0, &v, NULL), AB_EINVAL);
    assert_int_equal(stats_msprt_z_crit(0, 0.05, STATS_SIDE_TWO, &v, NULL),
                     AB_EINVAL);
    assert_int_equal(stats_msprt_z_crit(NAN, 0.05, STATS_SIDE_TWO, &v, NULL),
                     AB_EINVAL);
    assert_int_equal(stats_msprt_log_lr(NAN, 1, STATS_SIDE_TWO, &v, NULL),
                     AB_EINVAL);
    assert_int_equal(stats_msprt_log_lr(1, -1, STATS_SIDE_TWO, &v, NULL),
                     AB_EINVAL);
    assert_near(v, 42, 0);
    /* z = 0: LR2 = (1 + r)^(-1/2), LR1 = the same (2 Phi(0) = 1) */
    assert_int_equal(stats_msprt_log_lr(0, 3, STATS_SIDE_GREATER, &v, NULL),
                     AB_OK);
    assert_near(v, -0.5 * log(4.0), 1e-15);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_two_sided),
        cmocka_unit_test(test_default_n_star_is_5000),
        cmocka_unit_test(test_interval_and_p_value_agree),
        cmocka_unit_test(test_boundary_tightest_at_n_star),
        cmocka_unit_test(test_one_sided_bracketed_and_mirrored),
        cmocka_unit_test(test_non_inferiority_margin),
        cmocka_unit_test(test_running_state),
        cmocka_unit_test(test_degenerate_inputs),
        cmocka_unit_test(test_zero_control_mean_keeps_absolute),
        cmocka_unit_test(test_helpers_reject_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
