/* test_report_html.c -- the deployment report page (codec/report_html.h):
 * every chart present with its data-point count, one-sided confidence
 * sequences drawn as their bound, hostile text escaped, no script or
 * external resource, the live notice only while running, and a refusal
 * of a document that is not a report.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "codec/report_html.h"

static const char doc_text[] =
    "{\"experiment\": {\"key\": \"rk\", \"state\": \"STATE\","
    "  \"served_arm\": \"next\", \"created_at\": \"2026-01-01T00:00:00Z\","
    "  \"definition\": {\"strategy\": \"canary\","
    "    \"arms\": [{\"name\": \"stable\", \"weight\": 0, \"control\": true,"
    "               \"model\": \"m@1\"},"
    "              {\"name\": \"next\", \"weight\": 100, \"model\": \"m@2\"}],"
    "    \"metrics\": [{\"name\": \"errors\"}, {\"name\": \"latency\"}]}},"
    " \"rollout\": null,"
    " \"decisions\": [{\"id\": 1, \"t\": 1000, \"action\": \"create\","
    "   \"to_state\": \"draft\", \"actor\": \"admin\","
    "   \"reason\": \"<script>alert(1)</script>\", \"details\": {}},"
    "  {\"id\": 2, \"t\": 9000, \"action\": \"promote\", \"actor\": \"engine\","
    "   \"reason\": \"every step passed\", \"details\": {\"x\": 1}}],"
    " \"weights\": [{\"version\": 1, \"t\": 1000, \"source\": \"create\","
    "   \"weights\": {\"stable\": 100, \"next\": 0}},"
    "  {\"version\": 2, \"t\": 3000, \"source\": \"rollout\","
    "   \"weights\": {\"stable\": 50, \"next\": 50}}],"
    " \"evidence\": [{\"t\": 2000, \"evidence\": {\"primary\": [],"
    "   \"guardrails\": [{\"metric\": \"latency\", \"arm\": \"next\","
    "     \"effect\": -9.5, \"ci_running\": [-12.0, null],"
    "     \"p_running\": 0.01, \"verdict\": \"safe\"}]}},"
    "  {\"t\": 4000, \"evidence\": {\"primary\": [{\"metric\": \"errors\","
    "     \"arm\": \"next\", \"effect\": -0.01, \"ci_running\": [-0.03, 0.01],"
    "     \"verdict\": \"open\"}], \"guardrails\": [{\"metric\": \"latency\","
    "     \"arm\": \"next\", \"effect\": -9.8, \"ci_running\": [-11.0, null],"
    "     \"p_running\": 0.001, \"verdict\": \"safe\"}]}}],"
    " \"series\": [{\"metric\": \"latency\", \"arm\": \"stable\", \"t\": 1000,"
    "   \"units\": 10, \"active_units\": 10, \"sum\": 1000},"
    "  {\"metric\": \"latency\", \"arm\": \"next\", \"t\": 1000,"
    "   \"units\": 4, \"active_units\": 4, \"sum\": 360}],"
    " \"models\": [{\"model\": \"m\", \"version\": \"2\", \"action\": "
    "   \"promote\", \"from_stage\": \"canary\", \"to_stage\": \"production\","
    "   \"decision_id\": 2}]}";

/* The report of doc_text with the experiment in 'state'. */
static char *
render(const char *state)
{
    const char *p = strstr(doc_text, "STATE");
    size_t n = sizeof(doc_text) + strlen(state);
    char *text = malloc(n);
    snprintf(text, n, "%.*s%s%s", (int)(p - doc_text), doc_text, state,
             p + 5);
    json_t *doc = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(doc);
    char *html = NULL;
    size_t len = 0;
    assert_int_equal(report_html_render(doc, 10000, &html, &len), AB_OK);
    assert_int_equal(strlen(html), len);
    json_decref(doc);
    return html;
}

/* The data-points attribute of one chart, or -1 when it is absent. */
static int
points(const char *html, const char *chart)
{
    char needle[128];
    snprintf(needle, sizeof(needle), "data-chart=\"%s\" data-points=\"", chart);
    const char *p = strstr(html, needle);
    return p ? atoi(p + strlen(needle)) : -1;
}

static void
test_every_chart_with_its_points(void **state)
{
    (void)state;
    char *html = render("promoted");
    /* two ticks of the latency guardrail, one of the errors primary */
    assert_int_equal(points(html, "effect_latency__next__guardrails_"), 2);
    assert_int_equal(points(html, "effect_errors__next__primary_"), 1);
    /* two weights versions x two arms, plus the held end point per arm */
    assert_int_equal(points(html, "traffic"), 6);
    assert_int_equal(points(html, "metric_latency"), 2);
    assert_int_equal(points(html, "metric_errors"), 0);
    assert_non_null(strstr(html, "no data yet"));
    /* the one-sided latency sequence is drawn as its bound */
    assert_non_null(strstr(html, "class=\"bound\""));
    /* the last analysis in the results table, one-sided interval */
    assert_non_null(strstr(html, "[-11, +inf]"));
    free(html);
}

static void
test_text_is_escaped_and_nothing_is_external(void **state)
{
    (void)state;
    char *html = render("promoted");
    assert_null(strstr(html, "<script"));
    assert_non_null(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_null(strstr(html, " src="));
    assert_null(strstr(html, " href="));
    assert_null(strstr(html, "url("));
    assert_null(strstr(html, "Live report"));
    free(html);
}

static void
test_running_experiment_is_a_live_report(void **state)
{
    (void)state;
    char *html = render("running");
    assert_non_null(strstr(html, "Live report"));
    free(html);
    html = render("rolled_back");
    assert_null(strstr(html, "Live report"));
    free(html);
}

static void
test_not_a_report_is_einval(void **state)
{
    (void)state;
    json_t *doc = json_pack("{s:s}", "experiment", "x");
    char *html = NULL;
    size_t len = 0;
    assert_int_equal(report_html_render(doc, 0, &html, &len), AB_EINVAL);
    assert_null(html);
    json_decref(doc);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_chart_with_its_points),
        cmocka_unit_test(test_text_is_escaped_and_nothing_is_external),
        cmocka_unit_test(test_running_experiment_is_a_live_report),
        cmocka_unit_test(test_not_a_report_is_einval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
