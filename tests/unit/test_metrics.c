/* test_metrics.c -- lib/metrics.c: the label-set limit of /metrics (issue
 * 14). Label sets naming an experiment past the limit are folded into
 * experiment="other", each counted once as dropped; the admitted ones keep
 * their own series and their own counts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "lib/metrics.h"

static const char *const patterns[] = {"/v1/assign"};
static const char *const methods[] = {"GET"};

static int
setup(void **state)
{
    (void)state;
    metrics_init(1, patterns, methods);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    metrics_free();
    return 0;
}

static char *
render(void)
{
    char *text;
    size_t len;
    metrics_render(&text, &len);
    assert_int_equal(strlen(text), len);
    return text;
}

static void
expect_line(const char *text, const char *line)
{
    if (strstr(text, line) == NULL)
        fail_msg("missing: %s\nin:\n%s", line, text);
}

static void
expect_no(const char *text, const char *part)
{
    if (strstr(text, part) != NULL)
        fail_msg("unexpected: %s\nin:\n%s", part, text);
}

/* Limit 5: e1 (1 + 2 arms) and e2 (1 + 1 arm) fit; e2's second arm and
 * all of e3 are folded. */
static void
test_label_sets_past_the_limit_are_folded(void **state)
{
    (void)state;
    metrics_set_label_limit(5);
    assert_true(metrics_experiment_labelled("e1"));
    _Atomic uint64_t *a = metrics_assign_counter("e1", "control");
    _Atomic uint64_t *b = metrics_assign_counter("e1", "treat");
    assert_true(metrics_experiment_labelled("e2"));
    _Atomic uint64_t *c = metrics_assign_counter("e2", "control");
    _Atomic uint64_t *d = metrics_assign_counter("e2", "treat");
    assert_false(metrics_experiment_labelled("e3"));
    _Atomic uint64_t *e = metrics_assign_counter("e3", "control");
    _Atomic uint64_t *f = metrics_assign_counter("e3", "treat");
    assert_true(a != b && b != c && c != d);
    assert_ptr_equal(d, e); /* one "other" counter */
    assert_ptr_equal(e, f);
    /* the same label set again: the same answer, nothing counted twice */
    assert_ptr_equal(metrics_assign_counter("e1", "treat"), b);
    assert_ptr_equal(metrics_assign_counter("e3", "treat"), f);
    assert_false(metrics_experiment_labelled("e3"));
    assert_true(metrics_experiment_labelled("e1"));
    atomic_fetch_add(a, 7);
    atomic_fetch_add(b, 3);
    atomic_fetch_add(c, 1);
    atomic_fetch_add(d, 2); /* e2/treat */
    atomic_fetch_add(e, 4); /* e3/control */
    atomic_fetch_add(f, 5); /* e3/treat */
    char *text = render();
    expect_line(text, "arbiter_assignments_total{experiment=\"e1\","
                      "arm=\"control\"} 7\n");
    expect_line(text, "arbiter_assignments_total{experiment=\"e1\","
                      "arm=\"treat\"} 3\n");
    expect_line(text, "arbiter_assignments_total{experiment=\"e2\","
                      "arm=\"control\"} 1\n");
    expect_line(text, "arbiter_assignments_total{experiment=\"other\","
                      "arm=\"other\"} 11\n");
    expect_no(text, "experiment=\"e3\"");
    expect_no(text, "arm=\"treat\"} 2\n");
    expect_line(text, "arbiter_metrics_label_sets 5\n");
    expect_line(text, "arbiter_metrics_label_sets_limit 5\n");
    /* e2/treat, e3, e3/control, e3/treat */
    expect_line(text, "arbiter_metrics_label_sets_dropped_total 4\n");
    expect_line(text, "# TYPE arbiter_metrics_label_sets_dropped_total "
                      "counter\n");
    free(text);
    /* a new experiment later moves the dropped counter */
    assert_false(metrics_experiment_labelled("e4"));
    metrics_assign_counter("e4", "x");
    text = render();
    expect_line(text, "arbiter_metrics_label_sets_dropped_total 6\n");
    free(text);
}

static void
test_no_limit_by_default(void **state)
{
    (void)state;
    char key[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof(key), "x%d", i);
        assert_true(metrics_experiment_labelled(key));
        atomic_fetch_add(metrics_assign_counter(key, "a"), 1);
    }
    char *text = render();
    expect_line(text, "arbiter_assignments_total{experiment=\"x2999\","
                      "arm=\"a\"} 1\n");
    expect_no(text, "{experiment=\"other\"");
    expect_line(text, "arbiter_metrics_label_sets 6000\n");
    expect_line(text, "arbiter_metrics_label_sets_limit 0\n");
    expect_line(text, "arbiter_metrics_label_sets_dropped_total 0\n");
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_label_sets_past_the_limit_are_folded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_limit_by_default, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
