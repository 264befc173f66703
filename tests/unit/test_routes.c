/* test_routes.c -- the route table and its matcher (api/routes.c): every
 * route answers its own method and path, captures land in req->params,
 * a known path with another method is 405 (naming the path's route, for
 * the Allow header), anything else 404; and the table itself is
 * unambiguous. Links routes.c with the metrics registry only: the
 * handlers are stubs here (a new handler in the table needs a line in
 * HANDLERS below, or this test does not link).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "api/handlers.h"

#define HANDLERS(X)                                                          \
    X(api_health) X(api_ready) X(api_metrics) X(api_assign_get)              \
    X(api_assign_post) X(api_experiment_promote) X(api_experiment_rollback)  \
    X(api_experiment_approve) X(api_analyze_post) X(api_experiment_results)  \
    X(api_bandit_get) X(api_events_post) X(api_experiment_create)            \
    X(api_experiment_list) X(api_experiment_get) X(api_experiment_patch)     \
    X(api_experiment_start) X(api_experiment_pause)                          \
    X(api_experiment_resume) X(api_experiment_stop)                          \
    X(api_experiment_decisions) X(api_experiment_exposures)                  \
    X(api_model_register) X(api_model_list) X(api_model_get)                 \
    X(api_model_history) X(api_model_production) X(api_model_version_get)    \
    X(api_model_stage) X(api_model_checkpoint_add)                           \
    X(api_models_experiment_create) X(api_models_experiment_patch)           \
    X(api_experiment_report) X(api_experiment_verdict)                       \
    X(api_flagger_rollout) X(api_flagger_confirm_promotion)                  \
    X(api_flagger_rollback) X(api_flagger_event) X(api_ofrep_evaluate)       \
    X(api_ofrep_bulk) X(api_ofrep_preflight) X(api_ofrep_configuration)      \
    X(api_ofrep_track) X(api_shadow_pairs_post) X(api_shadow_labels_post)     \
    X(api_shadow_get)

#define STUB(name)                                                           \
    void name(struct api_ctx *ctx, const struct api_req *req,                \
              struct api_resp *resp)                                         \
    {                                                                        \
        (void)ctx;                                                           \
        (void)req;                                                           \
        (void)resp;                                                          \
    }
HANDLERS(STUB)

/* The path of a pattern with each ":name" replaced by "p<i>". */
static void
concrete(const char *pattern, char *out, size_t n)
{
    size_t w = 0;
    int k = 0;
    for (const char *p = pattern; *p && w + 8 < n;) {
        if (*p == ':') {
            w += (size_t)snprintf(out + w, n - w, "p%d", k++);
            while (*p && *p != '/')
                p++;
        } else
            out[w++] = *p++;
    }
    out[w] = '\0';
}

static int
match(const char *method, const char *path, const struct api_route **r,
      struct api_req *req)
{
    static char scratch[1024];
    memset(req, 0, sizeof(*req));
    return api_route_match(method, path, r, req, scratch, sizeof(scratch));
}

static void
test_every_route_answers_its_own_path(void **state)
{
    (void)state;
    for (size_t i = 0; i < api_n_routes; i++) {
        const struct api_route *want = &api_routes[i], *got = NULL;
        char path[256];
        concrete(want->pattern, path, sizeof(path));
        struct api_req req;
        int st = match(want->method, path, &got, &req);
        if (st != 200 || got != want)
            fail_msg("%s %s: %d, route %s", want->method, path, st,
                     got ? got->pattern : "(none)");
        for (size_t k = 0; k < req.n_params; k++) {
            char p[24];
            snprintf(p, sizeof(p), "p%zu", k);
            assert_string_equal(req.params[k], p);
        }
    }
}

static void
test_captures_in_order(void **state)
{
    (void)state;
    const struct api_route *r;
    struct api_req req;
    assert_int_equal(match("POST", "/v1/models/ranker/versions/2.0.1/stage",
                           &r, &req),
                     200);
    assert_ptr_equal(r->handler, api_model_stage);
    assert_int_equal(req.n_params, 2);
    assert_string_equal(req.params[0], "ranker");
    assert_string_equal(req.params[1], "2.0.1");
    assert_int_equal(match("GET", "/v1/experiments/exp-42/results", &r,
                           &req),
                     200);
    assert_ptr_equal(r->handler, api_experiment_results);
    assert_int_equal(req.n_params, 1);
    assert_string_equal(req.params[0], "exp-42");
    /* a capture takes any bytes but '/' (percent-decoding is the server's) */
    assert_int_equal(match("GET", "/v1/experiments/a b%ff", &r, &req), 200);
    assert_string_equal(req.params[0], "a b%ff");
}

static void
test_known_path_other_method_is_405(void **state)
{
    (void)state;
    const struct api_route *r;
    struct api_req req;
    assert_int_equal(match("DELETE", "/v1/experiments/k", &r, &req), 405);
    assert_non_null(r);
    assert_string_equal(r->pattern, "/v1/experiments/:key");
    assert_int_equal(match("GET", "/v1/events", &r, &req), 405);
    assert_string_equal(r->pattern, "/v1/events");
    assert_int_equal(match("POST", "/healthz", &r, &req), 405);
    assert_int_equal(match("get", "/healthz", &r, &req), 405); /* exact */
}

static void
test_unknown_paths_are_404(void **state)
{
    (void)state;
    static const char *const paths[] = {
        "/", "", "/v1", "/v2/experiments", "/v1/experiments/e1/x",
        "/v1/experiments/e1/start/now", "/v1/assign/x", "/healthz/",
        "/v1//assign", "/v1/experiments//start", "/metricsx",
        "/v1/experiments/", "//v1/assign", "/V1/assign",
        "/v1/models/m/versions//stage",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        const struct api_route *r = (const struct api_route *)1;
        struct api_req req;
        int st = match("GET", paths[i], &r, &req);
        if (st != 404 || r != NULL)
            fail_msg("GET \"%s\": %d, want 404 and no route", paths[i], st);
    }
}

/* Captures that do not fit the caller's scratch space match nothing. */
static void
test_capture_past_scratch_is_404(void **state)
{
    (void)state;
    char path[200], scratch[16];
    snprintf(path, sizeof(path), "/v1/experiments/%s", "0123456789abcdefg");
    const struct api_route *r;
    struct api_req req = {0};
    assert_int_equal(api_route_match("GET", path, &r, &req, scratch,
                                     sizeof(scratch)),
                     404);
    snprintf(path, sizeof(path), "/v1/experiments/%s", "0123456789abcde");
    assert_int_equal(api_route_match("GET", path, &r, &req, scratch,
                                     sizeof(scratch)),
                     200);
    assert_string_equal(req.params[0], "0123456789abcde");
}

/* No two routes answer the same method and path, every pattern starts
 * with '/', and none captures more than API_MAX_PARAMS. */
static void
test_table_is_unambiguous(void **state)
{
    (void)state;
    for (size_t i = 0; i < api_n_routes; i++) {
        const struct api_route *a = &api_routes[i];
        assert_int_equal(a->pattern[0], '/');
        size_t n = 0;
        for (const char *p = a->pattern; *p; p++)
            n += *p == ':';
        assert_true(n <= API_MAX_PARAMS);
        char path[256];
        concrete(a->pattern, path, sizeof(path));
        for (size_t j = 0; j < api_n_routes; j++) {
            const struct api_route *r;
            struct api_req req;
            if (j == i || strcmp(api_routes[j].method, a->method) != 0)
                continue;
            if (match(a->method, path, &r, &req) == 200 && r != a)
                fail_msg("%s %s: both %s and %s", a->method, path,
                         a->pattern, r->pattern);
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_route_answers_its_own_path),
        cmocka_unit_test(test_captures_in_order),
        cmocka_unit_test(test_known_path_other_method_is_405),
        cmocka_unit_test(test_unknown_paths_are_404),
        cmocka_unit_test(test_capture_past_scratch_is_404),
        cmocka_unit_test(test_table_is_unambiguous),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
