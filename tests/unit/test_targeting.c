/* test_targeting.c -- targeting rules: every operator, missing attributes
 * (no rule matches, not even ne / not_in), non-numeric values against
 * numeric rules, semver precedence, ANDed rules.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "core/assign.h"

/* A rule over attribute "x" with operands 'vals' (NULL-terminated). */
struct rule_fx {
    struct core_rule r;
    char *vals[8];
};

static void
rule_init(struct rule_fx *f, enum core_op op, const char *const *vals,
          double number)
{
    memset(f, 0, sizeof(*f));
    f->r.attribute = (char *)"x";
    f->r.op = op;
    size_t n = 0;
    while (vals != NULL && vals[n] != NULL && n < 8) {
        f->vals[n] = (char *)vals[n];
        n++;
    }
    f->r.values = n > 0 ? f->vals : NULL;
    f->r.n_values = n;
    f->r.number = number;
    if (op >= CORE_OP_SEMVER_EQ && op <= CORE_OP_SEMVER_GE)
        assert_int_equal(core_semver_parse(vals[0], &f->r.semver), AB_OK);
}

/* Does value 'v' (NULL: attribute missing) match? */
static bool
m(const struct rule_fx *f, const char *v)
{
    struct core_attr attrs[2] = { { "other", "1" }, { "x", v } };
    return core_rule_match(&f->r, attrs, v == NULL ? 1 : 2);
}

static void
test_eq_ne(void **state)
{
    (void)state;
    struct rule_fx f;
    const char *de[] = { "DE", NULL };
    rule_init(&f, CORE_OP_EQ, de, 0);
    assert_true(m(&f, "DE"));
    assert_false(m(&f, "de")); /* byte-wise, case matters */
    assert_false(m(&f, "DE "));
    assert_false(m(&f, ""));
    assert_false(m(&f, NULL));
    rule_init(&f, CORE_OP_NE, de, 0);
    assert_false(m(&f, "DE"));
    assert_true(m(&f, "US"));
    assert_true(m(&f, ""));
    assert_false(m(&f, NULL)); /* missing: not matched (documented) */
    const char *n42[] = { "42", NULL };
    rule_init(&f, CORE_OP_EQ, n42, 0);
    assert_true(m(&f, "42"));
    assert_false(m(&f, "42.0")); /* string equality, not numeric */
}

static void
test_in_not_in(void **state)
{
    (void)state;
    struct rule_fx f;
    const char *list[] = { "DE", "AT", "CH", NULL };
    rule_init(&f, CORE_OP_IN, list, 0);
    assert_true(m(&f, "DE"));
    assert_true(m(&f, "CH"));
    assert_false(m(&f, "US"));
    assert_false(m(&f, NULL));
    rule_init(&f, CORE_OP_NOT_IN, list, 0);
    assert_false(m(&f, "AT"));
    assert_true(m(&f, "US"));
    assert_false(m(&f, NULL)); /* missing: not matched (documented) */
}

static void
test_numeric(void **state)
{
    (void)state;
    struct rule_fx f;
    const char *v18[] = { "18", NULL };
    rule_init(&f, CORE_OP_GE, v18, 18);
    assert_true(m(&f, "18"));
    assert_true(m(&f, "18.0"));
    assert_true(m(&f, "1.8e1"));
    assert_true(m(&f, "99"));
    assert_false(m(&f, "17.999"));
    assert_false(m(&f, "-20"));
    /* non-numeric attributes never match a numeric rule */
    assert_false(m(&f, "abc"));
    assert_false(m(&f, ""));
    assert_false(m(&f, "20abc"));
    assert_false(m(&f, " 20"));
    assert_false(m(&f, "20 "));
    assert_false(m(&f, "inf"));
    assert_false(m(&f, "nan"));
    assert_false(m(&f, "0x20"));
    assert_false(m(&f, "1e999")); /* overflows to inf */
    assert_false(m(&f, "true"));
    assert_false(m(&f, NULL));
    rule_init(&f, CORE_OP_GT, v18, 18);
    assert_false(m(&f, "18"));
    assert_true(m(&f, "18.5"));
    rule_init(&f, CORE_OP_LT, v18, 18);
    assert_true(m(&f, "17"));
    assert_true(m(&f, "-1e3"));
    assert_false(m(&f, "18"));
    assert_false(m(&f, "abc"));
    rule_init(&f, CORE_OP_LE, v18, 18);
    assert_true(m(&f, "18"));
    assert_false(m(&f, "18.0001"));
    const char *half[] = { "0.5", NULL };
    rule_init(&f, CORE_OP_LT, half, 0.5);
    assert_true(m(&f, "0.49"));
    assert_true(m(&f, "-0"));
    assert_false(m(&f, ".5"));
    assert_true(m(&f, ".4"));
}

static void
test_semver_ops(void **state)
{
    (void)state;
    struct rule_fx f;
    const char *v[] = { "2.1.0", NULL };
    rule_init(&f, CORE_OP_SEMVER_GE, v, 0);
    assert_true(m(&f, "2.1.0"));
    assert_true(m(&f, "v2.1"));
    assert_true(m(&f, "2.10.0")); /* not a string comparison */
    assert_true(m(&f, "2.1.0+build.7"));
    assert_false(m(&f, "2.1.0-rc.1")); /* pre-release is lower */
    assert_false(m(&f, "2.0.99"));
    assert_false(m(&f, "2.1.x")); /* unparsable never matches */
    assert_false(m(&f, ""));
    assert_false(m(&f, NULL));
    rule_init(&f, CORE_OP_SEMVER_LT, v, 0);
    assert_true(m(&f, "2.1.0-rc.1"));
    assert_true(m(&f, "1.99.99"));
    assert_false(m(&f, "2.1.0"));
    assert_false(m(&f, "garbage"));
    rule_init(&f, CORE_OP_SEMVER_LE, v, 0);
    assert_true(m(&f, "2.1.0"));
    assert_false(m(&f, "2.1.1"));
    rule_init(&f, CORE_OP_SEMVER_GT, v, 0);
    assert_true(m(&f, "2.1.1"));
    assert_false(m(&f, "2.1.0+b"));
    rule_init(&f, CORE_OP_SEMVER_EQ, v, 0);
    assert_true(m(&f, "2.1.0+b"));
    assert_true(m(&f, "2.1"));
    assert_false(m(&f, "2.1.0-alpha"));
}

static void
test_exists(void **state)
{
    (void)state;
    struct rule_fx f;
    rule_init(&f, CORE_OP_EXISTS, NULL, 0);
    assert_true(m(&f, "anything"));
    assert_true(m(&f, "")); /* present but empty still exists */
    assert_false(m(&f, NULL));
}

static void
test_rules_are_anded_and_first_duplicate_counts(void **state)
{
    (void)state;
    struct rule_fx a, b;
    const char *de[] = { "DE", NULL };
    const char *v18[] = { "18", NULL };
    rule_init(&a, CORE_OP_EQ, de, 0);
    a.r.attribute = (char *)"country";
    rule_init(&b, CORE_OP_GE, v18, 18);
    b.r.attribute = (char *)"age";
    struct core_rule rules[2] = { a.r, b.r };
    struct core_experiment e;
    memset(&e, 0, sizeof(e));
    e.rules = rules;
    e.n_rules = 2;
    struct core_attr both[] = { { "country", "DE" }, { "age", "30" } };
    struct core_attr young[] = { { "country", "DE" }, { "age", "12" } };
    struct core_attr dup[] = { { "country", "US" }, { "country", "DE" },
                               { "age", "30" } };
    assert_true(core_targeting_match(&e, both, 2));
    assert_false(core_targeting_match(&e, young, 2));
    assert_false(core_targeting_match(&e, both, 1)); /* age missing */
    assert_false(core_targeting_match(&e, dup, 3));  /* first counts */
    assert_false(core_targeting_match(&e, NULL, 0));
    e.n_rules = 0; /* no rules: everyone */
    assert_true(core_targeting_match(&e, NULL, 0));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eq_ne),
        cmocka_unit_test(test_in_not_in),
        cmocka_unit_test(test_numeric),
        cmocka_unit_test(test_semver_ops),
        cmocka_unit_test(test_exists),
        cmocka_unit_test(test_rules_are_anded_and_first_duplicate_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
