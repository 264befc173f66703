/* test_watch_json.c -- the definition fields of issue 16, part C: a
 * metric's "drift" (codec/experiment_json.c) and the rollout's holdback
 * settings (codec/rollout_json.c): defaults, values, refusals with their
 * messages, and canonical output printed only when on (so that existing
 * definitions stay byte-identical).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "codec/experiment_json.h"
#include "codec/rollout_json.h"
#include "core/rollout.h"

static json_t *
doc_with(const char *metrics, const char *rollout)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "{\"key\":\"w\",\"strategy\":\"canary\",\"arms\":["
             "{\"name\":\"a\",\"weight\":100,\"control\":true},"
             "{\"name\":\"b\",\"weight\":0}],\"metrics\":%s,\"rollout\":%s}",
             metrics, rollout);
    json_t *d = json_loads(text, 0, NULL);
    assert_non_null(d);
    return d;
}

static ab_status
parse(const char *metrics, const char *rollout, struct core_experiment **e,
      char *err, size_t len)
{
    json_t *d = doc_with(metrics, rollout);
    ab_status rc = api_experiment_parse(d, e, err, len);
    json_decref(d);
    return rc;
}

static void
test_drift_defaults_values_and_output(void **state)
{
    (void)state;
    struct core_experiment *e = NULL;
    char err[256] = "";
    assert_int_equal(parse("[{\"name\":\"x\",\"kind\":\"mean\"},"
                           "{\"name\":\"age\",\"kind\":\"mean\","
                           "\"drift\":{}},"
                           "{\"name\":\"s\",\"kind\":\"mean\",\"drift\":"
                           "{\"reference_s\":60,\"window_s\":30,"
                           "\"interval_s\":5,\"bins\":20,\"alpha\":0.05,"
                           "\"min_values\":50}}]",
                           "null", &e, err, sizeof(err)),
                     AB_OK);
    assert_false(e->metrics[0].drift.on);
    const struct core_drift *d = &e->metrics[1].drift;
    assert_true(d->on);
    assert_int_equal(d->reference_s, 3600);
    assert_int_equal(d->window_s, 3600);
    assert_int_equal(d->interval_s, 60);
    assert_int_equal(d->bins, 10);
    assert_true(d->alpha == 0.01);
    assert_int_equal(d->min_values, 100);
    d = &e->metrics[2].drift;
    assert_int_equal(d->reference_s, 60);
    assert_int_equal(d->window_s, 30);
    assert_int_equal(d->interval_s, 5);
    assert_int_equal(d->bins, 20);
    assert_true(d->alpha == 0.05);
    assert_int_equal(d->min_values, 50);
    json_t *def = api_experiment_definition(e);
    json_t *ms = json_object_get(def, "metrics");
    assert_null(json_object_get(json_array_get(ms, 0), "drift"));
    json_t *want = json_loads("{\"alpha\":0.05,\"bins\":20,\"interval_s\":5,"
                              "\"min_values\":50,\"reference_s\":60,"
                              "\"window_s\":30}",
                              0, NULL);
    bool same =
        json_equal(json_object_get(json_array_get(ms, 2), "drift"), want);
    json_decref(want);
    assert_true(same);
    /* the canonical output parses back to an equal experiment */
    struct core_experiment *e2 = NULL;
    assert_int_equal(api_experiment_parse(def, &e2, err, sizeof(err)), AB_OK);
    assert_true(core_experiment_equal(e, e2));
    e2->metrics[2].drift.bins = 11;
    assert_false(core_experiment_equal(e, e2));
    json_decref(def);
    core_experiment_free(e);
    core_experiment_free(e2);
}

static void
test_drift_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *drift, *want;
    } cases[] = {
        {"[]", "metrics[0].drift: must be an object or null"},
        {"{\"bins\":1}",
         "metrics[0].drift.bins: must be an integer between 2 and 100"},
        {"{\"alpha\":0.6}",
         "metrics[0].drift.alpha: must be a number in (0, 0.5]"},
        {"{\"window_s\":0}",
         "metrics[0].drift.window_s: must be an integer between 1 and "
         "31536000"},
        {"{\"min_values\":5}",
         "metrics[0].drift.min_values: must be an integer between 10 and "
         "20000"},
        {"{\"window\":3}", "metrics[0].drift.window: unknown field"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char metrics[256], err[256] = "";
        snprintf(metrics, sizeof(metrics),
                 "[{\"name\":\"x\",\"kind\":\"mean\",\"drift\":%s}]",
                 cases[i].drift);
        struct core_experiment *e = NULL;
        assert_int_equal(parse(metrics, "null", &e, err, sizeof(err)),
                         AB_EINVAL);
        assert_null(e);
        assert_string_equal(err, cases[i].want);
    }
}

static void
test_holdback_settings(void **state)
{
    (void)state;
    struct core_rollout_config c;
    char err[256] = "";
    json_t *r = json_loads("{\"holdback_pct\":2.5,\"holdback_s\":600,"
                           "\"holdback_alpha\":0.01}",
                           0, NULL);
    assert_int_equal(api_rollout_parse(r, NULL, &c, err, sizeof(err)), AB_OK);
    assert_int_equal(c.holdback_share, 25000);
    assert_int_equal(c.holdback_s, 600);
    assert_true(c.holdback_alpha == 0.01);
    json_t *out = api_rollout_json(&c);
    assert_true(json_number_value(json_object_get(out, "holdback_pct")) ==
                2.5);
    assert_int_equal(json_integer_value(json_object_get(out, "holdback_s")),
                     600);
    json_decref(out);
    json_decref(r);
    /* off by default, and then not printed */
    core_rollout_config_default(&c);
    assert_int_equal(c.holdback_share, 0);
    assert_int_equal(c.holdback_s, 86400);
    assert_true(c.holdback_alpha == 0.05);
    out = api_rollout_json(&c);
    assert_null(json_object_get(out, "holdback_pct"));
    assert_null(json_object_get(out, "holdback_s"));
    json_decref(out);
    static const struct {
        const char *rollout, *want;
    } bad[] = {
        {"{\"holdback_pct\":60}", "rollout.holdback_pct: must be in [0, 50]"},
        {"{\"holdback_pct\":1.00001}",
         "rollout.holdback_pct: must be a percentage with at most 4 "
         "decimals"},
        {"{\"holdback_s\":-1}",
         "rollout.holdback_s: must be a non-negative integer"},
        {"{\"holdback_alpha\":0}",
         "rollout.holdback_alpha: must be in (0, 0.5]"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = json_loads(bad[i].rollout, 0, NULL);
        assert_int_equal(api_rollout_parse(r, NULL, &c, err, sizeof(err)),
                         AB_EINVAL);
        assert_string_equal(err, bad[i].want);
        json_decref(r);
    }
    /* a holdback needs two arms */
    struct core_experiment *e = NULL;
    json_t *d = json_loads(
        "{\"key\":\"w\",\"strategy\":\"ab\",\"arms\":["
        "{\"name\":\"a\",\"weight\":40,\"control\":true},"
        "{\"name\":\"b\",\"weight\":30},{\"name\":\"c\",\"weight\":30}],"
        "\"rollout\":{\"holdback_pct\":2}}",
        0, NULL);
    assert_int_equal(api_experiment_parse(d, &e, err, sizeof(err)),
                     AB_EINVAL);
    assert_non_null(strstr(err, "holdback_pct"));
    json_decref(d);
}

/* The rollout object's keys come out in one fixed order (the field table
 * of codec/rollout_json.c; the order definitions were always printed in),
 * the holdback's three only when it is on, and what is printed parses
 * back to the same object. */
static void
test_rollout_order_and_round_trip(void **state)
{
    (void)state;
    static const char *const order[] = {
        "alpha", "tuning", "margin", "auto_promote", "max_duration_s",
        "max_units", "steps", "step_min_s", "step_min_units", "step_max_s",
        "require_evidence", "manual_approval", "adaptive", "error_metric",
        "smoke_s", "rollback_window_s", "shadow_min_s", "shadow_min_units",
        "then", "no_traffic_s", "min_test_units", "rollback_alpha",
        "plan_power", "plan_error_ratio", "plan_regression", "holdback_pct",
        "holdback_s", "holdback_alpha", "paired"};
    static const char *const docs[] = {
        "{}",
        "{\"alpha\":0.1,\"tuning\":100,\"margin\":0.05,\"auto_promote\":"
        "false,\"max_duration_s\":3600,\"max_units\":1e6,\"steps\":[1,2.5,"
        "50,100],\"step_min_s\":5,\"step_min_units\":7,\"step_max_s\":99,"
        "\"require_evidence\":true,\"manual_approval\":true,\"adaptive\":"
        "true,\"smoke_s\":3,\"rollback_window_s\":4,\"shadow_min_s\":8,"
        "\"shadow_min_units\":9,\"then\":\"stop\",\"no_traffic_s\":11,"
        "\"min_test_units\":12,\"plan_power\":0.9,\"plan_error_ratio\":3,"
        "\"plan_regression\":0.2,\"rollback_alpha\":0.01,\"holdback_pct\":"
        "0.0625,\"holdback_s\":60,\"holdback_alpha\":0.1}"};
    for (size_t d = 0; d < 2; d++) {
        struct core_rollout_config c, again;
        char err[256] = "";
        json_t *in = json_loads(docs[d], 0, NULL);
        assert_int_equal(api_rollout_parse(in, NULL, &c, err, sizeof(err)),
                         AB_OK);
        json_t *out = api_rollout_json(&c);
        size_t k = 0;
        for (void *it = json_object_iter(out); it != NULL;
             it = json_object_iter_next(out, it), k++) {
            if (d == 0 && strncmp(order[k], "holdback_", 9) == 0)
                k += 3; /* off: not printed */
            assert_string_equal(json_object_iter_key(it), order[k]);
        }
        assert_int_equal(k, sizeof(order) / sizeof(order[0]));
        assert_int_equal(api_rollout_parse(out, NULL, &again, err,
                                           sizeof(err)),
                         AB_OK);
        json_t *twice = api_rollout_json(&again);
        assert_true(json_equal(out, twice));
        if (d == 1) {
            assert_int_equal(c.max_units, 1000000);
            assert_int_equal(c.holdback_share, 625);
            assert_int_equal(c.then, CORE_THEN_STOP);
            assert_true(json_number_value(json_object_get(out,
                                                          "holdback_pct")) ==
                        0.0625);
        }
        json_decref(twice);
        json_decref(out);
        json_decref(in);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drift_defaults_values_and_output),
        cmocka_unit_test(test_drift_refusals),
        cmocka_unit_test(test_holdback_settings),
        cmocka_unit_test(test_rollout_order_and_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
