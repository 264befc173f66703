/* routes.c -- the route table and its matcher. One line per route. */
#include <string.h>

#include "api/api.h"
#include "api/handlers.h"
#include "lib/metrics.h"

/* Routes name the token fields (token_in_query, token_in_body) only when
 * they set them; omitted trailing fields are false. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* clang-format off */
const struct api_route api_routes[] = {
    /* method   pattern                             handler                   body limit  scope             body           db */
    { "GET",   "/healthz",                          api_health,               0,          API_SCOPE_NONE,   API_BODY_NONE, false },
    { "GET",   "/readyz",                           api_ready,                0,          API_SCOPE_NONE,   API_BODY_NONE, false },
    { "GET",   "/metrics",                          api_metrics,              0,          API_SCOPE_NONE,   API_BODY_NONE, false },
    { "GET",   "/v1/assign",                        api_assign_get,           0,          API_SCOPE_CLIENT, API_BODY_NONE, false },
    { "POST",  "/v1/assign",                        api_assign_post,          16 * KB,    API_SCOPE_CLIENT, API_BODY_JSON, false },
    { "POST",  "/v1/events",                        api_events_post,          8 * MB,     API_SCOPE_CLIENT, API_BODY_RAW,  false },
    { "POST",  "/v1/experiments",                   api_models_experiment_create,64 * KB,    API_SCOPE_ADMIN,  API_BODY_JSON, true  },
    { "GET",   "/v1/experiments",                   api_experiment_list,      0,          API_SCOPE_READ,   API_BODY_NONE, true  },
    { "GET",   "/v1/experiments/:key",              api_experiment_get,       0,          API_SCOPE_READ,   API_BODY_NONE, true  },
    { "PATCH", "/v1/experiments/:key",              api_models_experiment_patch, 64 * KB,    API_SCOPE_ADMIN,  API_BODY_JSON, true  },
    { "POST",  "/v1/experiments/:key/start",        api_experiment_start,     4 * KB,     API_SCOPE_ADMIN,  API_BODY_RAW,  true  },
    { "POST",  "/v1/experiments/:key/pause",        api_experiment_pause,     4 * KB,     API_SCOPE_ADMIN,  API_BODY_RAW,  true  },
    { "POST",  "/v1/experiments/:key/resume",       api_experiment_resume,    4 * KB,     API_SCOPE_ADMIN,  API_BODY_RAW,  true  },
    { "POST",  "/v1/experiments/:key/stop",         api_experiment_stop,      4 * KB,     API_SCOPE_ADMIN,  API_BODY_RAW,  true  },
    { "POST",  "/v1/experiments/:key/promote",      api_experiment_promote,   4 * KB,     API_SCOPE_ADMIN,  API_BODY_RAW,  true  },
    { "POST",  "/v1/experiments/:key/rollback",     api_experiment_rollback,  4 * KB,     API_SCOPE_ADMIN,  API_BODY_RAW,  true  },
    { "POST",  "/v1/experiments/:key/approve",      api_experiment_approve,   4 * KB,     API_SCOPE_ADMIN,  API_BODY_RAW,  true  },
    { "GET",   "/v1/experiments/:key/decisions",    api_experiment_decisions, 0,          API_SCOPE_READ,   API_BODY_NONE, true  },
    { "GET",   "/v1/experiments/:key/results",      api_experiment_results,   0,          API_SCOPE_READ,   API_BODY_NONE, true  },
    { "POST",  "/v1/analyze",                       api_analyze_post,         1 * MB,     API_SCOPE_CLIENT, API_BODY_JSON, false },
    { "GET",   "/v1/experiments/:key/exposures",    api_experiment_exposures, 0,          API_SCOPE_READ,   API_BODY_NONE, true  },
    { "GET",   "/v1/experiments/:key/bandit",       api_bandit_get,           0,          API_SCOPE_READ,   API_BODY_NONE, true  },
    /* ecosystem protocols: Argo Rollouts, Flagger, OpenFeature (issue 12) */
    { "GET",   "/v1/experiments/:key/verdict",      api_experiment_verdict,   0,          API_SCOPE_READ,   API_BODY_NONE, false },
    { "POST",  "/v1/flagger/rollout",               api_flagger_rollout,      16 * KB,    API_SCOPE_READ,   API_BODY_JSON, false, .token_in_query = true, .token_in_body = true },
    { "POST",  "/v1/flagger/confirm-promotion",     api_flagger_confirm_promotion, 16 * KB, API_SCOPE_READ, API_BODY_JSON, false, .token_in_query = true, .token_in_body = true },
    { "POST",  "/v1/flagger/rollback",              api_flagger_rollback,     16 * KB,    API_SCOPE_READ,   API_BODY_JSON, false, .token_in_query = true, .token_in_body = true },
    { "POST",  "/v1/flagger/event",                 api_flagger_event,        16 * KB,    API_SCOPE_CLIENT, API_BODY_JSON, true,  .token_in_query = true, .token_in_body = true },
    { "POST",  "/ofrep/v1/evaluate/flags/:key",     api_ofrep_evaluate,       64 * KB,    API_SCOPE_CLIENT, API_BODY_RAW,  false, .cors = true },
    { "OPTIONS", "/ofrep/v1/evaluate/flags/:key",   api_ofrep_preflight,      0,          API_SCOPE_NONE,   API_BODY_NONE, false, .cors = true },
    { "POST",  "/ofrep/v1/evaluate/flags",          api_ofrep_bulk,           64 * KB,    API_SCOPE_CLIENT, API_BODY_RAW,  false, .cors = true },
    { "OPTIONS", "/ofrep/v1/evaluate/flags",        api_ofrep_preflight,      0,          API_SCOPE_NONE,   API_BODY_NONE, false, .cors = true },
    { "GET",   "/ofrep/v1/configuration",           api_ofrep_configuration,  0,          API_SCOPE_CLIENT, API_BODY_NONE, false, .cors = true },
    { "POST",  "/v1/track",                         api_ofrep_track,          1 * MB,     API_SCOPE_CLIENT, API_BODY_JSON, false },
    { "POST",  "/v1/models",                        api_model_register,       64 * KB,    API_SCOPE_ADMIN,  API_BODY_JSON, true  },
    { "GET",   "/v1/models",                        api_model_list,           0,          API_SCOPE_ADMIN,  API_BODY_NONE, true  },
    { "GET",   "/v1/models/:model",                 api_model_get,            0,          API_SCOPE_ADMIN,  API_BODY_NONE, true  },
    { "GET",   "/v1/models/:model/history",         api_model_history,        0,          API_SCOPE_ADMIN,  API_BODY_NONE, true  },
    { "GET",   "/v1/models/:model/production",      api_model_production,     0,          API_SCOPE_CLIENT, API_BODY_NONE, false },
    { "GET",   "/v1/models/:model/versions/:version", api_model_version_get,  0,          API_SCOPE_ADMIN,  API_BODY_NONE, true  },
    { "POST",  "/v1/models/:model/versions/:version/stage", api_model_stage,  4 * KB,     API_SCOPE_ADMIN,  API_BODY_RAW,  true  },
    { "POST",  "/v1/models/:model/versions/:version/checkpoints", api_model_checkpoint_add, 4 * KB, API_SCOPE_CLIENT, API_BODY_RAW, true },
    { "GET",   "/v1/experiments/:key/report",       api_experiment_report,    0,          API_SCOPE_ADMIN,  API_BODY_NONE, true  },
    /* paired shadow analysis (issue 16) */
    { "POST",  "/v1/experiments/:key/shadow/pairs", api_shadow_pairs_post,    8 * MB,     API_SCOPE_CLIENT, API_BODY_JSON, true  },
    { "POST",  "/v1/experiments/:key/shadow/labels", api_shadow_labels_post,  2 * MB,     API_SCOPE_CLIENT, API_BODY_JSON, true  },
    { "GET",   "/v1/experiments/:key/shadow",       api_shadow_get,           0,          API_SCOPE_READ,   API_BODY_NONE, true  },
};
/* clang-format on */
const size_t api_n_routes = sizeof(api_routes) / sizeof(api_routes[0]);

#define N_ROUTES (sizeof(api_routes) / sizeof(api_routes[0]))
static const char *route_patterns[N_ROUTES], *route_methods[N_ROUTES];

void
api_routes_metrics_init(void)
{
    for (size_t i = 0; i < N_ROUTES; i++) {
        route_patterns[i] = api_routes[i].pattern;
        route_methods[i] = api_routes[i].method;
    }
    metrics_init(N_ROUTES, route_patterns, route_methods);
}

/* Match one pattern against a path; captures are copied into scratch. */
static bool
match_pattern(const char *pattern, const char *path, struct api_req *req,
              char *scratch, size_t scratch_len)
{
    size_t used = 0, n_params = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p == ':') {
            const char *end = strchr(s, '/');
            size_t len = end ? (size_t)(end - s) : strlen(s);
            if (len == 0 || n_params == API_MAX_PARAMS ||
                used + len + 1 > scratch_len)
                return false;
            memcpy(scratch + used, s, len);
            scratch[used + len] = '\0';
            if (req)
                req->params[n_params] = scratch + used;
            n_params++;
            used += len + 1;
            s += len;
            while (*p && *p != '/')
                p++;
            continue;
        }
        if (*p != *s)
            return false;
        p++;
        s++;
    }
    if (*p || *s)
        return false;
    if (req)
        req->n_params = n_params;
    return true;
}

int
api_route_match(const char *method, const char *path,
                const struct api_route **route, struct api_req *req,
                char *scratch, size_t scratch_len)
{
    const struct api_route *path_only = NULL;
    for (size_t i = 0; i < api_n_routes; i++) {
        const struct api_route *r = &api_routes[i];
        if (!match_pattern(r->pattern, path, NULL, scratch, scratch_len))
            continue;
        if (strcmp(r->method, method) == 0) {
            match_pattern(r->pattern, path, req, scratch, scratch_len);
            *route = r;
            return 200;
        }
        if (path_only == NULL)
            path_only = r;
    }
    *route = path_only;
    return path_only ? 405 : 404;
}
