/* test_assign.c -- hash v1 and core_assign: golden vectors (a published
 * contract: DO NOT UPDATE), answer order and reasons, and the statistical
 * properties of the layout over 1,000,000 unit ids.
 *
 * Chi-square tests use alpha = 0.001. Their critical values are computed
 * with GSL (gsl_cdf_chisq_Qinv) and cross-checked against scipy 1.10
 * (scipy.stats.chi2.isf(0.001, df)) and the NIST/SEMATECH e-Handbook of
 * Statistical Methods, table 1.3.6.7.4 (upper critical values of the
 * chi-square distribution): df 1: 10.828, df 2: 13.816, df 4: 18.467,
 * df 99: 148.230. The ids are fixed, so every test is deterministic.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <xxhash.h>

#include "core/assign.h"
#include "tests/unit/ab_test.h"

#define N_UNITS 1000000

/* ---- fixtures ----------------------------------------------------------- */

struct fixture {
    struct core_experiment e;
    struct core_arm arms[4];
};

/* A running experiment over 'n' arms; arms[0] is control. */
static void
fixture_init(struct fixture *f, const char *key, size_t n,
             const uint32_t *weights)
{
    static const char *names[] = { "control", "a", "b", "c" };
    memset(f, 0, sizeof(*f));
    for (size_t i = 0; i < n; i++) {
        f->arms[i].name = (char *)names[i];
        f->arms[i].model = (char *)"";
        f->arms[i].weight = weights[i];
        f->arms[i].control = i == 0;
    }
    f->e.key = (char *)key;
    f->e.salt = (char *)key;
    f->e.arms = f->arms;
    f->e.n_arms = n;
    f->e.control = 0;
    f->e.coverage = CORE_SCALE;
    f->e.state = CORE_STATE_RUNNING;
    f->e.bucket_version = 1;
    f->e.min_bucket_version = 1;
}

static size_t
unit_id(char *buf, size_t cap, long i)
{
    return (size_t)snprintf(buf, cap, "user-%ld", i);
}

static struct core_assignment
assign_ok(const struct core_experiment *e, const char *unit,
          const struct core_attr *attrs, size_t n_attrs)
{
    struct core_assignment a;
    assert_int_equal(core_assign(e, unit, strlen(unit), attrs, n_attrs, &a),
                     AB_OK);
    return a;
}

/* Pearson's X^2 of observed counts against expected shares (sum 1). */
static double
chisq_gof(const long *obs, const double *share, size_t k, long n)
{
    double x2 = 0;
    for (size_t i = 0; i < k; i++) {
        double ex = share[i] * (double)n;
        x2 += (obs[i] - ex) * (obs[i] - ex) / ex;
    }
    return x2;
}

/* Pearson's X^2 for independence in an r x c table (row-major). */
static double
chisq_indep(const long *t, size_t r, size_t c)
{
    double row[8] = { 0 }, col[8] = { 0 }, n = 0, x2 = 0;
    for (size_t i = 0; i < r; i++)
        for (size_t j = 0; j < c; j++) {
            row[i] += (double)t[i * c + j];
            col[j] += (double)t[i * c + j];
            n += (double)t[i * c + j];
        }
    for (size_t i = 0; i < r; i++)
        for (size_t j = 0; j < c; j++) {
            double ex = row[i] * col[j] / n;
            x2 += (t[i * c + j] - ex) * (t[i * c + j] - ex) / ex;
        }
    return x2;
}

/* Upper 0.001 critical value, checked against the published table. */
static double
critical(int df, double published)
{
    double q = gsl_cdf_chisq_Qinv(0.001, df);
    assert_near(q, published, 0.0005);
    return q;
}

/* ---- golden vectors: DO NOT UPDATE -------------------------------------- */

/* These values are the published hash v1 contract (docs/hashing.md); they
 * were computed by this implementation and independently by Python
 * xxhash 3.2 (xxhash.xxh3_64_intdigest) in tests/oracle/
 * test_hash_vectors.py. If this test fails, the hash changed: that breaks
 * every running experiment. Introduce a new hash version instead. */
static const struct golden {
    char purpose;
    const char *salt;
    uint32_t version;
    const char *unit;
    uint64_t seed, h;
    uint32_t position;
    const char *arm; /* sample layout: control 50 (control), a 30, b 20 */
} golden[] = {
    { 'A', "checkout-button", 1u,
      "user-42",
      0xd06471a64ae87e0aull, 0x4b95a81f2bcfc941ull, 295252, "a" },
    { 'A', "checkout-button", 1u,
      "user-43",
      0xd06471a64ae87e0aull, 0x3224697af034059eull, 195868, "a" },
    { 'A', "checkout-button", 2u,
      "user-42",
      0x1602bbdd877010f8ull, 0xe1ce97ff8b386a9dull, 882058, "control" },
    { 'A', "checkout-button", 7u,
      "user-42",
      0xa644a46aa9e4ca3eull, 0x12a8f5dff8ed14a5ull, 72890, "a" },
    { 'C', "checkout-button", 1u,
      "user-42",
      0x40ff90c539a47750ull, 0x02630f44eead8f6aull, 9324, "a" },
    { 'C', "checkout-button", 2u,
      "user-42",
      0x36f4b63a4491b1d4ull, 0x21647b3571401ce9ull, 130439, "a" },
    { 'L', "ranking", 0u,
      "user-42",
      0xb378beb29dff1cc4ull, 0xcf41016732df98c2ull, 809585, "control" },
    { 'L', "ranking", 0u,
      "user-43",
      0xb378beb29dff1cc4ull, 0x28252a0b8738a292ull, 156817, "a" },
    { 'A', "search-ranker", 1u,
      "42",
      0xa83848e67d1c0e6aull, 0x4390159c2415b39full, 263917, "a" },
    { 'A', "search-ranker", 1u,
      "a",
      0xa83848e67d1c0e6aull, 0x5d92a32ecd345b28ull, 365518, "b" },
    { 'A', "search-ranker", 3u,
      "device:9f8e7d6c",
      0xb35e8e8acaba5a1bull, 0xd157c310377c9fa4ull, 817745, "control" },
    { 'A', "checkout-button", 1u,
      "\xc5\x81ukasz",
      0xd06471a64ae87e0aull, 0xfa89a05228814b82ull, 978662, "control" },
    { 'A', "checkout-button", 1u,
      "m\xc3\xbcller@example.de",
      0xd06471a64ae87e0aull, 0xef846ecad5fdae88ull, 935614, "control" },
    { 'A', "checkout-button", 1u,
      "\xe3\x83\xa6\xe3\x83\xbc\xe3\x82\xb6\xe3\x83\xbc-1",
      0xd06471a64ae87e0aull, 0x946ccb2378755129ull, 579785, "control" },
    { 'A', "checkout-button", 1u,
      "\xf0\x9f\x98\x80",
      0xd06471a64ae87e0aull, 0x228f29a4f5dd0701ull, 134996, "a" },
    { 'A', "checkout-button", 1u,
      "caf\xc3\xa9",
      0xd06471a64ae87e0aull, 0xf5f2d93b8afee992ull, 960736, "control" },
    { 'A', "checkout-button", 1u,
      "cafe\xcc\x81",
      0xd06471a64ae87e0aull, 0x2df4f37b98fdb8c8ull, 179518, "a" },
    { 'C', "checkout-button", 1u,
      "\xe3\x83\xa6\xe3\x83\xbc\xe3\x82\xb6\xe3\x83\xbc-1",
      0x40ff90c539a47750ull, 0x4a3ab9e81d820743ull, 289958, "a" },
    { 'A', "exp-\xc3\xbc", 1u,
      "user-42",
      0xd92d3969d6b0573full, 0xb120e07e915324b0ull, 691907, "control" },
    { 'A', "exp-\xc3\xbc", 2u,
      "\xc5\x81ukasz",
      0x5643fb141a46d865ull, 0xb5bb063878a5b5fdull, 709885, "control" },
    { 'L', "\xe5\xb1\x82", 0u,
      "user-42",
      0xab8fc01009a8d566ull, 0xecb0f9a89eb4a741ull, 924575, "control" },
    { 'A', "s", 4294967295u,
      "user-42",
      0x6552bbbb33e78c34ull, 0x65299a435bc0eab4ull, 395166, "b" },
};

static void
test_golden_vectors_do_not_update(void **state)
{
    (void)state;
    struct fixture f;
    const uint32_t w[] = { 500000, 300000, 200000 };
    fixture_init(&f, "sample", 3, w);
    assert_true(AB_ARRAY_LEN(golden) >= 20);
    for (size_t i = 0; i < AB_ARRAY_LEN(golden); i++) {
        const struct golden *g = &golden[i];
        uint64_t seed = core_hash_seed(g->purpose, g->salt, strlen(g->salt),
                                       g->version);
        uint64_t h = core_hash_unit(seed, g->unit, strlen(g->unit));
        if (seed != g->seed || h != g->h)
            print_message("vector %zu: %c %s %u %s\n", i, g->purpose, g->salt,
                          (unsigned)g->version, g->unit);
        assert_int_equal(seed, g->seed);
        assert_int_equal(h, g->h);
        assert_int_equal(core_hash_to_position(h), g->position);
        assert_int_equal(core_hash_position(g->purpose, g->salt, g->version,
                                            g->unit, strlen(g->unit)),
                         g->position);
        assert_string_equal(
            f.arms[core_arm_for_bucket(&f.e, g->position)].name, g->arm);
    }
}

/* core_assign end to end on a published experiment: salt "checkout-button",
 * bucket_version 1, arms control 50 (control) / a 30 / b 20. */
static void
test_golden_assignments_do_not_update(void **state)
{
    (void)state;
    struct fixture f;
    const uint32_t w[] = { 500000, 300000, 200000 };
    fixture_init(&f, "checkout-button", 3, w);
    static const struct {
        const char *unit;
        uint32_t bucket;
        const char *arm;
    } want[] = {
        { "user-0", 936214, "control" },
        { "user-1", 930189, "control" },
        { "user-2", 635097, "control" },
        { "user-3", 989557, "control" },
        { "user-4", 233196, "a" },
        { "user-5", 148819, "a" },
        { "user-6", 880691, "control" },
        { "user-7", 134451, "a" },
        { "user-8", 850471, "control" },
        { "user-9", 960202, "control" },
        { "\xc5" "\x81" "ukasz", 978662, "control" },
        { "\xf0" "\x9f" "\x98" "\x80", 134996, "a" },
        { "caf\xc3" "\xa9", 960736, "control" },
        { "cafe\xcc" "\x81", 179518, "a" },
    };
    for (size_t i = 0; i < AB_ARRAY_LEN(want); i++) {
        /* twice: a restart is a recomputation, nothing is remembered */
        for (int k = 0; k < 2; k++) {
            struct core_assignment a = assign_ok(&f.e, want[i].unit, NULL, 0);
            assert_int_equal(a.bucket, want[i].bucket);
            assert_string_equal(f.arms[a.arm].name, want[i].arm);
            assert_string_equal(a.reason, CORE_REASON_HASHED);
            assert_true(a.in_experiment);
            assert_near(a.propensity, f.arms[a.arm].weight / 1e6, 0);
        }
    }
}

/* ---- layout ------------------------------------------------------------- */

static void
test_bucket_boundaries_are_exact(void **state)
{
    (void)state;
    struct fixture f;
    const uint32_t w[] = { 500000, 300000, 200000 };
    fixture_init(&f, "x", 3, w);
    assert_int_equal(core_arm_for_bucket(&f.e, 0), 1);
    assert_int_equal(core_arm_for_bucket(&f.e, 299999), 1);
    assert_int_equal(core_arm_for_bucket(&f.e, 300000), 2);
    assert_int_equal(core_arm_for_bucket(&f.e, 499999), 2);
    assert_int_equal(core_arm_for_bucket(&f.e, 500000), 0);
    assert_int_equal(core_arm_for_bucket(&f.e, 999999), 0);
    /* control in the middle of the declaration is still laid out last */
    const uint32_t w2[] = { 100000, 200000, 300000, 400000 };
    fixture_init(&f, "x", 4, w2);
    f.arms[0].control = false;
    f.arms[2].control = true;
    f.e.control = 2;
    assert_int_equal(core_arm_for_bucket(&f.e, 99999), 0);
    assert_int_equal(core_arm_for_bucket(&f.e, 100000), 1);
    assert_int_equal(core_arm_for_bucket(&f.e, 299999), 1);
    assert_int_equal(core_arm_for_bucket(&f.e, 300000), 3);
    assert_int_equal(core_arm_for_bucket(&f.e, 699999), 3);
    assert_int_equal(core_arm_for_bucket(&f.e, 700000), 2);
    /* a zero-weight arm owns no bucket */
    const uint32_t w3[] = { 600000, 0, 400000 };
    fixture_init(&f, "x", 3, w3);
    assert_int_equal(core_arm_for_bucket(&f.e, 0), 2);
    assert_int_equal(core_arm_for_bucket(&f.e, 399999), 2);
    assert_int_equal(core_arm_for_bucket(&f.e, 400000), 0);
}

static void
test_position_covers_the_range(void **state)
{
    (void)state;
    assert_int_equal(core_hash_to_position(0), 0);
    assert_int_equal(core_hash_to_position(UINT64_MAX), 999999);
    assert_int_equal(core_hash_to_position(0x8000000000000000ull), 500000);
    /* the low 32 bits do not take part */
    assert_int_equal(core_hash_to_position(0x80000000ffffffffull), 500000);
}

/* ---- order of decisions and reasons ------------------------------------- */

static void
test_unit_length_limits(void **state)
{
    (void)state;
    struct fixture f;
    const uint32_t w[] = { 500000, 500000 };
    fixture_init(&f, "x", 2, w);
    struct core_assignment a;
    char unit[CORE_UNIT_MAX + 1];
    memset(unit, 'u', sizeof(unit));
    assert_int_equal(core_assign(&f.e, unit, 0, NULL, 0, &a), AB_EINVAL);
    assert_int_equal(core_assign(&f.e, unit, CORE_UNIT_MAX + 1, NULL, 0, &a),
                     AB_EINVAL);
    assert_int_equal(core_assign(&f.e, unit, CORE_UNIT_MAX, NULL, 0, &a),
                     AB_OK);
    assert_int_equal(core_assign(&f.e, NULL, 3, NULL, 0, &a), AB_EINVAL);
}

static void
test_not_running_gets_control_with_its_reason(void **state)
{
    (void)state;
    struct fixture f;
    const uint32_t w[] = { 0, 1000000 }; /* everyone hashed would get 'a' */
    fixture_init(&f, "x", 2, w);
    const struct {
        enum core_state s;
        const char *reason;
    } cases[] = { { CORE_STATE_DRAFT, CORE_REASON_DRAFT },
                  { CORE_STATE_PAUSED, CORE_REASON_PAUSED },
                  { CORE_STATE_STOPPED, CORE_REASON_STOPPED } };
    for (size_t i = 0; i < AB_ARRAY_LEN(cases); i++) {
        f.e.state = cases[i].s;
        struct core_assignment a = assign_ok(&f.e, "user-1", NULL, 0);
        assert_int_equal(a.arm, 0);
        assert_false(a.in_experiment);
        assert_string_equal(a.reason, cases[i].reason);
        assert_near(a.propensity, 1.0, 0);
    }
    f.e.state = CORE_STATE_RUNNING;
    struct core_assignment a = assign_ok(&f.e, "user-1", NULL, 0);
    assert_int_equal(a.arm, 1);
    assert_true(a.in_experiment);
    assert_near(a.propensity, 1.0, 0);
}

static void
test_forced_units_win_over_everything_but_state(void **state)
{
    (void)state;
    struct fixture f;
    const uint32_t w[] = { 1000000, 0 }; /* hashing would give control */
    fixture_init(&f, "x", 2, w);
    struct core_forced forced[] = { { (char *)"qa-1", 1 },
                                    { (char *)"qa-2", 0 },
                                    { (char *)"\xc3\xa9t\xc3\xa9", 1 } };
    struct core_rule rule = { 0 };
    rule.attribute = (char *)"country";
    rule.op = CORE_OP_EXISTS;
    f.e.forced = forced;
    f.e.n_forced = 3;
    f.e.rules = &rule; /* every request below fails targeting */
    f.e.n_rules = 1;
    f.e.coverage = 0; /* and coverage */
    struct core_assignment a = assign_ok(&f.e, "qa-1", NULL, 0);
    assert_int_equal(a.arm, 1);
    assert_string_equal(a.reason, CORE_REASON_FORCED);
    assert_false(a.in_experiment);
    assert_near(a.propensity, 1.0, 0);
    a = assign_ok(&f.e, "\xc3\xa9t\xc3\xa9", NULL, 0);
    assert_int_equal(a.arm, 1);
    assert_string_equal(a.reason, CORE_REASON_FORCED);
    a = assign_ok(&f.e, "qa-2", NULL, 0);
    assert_int_equal(a.arm, 0);
    assert_string_equal(a.reason, CORE_REASON_FORCED);
    /* a prefix of a forced unit is not forced */
    a = assign_ok(&f.e, "qa-", NULL, 0);
    assert_string_equal(a.reason, CORE_REASON_TARGETING);
    /* a length that cuts a forced id is not that id */
    assert_int_equal(core_assign(&f.e, "qa-1", 3, NULL, 0, &a), AB_OK);
    assert_string_equal(a.reason, CORE_REASON_TARGETING);
    f.e.state = CORE_STATE_PAUSED;
    a = assign_ok(&f.e, "qa-1", NULL, 0);
    assert_string_equal(a.reason, CORE_REASON_PAUSED);
    assert_int_equal(a.arm, 0);
}

static void
test_targeting_then_layer_then_coverage(void **state)
{
    (void)state;
    struct fixture f;
    const uint32_t w[] = { 0, 1000000 };
    fixture_init(&f, "x", 2, w);
    struct core_rule rule = { 0 };
    char *de = (char *)"DE";
    rule.attribute = (char *)"country";
    rule.op = CORE_OP_EQ;
    rule.values = &de;
    rule.n_values = 1;
    f.e.rules = &rule;
    f.e.n_rules = 1;
    struct core_attr de_attr = { "country", "DE" }, us = { "country", "US" };

    struct core_assignment a = assign_ok(&f.e, "user-1", &us, 1);
    assert_string_equal(a.reason, CORE_REASON_TARGETING);
    assert_int_equal(a.arm, 0);
    assert_false(a.in_experiment);
    assert_near(a.propensity, 1.0, 0);
    a = assign_ok(&f.e, "user-1", NULL, 0);
    assert_string_equal(a.reason, CORE_REASON_TARGETING);

    /* an empty layer slice excludes nobody's targeting first */
    f.e.layer = (char *)"L";
    f.e.layer_lo = 0;
    f.e.layer_hi = 1; /* one millionth of the layer */
    long layer = 0, cov = 0, hashed = 0;
    char id[32];
    for (long i = 0; i < 2000; i++) {
        unit_id(id, sizeof(id), i);
        a = assign_ok(&f.e, id, &de_attr, 1);
        if (strcmp(a.reason, CORE_REASON_LAYER) == 0) {
            layer++;
            assert_int_equal(a.arm, 0);
            assert_false(a.in_experiment);
        }
    }
    assert_int_equal(layer, 2000);
    f.e.layer_hi = CORE_SCALE;
    f.e.coverage = 0;
    for (long i = 0; i < 2000; i++) {
        unit_id(id, sizeof(id), i);
        a = assign_ok(&f.e, id, &de_attr, 1);
        cov += strcmp(a.reason, CORE_REASON_COVERAGE) == 0;
    }
    assert_int_equal(cov, 2000);
    f.e.coverage = CORE_SCALE;
    for (long i = 0; i < 2000; i++) {
        unit_id(id, sizeof(id), i);
        a = assign_ok(&f.e, id, &de_attr, 1);
        hashed += strcmp(a.reason, CORE_REASON_HASHED) == 0 && a.arm == 1;
    }
    assert_int_equal(hashed, 2000);
}

/* The bucket is reported in every answer and is position('A'). */
static void
test_bucket_is_reported_for_every_reason(void **state)
{
    (void)state;
    struct fixture f;
    const uint32_t w[] = { 500000, 500000 };
    fixture_init(&f, "bucket-exp", 2, w);
    f.e.coverage = 0;
    struct core_assignment a = assign_ok(&f.e, "user-7", NULL, 0);
    assert_string_equal(a.reason, CORE_REASON_COVERAGE);
    assert_int_equal(a.bucket, core_hash_position('A', "bucket-exp", 1,
                                                  "user-7", 6));
}

/* ---- statistical properties --------------------------------------------- */

static void
test_split_is_balanced_over_a_million_units(void **state)
{
    (void)state;
    struct fixture f;
    const uint32_t w[] = { 500000, 300000, 200000 };
    fixture_init(&f, "balance-exp", 3, w);
    long obs[3] = { 0 }, bins[100] = { 0 };
    char id[32];
    for (long i = 0; i < N_UNITS; i++) {
        size_t n = unit_id(id, sizeof(id), i);
        struct core_assignment a;
        assert_int_equal(core_assign(&f.e, id, n, NULL, 0, &a), AB_OK);
        obs[a.arm]++;
        bins[a.bucket / 10000]++;
    }
    const double share[3] = { 0.5, 0.3, 0.2 };
    double x2 = chisq_gof(obs, share, 3, N_UNITS);
    print_message("3 arms 50/30/20: %ld %ld %ld, X2 = %.3f (df 2)\n", obs[0],
                  obs[1], obs[2], x2);
    assert_true(x2 < critical(2, 13.816));
    double flat[100];
    for (int i = 0; i < 100; i++)
        flat[i] = 0.01;
    double x2b = chisq_gof(bins, flat, 100, N_UNITS);
    print_message("100 buckets: X2 = %.3f (df 99)\n", x2b);
    assert_true(x2b < critical(99, 148.230));
    /* and not suspiciously perfect: X2 below the 0.001 lower quantile
     * (scipy chi2.ppf(0.001, 99) = 61.1365) would mean a non-random split */
    assert_true(x2b > gsl_cdf_chisq_Pinv(0.001, 99));
    assert_near(gsl_cdf_chisq_Pinv(0.001, 99), 61.1365, 0.0005);
}

static void
test_canary_ramp_only_moves_units_from_control(void **state)
{
    (void)state;
    struct fixture f;
    const uint32_t w[] = { 950000, 50000 };
    fixture_init(&f, "canary-exp", 2, w);
    static const uint32_t steps[] = { 50000, 100000, 150000, 250000 };
    long moved = 0, kept = 0;
    char id[32];
    for (long i = 0; i < 200000; i++) {
        size_t n = unit_id(id, sizeof(id), i);
        struct core_assignment prev, a;
        f.arms[1].weight = steps[0];
        f.arms[0].weight = CORE_SCALE - steps[0];
        assert_int_equal(core_assign(&f.e, id, n, NULL, 0, &prev), AB_OK);
        for (size_t s = 1; s < AB_ARRAY_LEN(steps); s++) {
            f.arms[1].weight = steps[s];
            f.arms[0].weight = CORE_SCALE - steps[s];
            assert_int_equal(core_assign(&f.e, id, n, NULL, 0, &a), AB_OK);
            assert_int_equal(a.bucket, prev.bucket);
            if (a.arm != prev.arm) {
                /* only control -> canary, never back */
                assert_int_equal(prev.arm, 0);
                assert_int_equal(a.arm, 1);
                moved++;
            } else {
                kept++;
            }
            prev = a;
        }
    }
    /* 5 -> 25 %: about 20 % of 200,000 units move */
    print_message("ramp 5 -> 25 %%: %ld moves\n", moved);
    assert_true(moved > 39000 && moved < 41000);

    /* three arms: growing the last non-control arm moves only control */
    const uint32_t w3[] = { 800000, 100000, 100000 };
    fixture_init(&f, "canary-3", 3, w3);
    for (long i = 0; i < 100000; i++) {
        size_t n = unit_id(id, sizeof(id), i);
        struct core_assignment a0, a1;
        f.arms[0].weight = 800000;
        f.arms[2].weight = 100000;
        assert_int_equal(core_assign(&f.e, id, n, NULL, 0, &a0), AB_OK);
        f.arms[0].weight = 600000;
        f.arms[2].weight = 300000;
        assert_int_equal(core_assign(&f.e, id, n, NULL, 0, &a1), AB_OK);
        if (a0.arm != a1.arm) {
            assert_int_equal(a0.arm, 0);
            assert_int_equal(a1.arm, 2);
        }
    }
}

static void
test_raising_coverage_moves_no_included_unit(void **state)
{
    (void)state;
    struct fixture f;
    const uint32_t w[] = { 500000, 250000, 250000 };
    fixture_init(&f, "coverage-exp", 3, w);
    long included_lo = 0, included_hi = 0;
    char id[32];
    for (long i = 0; i < 200000; i++) {
        size_t n = unit_id(id, sizeof(id), i);
        struct core_assignment lo, hi;
        f.e.coverage = 100000;
        assert_int_equal(core_assign(&f.e, id, n, NULL, 0, &lo), AB_OK);
        f.e.coverage = 500000;
        assert_int_equal(core_assign(&f.e, id, n, NULL, 0, &hi), AB_OK);
        if (lo.in_experiment) {
            included_lo++;
            assert_true(hi.in_experiment);
            assert_int_equal(hi.arm, lo.arm);
        }
        included_hi += hi.in_experiment;
    }
    print_message("coverage 10 %% -> 50 %%: %ld -> %ld included\n",
                  included_lo, included_hi);
    assert_true(included_lo > 19000 && included_lo < 21000);
    assert_true(included_hi > 99000 && included_hi < 101000);
}

static void
test_experiments_in_no_shared_layer_are_independent(void **state)
{
    (void)state;
    struct fixture x, y;
    const uint32_t wx[] = { 500000, 500000 };
    const uint32_t wy[] = { 400000, 300000, 300000 };
    fixture_init(&x, "exp-x", 2, wx);
    fixture_init(&y, "exp-y", 3, wy);
    long t[2 * 3] = { 0 };
    long cov_arm[2 * 2] = { 0 }; /* coverage hash vs arm hash of x */
    char id[32];
    for (long i = 0; i < N_UNITS; i++) {
        size_t n = unit_id(id, sizeof(id), i);
        struct core_assignment a, b;
        assert_int_equal(core_assign(&x.e, id, n, NULL, 0, &a), AB_OK);
        assert_int_equal(core_assign(&y.e, id, n, NULL, 0, &b), AB_OK);
        t[a.arm * 3 + b.arm]++;
        uint32_t c = core_hash_position('C', "exp-x", 1, id, n);
        cov_arm[(c < 500000) * 2 + a.arm]++;
    }
    double x2 = chisq_indep(t, 2, 3);
    print_message("exp-x by exp-y 2x3: X2 = %.3f (df 2)\n", x2);
    assert_true(x2 < critical(2, 13.816));
    double x2c = chisq_indep(cov_arm, 2, 2);
    print_message("coverage hash by arm hash 2x2: X2 = %.3f (df 1)\n", x2c);
    assert_true(x2c < critical(1, 10.828));
}

static void
test_layer_makes_experiments_mutually_exclusive(void **state)
{
    (void)state;
    struct fixture x, y, z;
    const uint32_t w[] = { 500000, 500000 };
    fixture_init(&x, "layer-x", 2, w);
    fixture_init(&y, "layer-y", 2, w);
    fixture_init(&z, "layer-z", 2, w);
    x.e.layer = y.e.layer = z.e.layer = (char *)"ranking";
    x.e.layer_lo = 0;
    x.e.layer_hi = 400000;
    y.e.layer_lo = 400000;
    y.e.layer_hi = 900000;
    z.e.layer_lo = 900000;
    z.e.layer_hi = 1000000;
    long in[4] = { 0 }; /* x, y, z, none */
    char id[32];
    for (long i = 0; i < N_UNITS; i++) {
        size_t n = unit_id(id, sizeof(id), i);
        struct core_assignment a, b, c;
        assert_int_equal(core_assign(&x.e, id, n, NULL, 0, &a), AB_OK);
        assert_int_equal(core_assign(&y.e, id, n, NULL, 0, &b), AB_OK);
        assert_int_equal(core_assign(&z.e, id, n, NULL, 0, &c), AB_OK);
        int k = a.in_experiment + b.in_experiment + c.in_experiment;
        assert_int_equal(k, 1); /* the slices tile the layer */
        in[a.in_experiment ? 0 : b.in_experiment ? 1 : 2]++;
        if (!a.in_experiment)
            assert_string_equal(a.reason, CORE_REASON_LAYER);
    }
    const double share[3] = { 0.4, 0.5, 0.1 };
    double x2 = chisq_gof(in, share, 3, N_UNITS);
    print_message("layer slices 40/50/10: %ld %ld %ld, X2 = %.3f (df 2)\n",
                  in[0], in[1], in[2], x2);
    assert_true(x2 < critical(2, 13.816));
}

static void
test_bucket_version_rerandomizes(void **state)
{
    (void)state;
    struct fixture f;
    const uint32_t w[] = { 333334, 333333, 333333 };
    fixture_init(&f, "rerandomize", 3, w);
    long t[3 * 3] = { 0 }, same = 0;
    char id[32];
    for (long i = 0; i < N_UNITS; i++) {
        size_t n = unit_id(id, sizeof(id), i);
        struct core_assignment a, b;
        f.e.bucket_version = 1;
        assert_int_equal(core_assign(&f.e, id, n, NULL, 0, &a), AB_OK);
        f.e.bucket_version = 2;
        assert_int_equal(core_assign(&f.e, id, n, NULL, 0, &b), AB_OK);
        t[a.arm * 3 + b.arm]++;
        same += a.arm == b.arm;
    }
    double x2 = chisq_indep(t, 3, 3);
    double agree = (double)same / N_UNITS;
    /* independence predicts agreement sum_i w_i^2 = 1/3 (to 1e-12) */
    print_message("v1 by v2 3x3: X2 = %.3f (df 4), agreement %.5f\n", x2,
                  agree);
    assert_true(x2 < critical(4, 18.467));
    /* 4.5 binomial standard errors, sqrt(p (1 - p) / n) = 0.000471 */
    assert_near(agree, 1.0 / 3.0, 4.5 * sqrt(2.0 / 9.0 / N_UNITS));
}

static void
test_salt_and_purpose_change_the_hash(void **state)
{
    (void)state;
    /* the seed input is length-prefixed: ("ab", v) and ("a", ...) can't
     * collide by concatenation; check a few distinct inputs give
     * distinct seeds */
    uint64_t s[6] = {
        core_hash_seed('A', "ab", 2, 1), core_hash_seed('A', "a", 1, 1),
        core_hash_seed('C', "ab", 2, 1), core_hash_seed('L', "ab", 2, 1),
        core_hash_seed('A', "ab", 2, 2), core_hash_seed('A', "", 0, 1),
    };
    for (int i = 0; i < 6; i++)
        for (int j = i + 1; j < 6; j++)
            assert_true(s[i] != s[j]);
    /* a long salt takes the streaming path: same digest as one-shot
     * input assembled by hand */
    char salt[700];
    memset(salt, 's', sizeof(salt));
    unsigned char buf[10 + 1 + 4 + sizeof(salt) + 4];
    memcpy(buf, "arbiter.v1", 10);
    buf[10] = 'A';
    buf[11] = (unsigned char)(sizeof(salt) & 0xff);
    buf[12] = (unsigned char)(sizeof(salt) >> 8);
    buf[13] = buf[14] = 0;
    memcpy(buf + 15, salt, sizeof(salt));
    buf[15 + sizeof(salt)] = 9;
    buf[16 + sizeof(salt)] = buf[17 + sizeof(salt)] = 0;
    buf[18 + sizeof(salt)] = 0;
    assert_int_equal(core_hash_seed('A', salt, sizeof(salt), 9),
                     XXH3_64bits(buf, sizeof(buf)));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_vectors_do_not_update),
        cmocka_unit_test(test_golden_assignments_do_not_update),
        cmocka_unit_test(test_bucket_boundaries_are_exact),
        cmocka_unit_test(test_position_covers_the_range),
        cmocka_unit_test(test_unit_length_limits),
        cmocka_unit_test(test_not_running_gets_control_with_its_reason),
        cmocka_unit_test(test_forced_units_win_over_everything_but_state),
        cmocka_unit_test(test_targeting_then_layer_then_coverage),
        cmocka_unit_test(test_bucket_is_reported_for_every_reason),
        cmocka_unit_test(test_split_is_balanced_over_a_million_units),
        cmocka_unit_test(test_canary_ramp_only_moves_units_from_control),
        cmocka_unit_test(test_raising_coverage_moves_no_included_unit),
        cmocka_unit_test(test_experiments_in_no_shared_layer_are_independent),
        cmocka_unit_test(test_layer_makes_experiments_mutually_exclusive),
        cmocka_unit_test(test_bucket_version_rerandomizes),
        cmocka_unit_test(test_salt_and_purpose_change_the_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
