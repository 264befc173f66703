/* test_gst.c -- unit tests of stats/gst.c, group sequential boundaries by
 * Lan-DeMets spending. Golden boundaries come from R rpact 3.3.4
 * (getDesignGroupSequential, printed with %.15g); the many-design
 * comparison runs rpact live in tests/oracle/test_stats_seq_gst.py.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "stats/gst.h"
#include "tests/unit/ab_test.h"

static struct stats_gst_work work; /* 28 KB: keep it off the stack */

static struct stats_gst_design
design(enum stats_side side, double alpha, enum stats_gst_spend f,
       double param, size_t k, const double *info)
{
    struct stats_gst_design d;

    memset(&d, 0, sizeof(d));
    d.k_max = k;
    memcpy(d.info, info, k * sizeof(double));
    d.side = side;
    d.alpha = alpha;
    d.alpha_spend = f;
    d.alpha_param = param;
    d.beta_spend = STATS_GST_NONE;
    return d;
}

struct golden {
    const char *source;
    enum stats_side side;
    double alpha;
    enum stats_gst_spend f;
    double param;
    size_t k;
    double info[5];
    double c[5];
};

/* clang-format off */
static const struct golden goldens[] = {
    { "rpact: kMax=3, alpha=0.025, sided=1, asOF, informationRates="
      "c(0.3,0.6,1)", STATS_SIDE_GREATER, 0.025, STATS_GST_OBF, 0, 3,
      {0.3, 0.6, 1}, {3.92857254262661, 2.66997200995684, 1.98102449625731} },
    { "rpact: kMax=3, alpha=0.05, sided=2, asOF (same bounds as one-sided "
      "0.025)", STATS_SIDE_TWO, 0.05, STATS_GST_OBF, 0, 3, {0.3, 0.6, 1},
      {3.92857254262661, 2.66997200995684, 1.98102449625731} },
    { "rpact: kMax=3, alpha=0.05, sided=2, asP, informationRates="
      "c(0.3,0.6,1)", STATS_SIDE_TWO, 0.05, STATS_GST_POCOCK, 0, 3,
      {0.3, 0.6, 1}, {2.31183530380578, 2.32096721976995, 2.26891169697046} },
    { "rpact: kMax=4, alpha=0.025, sided=1, asKD, gammaA=2, "
      "informationRates=c(0.2,0.45,0.7,1)", STATS_SIDE_GREATER, 0.025,
      STATS_GST_POWER, 2, 4, {0.2, 0.45, 0.7, 1},
      {3.09023230616781, 2.62186177819967, 2.34761857241392,
       2.07565418630838} },
    { "rpact: kMax=4, alpha=0.025, sided=1, asHSD, gammaA=-4, "
      "informationRates=c(0.2,0.45,0.7,1)", STATS_SIDE_GREATER, 0.025,
      STATS_GST_HSD, -4, 4, {0.2, 0.45, 0.7, 1},
      {3.25266848844068, 2.89114362746477, 2.51865506917238,
       2.00572235137224} },
};
/* clang-format on */

static void
test_golden_rpact_efficacy(void **state)
{
    (void)state;
    for (size_t g = 0; g < AB_ARRAY_LEN(goldens); g++) {
        const struct golden *x = &goldens[g];
        struct stats_gst_design d =
            design(x->side, x->alpha, x->f, x->param, x->k, x->info);
        struct stats_gst_bounds b;
        assert_int_equal(stats_gst_bounds(&d, &work, &b, NULL), AB_OK);
        assert_int_equal(b.k_max, x->k);
        assert_int_equal(b.has_futility, 0);
        for (size_t k = 0; k < x->k; k++) {
            assert_near(b.efficacy[k], x->c[k], 1e-6);
            assert_true(isinf(b.futility[k]) && b.futility[k] < 0);
        }
        assert_near(b.alpha_spent[x->k - 1], x->alpha, 1e-15);
    }
}

/* rpact: getDesignGroupSequential(kMax=3, alpha=0.025, beta=0.2, sided=1,
 * typeOfDesign="asOF", typeBetaSpending="bsOF", informationRates=
 * c(0.3,0.6,1)): futilityBounds -0.469869924345058 0.933796479832381,
 * betaSpent 0.0192949813875172 0.0980308452765796 0.2; getDesign-
 * Characteristics(d)$shift 8.519075164396 (= drift^2). */
static void
test_golden_rpact_futility(void **state)
{
    static const double info[] = {0.3, 0.6, 1};
    struct stats_gst_design d =
        design(STATS_SIDE_GREATER, 0.025, STATS_GST_OBF, 0, 3, info);
    struct stats_gst_bounds b;

    (void)state;
    d.beta_spend = STATS_GST_OBF;
    d.beta = 0.2;
    assert_int_equal(stats_gst_bounds(&d, &work, &b, NULL), AB_OK);
    assert_int_equal(b.has_futility, 1);
    assert_near(b.futility[0], -0.469869924345058, 1e-6);
    assert_near(b.futility[1], 0.933796479832381, 1e-6);
    assert_near(b.futility[2], b.efficacy[2], 0);
    assert_near(b.beta_spent[0], 0.0192949813875172, 1e-9);
    assert_near(b.beta_spent[2], 0.2, 0);
    assert_near(b.drift * b.drift, 8.519075164396, 1e-6);
}

/* One look is the fixed-horizon test: c = Phi^-1(1 - alpha) (R
 * qnorm(0.975) = 1.959963984540054; two-sided 0.01: qnorm(0.995) =
 * 2.575829303548901). */
static void
test_single_look_is_fixed_horizon(void **state)
{
    static const double one[] = {1};
    struct stats_gst_design d =
        design(STATS_SIDE_GREATER, 0.025, STATS_GST_OBF, 0, 1, one);
    struct stats_gst_bounds b;

    (void)state;
    assert_int_equal(stats_gst_bounds(&d, &work, &b, NULL), AB_OK);
    assert_near(b.efficacy[0], 1.959963984540054, 1e-9);
    d.side = STATS_SIDE_TWO;
    d.alpha = 0.01;
    d.alpha_spend = STATS_GST_POCOCK;
    assert_int_equal(stats_gst_bounds(&d, &work, &b, NULL), AB_OK);
    assert_near(b.efficacy[0], 2.575829303548901, 1e-9);
}

/* Spending values against their closed forms (R: 2*(1-pnorm(qnorm(
 * 1-0.025/2)/sqrt(0.3))) = 4.27257874446862e-05; 0.025*log(1+(exp(1)-1)*
 * 0.3) = 0.0103933805460907). */
static void
test_spending_values(void **state)
{
    double v = -1;

    (void)state;
    assert_int_equal(stats_gst_spend_value(STATS_GST_OBF, 0, 0.025, 0.3, &v,
                                           NULL),
                     AB_OK);
    assert_near(v, 4.27257874446862e-05, 1e-15);
    assert_int_equal(stats_gst_spend_value(STATS_GST_POCOCK, 0, 0.025, 0.3,
                                           &v, NULL),
                     AB_OK);
    assert_near(v, 0.0103933805460907, 1e-15);
    assert_int_equal(stats_gst_spend_value(STATS_GST_HSD, 0, 0.05, 0.4, &v,
                                           NULL),
                     AB_OK);
    assert_near(v, 0.02, 1e-17);
    assert_int_equal(stats_gst_spend_value(STATS_GST_POWER, 3, 0.05, 0.5, &v,
                                           NULL),
                     AB_OK);
    assert_near(v, 0.00625, 1e-17);
    /* over-running: t > 1 is capped, everything is spent */
    assert_int_equal(stats_gst_spend_value(STATS_GST_OBF, 0, 0.025, 1.3, &v,
                                           NULL),
                     AB_OK);
    assert_near(v, 0.025, 0);
    v = 7;
    assert_int_equal(stats_gst_spend_value(STATS_GST_NONE, 0, 0.025, 0.5, &v,
                                           NULL),
                     AB_EINVAL);
    assert_int_equal(stats_gst_spend_value(STATS_GST_POWER, 0, 0.025, 0.5,
                                           &v, NULL),
                     AB_EINVAL);
    assert_int_equal(stats_gst_spend_value(STATS_GST_OBF, 0, 0.025, NAN, &v,
                                           NULL),
                     AB_EINVAL);
    assert_near(v, 7, 0);
}

/* Over-running: looks at 0.3, 0.6, 1.2 of the plan are the looks 0.25,
 * 0.5, 1 of the actual information with user spending alpha(0.3),
 * alpha(0.6), alpha. R rpact: getDesignGroupSequential(kMax=3, alpha=
 * 0.025, sided=1, typeOfDesign="asUser", informationRates=c(0.25,0.5,1),
 * userAlphaSpending=c(4.27257874446862e-05, 0.00380806331098937, 0.025))
 * gives 3.92857254262661 2.66997200995684 1.98948752135038 (see the
 * oracle suite, which recomputes this). */
static void
test_over_running_spends_the_rest(void **state)
{
    static const double info[] = {0.3, 0.6, 1.2};
    struct stats_gst_design d =
        design(STATS_SIDE_GREATER, 0.025, STATS_GST_OBF, 0, 3, info);
    struct stats_gst_bounds b;

    (void)state;
    assert_int_equal(stats_gst_bounds(&d, &work, &b, NULL), AB_OK);
    assert_near(b.efficacy[0], 3.92857254262661, 1e-6);
    assert_near(b.efficacy[1], 2.66997200995684, 1e-6);
    assert_near(b.efficacy[2], 1.98948752135038, 1e-6);
    assert_near(b.alpha_spent[2], 0.025, 0);
}

static void
test_decide(void **state)
{
    static const double info[] = {0.3, 0.6, 1};
    struct stats_gst_design d =
        design(STATS_SIDE_GREATER, 0.025, STATS_GST_OBF, 0, 3, info);
    struct stats_gst_decision dc;

    (void)state;
    assert_int_equal(stats_gst_decide(&d, 1, 3.9, &work, &dc, NULL), AB_OK);
    assert_int_equal(dc.action, STATS_GST_CONTINUE);
    assert_near(dc.efficacy, 3.92857254262661, 1e-6);
    assert_int_equal(stats_gst_decide(&d, 1, 3.93, &work, &dc, NULL), AB_OK);
    assert_int_equal(dc.action, STATS_GST_EFFICACY);
    assert_int_equal(dc.direction, 1);
    assert_int_equal(stats_gst_decide(&d, 3, 1.98, &work, &dc, NULL), AB_OK);
    assert_int_equal(dc.action, STATS_GST_ACCEPT);
    assert_int_equal(stats_gst_decide(&d, 3, 1.982, &work, &dc, NULL), AB_OK);
    assert_int_equal(dc.action, STATS_GST_EFFICACY);
    assert_near(dc.alpha_spent, 0.025, 0);
    /* LESS mirrors the scale */
    d.side = STATS_SIDE_LESS;
    assert_int_equal(stats_gst_decide(&d, 2, -2.7, &work, &dc, NULL), AB_OK);
    assert_int_equal(dc.action, STATS_GST_EFFICACY);
    assert_int_equal(dc.direction, -1);
    assert_near(dc.efficacy, -2.66997200995684, 1e-6);
    assert_int_equal(stats_gst_decide(&d, 2, 2.7, &work, &dc, NULL), AB_OK);
    assert_int_equal(dc.action, STATS_GST_CONTINUE);
    /* two-sided: either tail */
    d.side = STATS_SIDE_TWO;
    d.alpha = 0.05;
    assert_int_equal(stats_gst_decide(&d, 2, -2.7, &work, &dc, NULL), AB_OK);
    assert_int_equal(dc.action, STATS_GST_EFFICACY);
    assert_int_equal(dc.direction, -1);
    /* futility: below b_1 = -0.4698699 stops, above continues */
    d.side = STATS_SIDE_GREATER;
    d.alpha = 0.025;
    d.beta_spend = STATS_GST_OBF;
    d.beta = 0.2;
    assert_int_equal(stats_gst_decide(&d, 1, -0.48, &work, &dc, NULL), AB_OK);
    assert_int_equal(dc.action, STATS_GST_FUTILITY);
    assert_near(dc.futility, -0.469869924345058, 1e-6);
    assert_int_equal(stats_gst_decide(&d, 1, -0.46, &work, &dc, NULL), AB_OK);
    assert_int_equal(dc.action, STATS_GST_CONTINUE);
    /* LESS with futility: the mirror image */
    d.side = STATS_SIDE_LESS;
    assert_int_equal(stats_gst_decide(&d, 1, 0.48, &work, &dc, NULL), AB_OK);
    assert_int_equal(dc.action, STATS_GST_FUTILITY);
    assert_near(dc.futility, 0.469869924345058, 1e-6);
    assert_int_equal(stats_gst_decide(&d, 1, 0.46, &work, &dc, NULL), AB_OK);
    assert_int_equal(dc.action, STATS_GST_CONTINUE);
    /* the last look never says futility: accept or efficacy */
    assert_int_equal(stats_gst_decide(&d, 3, 5.0, &work, &dc, NULL), AB_OK);
    assert_int_equal(dc.action, STATS_GST_ACCEPT);
}

/* The efficacy boundary at look k depends only on the first k fractions
 * (Lan-DeMets): changing later planned looks leaves it unchanged. */
static void
test_boundary_uses_only_past_looks(void **state)
{
    static const double a[] = {0.2, 0.5, 0.8, 1}, b[] = {0.2, 0.5, 0.6, 1};
    struct stats_gst_design da =
        design(STATS_SIDE_TWO, 0.05, STATS_GST_POCOCK, 0, 4, a);
    struct stats_gst_design db =
        design(STATS_SIDE_TWO, 0.05, STATS_GST_POCOCK, 0, 4, b);
    struct stats_gst_bounds ba, bb;
    struct stats_gst_decision dc;

    (void)state;
    assert_int_equal(stats_gst_bounds(&da, &work, &ba, NULL), AB_OK);
    assert_int_equal(stats_gst_bounds(&db, &work, &bb, NULL), AB_OK);
    assert_near(ba.efficacy[1], bb.efficacy[1], 0);
    assert_true(fabs(ba.efficacy[2] - bb.efficacy[2]) > 1e-3);
    assert_int_equal(stats_gst_decide(&da, 2, 0, &work, &dc, NULL), AB_OK);
    assert_near(dc.efficacy, ba.efficacy[1], 0);
}

static void
test_degenerate_designs(void **state)
{
    static const double ok[] = {0.3, 0.6, 1};
    struct stats_gst_bounds b, sentinel;
    struct stats_gst_decision dc, dsent;
    enum stats_reason why;
    struct stats_gst_design d;

    (void)state;
    memset(&sentinel, 0x5a, sizeof(sentinel));
    memset(&dsent, 0x5a, sizeof(dsent));
#define REFUSE(edit, want_rc, want_why)                                     \
    do {                                                                    \
        d = design(STATS_SIDE_GREATER, 0.025, STATS_GST_OBF, 0, 3, ok);     \
        edit;                                                               \
        b = sentinel;                                                       \
        why = STATS_REASON_NONE;                                            \
        assert_int_equal(stats_gst_bounds(&d, &work, &b, &why), want_rc);   \
        assert_int_equal(why, want_why);                                    \
        assert_memory_equal(&b, &sentinel, sizeof(b));                      \
    } while (0)
    REFUSE(d.k_max = 0, AB_EINVAL, STATS_REASON_BAD_PARAMETER);
    REFUSE(d.k_max = STATS_GST_MAX_LOOKS + 1, AB_EINVAL,
           STATS_REASON_BAD_PARAMETER);
    REFUSE(d.info[1] = 0.3, AB_EINVAL, STATS_REASON_BAD_PARAMETER);
    REFUSE(d.info[1] = 0.2, AB_EINVAL, STATS_REASON_BAD_PARAMETER);
    REFUSE(d.info[0] = 0, AB_EINVAL, STATS_REASON_BAD_PARAMETER);
    REFUSE(d.info[0] = -0.1, AB_EINVAL, STATS_REASON_BAD_PARAMETER);
    REFUSE((d.info[1] = 1, d.info[2] = 1.5), AB_EINVAL,
           STATS_REASON_BAD_PARAMETER);
    REFUSE(d.info[2] = NAN, AB_EINVAL, STATS_REASON_NOT_FINITE);
    REFUSE(d.alpha = NAN, AB_EINVAL, STATS_REASON_NOT_FINITE);
    REFUSE(d.alpha = 0, AB_EINVAL, STATS_REASON_BAD_PARAMETER);
    REFUSE(d.alpha = 0.5, AB_EINVAL, STATS_REASON_BAD_PARAMETER);
    REFUSE(d.alpha_spend = STATS_GST_NONE, AB_EINVAL,
           STATS_REASON_BAD_PARAMETER);
    REFUSE((d.alpha_spend = STATS_GST_POWER, d.alpha_param = -1), AB_EINVAL,
           STATS_REASON_BAD_PARAMETER);
    REFUSE((d.beta_spend = STATS_GST_OBF, d.beta = 0.2,
            d.side = STATS_SIDE_TWO),
           AB_EINVAL, STATS_REASON_BAD_PARAMETER);
    REFUSE((d.beta_spend = STATS_GST_OBF, d.beta = 0.98), AB_EINVAL,
           STATS_REASON_BAD_PARAMETER);
    REFUSE(d.side = (enum stats_side)7, AB_EINVAL,
           STATS_REASON_BAD_PARAMETER);
#undef REFUSE
    d = design(STATS_SIDE_GREATER, 0.025, STATS_GST_OBF, 0, 3, ok);
    dc = dsent;
    assert_int_equal(stats_gst_decide(&d, 0, 1, &work, &dc, &why),
                     AB_EINVAL);
    assert_int_equal(stats_gst_decide(&d, 4, 1, &work, &dc, &why),
                     AB_EINVAL);
    assert_int_equal(stats_gst_decide(&d, 1, NAN, &work, &dc, &why),
                     AB_EINVAL);
    assert_int_equal(why, STATS_REASON_NOT_FINITE);
    assert_memory_equal(&dc, &dsent, sizeof(dc));
}

/* Many looks with a tiny first fraction: OBF spends ~0 early, so the
 * first boundary is huge but finite and everything stays finite. */
static void
test_many_looks_finite(void **state)
{
    double info[STATS_GST_MAX_LOOKS];
    struct stats_gst_design d;
    struct stats_gst_bounds b;

    (void)state;
    for (size_t k = 0; k < STATS_GST_MAX_LOOKS; k++)
        info[k] = (k + 1.0) / STATS_GST_MAX_LOOKS;
    info[0] = 0.001;
    d = design(STATS_SIDE_GREATER, 0.025, STATS_GST_OBF, 0,
               STATS_GST_MAX_LOOKS, info);
    d.beta_spend = STATS_GST_POCOCK;
    d.beta = 0.1;
    assert_int_equal(stats_gst_bounds(&d, &work, &b, NULL), AB_OK);
    for (size_t k = 0; k < STATS_GST_MAX_LOOKS; k++) {
        assert_false(isnan(b.efficacy[k]));
        assert_false(isnan(b.futility[k]));
        assert_true(b.futility[k] <= b.efficacy[k]);
        if (k > 0)
            assert_true(b.efficacy[k] < b.efficacy[k - 1]);
    }
    assert_true(b.efficacy[0] > 8);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_rpact_efficacy),
        cmocka_unit_test(test_golden_rpact_futility),
        cmocka_unit_test(test_single_look_is_fixed_horizon),
        cmocka_unit_test(test_spending_values),
        cmocka_unit_test(test_over_running_spends_the_rest),
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_boundary_uses_only_past_looks),
        cmocka_unit_test(test_degenerate_designs),
        cmocka_unit_test(test_many_looks_finite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
