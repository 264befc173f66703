/* api.h -- what a handler sees: the worker context, the request, and the
 * response it fills. No microhttpd or libpq types cross this line; server.c
 * does the generic work (route match 404/405, auth 401/403, body limit 413,
 * JSON 400) before a handler runs. A handler ends in exactly one
 * api_reply_*() call.
 */
#ifndef API_API_H
#define API_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/status.h"

struct app; /* service/app.h: process-wide state */

enum api_scope {
    API_SCOPE_NONE = 0, /* no token needed (health, metrics) */
    API_SCOPE_CLIENT,   /* client or admin token */
    API_SCOPE_ADMIN,    /* admin token only */
    API_SCOPE_READ      /* read-only or admin token: results, verdicts,
                           definitions, decisions; never a write */
};

#define API_MAX_PARAMS 4
#define API_MAX_QUERY 64
#define API_MAX_DEPTH 32 /* JSON nesting a caller may send */

struct api_kv {
    const char *key;
    const char *value;
};

struct api_req {
    const char *method;
    const char *path;
    const char *params[API_MAX_PARAMS]; /* ":name" captures, in order */
    size_t n_params;
    struct api_kv query[API_MAX_QUERY]; /* URL-decoded, UTF-8 checked */
    size_t n_query;
    const char *content_type; /* may be NULL */
    const char *if_none_match; /* If-None-Match header, may be NULL */
    const char *body;         /* NUL-terminated; "" when none */
    size_t body_len;
    json_t *json; /* parsed body for API_BODY_JSON routes, borrowed */
    enum api_scope scope; /* the scope the caller's token grants */
    void *defer;          /* token for api_complete() (see API_DEFERRED) */
};

#define API_MAX_HEADERS 8
struct api_resp {
    int status;
    const char *content_type; /* static string */
    char *body;               /* malloc'd, owned */
    size_t body_len;
    struct api_kv headers[API_MAX_HEADERS]; /* static keys, owned values */
    size_t n_headers;
};

/* A handler that waits on another thread (the events writer) does not
 * block its HTTP worker: it sets resp->status = API_DEFERRED, keeps
 * req->defer, and later, from any thread, fills a response and calls
 * api_complete(defer, &resp) exactly once. The connection is suspended
 * meanwhile, so the worker serves its other connections (assignment never
 * waits behind a slow database). */
#define API_DEFERRED (-1)
/* Steals r's body and headers. */
void api_complete(void *defer, struct api_resp *r);

/* 503 answers counted by reason, as Prometheus text (new string); and
 * the optional token GET /metrics asks for (NULL: none). server.c. */
void api_unavailable_render(char **text, size_t *len);
const char *api_metrics_token(void);

struct api_ctx {
    struct app *app;
    struct db *db; /* this request's pooled connection, or NULL if down */
};

typedef void api_handler_fn(struct api_ctx *ctx, const struct api_req *req,
                            struct api_resp *resp);

enum api_body {
    API_BODY_NONE, /* a body is refused (GET) or ignored (POST actions) */
    API_BODY_JSON, /* parsed into req->json; 400 on malformed JSON */
    API_BODY_RAW   /* handler parses (NDJSON) */
};

struct api_route {
    const char *method;
    const char *pattern; /* "/v1/experiments/:key/start" */
    api_handler_fn *handler;
    size_t body_limit;
    enum api_scope scope;
    enum api_body body;
    bool needs_db; /* handler uses ctx->db: 503 when the database is down */
    bool token_in_query; /* "?token=" is accepted (Flagger: no headers) */
    bool token_in_body;  /* without a token elsewhere, the handler checks
                            one in the body (api_authorize_token) */
    bool cors;           /* browsers may call it from any origin: every
                            answer, errors included, carries
                            Access-Control-Allow-Origin (tokens, never
                            cookies) and exposes ETag and Retry-After */
};

/* Check a token against the configured lists (api/server.c) for a route
 * that needs 'need': 0 when allowed, else 401 (no or unknown token) or
 * 403 (a known token of another scope). *granted: the scope it grants. */
int api_authorize_token(const struct app *app, const char *tok, size_t len,
                        enum api_scope need, enum api_scope *granted);

extern const struct api_route api_routes[];
extern const size_t api_n_routes;

/* Start the metrics registry with the route table's labels (the registry,
 * in lib/, must not read the HTTP layer's table itself). */
void api_routes_metrics_init(void);

/* Match method+path. *route is the route of the path even when only the
 * method differs (405). Returns 200 (match), 404 or 405. */
int api_route_match(const char *method, const char *path,
                    const struct api_route **route, struct api_req *req,
                    char *scratch, size_t scratch_len);

/* ---- replies (api/reply.c: the only place that builds error bodies) ---- */

/* Steals body (a JSON value); serializes compactly. */
void api_reply_json(struct api_resp *resp, int status, json_t *body);
/* Steals body (malloc'd). */
void api_reply_raw(struct api_resp *resp, int status, const char *ctype,
                   char *body, size_t len);
/* {"error":{"code":code,"message":...}} */
void api_reply_error(struct api_resp *resp, int status, const char *code,
                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Map an ab_status from a lower layer to the right HTTP error. */
void api_reply_status(struct api_resp *resp, ab_status rc,
                      const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void api_reply_header(struct api_resp *resp, const char *key,
                      const char *value);

/* ---- request helpers ---------------------------------------------------- */
const char *api_req_query(const struct api_req *req, const char *key);
/* An optional JSON object body whose fields are all strings, such as
 * {"reason": "..."} for the life-cycle actions. Empty body: every value "".
 * false: a 400 was written to resp (malformed, unknown field, not a string,
 * API_STRING_MAX bytes or more). */
#define API_STRING_MAX 1024
bool api_body_strings(const struct api_req *req, struct api_resp *resp,
                      const char *const *allowed,
                      char values[][API_STRING_MAX], size_t n);
/* The body of a JSON string for s (RFC 8259 section 7: '"', '\\' and
 * control characters escaped) into n bytes of out, NUL-terminated; stops
 * before an escape that would not fit. Returns the bytes written. */
size_t api_json_escape(char *out, size_t n, const char *s);
/* Deepest nesting of [ and { outside strings: a cheap check before a
 * parser recurses into a hostile body. */
size_t api_json_depth(const char *s, size_t n);

#endif /* API_API_H */
