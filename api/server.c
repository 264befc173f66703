/* server.c -- libmicrohttpd glue: the only file that includes microhttpd.h.
 *
 * Per request, MHD calls access() several times:
 *   1st call   make the struct call, match the route (404/405), check the
 *              declared Content-Length against the route's limit (413,
 *              answered at once, the connection then closes); otherwise
 *              no response yet (queueing on the first call makes MHD 0.9.75
 *              close the connection after every reply: DESIGN.md traps)
 *   Nth call   append body chunks up to the limit (past it, a chunked
 *              body is read and dropped, and the last call answers 413)
 *   last call  auth (401/403), UTF-8 and JSON checks (400), dispatch to the
 *              handler, queue its response
 * completed() frees the call and records the latency histogram.
 */
#include "api/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <unistd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "api/api.h"
#include "service/app.h"
#include "lib/log.h"
#include "lib/metrics.h"

struct server {
    struct MHD_Daemon *daemon;
    struct app *app;
};

struct call {
    const struct api_route *route;
    int match; /* 200, 404 or 405 */
    struct api_req req;
    char scratch[1024]; /* route captures */
    char *body;
    size_t body_len, body_cap;
    bool too_big;
    bool answered;
    uint64_t t0;
    int status;
    /* deferred answers (API_DEFERRED), under defer_lock */
    struct MHD_Connection *conn;
    bool deferred; /* suspended, waiting for api_complete() */
    bool ready;    /* api_complete() delivered 'late' */
    struct api_resp late;
};

/* Guards the deferred/ready handshake between an HTTP worker and the
 * thread that completes a deferred request; n_deferred counts answers not
 * yet queued (server_stop waits for them). */
static pthread_mutex_t defer_lock = PTHREAD_MUTEX_INITIALIZER;
static size_t n_deferred;

static uint64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t
route_index(const struct call *c)
{
    return c->route && c->match == 200 ? (size_t)(c->route - api_routes)
                                       : api_n_routes;
}

static enum MHD_Result
send_resp(struct MHD_Connection *conn, struct call *c, struct api_resp *r)
{
    struct MHD_Response *mr = MHD_create_response_from_buffer(
        r->body_len, r->body, MHD_RESPMEM_MUST_FREE);
    r->body = NULL;
    if (mr == NULL)
        return MHD_NO;
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r->content_type ? r->content_type
                                            : "application/json");
    for (size_t i = 0; i < r->n_headers; i++) {
        MHD_add_response_header(mr, r->headers[i].key, r->headers[i].value);
        free((char *)r->headers[i].value);
    }
    if (c->match == 405 && c->route) {
        /* Allow: every method this path answers to */
        char allow[64] = "";
        for (size_t i = 0; i < api_n_routes; i++)
            if (strcmp(api_routes[i].pattern, c->route->pattern) == 0) {
                size_t l = strlen(allow);
                snprintf(allow + l, sizeof(allow) - l, "%s%s", l ? ", " : "",
                         api_routes[i].method);
            }
        MHD_add_response_header(mr, "Allow", allow);
    }
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->status, mr);
    MHD_destroy_response(mr);
    c->status = r->status;
    c->answered = true;
    return ret;
}

static enum MHD_Result
send_error(struct MHD_Connection *conn, struct call *c, int status,
           const char *code, const char *msg)
{
    struct api_resp r = {0};
    api_reply_error(&r, status, code, "%s", msg);
    return send_resp(conn, c, &r);
}

/* Constant-time in the token's contents (time depends only on the length
 * of the configured secret). */
static bool
token_equal(const char *given, size_t given_len, const char *secret)
{
    if (secret == NULL || *secret == '\0')
        return false;
    size_t n = strlen(secret);
    unsigned char diff = (unsigned char)(given_len != n);
    for (size_t i = 0; i < n; i++) {
        unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)(g ^ (unsigned char)secret[i]);
    }
    return diff == 0;
}

/* 0 = ok; else the HTTP status to answer (401 or 403). */
static int
authorize(struct app *app, struct MHD_Connection *conn, struct call *c)
{
    enum api_scope need = c->route->scope;
    c->req.scope = API_SCOPE_NONE;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    if (h && strncasecmp(h, "Bearer ", 7) == 0) {
        const char *tok = h + 7;
        size_t len = strlen(tok);
        bool admin = token_equal(tok, len, app->cfg.admin_token);
        bool client = token_equal(tok, len, app->cfg.client_token);
        if (admin)
            c->req.scope = API_SCOPE_ADMIN;
        else if (client)
            c->req.scope = API_SCOPE_CLIENT;
    }
    if (need == API_SCOPE_NONE)
        return 0;
    if (c->req.scope == API_SCOPE_NONE)
        return 401;
    if (need == API_SCOPE_ADMIN && c->req.scope != API_SCOPE_ADMIN)
        return 403;
    return 0;
}

static enum MHD_Result
collect_query(void *cls, enum MHD_ValueKind kind, const char *key,
              const char *value)
{
    (void)kind;
    struct call *c = cls;
    if (c->req.n_query == API_MAX_QUERY) {
        c->req.n_query++; /* marks overflow */
        return MHD_NO;
    }
    c->req.query[c->req.n_query].key = key;
    c->req.query[c->req.n_query].value = value ? value : "";
    c->req.n_query++;
    return MHD_YES;
}

static enum MHD_Result
dispatch(struct app *app, struct MHD_Connection *conn, struct call *c)
{
    if (c->match == 404)
        return send_error(conn, c, 404, "not_found", "no such route");
    if (c->match == 405)
        return send_error(conn, c, 405, "method_not_allowed",
                          "method not allowed on this route");
    int auth = authorize(app, conn, c);
    if (auth == 401)
        return send_error(conn, c, 401, "unauthorized",
                          "missing or unknown bearer token");
    if (auth == 403)
        return send_error(conn, c, 403, "forbidden",
                          "this token may not use this route");
    if (c->too_big)
        return send_error(conn, c, 413, "too_big",
                          "request body over the limit");
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_query, c);
    if (c->req.n_query > API_MAX_QUERY)
        return send_error(conn, c, 400, "invalid", "too many query parameters");
    for (size_t i = 0; i < c->req.n_query; i++) {
        const char *k = c->req.query[i].key, *v = c->req.query[i].value;
        if (!api_utf8_valid(k, strlen(k)) || !api_utf8_valid(v, strlen(v)))
            return send_error(conn, c, 400, "invalid_utf8",
                              "query parameters must be valid UTF-8");
    }
    c->req.content_type =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                    MHD_HTTP_HEADER_CONTENT_TYPE);
    c->req.body = c->body ? c->body : "";
    c->req.body_len = c->body_len;

    json_t *doc = NULL;
    if (c->route->body == API_BODY_JSON) {
        if (c->body_len == 0)
            return send_error(conn, c, 400, "invalid_json",
                              "a JSON body is required");
        if (!api_utf8_valid(c->body, c->body_len))
            return send_error(conn, c, 400, "invalid_utf8",
                              "request body is not valid UTF-8");
        if (api_json_depth(c->body, c->body_len) > API_MAX_DEPTH)
            return send_error(conn, c, 400, "too_deep",
                              "JSON nesting deeper than 32 levels");
        json_error_t jerr;
        doc = json_loadb(c->body, c->body_len,
                         JSON_REJECT_DUPLICATES, &jerr);
        if (doc == NULL) {
            char msg[300];
            snprintf(msg, sizeof(msg), "malformed JSON at line %d column %d: %s",
                     jerr.line, jerr.column, jerr.text);
            return send_error(conn, c, 400, "invalid_json", msg);
        }
        c->req.json = doc;
    } else if (c->route->body == API_BODY_RAW && c->body_len > 0 &&
               !api_utf8_valid(c->body, c->body_len)) {
        return send_error(conn, c, 400, "invalid_utf8",
                          "request body is not valid UTF-8");
    }

    struct api_ctx ctx = {.app = app, .db = NULL};
    struct api_resp resp = {0};
    if (c->route->needs_db) {
        ctx.db = app_db_get(app);
        if (ctx.db == NULL) {
            json_decref(doc);
            c->req.json = NULL; /* completed_cb must not release it again */
            api_reply_header(&resp, "Retry-After", "1");
            api_reply_error(&resp, 503, "database_unavailable",
                            "the database is unreachable; retry later");
            return send_resp(conn, c, &resp);
        }
    }
    c->conn = conn;
    c->req.defer = c;
    c->route->handler(&ctx, &c->req, &resp);
    app_db_put(app, ctx.db);
    json_decref(doc);
    c->req.json = NULL;
    if (resp.status == API_DEFERRED) {
        pthread_mutex_lock(&defer_lock);
        if (c->ready) { /* completed before we could suspend */
            pthread_mutex_unlock(&defer_lock);
            return send_resp(conn, c, &c->late);
        }
        c->deferred = true;
        n_deferred++;
        MHD_suspend_connection(conn);
        pthread_mutex_unlock(&defer_lock);
        return MHD_YES;
    }
    if (resp.body == NULL) /* a handler bug: never leave the caller hanging */
        api_reply_error(&resp, 500, "internal", "no response");
    return send_resp(conn, c, &resp);
}

void
api_complete(void *defer, struct api_resp *r)
{
    struct call *c = defer;
    pthread_mutex_lock(&defer_lock);
    c->late = *r;
    memset(r, 0, sizeof(*r));
    if (c->late.body == NULL)
        api_reply_error(&c->late, 500, "internal", "no response");
    c->ready = true;
    if (c->deferred)
        MHD_resume_connection(c->conn); /* MHD calls access_cb again */
    pthread_mutex_unlock(&defer_lock);
}

/* ---- struct call: one spare per worker thread ------------------------------
 * struct call is 2 KiB, past glibc's per-thread cache (tcache, up to 1032
 * bytes), so malloc and free of it took the arena path (and calloc zeroed
 * it) on every request. Each MHD worker thread keeps the last freed call
 * as a spare in thread-specific data; the key's destructor frees it when
 * the thread ends, and server_stop() frees the stopping thread's own. A
 * call is not zeroed: the capture scratch and the query array are written
 * before they are read (n_params and n_query say how much), and every other
 * field is set below. */
static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;

static void
spare_key_make(void)
{
    if (pthread_key_create(&spare_key, free) != 0)
        abort();
}

static void
call_free(struct call *c)
{
    if (pthread_getspecific(spare_key) == NULL &&
        pthread_setspecific(spare_key, c) == 0)
        return;
    free(c);
}

static struct call *
call_new(void)
{
    struct call *c = pthread_getspecific(spare_key);
    if (c != NULL)
        pthread_setspecific(spare_key, NULL);
    else
        c = ab_xmalloc(sizeof(*c));
    c->route = NULL;
    c->match = 0;
    c->req.method = NULL;
    c->req.path = NULL;
    c->req.n_params = 0;
    c->req.n_query = 0;
    c->req.content_type = NULL;
    c->req.body = NULL;
    c->req.body_len = 0;
    c->req.json = NULL;
    c->req.scope = API_SCOPE_NONE;
    c->body = NULL;
    c->body_len = c->body_cap = 0;
    c->too_big = false;
    c->answered = false;
    c->conn = NULL;
    c->deferred = false;
    c->ready = false;
    c->req.defer = NULL;
    c->t0 = 0;
    c->status = 0;
    return c;
}

static enum MHD_Result
access_cb(void *cls, struct MHD_Connection *conn, const char *url,
          const char *method, const char *version, const char *upload_data,
          size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct app *app = cls;
    struct call *c = *con_cls;
    if (c == NULL) {
        c = call_new();
        c->t0 = now_ns();
        *con_cls = c;
        c->req.method = method;
        c->req.path = url;
        c->match = api_route_match(method, url, &c->route, &c->req,
                                   c->scratch, sizeof(c->scratch));
        if (c->match == 200) {
            const char *cl = MHD_lookup_connection_value(
                conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
            if (cl && strtoull(cl, NULL, 10) > c->route->body_limit)
                c->too_big = true;
        }
        /* A declared body over the limit is answered now, before it is
         * read: libmicrohttpd 0.9.75 accepts a response only on this call
         * or after the whole body (MHD_queue_response() fails while the
         * upload is in progress, and the connection would be dropped
         * without an answer); answering on the first call makes it close
         * the connection after the 413, which is right for an unread
         * body. */
        if (c->too_big)
            return dispatch(app, conn, c);
        return MHD_YES;
    }
    if (c->answered) { /* answered early (413); discard the rest */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (c->deferred) { /* resumed by api_complete() */
        pthread_mutex_lock(&defer_lock);
        bool ready = c->ready;
        if (ready) {
            c->deferred = false;
            n_deferred--;
        }
        pthread_mutex_unlock(&defer_lock);
        return ready ? send_resp(conn, c, &c->late) : MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (c->match != 200)
            return MHD_YES;
        if (!c->too_big && c->body_len + n > c->route->body_limit) {
            c->too_big = true;
            free(c->body);
            c->body = NULL;
            c->body_len = 0;
        }
        if (c->too_big) /* chunked, past the limit: discard, 413 at the end */
            return MHD_YES;
        if (c->body_len + n + 1 > c->body_cap) {
            size_t cap = c->body_cap ? c->body_cap : 1024;
            while (cap < c->body_len + n + 1)
                cap *= 2;
            if (cap > c->route->body_limit + 1)
                cap = c->route->body_limit + 1;
            c->body = ab_xrealloc(c->body, cap);
            c->body_cap = cap;
        }
        memcpy(c->body + c->body_len, upload_data, n);
        c->body_len += n;
        c->body[c->body_len] = '\0';
        return MHD_YES;
    }
    return dispatch(app, conn, c);
}

static void
completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct call *c = *con_cls;
    if (c == NULL)
        return;
    if (c->answered)
        metrics_observe_request(route_index(c), c->status, now_ns() - c->t0);
    pthread_mutex_lock(&defer_lock);
    if (c->ready && c->deferred) { /* completed, but never sent */
        free(c->late.body);
        for (size_t i = 0; i < c->late.n_headers; i++)
            free((char *)c->late.headers[i].value);
        n_deferred--;
        c->deferred = false;
    }
    pthread_mutex_unlock(&defer_lock);
    json_decref(c->req.json);
    free(c->body);
    call_free(c);
    *con_cls = NULL;
}

__attribute__((format(printf, 2, 0))) static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    log_msg(LOG_DEBUG, "http", "detail", msg, NULL);
}

/* Bind and listen on HOST:PORT: an IPv4 or IPv6 literal ("[::]" and "::"
 * listen on both families where the system allows), or a host name (its
 * first address that binds). On failure logs why (address in use,
 * permission denied, unknown host) and returns -1. */
static int
listen_socket(const char *host_in, int port, int *family)
{
    char host[80];
    size_t hl = strlen(host_in);
    if (hl >= 2 && host_in[0] == '[' && host_in[hl - 1] == ']' &&
        hl - 2 < sizeof(host)) {
        memcpy(host, host_in + 1, hl - 2);
        host[hl - 2] = '\0';
    } else
        snprintf(host, sizeof(host), "%s", host_in);
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(host[0] ? host : NULL, service, &hints, &res);
    if (gai != 0) {
        log_json(LOG_ERROR, "cannot listen",
                 json_pack("{s:s,s:i,s:s}", "host", host_in, "port", port,
                           "reason", gai_strerror(gai)));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1, zero = 0;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6) /* "::" takes IPv4 too */
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
            listen(fd, 1024) != 0) {
            err = errno;
            close(fd);
            fd = -1;
            continue;
        }
        *family = ai->ai_family;
    }
    freeaddrinfo(res);
    if (fd < 0)
        log_json(LOG_ERROR, "cannot listen",
                 json_pack("{s:s,s:i,s:s}", "host", host_in, "port", port,
                           "reason",
                           err == EADDRINUSE
                               ? "address already in use (another server "
                                 "on this port?)"
                           : err == EACCES
                               ? "permission denied (ports below 1024 need "
                                 "privileges)"
                               : strerror(err)));
    return fd;
}

ab_status
server_start(struct app *app, struct server **out)
{
    int family = AF_INET;
    int fd = listen_socket(app->cfg.host, app->cfg.port, &family);
    if (fd < 0)
        return AB_EINVAL;
    pthread_once(&spare_once, spare_key_make);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                     MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME |
                     (family == AF_INET6 ? MHD_USE_IPv6 : 0);
    /* The logger first, so that MHD's messages about the other options
     * reach it; a pool of 1 is no pool (0: MHD warns about 1). */
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)app->cfg.port, NULL, NULL, access_cb, app,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
        MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)(app->cfg.threads > 1 ? app->cfg.threads : 0),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, app->cfg.conn_memory,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096,
        MHD_OPTION_NOTIFY_COMPLETED, completed_cb, NULL, MHD_OPTION_END);
    if (d == NULL) {
        log_json(LOG_ERROR, "cannot start the HTTP server",
                 json_pack("{s:s,s:i}", "host", app->cfg.host, "port",
                           app->cfg.port));
        close(fd);
        return AB_EINVAL;
    }
    struct server *s = ab_xcalloc(1, sizeof(*s));
    s->daemon = d;
    s->app = app;
    *out = s;
    return AB_OK;
}

void
server_stop(struct server *srv)
{
    if (srv == NULL)
        return;
    /* deferred answers still being queued (the caller drained their
     * producers first): give them a moment to go out */
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(&defer_lock);
        size_t pending = n_deferred;
        pthread_mutex_unlock(&defer_lock);
        if (pending == 0)
            break;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(srv->daemon);
    /* the workers' spares went with their threads; requests finished on
     * this thread during the stop may have left one here */
    free(pthread_getspecific(spare_key));
    pthread_setspecific(spare_key, NULL);
    free(srv);
}
