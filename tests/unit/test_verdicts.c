/* test_verdicts.c -- service/verdicts.c: which answer the verdict route
 * gives (the recorded decision while the snapshot has not moved past it,
 * the snapshot's state once it has), and the metrics text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "service/verdicts.h"

static struct core_arm arms[2] = {
    {.name = "stable", .model = "m@1", .weight = 900000, .control = true},
    {.name = "next", .model = "m@2", .weight = 100000},
};

static struct core_experiment
canary(enum core_state state, int64_t version)
{
    struct core_experiment e = {0};
    e.key = "ranker";
    e.strategy = CORE_STRATEGY_CANARY;
    e.state = state;
    e.arms = arms;
    e.n_arms = 2;
    e.control = 0;
    e.version = version;
    return e;
}

static struct core_rollout_decision
decision(enum core_rollout_action a, size_t step, uint32_t weight)
{
    struct core_rollout_decision d = {0};
    d.action = a;
    snprintf(d.reason, sizeof(d.reason), "because");
    d.candidate_weight = weight;
    d.next.phase = CORE_PHASE_RAMP;
    d.next.step = step;
    return d;
}

static int
reset(void **state)
{
    (void)state;
    verdicts_reset();
    return 0;
}

static void
test_no_decision_follows_the_state(void **state)
{
    (void)state;
    struct verdict v;
    struct core_experiment e = canary(CORE_STATE_RUNNING, 3);
    verdicts_get(&e, &v);
    assert_string_equal(v.verdict, "continue");
    assert_int_equal(v.decided_at_ms, 0);
    assert_int_equal(v.step, -1);
    assert_true(v.share == 10.0);
    assert_string_equal(v.reason, "no rollout decision yet");
    e.state = CORE_STATE_PAUSED;
    verdicts_get(&e, &v);
    assert_string_equal(v.verdict, "paused");
    assert_string_equal(v.reason, "the experiment is paused");
    e.state = CORE_STATE_ROLLED_BACK;
    verdicts_get(&e, &v);
    assert_string_equal(v.verdict, "rollback");
    assert_true(v.share == 0.0);
    e.state = CORE_STATE_PROMOTED;
    e.served_arm = 1;
    verdicts_get(&e, &v);
    assert_string_equal(v.verdict, "promote");
    assert_true(v.share == 100.0);
}

static void
test_decision_wins_until_the_snapshot_moves_on(void **state)
{
    (void)state;
    struct verdict v;
    struct core_experiment e = canary(CORE_STATE_RUNNING, 7);
    struct core_rollout_decision d = decision(CORE_ACTION_ADVANCE, 1, 500000);
    verdicts_record(&e, &d, AB_OK, 1000);
    verdicts_get(&e, &v);
    assert_string_equal(v.verdict, "continue");
    assert_string_equal(v.phase, "ramp");
    assert_int_equal(v.step, 1);
    assert_true(v.share == 50.0);
    assert_int_equal(v.decided_at_ms, 1000);
    assert_string_equal(v.reason, "because");
    /* a rollback decided on version 8: the snapshot still holds 8 */
    e.version = 8;
    d = decision(CORE_ACTION_ROLLBACK, 1, 0);
    verdicts_record(&e, &d, AB_OK, 2000);
    verdicts_get(&e, &v);
    assert_string_equal(v.verdict, "rollback");
    assert_true(v.share == 0.0);
    /* the reload shows it: state rolled back, still the same decision */
    e.version = 9;
    e.state = CORE_STATE_ROLLED_BACK;
    verdicts_get(&e, &v);
    assert_string_equal(v.verdict, "rollback");
    assert_string_equal(v.reason, "because");
    assert_int_equal(v.decided_at_ms, 2000);
    /* restarted by an admin: running again, the old rollback is history */
    e.version = 12;
    e.state = CORE_STATE_RUNNING;
    verdicts_get(&e, &v);
    assert_string_equal(v.verdict, "continue");
    assert_string_equal(v.reason,
                        "the experiment changed after the last decision");
    assert_int_equal(v.step, -1);
}

static void
test_a_tick_without_a_rule_says_so(void **state)
{
    (void)state;
    struct verdict v;
    struct core_experiment e = canary(CORE_STATE_RUNNING, 5);
    struct core_rollout_decision d = decision(CORE_ACTION_NONE, 2, 0);
    d.reason[0] = '\0';
    verdicts_record(&e, &d, AB_OK, 500);
    verdicts_get(&e, &v);
    assert_string_equal(v.verdict, "continue");
    assert_string_equal(v.reason, "no rule fired at the last evaluation");
    assert_string_equal(v.action, "none");
    assert_true(v.share == 10.0); /* the snapshot's weight, unchanged */
}

static void
test_failed_writes_are_not_decisions(void **state)
{
    (void)state;
    struct verdict v;
    struct core_experiment e = canary(CORE_STATE_RUNNING, 4);
    struct core_rollout_decision d = decision(CORE_ACTION_ROLLBACK, 0, 0);
    verdicts_record(&e, &d, AB_EDB, 1000);
    verdicts_record(&e, &d, AB_ECONFLICT, 1000);
    verdicts_get(&e, &v);
    assert_string_equal(v.verdict, "continue");
    assert_int_equal(v.decided_at_ms, 0);
}

static void
test_metrics_text(void **state)
{
    (void)state;
    struct core_experiment e = canary(CORE_STATE_RUNNING, 1);
    struct core_rollout_decision d = decision(CORE_ACTION_ADVANCE, 0, 100000);
    verdicts_record(&e, &d, AB_OK, 1);
    verdicts_record(&e, &d, AB_OK, 2);
    const struct core_experiment *list[] = {&e};
    char *text;
    size_t len;
    verdicts_metrics_render(list, 1, NULL, &text, &len);
    assert_int_equal(strlen(text), len);
    const char *want[] = {
        "arbiter_experiment_state{experiment=\"ranker\",state=\"running\"} 1\n",
        "arbiter_experiment_state{experiment=\"ranker\",state=\"paused\"} 0\n",
        "arbiter_rollout_candidate_share{experiment=\"ranker\"} 10\n",
        "arbiter_rollout_verdict{experiment=\"ranker\",verdict=\"continue\"} 1\n",
        "arbiter_rollout_verdict{experiment=\"ranker\",verdict=\"rollback\"} 0\n",
        "arbiter_rollout_decisions_total{experiment=\"ranker\","
        "action=\"advance\"} 2\n",
        "arbiter_rollout_decisions_total{experiment=\"ranker\","
        "action=\"rollback\"} 0\n",
        "# TYPE arbiter_rollout_decisions_total counter\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (strstr(text, want[i]) == NULL)
            fail_msg("missing: %s\nin:\n%s", want[i], text);
    free(text);
}

/* The label-set limit: an experiment past it is rendered under
 * experiment="other" (states and verdicts counted, decisions summed, no
 * share); the labelled one keeps its own series. */
static void
test_metrics_text_folds_unlabelled(void **state)
{
    (void)state;
    struct core_experiment e = canary(CORE_STATE_RUNNING, 1);
    struct core_experiment g = canary(CORE_STATE_PAUSED, 1);
    g.key = "search";
    struct core_experiment h = canary(CORE_STATE_RUNNING, 1);
    h.key = "ads";
    struct core_rollout_decision d =
        decision(CORE_ACTION_ADVANCE, 1, 100000);
    verdicts_record(&g, &d, AB_OK, 1);
    verdicts_record(&h, &d, AB_OK, 2);
    const struct core_experiment *list[] = {&e, &g, &h};
    const bool labelled[] = {true, false, false};
    char *text;
    size_t len;
    verdicts_metrics_render(list, 3, labelled, &text, &len);
    assert_int_equal(strlen(text), len);
    const char *want[] = {
        "arbiter_experiment_state{experiment=\"ranker\",state=\"running\"} 1\n",
        "arbiter_experiment_state{experiment=\"other\",state=\"running\"} 1\n",
        "arbiter_experiment_state{experiment=\"other\",state=\"paused\"} 1\n",
        "arbiter_experiment_state{experiment=\"other\",state=\"draft\"} 0\n",
        "arbiter_rollout_decisions_total{experiment=\"other\","
        "action=\"advance\"} 2\n",
        "arbiter_rollout_decisions_total{experiment=\"ranker\","
        "action=\"advance\"} 0\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (strstr(text, want[i]) == NULL)
            fail_msg("missing: %s\nin:\n%s", want[i], text);
    assert_null(strstr(text, "\"search\""));
    assert_null(strstr(text, "\"ads\""));
    assert_null(strstr(text, "candidate_share{experiment=\"other\""));
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_no_decision_follows_the_state, reset),
        cmocka_unit_test_setup(test_decision_wins_until_the_snapshot_moves_on,
                               reset),
        cmocka_unit_test_setup(test_a_tick_without_a_rule_says_so, reset),
        cmocka_unit_test_setup(test_failed_writes_are_not_decisions, reset),
        cmocka_unit_test_setup(test_metrics_text, reset),
        cmocka_unit_test_setup(test_metrics_text_folds_unlabelled, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
