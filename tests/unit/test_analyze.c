/* test_analyze.c -- api_analyze(): request validation names the field,
 * degenerate inputs give a status and a reason (never NaN), the control
 * can be any arm, and the answer has the documented shape. The numbers
 * themselves are checked against scipy/statsmodels in tests/oracle/. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <gsl/gsl_errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "codec/analyze.h"

static json_t *
run(const char *text, ab_status want, const char *err_has)
{
    json_error_t jerr;
    json_t *req = json_loads(text, 0, &jerr), *out = NULL;
    char err[256] = "";
    ab_status rc;

    if (req == NULL)
        fail_msg("bad test JSON: %s", jerr.text);
    rc = api_analyze(req, &out, err, sizeof(err));
    json_decref(req);
    if (rc != want)
        fail_msg("status %d, want %d (%s)", rc, want, err);
    if (err_has != NULL && strstr(err, err_has) == NULL)
        fail_msg("error \"%s\" does not name \"%s\"", err, err_has);
    if (out != NULL) {
        char *s = json_dumps(out, 0);
        assert_null(strstr(s, "nan"));
        assert_null(strstr(s, "inf"));
        free(s);
    }
    return out;
}

#define ARMS2 \
    "\"arms\":[{\"name\":\"c\",\"n\":100,\"sum\":50,\"sum_sq\":80}," \
    "{\"name\":\"t\",\"n\":110,\"sum\":70,\"sum_sq\":100}]"

static void
test_analyze_malformed_requests_name_the_field(void **state)
{
    static const struct {
        const char *req, *field;
    } cases[] = {
        { "[]", "request" },
        { "{" ARMS2 "}", "metric" },
        { "{\"metric\":{\"kind\":\"median\"}," ARMS2 "}", "metric.kind" },
        { "{\"metric\":{\"kind\":\"mean\",\"x\":1}," ARMS2 "}", "metric.x" },
        { "{\"metric\":{\"kind\":\"mean\"},\"foo\":1," ARMS2 "}", "foo" },
        { "{\"metric\":{\"kind\":\"mean\"},\"method\":\"t\"," ARMS2 "}",
          "method" },
        { "{\"metric\":{\"kind\":\"mean\"},\"alpha\":1.5," ARMS2 "}",
          "alpha" },
        { "{\"metric\":{\"kind\":\"mean\"},\"sided\":\"up\"," ARMS2 "}",
          "sided" },
        { "{\"metric\":{\"kind\":\"mean\"},\"method\":\"gst\"," ARMS2 "}",
          "information" },
        { "{\"metric\":{\"kind\":\"mean\"},\"method\":\"gst\","
          "\"information\":[0.5,0.4]," ARMS2 "}", "information[1]" },
        { "{\"metric\":{\"kind\":\"mean\"},\"tuning\":100," ARMS2 "}",
          "tuning" },
        { "{\"metric\":{\"kind\":\"mean\"},\"method\":\"bayes\","
          "\"prior\":{\"mean\":0,\"sd\":0}," ARMS2 "}", "prior.sd" },
        { "{\"metric\":{\"kind\":\"mean\"},\"arms\":[]}", "arms" },
        { "{\"metric\":{\"kind\":\"mean\"},\"arms\":[{\"name\":\"c\","
          "\"n\":\"5\",\"sum\":1,\"sum_sq\":1},{\"name\":\"t\",\"n\":5,"
          "\"sum\":1,\"sum_sq\":1}]}", "arms[0].n" },
        { "{\"metric\":{\"kind\":\"mean\"},\"arms\":[{\"name\":\"c\","
          "\"n\":5,\"sum\":1,\"sum_sq\":1},{\"name\":\"c\",\"n\":5,"
          "\"sum\":1,\"sum_sq\":1}]}", "arms[1].name" },
        { "{\"metric\":{\"kind\":\"ratio\"}," ARMS2 "}", "arms[0].den_sum" },
        { "{\"metric\":{\"kind\":\"mean\"},\"cuped\":true," ARMS2 "}",
          "arms[0].pre_sum" },
        /* issue 14: a covariate without "cuped": true would be ignored */
        { "{\"metric\":{\"kind\":\"mean\"},\"arms\":[{\"name\":\"c\","
          "\"n\":5,\"sum\":1,\"sum_sq\":1,\"pre_sum\":1},{\"name\":\"t\","
          "\"n\":5,\"sum\":1,\"sum_sq\":1}]}", "arms[0].pre_sum" },
        { "{\"metric\":{\"kind\":\"binary\"},\"arms\":[{\"name\":\"c\","
          "\"n\":5,\"sum\":1,\"sum_sq\":2},{\"name\":\"t\",\"n\":5,"
          "\"sum\":1}]}", "arms[0].sum_sq" },
        { "{\"metric\":{\"kind\":\"mean\"},\"correction\":\"holm\","
          "\"method\":\"bayes\"," ARMS2 "}", "correction" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run(cases[i].req, AB_EINVAL, cases[i].field);
}

static const char *
cmp_str(json_t *ans, const char *key)
{
    json_t *c = json_array_get(json_object_get(ans, "comparisons"), 0);
    return json_string_value(json_object_get(c, key));
}

static void
test_analyze_degenerate_inputs_have_status_and_reason(void **state)
{
    static const struct {
        const char *arms, *reason;
    } cases[] = {
        { "{\"name\":\"c\",\"n\":1,\"sum\":1,\"sum_sq\":1}", "few_units" },
        { "{\"name\":\"c\",\"n\":-4,\"sum\":1,\"sum_sq\":1}", "negative" },
        { "{\"name\":\"c\",\"n\":4,\"sum\":1e200,\"sum_sq\":1e300}",
          "overflow" },
        { "{\"name\":\"c\",\"n\":4,\"sum\":8,\"sum_sq\":3}",
          "inconsistent" },
    };
    char req[512];
    json_t *ans;
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(req, sizeof(req),
                 "{\"metric\":{\"kind\":\"mean\"},\"arms\":[%s,"
                 "{\"name\":\"t\",\"n\":5,\"sum\":5,\"sum_sq\":7}]}",
                 cases[i].arms);
        ans = run(req, AB_OK, NULL);
        assert_string_equal(cmp_str(ans, "reason_code"), cases[i].reason);
        assert_string_not_equal(cmp_str(ans, "status"), "ok");
        assert_true(json_is_null(json_object_get(
            json_array_get(json_object_get(ans, "comparisons"), 0),
            "p_value")));
        json_decref(ans);
    }
    /* zero variance in both arms; zero control mean for a relative lift */
    ans = run("{\"metric\":{\"kind\":\"mean\"},\"arms\":["
              "{\"name\":\"c\",\"n\":4,\"sum\":8,\"sum_sq\":16},"
              "{\"name\":\"t\",\"n\":4,\"sum\":8,\"sum_sq\":16}]}",
              AB_OK, NULL);
    assert_string_equal(cmp_str(ans, "reason_code"), "zero_variance");
    json_decref(ans);
    ans = run("{\"metric\":{\"kind\":\"mean\"},\"effect\":\"relative\","
              "\"arms\":[{\"name\":\"c\",\"n\":4,\"sum\":0,\"sum_sq\":4},"
              "{\"name\":\"t\",\"n\":4,\"sum\":2,\"sum_sq\":4}]}",
              AB_OK, NULL);
    assert_string_equal(cmp_str(ans, "reason_code"), "zero_control_mean");
    json_decref(ans);
}

static void
test_analyze_control_flag_and_shape(void **state)
{
    json_t *ans, *c, *srm;
    (void)state;
    ans = run("{\"metric\":{\"kind\":\"mean\"},\"arms\":["
              "{\"name\":\"t\",\"n\":110,\"sum\":70,\"sum_sq\":100},"
              "{\"name\":\"c\",\"n\":100,\"sum\":50,\"sum_sq\":80,"
              "\"control\":true}]}",
              AB_OK, NULL);
    c = json_array_get(json_object_get(ans, "comparisons"), 0);
    assert_int_equal(json_array_size(json_object_get(ans, "comparisons")),
                     1);
    assert_string_equal(json_string_value(json_object_get(c, "arm")), "t");
    assert_string_equal(json_string_value(json_object_get(c, "control")),
                        "c");
    static const char *const keys[] = { "effect", "se", "ci", "p_value",
                                        "chance_to_win", "risk",
                                        "boundaries", "significant",
                                        "status", "reason" };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        assert_non_null(json_object_get(c, keys[i]));
    srm = json_object_get(ans, "srm");
    assert_non_null(json_object_get(srm, "p_value"));
    assert_non_null(json_object_get(srm, "mismatch"));
    json_decref(ans);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_analyze_malformed_requests_name_the_field),
        cmocka_unit_test(
            test_analyze_degenerate_inputs_have_status_and_reason),
        cmocka_unit_test(test_analyze_control_flag_and_shape),
    };
    gsl_set_error_handler_off();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
