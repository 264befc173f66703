/* test_experiment_json.c -- the definition parser: every refusal names its
 * field exactly, defaults are filled in, numbers convert exactly, and the
 * canonical definition round-trips: parse(definition(e)) == e.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "codec/experiment_json.h"
#include "codec/rollout_json.h"
#include "core/assign.h"

/* A valid definition every error case starts from. */
static const char base_doc[] =
    "{\"key\":\"ranker-v2\",\"arms\":["
    "{\"name\":\"control\",\"weight\":50,\"control\":true,"
    "\"model\":\"ranker@1.0.0\"},"
    "{\"name\":\"treatment\",\"weight\":50,\"model\":\"ranker@2.0.0\"}]}";

static json_t *
load(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (j == NULL)
        fail_msg("bad test JSON at %d: %s: %s", je.position, je.text, text);
    return j;
}

/* base_doc with the top-level fields of 'patch' replaced. */
static json_t *
patched(const char *patch)
{
    json_t *d = load(base_doc);
    json_t *p = load(patch);
    json_object_update(d, p);
    json_decref(p);
    return d;
}

static void
expect_error(json_t *doc, const char *want)
{
    struct core_experiment *e = NULL;
    char err[256] = "untouched";
    ab_status rc = api_experiment_parse(doc, &e, err, sizeof(err));
    if (rc != AB_EINVAL || strcmp(err, want) != 0) {
        char *t = json_dumps(doc, JSON_COMPACT);
        print_message("doc:  %s\nwant: %s\ngot:  %s (rc %d)\n", t, want, err,
                      (int)rc);
        free(t);
    }
    assert_int_equal(rc, AB_EINVAL);
    assert_null(e);
    assert_string_equal(err, want);
    json_decref(doc);
}

static struct core_experiment *
parse_ok(json_t *doc)
{
    struct core_experiment *e = NULL;
    char err[256] = "";
    ab_status rc = api_experiment_parse(doc, &e, err, sizeof(err));
    if (rc != AB_OK)
        print_message("unexpected error: %s\n", err);
    assert_int_equal(rc, AB_OK);
    assert_non_null(e);
    json_decref(doc);
    return e;
}

/* ---- defaults and conversions ------------------------------------------- */

static void
test_minimal_definition_gets_every_default(void **state)
{
    (void)state;
    struct core_experiment *e = parse_ok(load(base_doc));
    assert_string_equal(e->key, "ranker-v2");
    assert_string_equal(e->description, "");
    assert_int_equal(e->strategy, CORE_STRATEGY_AB);
    assert_int_equal(e->state, CORE_STATE_DRAFT);
    assert_string_equal(e->unit_type, "user");
    assert_int_equal(e->n_arms, 2);
    assert_int_equal(e->control, 0);
    assert_int_equal(e->arms[0].weight, 500000);
    assert_int_equal(e->arms[1].weight, 500000);
    assert_string_equal(e->arms[1].model, "ranker@2.0.0");
    assert_false(e->arms[1].control);
    assert_int_equal(e->coverage, CORE_SCALE);
    assert_int_equal(e->n_rules, 0);
    assert_int_equal(e->n_forced, 0);
    assert_null(e->layer);
    assert_string_equal(e->salt, "ranker-v2");
    assert_int_equal(e->bucket_version, 1);
    assert_int_equal(e->min_bucket_version, 1);
    assert_false(e->sticky);
    assert_int_equal(e->n_metrics, 0);
    assert_int_equal(e->id, 0);
    assert_int_equal(e->version, 0);
    core_experiment_free(e);
}

static void
test_bandit_is_sticky_by_default(void **state)
{
    (void)state;
    struct core_experiment *e = parse_ok(patched("{\"strategy\":\"bandit\"}"));
    assert_true(e->sticky);
    core_experiment_free(e);
    e = parse_ok(patched("{\"strategy\":\"bandit\",\"sticky\":false}"));
    assert_false(e->sticky);
    core_experiment_free(e);
}

static void
test_weights_with_four_decimals_are_exact(void **state)
{
    (void)state;
    struct core_experiment *e = parse_ok(patched(
        "{\"arms\":[{\"name\":\"a\",\"weight\":33.3333,\"control\":true},"
        "{\"name\":\"b\",\"weight\":33.3333},"
        "{\"name\":\"c\",\"weight\":33.3334}],\"coverage\":0.123456}"));
    assert_int_equal(e->arms[0].weight, 333333);
    assert_int_equal(e->arms[1].weight, 333333);
    assert_int_equal(e->arms[2].weight, 333334);
    assert_int_equal(e->coverage, 123456);
    core_experiment_free(e);

    /* 0.0001 percent is the smallest step: one millionth */
    e = parse_ok(patched(
        "{\"arms\":[{\"name\":\"a\",\"weight\":99.9999,\"control\":true},"
        "{\"name\":\"b\",\"weight\":0.0001}]}"));
    assert_int_equal(e->arms[0].weight, 999999);
    assert_int_equal(e->arms[1].weight, 1);
    core_experiment_free(e);
}

static void
test_forced_units_are_sorted_and_resolved(void **state)
{
    (void)state;
    struct core_experiment *e = parse_ok(patched(
        "{\"forced\":{\"qa-9\":\"control\",\"qa-1\":\"treatment\","
        "\"\\u00e9t\\u00e9\":\"treatment\"}}"));
    assert_int_equal(e->n_forced, 3);
    assert_string_equal(e->forced[0].unit, "qa-1");
    assert_int_equal(e->forced[0].arm, 1);
    assert_string_equal(e->forced[1].unit, "qa-9");
    assert_int_equal(e->forced[1].arm, 0);
    assert_string_equal(e->forced[2].unit, "\xc3\xa9t\xc3\xa9"); /* "été" */
    core_experiment_free(e);
}

static void
test_targeting_operands(void **state)
{
    (void)state;
    struct core_experiment *e = parse_ok(patched(
        "{\"targeting\":["
        "{\"attribute\":\"country\",\"op\":\"in\",\"values\":[\"DE\",7,true]},"
        "{\"attribute\":\"age\",\"op\":\"ge\",\"value\":18.5},"
        "{\"attribute\":\"n\",\"op\":\"lt\",\"value\":42.0},"
        "{\"attribute\":\"app\",\"op\":\"semver_ge\",\"value\":\"v2.1\"},"
        "{\"attribute\":\"beta\",\"op\":\"eq\",\"value\":false},"
        "{\"attribute\":\"id\",\"op\":\"exists\"}]}"));
    assert_int_equal(e->n_rules, 6);
    assert_int_equal(e->rules[0].op, CORE_OP_IN);
    assert_int_equal(e->rules[0].n_values, 3);
    assert_string_equal(e->rules[0].values[0], "DE");
    assert_string_equal(e->rules[0].values[1], "7");
    assert_string_equal(e->rules[0].values[2], "true");
    assert_true(e->rules[1].number == 18.5);
    assert_string_equal(e->rules[1].values[0], "18.5");
    assert_string_equal(e->rules[2].values[0], "42");
    assert_int_equal(e->rules[3].semver.major, 2);
    assert_int_equal(e->rules[3].semver.minor, 1);
    assert_int_equal(e->rules[3].semver.patch, 0);
    assert_string_equal(e->rules[3].values[0], "v2.1");
    assert_string_equal(e->rules[4].values[0], "false");
    assert_int_equal(e->rules[5].op, CORE_OP_EXISTS);
    assert_int_equal(e->rules[5].n_values, 0);
    core_experiment_free(e);
}

/* ---- every refusal, with the exact message ------------------------------ */

static void
test_document_and_key_errors(void **state)
{
    (void)state;
    expect_error(load("[1,2]"), "definition: must be a JSON object");
    expect_error(patched("{\"colour\":\"red\"}"), "colour: unknown field");
    expect_error(patched("{\"state\":\"running\"}"), "state: unknown field");
    json_t *d = load(base_doc);
    json_object_del(d, "key");
    expect_error(d, "key: required");
    expect_error(patched("{\"key\":42}"), "key: must be a string");
    const char *keymsg = "key: must be 1 to 64 characters of A-Z a-z 0-9 _ . "
                         "- starting with a letter or digit";
    expect_error(patched("{\"key\":\"\"}"), keymsg);
    expect_error(patched("{\"key\":\"-lead\"}"), keymsg);
    expect_error(patched("{\"key\":\"has space\"}"), keymsg);
    expect_error(patched("{\"key\":\"a/b\"}"), keymsg);
    expect_error(patched("{\"key\":\"caf\\u00e9\"}"), keymsg);
    char big[66];
    memset(big, 'k', 65);
    big[65] = '\0';
    d = load(base_doc);
    json_object_set_new(d, "key", json_string(big));
    expect_error(d, keymsg); /* 65 bytes */
    big[64] = '\0';
    d = load(base_doc);
    json_object_set_new(d, "key", json_string(big));
    struct core_experiment *e = parse_ok(d); /* 64 bytes is fine */
    assert_int_equal(strlen(e->key), 64);
    core_experiment_free(e);
}

static void
test_description_strategy_unit_type_errors(void **state)
{
    (void)state;
    expect_error(patched("{\"description\":7}"),
                 "description: must be a string");
    json_t *d = load(base_doc);
    char *longdesc = calloc(4098, 1);
    memset(longdesc, 'd', 4097);
    json_object_set_new(d, "description", json_string(longdesc));
    expect_error(d, "description: must be at most 4096 bytes");
    d = load(base_doc);
    longdesc[4096] = '\0';
    json_object_set_new(d, "description", json_string(longdesc));
    struct core_experiment *e = parse_ok(d);
    assert_int_equal(strlen(e->description), 4096);
    core_experiment_free(e);
    free(longdesc);

    const char *smsg =
        "strategy: must be one of ab canary blue_green shadow bandit";
    expect_error(patched("{\"strategy\":\"ramp\"}"), smsg);
    expect_error(patched("{\"strategy\":1}"), smsg);
    expect_error(patched("{\"unit_type\":\"\"}"),
                 "unit_type: must be 1 to 64 characters of A-Z a-z 0-9 _ . -");

    /* NUL inside a string (jansson can carry it with JSON_ALLOW_NUL) */
    json_error_t je;
    d = json_loads("{\"key\":\"a\\u0000b\"}", JSON_ALLOW_NUL, &je);
    assert_non_null(d);
    expect_error(d, "key: must not contain NUL characters");
}

static void
test_arm_errors(void **state)
{
    (void)state;
    json_t *d = load(base_doc);
    json_object_del(d, "arms");
    expect_error(d, "arms: required");
    expect_error(patched("{\"arms\":{}}"), "arms: must be an array");
    expect_error(patched("{\"arms\":[{\"name\":\"a\",\"weight\":100,"
                         "\"control\":true}]}"),
                 "arms: must have 2 to 64 arms (it has 1)");
    expect_error(patched("{\"arms\":[]}"),
                 "arms: must have 2 to 64 arms (it has 0)");
    expect_error(patched("{\"arms\":[{\"name\":\"a\",\"weight\":50,"
                         "\"control\":true},7]}"),
                 "arms[1]: must be an object");
    expect_error(patched("{\"arms\":[{\"name\":\"a\",\"weight\":50,"
                         "\"control\":true},{\"name\":\"b\",\"weight\":50,"
                         "\"colour\":1}]}"),
                 "arms[1].colour: unknown field");
    expect_error(patched("{\"arms\":[{\"name\":\"a\",\"weight\":50,"
                         "\"control\":true},{\"weight\":50}]}"),
                 "arms[1].name: required");
    expect_error(patched("{\"arms\":[{\"name\":\"a\",\"weight\":50,"
                         "\"control\":true},{\"name\":\"\",\"weight\":50}]}"),
                 "arms[1].name: must be 1 to 64 characters of A-Z a-z 0-9 _ "
                 ". -");
    expect_error(patched("{\"arms\":[{\"name\":\"a\",\"weight\":50,"
                         "\"control\":true},{\"name\":\"a\",\"weight\":50}]}"),
                 "arms[1].name: duplicate arm \"a\" (also arms[0])");
    expect_error(patched("{\"arms\":[{\"name\":\"a\",\"weight\":50,"
                         "\"control\":true},{\"name\":\"b\"}]}"),
                 "arms[1].weight: required");
    const char *wmsg = "arms[1].weight: must be a number between 0 and 100";
    expect_error(patched("{\"arms\":[{\"name\":\"a\",\"weight\":150,"
                         "\"control\":true},{\"name\":\"b\",\"weight\":-50}]}"),
                 "arms[0].weight: must be a number between 0 and 100");
    expect_error(patched("{\"arms\":[{\"name\":\"a\",\"weight\":50,"
                         "\"control\":true},{\"name\":\"b\",\"weight\":-50}]}"),
                 wmsg);
    expect_error(patched("{\"arms\":[{\"name\":\"a\",\"weight\":50,"
                         "\"control\":true},{\"name\":\"b\",\"weight\":"
                         "\"50\"}]}"),
                 wmsg);
    expect_error(patched("{\"arms\":[{\"name\":\"a\",\"weight\":50,"
                         "\"control\":true},{\"name\":\"b\",\"weight\":"
                         "1e300}]}"),
                 wmsg);
    expect_error(patched("{\"arms\":[{\"name\":\"a\",\"weight\":50,"
                         "\"control\":true},{\"name\":\"b\",\"weight\":"
                         "9223372036854775807}]}"),
                 wmsg);
    expect_error(patched("{\"arms\":[{\"name\":\"a\",\"weight\":50,"
                         "\"control\":true},{\"name\":\"b\","
                         "\"weight\":null}]}"),
                 wmsg);
    expect_error(patched("{\"arms\":[{\"name\":\"a\",\"weight\":49.99999,"
                         "\"control\":true},{\"name\":\"b\",\"weight\":"
                         "50.00001}]}"),
                 "arms[0].weight: at most 4 decimals");
    expect_error(patched("{\"arms\":[{\"name\":\"a\",\"weight\":50,"
                         "\"control\":true},{\"name\":\"b\","
                         "\"weight\":49.5}]}"),
                 "arms: weights must sum to 100 (they sum to 99.5)");
    expect_error(patched("{\"arms\":[{\"name\":\"a\",\"weight\":33.3333,"
                         "\"control\":true},{\"name\":\"b\","
                         "\"weight\":33.3333},"
                         "{\"name\":\"c\",\"weight\":33.3333}]}"),
                 "arms: weights must sum to 100 (they sum to 99.9999)");
    expect_error(patched("{\"arms\":[{\"name\":\"a\",\"weight\":50,"
                         "\"model\":7,\"control\":true},{\"name\":\"b\","
                         "\"weight\":50}]}"),
                 "arms[0].model: must be a string");
    expect_error(patched("{\"arms\":[{\"name\":\"a\",\"weight\":50,"
                         "\"control\":1},{\"name\":\"b\",\"weight\":50}]}"),
                 "arms[0].control: must be true or false");
    expect_error(patched("{\"arms\":[{\"name\":\"a\",\"weight\":50},"
                         "{\"name\":\"b\",\"weight\":50}]}"),
                 "arms: no control arm (set \"control\": true on one)");
    expect_error(patched("{\"arms\":[{\"name\":\"a\",\"weight\":50,"
                         "\"control\":true},{\"name\":\"b\",\"weight\":50,"
                         "\"control\":true}]}"),
                 "arms[1].control: a second control arm (arms[0] is control)");

    /* model: 256 bytes fine, 257 refused */
    char model[258];
    memset(model, 'm', 257);
    model[257] = '\0';
    json_t *arms = json_pack("[{s:s,s:i,s:b,s:s},{s:s,s:i}]", "name", "a",
                             "weight", 50, "control", 1, "model", model,
                             "name", "b", "weight", 50);
    d = load(base_doc);
    json_object_set_new(d, "arms", arms);
    expect_error(d, "arms[0].model: must be at most 256 bytes");
    model[256] = '\0';
    arms = json_pack("[{s:s,s:i,s:b,s:s},{s:s,s:i}]", "name", "a", "weight",
                     50, "control", 1, "model", model, "name", "b", "weight",
                     50);
    d = load(base_doc);
    json_object_set_new(d, "arms", arms);
    core_experiment_free(parse_ok(d));

    /* 65 arms */
    arms = json_array();
    for (int i = 0; i < 65; i++) {
        char n[16];
        snprintf(n, sizeof(n), "arm%d", i);
        json_array_append_new(arms, json_pack("{s:s,s:i,s:b}", "name", n,
                                              "weight", i == 0 ? 100 : 0,
                                              "control", i == 0));
    }
    d = load(base_doc);
    json_object_set_new(d, "arms", arms);
    expect_error(d, "arms: must have 2 to 64 arms (it has 65)");

    /* a non-finite real cannot come from text, but can be built in C */
    d = load(base_doc);
    json_t *w = json_real(INFINITY);
    if (w != NULL) { /* jansson 2.14 refuses non-finite reals: NULL */
        json_object_set_new(json_array_get(json_object_get(d, "arms"), 1),
                            "weight", w);
        expect_error(d, wmsg);
    } else {
        json_decref(d);
    }
}

static void
test_strategy_specific_errors(void **state)
{
    (void)state;
    const char *three =
        "\"arms\":[{\"name\":\"a\",\"weight\":50,\"control\":true},"
        "{\"name\":\"b\",\"weight\":25},{\"name\":\"c\",\"weight\":25}]";
    char buf[512];
    snprintf(buf, sizeof(buf), "{\"strategy\":\"canary\",%s}", three);
    expect_error(patched(buf), "arms: strategy canary needs exactly 2 arms "
                               "(control and one candidate)");
    snprintf(buf, sizeof(buf), "{\"strategy\":\"shadow\",%s}", three);
    expect_error(patched(buf), "arms: strategy shadow needs exactly 2 arms "
                               "(control and one candidate)");
    snprintf(buf, sizeof(buf), "{\"strategy\":\"blue_green\",%s}", three);
    expect_error(patched(buf), "arms: strategy blue_green needs exactly 2 "
                               "arms (control and one candidate)");
    expect_error(patched("{\"strategy\":\"blue_green\"}"),
                 "arms: strategy blue_green sends all traffic to one arm "
                 "(weights 0 and 100)");
    struct core_experiment *e = parse_ok(patched(
        "{\"strategy\":\"blue_green\",\"arms\":[{\"name\":\"blue\","
        "\"weight\":100,\"control\":true},{\"name\":\"green\","
        "\"weight\":0}]}"));
    assert_int_equal(e->strategy, CORE_STRATEGY_BLUE_GREEN);
    core_experiment_free(e);
    snprintf(buf, sizeof(buf), "{\"strategy\":\"bandit\",%s}", three);
    e = parse_ok(patched(buf));
    assert_int_equal(e->n_arms, 3);
    core_experiment_free(e);
}

static void
test_coverage_errors(void **state)
{
    (void)state;
    const char *m = "coverage: must be a number between 0 and 1";
    expect_error(patched("{\"coverage\":1.5}"), m);
    expect_error(patched("{\"coverage\":-0.1}"), m);
    expect_error(patched("{\"coverage\":\"all\"}"), m);
    expect_error(patched("{\"coverage\":50}"), m);
    expect_error(patched("{\"coverage\":0.1234567}"),
                 "coverage: at most 6 decimals");
    struct core_experiment *e = parse_ok(patched("{\"coverage\":0}"));
    assert_int_equal(e->coverage, 0);
    core_experiment_free(e);
}

static void
test_targeting_errors(void **state)
{
    (void)state;
    expect_error(patched("{\"targeting\":{}}"),
                 "targeting: must be an array");
    expect_error(patched("{\"targeting\":[1]}"),
                 "targeting[0]: must be an object");
    expect_error(patched("{\"targeting\":[{\"attribute\":\"a\",\"op\":"
                         "\"exists\",\"x\":1}]}"),
                 "targeting[0].x: unknown field");
    expect_error(patched("{\"targeting\":[{\"op\":\"exists\"}]}"),
                 "targeting[0].attribute: required");
    expect_error(patched("{\"targeting\":[{\"attribute\":\"a\"}]}"),
                 "targeting[0].op: required");
    const char *opmsg =
        "targeting[1].op: must be one of eq ne in not_in lt le gt ge "
        "semver_eq semver_lt semver_le semver_gt semver_ge exists";
    expect_error(patched("{\"targeting\":[{\"attribute\":\"a\",\"op\":"
                         "\"exists\"},{\"attribute\":\"a\",\"op\":\"like\","
                         "\"value\":\"x\"}]}"),
                 opmsg);
    expect_error(patched("{\"targeting\":[{\"attribute\":\"a\",\"op\":"
                         "\"exists\",\"value\":\"x\"}]}"),
                 "targeting[0].value: not allowed with op exists");
    expect_error(patched("{\"targeting\":[{\"attribute\":\"a\",\"op\":"
                         "\"exists\",\"values\":[\"x\"]}]}"),
                 "targeting[0].values: not allowed with op exists");
    expect_error(patched("{\"targeting\":[{\"attribute\":\"a\",\"op\":"
                         "\"eq\"}]}"),
                 "targeting[0].value: required with op eq");
    expect_error(patched("{\"targeting\":[{\"attribute\":\"a\",\"op\":"
                         "\"eq\",\"values\":[\"x\"]}]}"),
                 "targeting[0].values: not allowed with op eq (use value)");
    expect_error(patched("{\"targeting\":[{\"attribute\":\"a\",\"op\":"
                         "\"ne\",\"value\":[1]}]}"),
                 "targeting[0].value: must be a string of at most 256 bytes, "
                 "an integer or a boolean");
    expect_error(patched("{\"targeting\":[{\"attribute\":\"a\",\"op\":"
                         "\"eq\",\"value\":1.5}]}"),
                 "targeting[0].value: must be a string of at most 256 bytes, "
                 "an integer or a boolean");
    expect_error(patched("{\"targeting\":[{\"attribute\":\"a\",\"op\":"
                         "\"in\",\"value\":\"x\"}]}"),
                 "targeting[0].value: not allowed with op in (use values)");
    expect_error(patched("{\"targeting\":[{\"attribute\":\"a\",\"op\":"
                         "\"not_in\"}]}"),
                 "targeting[0].values: required with op not_in");
    expect_error(patched("{\"targeting\":[{\"attribute\":\"a\",\"op\":"
                         "\"in\",\"values\":[]}]}"),
                 "targeting[0].values: must be an array of 1 to 1000 values");
    expect_error(patched("{\"targeting\":[{\"attribute\":\"a\",\"op\":"
                         "\"in\",\"values\":\"x\"}]}"),
                 "targeting[0].values: must be an array of 1 to 1000 values");
    expect_error(patched("{\"targeting\":[{\"attribute\":\"a\",\"op\":"
                         "\"in\",\"values\":[\"x\",null]}]}"),
                 "targeting[0].values[1]: must be a string of at most 256 "
                 "bytes, an integer or a boolean");
    expect_error(patched("{\"targeting\":[{\"attribute\":\"a\",\"op\":"
                         "\"lt\",\"value\":\"5\"}]}"),
                 "targeting[0].value: must be a finite number with op lt");
    expect_error(patched("{\"targeting\":[{\"attribute\":\"a\",\"op\":"
                         "\"semver_ge\",\"value\":\"1.2.x\"}]}"),
                 "targeting[0].value: not a semantic version: \"1.2.x\"");
    expect_error(patched("{\"targeting\":[{\"attribute\":\"a\",\"op\":"
                         "\"semver_lt\",\"value\":2}]}"),
                 "targeting[0].value: must be a string");
    expect_error(patched("{\"targeting\":[{\"attribute\":\"a b\",\"op\":"
                         "\"exists\"}]}"),
                 "targeting[0].attribute: must be 1 to 64 characters of A-Z "
                 "a-z 0-9 _ . -");
}

static void
test_forced_errors(void **state)
{
    (void)state;
    expect_error(patched("{\"forced\":[\"u1\"]}"),
                 "forced: must be an object {\"unit id\": \"arm\"}");
    expect_error(patched("{\"forced\":{\"qa-1\":\"nope\"}}"),
                 "forced[\"qa-1\"]: unknown arm \"nope\"");
    expect_error(patched("{\"forced\":{\"qa-1\":1}}"),
                 "forced[\"qa-1\"]: must be an arm name");
    expect_error(patched("{\"forced\":{\"\":\"control\"}}"),
                 "forced[\"\"]: unit ids must be 1 to 256 bytes");
    char unit[258];
    memset(unit, 'u', 257);
    unit[257] = '\0';
    json_t *d = load(base_doc);
    json_object_set_new(d, "forced", json_pack("{s:s}", unit, "control"));
    expect_error(d, "forced[\"uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu"
                    "uuuuuuuuuuuuuuuuuu\"]: unit ids must be 1 to 256 bytes");
    unit[256] = '\0';
    d = load(base_doc);
    json_object_set_new(d, "forced", json_pack("{s:s}", unit, "control"));
    core_experiment_free(parse_ok(d));
}

static void
test_layer_errors(void **state)
{
    (void)state;
    expect_error(patched("{\"layer\":\"ranking\"}"),
                 "layer: must be an object {name, range} or null");
    expect_error(patched("{\"layer\":{\"range\":[0,50]}}"),
                 "layer.name: required");
    expect_error(patched("{\"layer\":{\"name\":\"l\",\"range\":[0,50],"
                         "\"x\":1}}"),
                 "layer.x: unknown field");
    expect_error(patched("{\"layer\":{\"name\":\"l\"}}"),
                 "layer.range: required");
    expect_error(patched("{\"layer\":{\"name\":\"l\",\"range\":[0]}}"),
                 "layer.range: must be [lo, hi] in percent");
    expect_error(patched("{\"layer\":{\"name\":\"l\",\"range\":[50,50]}}"),
                 "layer.range: must have lo < hi");
    expect_error(patched("{\"layer\":{\"name\":\"l\",\"range\":[60,40]}}"),
                 "layer.range: must have lo < hi");
    expect_error(patched("{\"layer\":{\"name\":\"l\",\"range\":[-1,40]}}"),
                 "layer.range[0]: must be a number between 0 and 100");
    expect_error(patched("{\"layer\":{\"name\":\"l\",\"range\":[0,100.5]}}"),
                 "layer.range[1]: must be a number between 0 and 100");
    expect_error(patched("{\"layer\":{\"name\":\"l\",\"range\":[0,"
                         "10.00001]}}"),
                 "layer.range[1]: at most 4 decimals");
    struct core_experiment *e = parse_ok(
        patched("{\"layer\":{\"name\":\"l\",\"range\":[12.5,100]}}"));
    assert_string_equal(e->layer, "l");
    assert_int_equal(e->layer_lo, 125000);
    assert_int_equal(e->layer_hi, 1000000);
    core_experiment_free(e);
}

static void
test_salt_version_sticky_errors(void **state)
{
    (void)state;
    expect_error(patched("{\"salt\":\"\"}"), "salt: must be 1 to 64 bytes");
    expect_error(patched("{\"salt\":5}"), "salt: must be a string");
    expect_error(patched("{\"salt\":\"sssssssssssssssssssssssssssssssssssss"
                         "ssssssssssssssssssssssssssss\"}"),
                 "salt: must be at most 64 bytes");
    expect_error(patched("{\"bucket_version\":0}"),
                 "bucket_version: must be an integer between 1 and "
                 "4294967295");
    expect_error(patched("{\"bucket_version\":2.0}"),
                 "bucket_version: must be an integer between 1 and "
                 "4294967295");
    expect_error(patched("{\"bucket_version\":4294967296}"),
                 "bucket_version: must be an integer between 1 and "
                 "4294967295");
    expect_error(patched("{\"bucket_version\":3,\"min_bucket_version\":4}"),
                 "min_bucket_version: must be an integer between 1 and 3");
    expect_error(patched("{\"min_bucket_version\":0}"),
                 "min_bucket_version: must be an integer between 1 and 1");
    expect_error(patched("{\"sticky\":\"yes\"}"),
                 "sticky: must be true or false");
}

/* kind "quantile" (issue 16): q in (0, 1), required there and only there,
 * no covariate, not a bandit metric; q survives the canonical form. */
static void
test_quantile_metric(void **state)
{
    (void)state;
    struct core_experiment *e = parse_ok(patched(
        "{\"metrics\":[{\"name\":\"lat\",\"kind\":\"quantile\",\"q\":0.99,"
        "\"direction\":\"decrease\",\"role\":\"guardrail\"}]}"));
    assert_int_equal(e->metrics[0].kind, CORE_METRIC_QUANTILE);
    assert_true(e->metrics[0].q == 0.99);
    json_t *j = api_experiment_definition(e);
    json_t *m = json_array_get(json_object_get(j, "metrics"), 0);
    assert_string_equal(json_string_value(json_object_get(m, "kind")),
                        "quantile");
    assert_true(json_number_value(json_object_get(m, "q")) == 0.99);
    json_decref(j);
    core_experiment_free(e);
    expect_error(patched("{\"metrics\":[{\"name\":\"lat\",\"kind\":"
                         "\"quantile\"}]}"),
                 "metrics[0].q: required for kind \"quantile\" (0.99: p99)");
    expect_error(patched("{\"metrics\":[{\"name\":\"lat\",\"kind\":"
                         "\"quantile\",\"q\":1}]}"),
                 "metrics[0].q: must be a number in (0, 1)");
    expect_error(patched("{\"metrics\":[{\"name\":\"lat\",\"kind\":"
                         "\"quantile\",\"q\":\"p99\"}]}"),
                 "metrics[0].q: must be a number in (0, 1)");
    expect_error(patched("{\"metrics\":[{\"name\":\"lat\",\"kind\":"
                         "\"mean\",\"q\":0.5}]}"),
                 "metrics[0].q: only for kind \"quantile\"");
    expect_error(patched("{\"metrics\":[{\"name\":\"lat\",\"kind\":"
                         "\"quantile\",\"q\":0.5,\"covariate\":\"pre\"}]}"),
                 "metrics[0].covariate: not supported for kind \"quantile\"");
}

static void
test_metric_errors(void **state)
{
    (void)state;
    expect_error(patched("{\"metrics\":{}}"), "metrics: must be an array");
    expect_error(patched("{\"metrics\":[\"ctr\"]}"),
                 "metrics[0]: must be an object");
    expect_error(patched("{\"metrics\":[{\"kind\":\"binary\"}]}"),
                 "metrics[0].name: required");
    expect_error(patched("{\"metrics\":[{\"name\":\"ctr\"}]}"),
                 "metrics[0].kind: required");
    expect_error(patched("{\"metrics\":[{\"name\":\"ctr\",\"kind\":"
                         "\"median\"}]}"),
                 "metrics[0].kind: must be one of binary sum mean ratio "
                 "quantile");
    expect_error(patched("{\"metrics\":[{\"name\":\"ctr\",\"kind\":"
                         "\"binary\",\"direction\":\"up\"}]}"),
                 "metrics[0].direction: must be one of increase decrease");
    expect_error(patched("{\"metrics\":[{\"name\":\"ctr\",\"kind\":"
                         "\"binary\",\"role\":\"goal\"}]}"),
                 "metrics[0].role: must be one of primary secondary "
                 "guardrail");
    expect_error(patched("{\"metrics\":[{\"name\":\"ctr\",\"kind\":"
                         "\"binary\"},{\"name\":\"ctr\",\"kind\":\"sum\"}]}"),
                 "metrics[1].name: duplicate metric \"ctr\" (also "
                 "metrics[0])");
    expect_error(patched("{\"metrics\":[{\"name\":\"ctr\",\"kind\":"
                         "\"binary\",\"units\":\"%\"}]}"),
                 "metrics[0].units: unknown field");
    expect_error(patched("{\"metrics\":[{\"name\":\"rev\",\"kind\":"
                         "\"mean\",\"covariate\":\"\"}]}"),
                 "metrics[0].covariate: must be 1 to 64 characters of A-Z "
                 "a-z 0-9 _ . -");
    struct core_experiment *e = parse_ok(
        patched("{\"metrics\":[{\"name\":\"rev\",\"kind\":\"mean\"},"
                "{\"name\":\"err\",\"kind\":\"ratio\",\"direction\":"
                "\"decrease\",\"role\":\"guardrail\",\"covariate\":"
                "\"pre_err\"}]}"));
    assert_int_equal(e->metrics[0].direction, CORE_INCREASE);
    assert_int_equal(e->metrics[0].role, CORE_ROLE_SECONDARY);
    assert_null(e->metrics[0].covariate);
    assert_int_equal(e->metrics[1].kind, CORE_METRIC_RATIO);
    assert_int_equal(e->metrics[1].direction, CORE_DECREASE);
    assert_int_equal(e->metrics[1].role, CORE_ROLE_GUARDRAIL);
    assert_string_equal(e->metrics[1].covariate, "pre_err");
    core_experiment_free(e);
}

static void
test_error_buffer_is_truncated_safely(void **state)
{
    (void)state;
    struct core_experiment *e = NULL;
    char err[8];
    json_t *d = patched("{\"colour\":1}");
    assert_int_equal(api_experiment_parse(d, &e, err, sizeof(err)), AB_EINVAL);
    assert_string_equal(err, "colour:");
    assert_int_equal(api_experiment_parse(d, &e, NULL, 0), AB_EINVAL);
    assert_null(e);
    json_decref(d);
}

/* ---- canonical form ----------------------------------------------------- */

static const char full_doc[] =
    "{\"key\":\"search.rank-3\",\"description\":\"r\\u00e9sum\\u00e9 "
    "ranker\",\"strategy\":\"canary\",\"unit_type\":\"session\","
    "\"arms\":[{\"name\":\"stable\",\"weight\":87.4999,\"control\":true,"
    "\"model\":\"ranker@1.9.0\"},{\"name\":\"canary\",\"weight\":12.5001,"
    "\"model\":\"ranker@2.0.0-rc.1\"}],"
    "\"coverage\":0.25,"
    "\"targeting\":[{\"attribute\":\"country\",\"op\":\"not_in\","
    "\"values\":[\"US\",\"CA\"]},{\"attribute\":\"age\",\"op\":\"ge\","
    "\"value\":18},{\"attribute\":\"score\",\"op\":\"lt\",\"value\":0.1},"
    "{\"attribute\":\"app\",\"op\":\"semver_ge\",\"value\":\"2.1.0-beta.2\"},"
    "{\"attribute\":\"beta\",\"op\":\"eq\",\"value\":true},"
    "{\"attribute\":\"tier\",\"op\":\"ne\",\"value\":\"free\"},"
    "{\"attribute\":\"id\",\"op\":\"exists\"}],"
    "\"forced\":{\"qa-2\":\"canary\",\"qa-1\":\"stable\"},"
    "\"layer\":{\"name\":\"ranking\",\"range\":[33.3333,66.6667]},"
    "\"salt\":\"s1\",\"bucket_version\":3,\"min_bucket_version\":2,"
    "\"sticky\":true,"
    "\"metrics\":[{\"name\":\"ctr\",\"kind\":\"binary\",\"role\":"
    "\"primary\"},{\"name\":\"latency_ms\",\"kind\":\"ratio\","
    "\"direction\":\"decrease\",\"role\":\"guardrail\"},{\"name\":\"rev\","
    "\"kind\":\"mean\",\"covariate\":\"rev_pre\"}]}";

static void
test_definition_round_trips(void **state)
{
    (void)state;
    const char *docs[] = { base_doc, full_doc };
    for (size_t k = 0; k < AB_ARRAY_LEN(docs); k++) {
        struct core_experiment *e = parse_ok(load(docs[k]));
        json_t *def = api_experiment_definition(e);
        /* through text, as it is stored */
        char *text = json_dumps(def, JSON_COMPACT);
        struct core_experiment *e2 = parse_ok(load(text));
        assert_true(core_experiment_equal(e, e2));
        /* and the canonical form is a fixed point */
        json_t *def2 = api_experiment_definition(e2);
        assert_true(json_equal(def, def2));
        free(text);
        json_decref(def);
        json_decref(def2);
        /* equality is not vacuous */
        e2->arms[0].weight++;
        assert_false(core_experiment_equal(e, e2));
        struct core_experiment *c = core_experiment_clone(e);
        assert_true(core_experiment_equal(e, c));
        core_experiment_free(c);
        core_experiment_free(e);
        core_experiment_free(e2);
    }
}

static void
test_definition_is_canonical(void **state)
{
    (void)state;
    struct core_experiment *e = parse_ok(load(full_doc));
    json_t *def = api_experiment_definition(e);
    /* the rollout settings in force are written out, defaults included */
    struct core_rollout_config rc_default;
    core_rollout_config_default(&rc_default);
    json_t *want_rollout = api_rollout_json(&rc_default);
    assert_true(json_equal(json_object_get(def, "rollout"), want_rollout));
    json_decref(want_rollout);
    json_object_del(def, "rollout");
    json_t *want = load(
        "{\"key\":\"search.rank-3\",\"description\":\"r\\u00e9sum\\u00e9 "
        "ranker\",\"strategy\":\"canary\",\"unit_type\":\"session\","
        "\"arms\":[{\"name\":\"stable\",\"weight\":87.4999,\"model\":"
        "\"ranker@1.9.0\",\"control\":true},{\"name\":\"canary\",\"weight\":"
        "12.5001,\"model\":\"ranker@2.0.0-rc.1\",\"control\":false}],"
        "\"coverage\":0.25,"
        "\"targeting\":[{\"attribute\":\"country\",\"op\":\"not_in\","
        "\"values\":[\"US\",\"CA\"]},{\"attribute\":\"age\",\"op\":\"ge\","
        "\"value\":18},{\"attribute\":\"score\",\"op\":\"lt\",\"value\":0.1},"
        "{\"attribute\":\"app\",\"op\":\"semver_ge\",\"value\":"
        "\"2.1.0-beta.2\"},{\"attribute\":\"beta\",\"op\":\"eq\",\"value\":"
        "\"true\"},{\"attribute\":\"tier\",\"op\":\"ne\",\"value\":\"free\"},"
        "{\"attribute\":\"id\",\"op\":\"exists\"}],"
        "\"forced\":{\"qa-1\":\"stable\",\"qa-2\":\"canary\"},"
        "\"layer\":{\"name\":\"ranking\",\"range\":[33.3333,66.6667]},"
        "\"salt\":\"s1\",\"bucket_version\":3,\"min_bucket_version\":2,"
        "\"sticky\":true,"
        "\"metrics\":[{\"name\":\"ctr\",\"kind\":\"binary\",\"direction\":"
        "\"increase\",\"role\":\"primary\",\"covariate\":null},"
        "{\"name\":\"latency_ms\",\"kind\":\"ratio\",\"direction\":"
        "\"decrease\",\"role\":\"guardrail\",\"covariate\":null},"
        "{\"name\":\"rev\",\"kind\":\"mean\",\"direction\":\"increase\","
        "\"role\":\"secondary\",\"covariate\":\"rev_pre\"}]}");
    if (!json_equal(def, want)) {
        char *t = json_dumps(def, JSON_COMPACT);
        print_message("got: %s\n", t);
        free(t);
    }
    assert_true(json_equal(def, want));
    json_decref(want);
    json_decref(def);
    core_experiment_free(e);

    /* whole numbers are integers in the canonical form */
    e = parse_ok(load(base_doc));
    def = api_experiment_definition(e);
    json_t *w = json_object_get(json_array_get(json_object_get(def, "arms"),
                                               0),
                                "weight");
    assert_true(json_is_integer(w));
    assert_int_equal(json_integer_value(w), 50);
    assert_true(json_is_integer(json_object_get(def, "coverage")));
    assert_true(json_is_null(json_object_get(def, "layer")));
    json_decref(def);
    core_experiment_free(e);
}

/* A parsed definition drives core_assign as written. */
static void
test_parsed_definition_assigns(void **state)
{
    (void)state;
    struct core_experiment *e = parse_ok(load(full_doc));
    struct core_assignment a;
    e->state = CORE_STATE_RUNNING;
    assert_int_equal(core_assign(e, "qa-2", 4, NULL, 0, &a), AB_OK);
    assert_string_equal(a.reason, CORE_REASON_FORCED);
    assert_string_equal(e->arms[a.arm].name, "canary");
    /* no attributes: not_in (and every other rule) does not match */
    assert_int_equal(core_assign(e, "user-1", 6, NULL, 0, &a), AB_OK);
    assert_string_equal(a.reason, CORE_REASON_TARGETING);
    assert_string_equal(e->arms[a.arm].name, "stable");
    const struct core_attr ok[] = {
        { "country", "DE" }, { "age", "30" },   { "score", "0.05" },
        { "app", "2.1.0" },  { "beta", "true" }, { "tier", "pro" },
        { "id", "" },
    };
    long reasons[3] = { 0 }; /* layer, coverage, hashed */
    for (long i = 0; i < 20000; i++) {
        char id[32];
        int n = snprintf(id, sizeof(id), "user-%ld", i);
        assert_int_equal(core_assign(e, id, (size_t)n, ok, 7, &a), AB_OK);
        if (strcmp(a.reason, CORE_REASON_LAYER) == 0)
            reasons[0]++;
        else if (strcmp(a.reason, CORE_REASON_COVERAGE) == 0)
            reasons[1]++;
        else if (strcmp(a.reason, CORE_REASON_HASHED) == 0)
            reasons[2]++;
        else
            fail_msg("unexpected reason %s", a.reason);
    }
    /* layer slice 33.3334 %, then coverage 25 %: about 1/3 * 1/4 hashed;
     * binomial sd of the hashed count sqrt(20000 p (1 - p)) = 39 */
    assert_true(labs(reasons[2] - 1667) < 200);
    assert_true(labs(reasons[0] - 13333) < 400);
    core_experiment_free(e);
}

static void
test_names(void **state)
{
    (void)state;
    enum core_strategy s;
    enum core_state st;
    assert_int_equal(core_strategy_parse("blue_green", &s), AB_OK);
    assert_int_equal(s, CORE_STRATEGY_BLUE_GREEN);
    assert_int_equal(core_strategy_parse("BLUE_GREEN", &s), AB_EINVAL);
    assert_int_equal(core_state_parse("paused", &st), AB_OK);
    assert_int_equal(st, CORE_STATE_PAUSED);
    assert_int_equal(core_state_parse("done", &st), AB_EINVAL);
    assert_string_equal(core_strategy_name(CORE_STRATEGY_SHADOW), "shadow");
    assert_string_equal(core_state_name(CORE_STATE_STOPPED), "stopped");
    assert_string_equal(api_op_name(CORE_OP_SEMVER_LE), "semver_le");
    assert_string_equal(api_metric_kind_name(CORE_METRIC_RATIO), "ratio");
    assert_string_equal(api_role_name(CORE_ROLE_GUARDRAIL), "guardrail");
    assert_string_equal(api_direction_name(CORE_DECREASE), "decrease");
    core_experiment_free(NULL);
}

/* ---- the bandit object --------------------------------------------------- */

static const char bandit_doc[] =
    "{\"key\":\"ranker-v2\",\"strategy\":\"bandit\",\"arms\":["
    "{\"name\":\"a\",\"weight\":40,\"control\":true},"
    "{\"name\":\"b\",\"weight\":30},{\"name\":\"c\",\"weight\":30}],"
    "\"metrics\":[{\"name\":\"lat\",\"kind\":\"ratio\",\"role\":\"primary\"},"
    "{\"name\":\"ctr\",\"kind\":\"binary\"},"
    "{\"name\":\"rev\",\"kind\":\"mean\",\"role\":\"primary\","
    "\"direction\":\"decrease\"}]}";

/* bandit_doc with "bandit" set to 'bandit' (a JSON text). */
static json_t *
with_bandit(const char *bandit)
{
    json_t *d = load(bandit_doc);
    json_object_set_new(d, "bandit", load(bandit));
    return d;
}

static void
test_bandit_object_defaults(void **state)
{
    (void)state;
    struct core_experiment *e = parse_ok(load(bandit_doc));
    const struct core_bandit *b = &e->bandit;
    assert_int_equal(b->policy, CORE_BANDIT_THOMPSON);
    /* the first primary metric that is not a ratio */
    assert_int_equal(b->metric, 2);
    assert_int_equal(b->interval_s, 60);
    assert_true(b->floor == 0.01);
    assert_false(b->control_pinned);
    assert_int_equal(b->burn_in, 1000);
    assert_int_equal(b->min_units, 100);
    assert_true(b->promote);
    assert_true(b->promote_threshold == 0.95);
    assert_int_equal(b->promote_after_s, 3600);
    /* FNV-1a 64 of "ranker-v2" is 0x45282f36d83ce167, top 53 bits; from
     * Python (h = 14695981039346656037; per byte h ^= b, h *= 1099511628211
     * mod 2^64), which gives the published fnv1a64("a") =
     * 0xaf63dc4c8601ec8c */
    assert_int_equal(b->seed, 2433244580218780LL);
    core_experiment_free(e);

    /* no primary non-ratio metric: the first non-ratio one */
    e = parse_ok(load(
        "{\"key\":\"k\",\"strategy\":\"bandit\",\"arms\":["
        "{\"name\":\"a\",\"weight\":50,\"control\":true},"
        "{\"name\":\"b\",\"weight\":50}],\"metrics\":["
        "{\"name\":\"lat\",\"kind\":\"ratio\",\"role\":\"primary\"},"
        "{\"name\":\"s\",\"kind\":\"sum\"},{\"name\":\"t\",\"kind\":"
        "\"binary\"}]}"));
    assert_int_equal(e->bandit.metric, 1);
    core_experiment_free(e);
    /* no metric at all: none (the weights are then never adapted) */
    e = parse_ok(patched("{\"strategy\":\"bandit\"}"));
    assert_int_equal(e->bandit.metric, SIZE_MAX);
    json_t *def = api_experiment_definition(e);
    assert_true(json_is_null(
        json_object_get(json_object_get(def, "bandit"), "metric")));
    json_decref(def);
    core_experiment_free(e);
    /* other strategies carry no bandit object, and zeros */
    e = parse_ok(load(base_doc));
    def = api_experiment_definition(e);
    assert_null(json_object_get(def, "bandit"));
    assert_int_equal(e->bandit.interval_s, 0);
    json_decref(def);
    core_experiment_free(e);
    e = parse_ok(patched("{\"bandit\":null}"));
    core_experiment_free(e);
}

static void
test_bandit_object_values(void **state)
{
    (void)state;
    struct core_experiment *e = parse_ok(with_bandit(
        "{\"policy\":\"top_two\",\"metric\":\"ctr\",\"interval_s\":1,"
        "\"floor\":0.3,\"control_share\":0.1,\"burn_in\":0,"
        "\"min_units\":5,\"promote_threshold\":null,"
        "\"promote_after_s\":0,\"seed\":9007199254740991}"));
    const struct core_bandit *b = &e->bandit;
    assert_int_equal(b->policy, CORE_BANDIT_TOP_TWO);
    assert_int_equal(b->metric, 1);
    assert_int_equal(b->interval_s, 1);
    assert_true(b->floor == 0.3);
    assert_true(b->control_pinned);
    assert_true(b->control_share == 0.1);
    assert_int_equal(b->burn_in, 0);
    assert_int_equal(b->min_units, 5);
    assert_false(b->promote);
    assert_int_equal(b->promote_after_s, 0);
    assert_int_equal(b->seed, 9007199254740991LL);
    core_experiment_free(e);
    const char *policies[] = { "uniform", "thompson", "top_two", "ucb1",
                               "kl_ucb", "eps_greedy" };
    for (size_t i = 0; i < AB_ARRAY_LEN(policies); i++) {
        char buf[64];
        snprintf(buf, sizeof(buf), "{\"policy\":\"%s\"}", policies[i]);
        e = parse_ok(with_bandit(buf));
        assert_int_equal(e->bandit.policy, (int)i);
        assert_string_equal(api_bandit_policy_name(e->bandit.policy),
                            policies[i]);
        core_experiment_free(e);
    }
    /* the one name table (moved here from test_bandit_policies) */
    enum core_bandit_policy p;
    assert_int_equal(api_bandit_policy_parse("kl_ucb", &p), AB_OK);
    assert_int_equal(p, CORE_BANDIT_KL_UCB);
    assert_string_equal(api_bandit_policy_name(CORE_BANDIT_TOP_TWO),
                        "top_two");
    assert_int_equal(api_bandit_policy_parse("ucb2", &p), AB_EINVAL);
    assert_int_equal(api_bandit_policy_parse(NULL, &p), AB_EINVAL);
    /* the floor may reach exactly 1/K (K arms share everything) */
    e = parse_ok(with_bandit("{\"floor\":0.3333333333333333}"));
    core_experiment_free(e);
    /* and (1 - control_share) / (K - 1) with a pinned control */
    e = parse_ok(with_bandit("{\"floor\":0.25,\"control_share\":0.5}"));
    core_experiment_free(e);
}

static void
test_bandit_object_errors(void **state)
{
    (void)state;
    expect_error(patched("{\"bandit\":{}}"),
                 "bandit: only for strategy bandit (this is ab)");
    expect_error(with_bandit("[]"), "bandit: must be an object or null");
    expect_error(with_bandit("{\"arms\":1}"), "bandit.arms: unknown field");
    expect_error(with_bandit("{\"policy\":\"greedy\"}"),
                 "bandit.policy: must be one of thompson top_two ucb1 "
                 "kl_ucb eps_greedy uniform");
    expect_error(with_bandit("{\"metric\":\"clicks\"}"),
                 "bandit.metric: no metric \"clicks\" is declared");
    expect_error(with_bandit("{\"metric\":3}"),
                 "bandit.metric: must be a metric name or null");
    expect_error(with_bandit("{\"metric\":\"lat\"}"),
                 "bandit.metric: ratio metric \"lat\" cannot drive a bandit "
                 "(use a binary, sum or mean metric)");
    expect_error(with_bandit("{\"interval_s\":0}"),
                 "bandit.interval_s: must be an integer between 1 and "
                 "2592000");
    expect_error(with_bandit("{\"interval_s\":1.5}"),
                 "bandit.interval_s: must be an integer between 1 and "
                 "2592000");
    expect_error(with_bandit("{\"floor\":0.34}"),
                 "bandit.floor: must be a number between 0 and 0.333333 "
                 "(1 / 3 arms)");
    expect_error(with_bandit("{\"floor\":-0.01}"),
                 "bandit.floor: must be a number between 0 and 0.333333 "
                 "(1 / 3 arms)");
    expect_error(with_bandit("{\"floor\":\"1%\"}"),
                 "bandit.floor: must be a number between 0 and 0.333333");
    expect_error(with_bandit("{\"floor\":0.26,\"control_share\":0.5}"),
                 "bandit.floor: must be a number between 0 and 0.25 "
                 "((1 - control_share) / 2 arms)");
    expect_error(with_bandit("{\"control_share\":1}"),
                 "bandit.control_share: must be null or a number in [0, 1)");
    expect_error(with_bandit("{\"control_share\":true}"),
                 "bandit.control_share: must be null or a number in [0, 1)");
    expect_error(with_bandit("{\"burn_in\":-1}"),
                 "bandit.burn_in: must be an integer between 0 and "
                 "1000000000000");
    expect_error(with_bandit("{\"min_units\":\"5\"}"),
                 "bandit.min_units: must be an integer between 0 and "
                 "1000000000000");
    expect_error(with_bandit("{\"promote_threshold\":0.5}"),
                 "bandit.promote_threshold: must be null or a number in "
                 "(0.5, 1)");
    expect_error(with_bandit("{\"promote_threshold\":1}"),
                 "bandit.promote_threshold: must be null or a number in "
                 "(0.5, 1)");
    expect_error(with_bandit("{\"promote_after_s\":-5}"),
                 "bandit.promote_after_s: must be an integer between 0 and "
                 "31536000");
    expect_error(with_bandit("{\"seed\":-1}"),
                 "bandit.seed: must be an integer between 0 and "
                 "9007199254740991");
    expect_error(with_bandit("{\"seed\":9007199254740992}"),
                 "bandit.seed: must be an integer between 0 and "
                 "9007199254740991");
}

static void
test_bandit_object_round_trips(void **state)
{
    (void)state;
    json_t *docs[] = {
        load(bandit_doc),
        with_bandit("{\"policy\":\"eps_greedy\",\"metric\":\"ctr\","
                    "\"interval_s\":5,\"floor\":0.05,\"control_share\":0.2,"
                    "\"burn_in\":10,\"min_units\":3,"
                    "\"promote_threshold\":0.99,\"promote_after_s\":7,"
                    "\"seed\":42}"),
        with_bandit("{\"metric\":null,\"promote_threshold\":null,"
                    "\"floor\":0}"),
    };
    for (size_t k = 0; k < AB_ARRAY_LEN(docs); k++) {
        struct core_experiment *e = parse_ok(docs[k]);
        json_t *def = api_experiment_definition(e);
        char *text = json_dumps(def, JSON_COMPACT);
        struct core_experiment *e2 = parse_ok(load(text));
        assert_true(core_experiment_equal(e, e2));
        assert_true(core_bandit_equal(&e->bandit, &e2->bandit));
        json_t *def2 = api_experiment_definition(e2);
        assert_true(json_equal(def, def2));
        struct core_experiment *c = core_experiment_clone(e);
        assert_true(core_bandit_equal(&e->bandit, &c->bandit));
        /* equality is not vacuous */
        e2->bandit.floor += 1e-9;
        assert_false(core_bandit_equal(&e->bandit, &e2->bandit));
        free(text);
        json_decref(def);
        json_decref(def2);
        core_experiment_free(c);
        core_experiment_free(e);
        core_experiment_free(e2);
    }
    /* the canonical object, every default filled in */
    struct core_experiment *e = parse_ok(load(bandit_doc));
    json_t *def = api_experiment_definition(e);
    json_t *want = load("{\"policy\":\"thompson\",\"metric\":\"rev\","
                        "\"interval_s\":60,\"floor\":0.01,"
                        "\"control_share\":null,\"burn_in\":1000,"
                        "\"min_units\":100,\"promote_threshold\":0.95,"
                        "\"promote_after_s\":3600,"
                        "\"seed\":2433244580218780}");
    assert_true(json_equal(json_object_get(def, "bandit"), want));
    json_decref(want);
    json_decref(def);
    core_experiment_free(e);
}

/* An arm's optional "value" (issue 12, OFREP): any JSON, kept as compact
 * text with sorted keys, round-tripped, compared, cloned; null is none. */
static void
test_arm_value_round_trips(void **state)
{
    (void)state;
    struct core_experiment *e = parse_ok(load(
        "{\"key\":\"v\",\"arms\":["
        "{\"name\":\"off\",\"weight\":50,\"control\":true,"
        "\"value\":false},"
        "{\"name\":\"on\",\"weight\":50,"
        "\"value\":{\"z\":[1,2.5,\"x\"],\"a\":{\"b\":null}}}]}"));
    assert_string_equal(core_arm_value(e, 0), "false");
    assert_string_equal(core_arm_value(e, 1),
                        "{\"a\":{\"b\":null},\"z\":[1,2.5,\"x\"]}");
    json_t *def = api_experiment_definition(e);
    json_t *want = load("{\"a\":{\"b\":null},\"z\":[1,2.5,\"x\"]}");
    assert_true(json_equal(
        json_object_get(json_array_get(json_object_get(def, "arms"), 1),
                        "value"),
        want));
    json_decref(want);
    char *text = json_dumps(def, JSON_COMPACT);
    struct core_experiment *e2 = parse_ok(load(text));
    free(text);
    json_decref(def);
    assert_true(core_experiment_equal(e, e2));
    struct core_experiment *c = core_experiment_clone(e);
    assert_true(core_experiment_equal(e, c));
    free(c->arm_values[0]);
    c->arm_values[0] = ab_xstrdup("true");
    assert_false(core_experiment_equal(e, c));
    core_experiment_free(c);
    core_experiment_free(e2);
    core_experiment_free(e);
    /* null and absent: no value, and none in the definition */
    e = parse_ok(patched("{\"arms\":[{\"name\":\"a\",\"weight\":50,"
                         "\"control\":true,\"value\":null},"
                         "{\"name\":\"b\",\"weight\":50}]}"));
    assert_null(core_arm_value(e, 0));
    assert_null(core_arm_value(e, 1));
    def = api_experiment_definition(e);
    assert_null(json_object_get(
        json_array_get(json_object_get(def, "arms"), 0), "value"));
    json_decref(def);
    core_experiment_free(e);
    /* too big */
    char big[5000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    json_t *doc = patched("{\"arms\":[{\"name\":\"a\",\"weight\":50,"
                          "\"control\":true},{\"name\":\"b\",\"weight\":50}]}");
    json_object_set_new(json_array_get(json_object_get(doc, "arms"), 1),
                        "value", json_string(big));
    expect_error(doc, "arms[1].value: must be JSON of at most 4096 bytes");
    /* a number jsonb would write back as an integer jansson refuses
     * (1e20 -> 100000000000000000000): refused here, not lost later */
    doc = patched("{\"arms\":[{\"name\":\"a\",\"weight\":50,"
                  "\"control\":true,\"value\":{\"k\":[1,-2.5e300]}},"
                  "{\"name\":\"b\",\"weight\":50}]}");
    expect_error(doc, "arms[0].value: the number -2.5e+300 cannot be stored "
                      "(numbers must be below 9.2e18 in magnitude; send a "
                      "larger one as a string)");
    doc = patched("{\"arms\":[{\"name\":\"a\",\"weight\":50,"
                  "\"control\":true,\"value\":1e20},"
                  "{\"name\":\"b\",\"weight\":50}]}");
    expect_error(doc, "arms[0].value: the number 1e+20 cannot be stored "
                      "(numbers must be below 9.2e18 in magnitude; send a "
                      "larger one as a string)");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_definition_gets_every_default),
        cmocka_unit_test(test_bandit_is_sticky_by_default),
        cmocka_unit_test(test_weights_with_four_decimals_are_exact),
        cmocka_unit_test(test_forced_units_are_sorted_and_resolved),
        cmocka_unit_test(test_targeting_operands),
        cmocka_unit_test(test_document_and_key_errors),
        cmocka_unit_test(test_description_strategy_unit_type_errors),
        cmocka_unit_test(test_arm_errors),
        cmocka_unit_test(test_strategy_specific_errors),
        cmocka_unit_test(test_coverage_errors),
        cmocka_unit_test(test_targeting_errors),
        cmocka_unit_test(test_forced_errors),
        cmocka_unit_test(test_layer_errors),
        cmocka_unit_test(test_salt_version_sticky_errors),
        cmocka_unit_test(test_metric_errors),
        cmocka_unit_test(test_quantile_metric),
        cmocka_unit_test(test_error_buffer_is_truncated_safely),
        cmocka_unit_test(test_definition_round_trips),
        cmocka_unit_test(test_arm_value_round_trips),
        cmocka_unit_test(test_definition_is_canonical),
        cmocka_unit_test(test_parsed_definition_assigns),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_bandit_object_defaults),
        cmocka_unit_test(test_bandit_object_values),
        cmocka_unit_test(test_bandit_object_errors),
        cmocka_unit_test(test_bandit_object_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
