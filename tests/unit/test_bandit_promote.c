/* test_bandit_promote.c -- the P(best) promotion rule (bandits/promote.h):
 * who leads, when a streak starts, continues, ends and falls due. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "bandits/promote.h"

static const struct bandit_promote_rule RULE = {true, 0.95, 60000};
static const struct bandit_streak NONE = {-1, -1};

static void
test_streak_starts_now(void **state)
{
    const double p[3] = {0.01, 0.97, 0.02};
    struct bandit_promote_step s;
    (void)state;
    assert_int_equal(bandit_promote_step(p, 3, true, &RULE, &NONE, 1000, &s),
                     AB_OK);
    assert_int_equal(s.lead, 1);
    assert_true(s.in_streak);
    assert_false(s.continued);
    assert_int_equal(s.since_ms, 1000);
    assert_false(s.due);
}

static void
test_streak_continues_and_falls_due(void **state)
{
    const double p[3] = {0.01, 0.97, 0.02};
    const struct bandit_streak prev = {1, 1000};
    struct bandit_promote_step s;
    (void)state;
    assert_int_equal(bandit_promote_step(p, 3, true, &RULE, &prev, 60999, &s),
                     AB_OK);
    assert_true(s.continued);
    assert_int_equal(s.since_ms, 1000);
    assert_false(s.due); /* 59.999 s held */
    assert_int_equal(bandit_promote_step(p, 3, true, &RULE, &prev, 61000, &s),
                     AB_OK);
    assert_true(s.due); /* exactly 60 s */
}

static void
test_new_leader_restarts_the_clock(void **state)
{
    const double p[3] = {0.96, 0.03, 0.01};
    const struct bandit_streak prev = {1, 1000};
    struct bandit_promote_step s;
    (void)state;
    assert_int_equal(bandit_promote_step(p, 3, true, &RULE, &prev, 90000, &s),
                     AB_OK);
    assert_int_equal(s.lead, 0);
    assert_false(s.continued);
    assert_int_equal(s.since_ms, 90000);
    assert_false(s.due);
}

static void
test_below_threshold_or_not_adaptive_or_disabled_is_no_streak(void **state)
{
    const double low[2] = {0.9, 0.1}, high[2] = {0.99, 0.01};
    const struct bandit_streak prev = {0, 0};
    struct bandit_promote_rule off = RULE;
    struct bandit_promote_step s;
    (void)state;
    off.enabled = false;
    assert_int_equal(bandit_promote_step(low, 2, true, &RULE, &prev, 1e6, &s),
                     AB_OK);
    assert_int_equal(s.lead, 0); /* still reported */
    assert_false(s.in_streak);
    assert_int_equal(s.since_ms, -1);
    assert_false(s.due);
    assert_int_equal(bandit_promote_step(high, 2, false, &RULE, &prev, 1e6, &s),
                     AB_OK);
    assert_false(s.in_streak);
    assert_int_equal(bandit_promote_step(high, 2, true, &off, &prev, 1e6, &s),
                     AB_OK);
    assert_false(s.in_streak);
}

static void
test_unknown_start_is_a_new_streak(void **state)
{
    const double p[2] = {0.01, 0.99};
    const struct bandit_streak prev = {1, -1};
    struct bandit_promote_step s;
    (void)state;
    assert_int_equal(bandit_promote_step(p, 2, true, &RULE, &prev, 5000, &s),
                     AB_OK);
    assert_false(s.continued);
    assert_int_equal(s.since_ms, 5000);
}

static void
test_threshold_is_inclusive_and_ties_go_low(void **state)
{
    const double p[3] = {0.95, 0.95, 0.0}; /* not a distribution: a probe */
    struct bandit_promote_step s;
    (void)state;
    assert_int_equal(bandit_promote_step(p, 3, true, &RULE, &NONE, 0, &s),
                     AB_OK);
    assert_int_equal(s.lead, 0);
    assert_true(s.in_streak);
}

static void
test_promotion_weights_and_refusal(void **state)
{
    uint32_t m[4];
    struct bandit_promote_step s = {9, true, true, 9, true};
    (void)state;
    bandit_promote_weights(2, 4, 1000000u, m);
    assert_int_equal(m[0], 0);
    assert_int_equal(m[1], 0);
    assert_int_equal(m[2], 1000000);
    assert_int_equal(m[3], 0);
    assert_int_equal(bandit_promote_step(NULL, 0, true, &RULE, &NONE, 0, &s),
                     AB_EINVAL);
    assert_int_equal(s.lead, 9); /* untouched */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_streak_starts_now),
        cmocka_unit_test(test_streak_continues_and_falls_due),
        cmocka_unit_test(test_new_leader_restarts_the_clock),
        cmocka_unit_test(
            test_below_threshold_or_not_adaptive_or_disabled_is_no_streak),
        cmocka_unit_test(test_unknown_start_is_a_new_streak),
        cmocka_unit_test(test_threshold_is_inclusive_and_ties_go_low),
        cmocka_unit_test(test_promotion_weights_and_refusal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
