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
 *
 * Hardening (issue 14), each in its own function below:
 *   - framing_check(): ambiguous framing (Transfer-Encoding with
 *     Content-Length, conflicting Content-Lengths) and NUL bytes in the
 *     Authorization header are refused on the 1st call, before any body;
 *   - the token is checked on the 1st call too: an unauthenticated body is
 *     never read (401/403 at once, the connection then closes);
 *   - limits: MHD's per-address connection limit, and deadlines kept by a
 *     reaper thread that a slow sender cannot extend (headers within
 *     ARBITER_HEADER_TIMEOUT_MS of connecting or of the previous answer,
 *     the body within ARBITER_BODY_TIMEOUT_MS of the headers);
 *   - slow routes (those that use the database, and analyze) run on a
 *     separate bounded pool, never on an HTTP worker: a stalled database
 *     or a large analysis cannot hold the workers that assign;
 *   - every 503 is counted by reason (api_unavailable_render());
 *   - server_stop() drains: it stops accepting, lets in-flight requests
 *     finish (answers then carry Connection: close), then stops.
 */
#include "api/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <unistd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>

#include "api/api.h"
#include "service/app.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/utf8.h"

/* Connection limits (README "Limits"); from the environment at start. */
struct limits {
    unsigned per_ip;          /* ARBITER_MAX_CONNS_PER_IP */
    int64_t header_ms;        /* ARBITER_HEADER_TIMEOUT_MS */
    int64_t body_ms;          /* ARBITER_BODY_TIMEOUT_MS */
    int64_t idle_ms;          /* ARBITER_IDLE_TIMEOUT_MS (keep-alive) */
    int64_t drain_ms;         /* ARBITER_DRAIN_TIMEOUT_MS */
    size_t slow_threads;      /* ARBITER_SLOW_THREADS */
    size_t slow_queue;        /* ARBITER_SLOW_QUEUE */
    const char *metrics_token; /* ARBITER_METRICS_TOKEN, or NULL */
};

struct call;

/* The bounded pool for slow routes. */
struct slow_pool {
    pthread_mutex_t lock;
    pthread_cond_t cv;
    struct call *head, *tail;
    size_t n_queued, max;
    bool stopping;
    pthread_t threads[16];
    size_t n_threads;
};

/* Per TCP connection: its socket and the deadline the reaper enforces. */
struct conn_state {
    struct conn_state *prev, *next;
    int fd;
    _Atomic int64_t deadline; /* ms, CLOCK_MONOTONIC; INT64_MAX = none */
    bool reaped;
    atomic_bool fresh; /* accepted, no request begun yet (counted in
                          n_fresh) */
};

struct server {
    struct MHD_Daemon *daemon;
    struct app *app;
    pthread_t reaper;
    bool reaper_started;
    int listen_fd;
    atomic_bool reaper_stop;
};

static struct limits lim;
static atomic_bool draining;      /* answers carry Connection: close */
static _Atomic long n_in_flight;  /* requests between 1st call and done */
/* Connections accepted whose first request has not begun: a client that
 * connected just before a drain (SIGUSR2, SIGTERM) has sent, or is
 * sending, a request the drain must answer rather than cut. */
static _Atomic long n_fresh;
#define DRAIN_FRESH_MS 2000
static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
static struct conn_state *conns;  /* every open connection */

struct call {
    const struct api_route *route;
    int match; /* 200, 404 or 405 */
    struct api_req req;
    char scratch[1024]; /* route captures */
    char *body;
    size_t body_len, body_cap;
    bool too_big;
    bool answered;
    bool query_nul; /* a query key or value holds a NUL (%00) */
    int auth; /* authorize(), on the 1st call: 0, 401 or 403 */
    struct conn_state *cs; /* this connection's deadline, may be NULL */
    struct call *next_job; /* slow pool queue */
    struct app *app;
    json_t *job_doc; /* the parsed body, owned by the slow job */
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

static int64_t
now_ms(void)
{
    return (int64_t)(now_ns() / 1000000u);
}

/* ---- 503s by reason ---------------------------------------------------------
 * Every 503 the server sends is counted here, by the error code of its body
 * (the one error shape) or "not_ready" for /readyz; GET /metrics renders
 * them as arbiter_http_unavailable_total{reason="..."}. */
static const char *const unavailable_reasons[] = {
    "overloaded",     /* events: ingestion queue or spool full */
    "unavailable",    /* events: could not be made durable */
    "database_unavailable", /* a route that needs the database, down */
    "busy",           /* the slow-route pool is full */
    "not_ready",      /* /readyz */
    "other",
};
#define N_REASONS (sizeof(unavailable_reasons) / sizeof(unavailable_reasons[0]))
static _Atomic uint64_t unavailable_counts[N_REASONS];

static bool
contains(const char *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; hay && i + n <= len; i++)
        if (memcmp(hay + i, needle, n) == 0)
            return true;
    return false;
}

static void
count_unavailable(const char *body, size_t len)
{
    size_t i = N_REASONS - 1;
    char want[64];
    for (size_t k = 0; k + 1 < N_REASONS; k++) {
        /* the error shape's code; /readyz says "status":"not_ready" */
        snprintf(want, sizeof(want), "\"%s\":\"%s\"",
                 strcmp(unavailable_reasons[k], "not_ready") == 0 ? "status"
                                                                 : "code",
                 unavailable_reasons[k]);
        if (contains(body, len, want)) {
            i = k;
            break;
        }
    }
    atomic_fetch_add_explicit(&unavailable_counts[i], 1,
                              memory_order_relaxed);
    /* logged with its reason, at most once a second per reason */
    static _Atomic int64_t last_logged[N_REASONS];
    int64_t now = now_ms(), last = atomic_load(&last_logged[i]);
    if (now - last >= 1000 &&
        atomic_compare_exchange_strong(&last_logged[i], &last, now)) {
        char total[24];
        snprintf(total, sizeof(total), "%llu",
                 (unsigned long long)atomic_load(&unavailable_counts[i]));
        log_msg(LOG_WARN, "answered 503", "reason", unavailable_reasons[i],
                "total", total, NULL);
    }
}

void
api_unavailable_render(char **text, size_t *len)
{
    size_t cap = 256 + N_REASONS * 96;
    char *o = ab_xmalloc(cap);
    int n = snprintf(o, cap,
                     "# HELP arbiter_http_unavailable_total Answers with "
                     "status 503, by reason.\n"
                     "# TYPE arbiter_http_unavailable_total counter\n");
    for (size_t i = 0; i < N_REASONS; i++)
        n += snprintf(o + n, cap - (size_t)n,
                      "arbiter_http_unavailable_total{reason=\"%s\"} %llu\n",
                      unavailable_reasons[i],
                      (unsigned long long)atomic_load(&unavailable_counts[i]));
    *text = o;
    *len = (size_t)n;
}

const char *
api_metrics_token(void)
{
    return lim.metrics_token;
}

/* ---- connection deadlines -----------------------------------------------
 * MHD's own timeout restarts with every byte received, so a sender that
 * dribbles a header byte every few seconds would hold its slot for ever.
 * Each connection instead carries one absolute deadline, set at these
 * points and never extended by traffic:
 *   connected                  now + header_ms  (the first request's headers)
 *   headers in (1st call)      now + body_ms    (the body)
 *   suspended on our own work  none             (deferred, slow pool)
 *   answer queued              now + body_ms    (the answer goes out)
 *   request done               now + idle_ms    (keep-alive: the next one)
 * A reaper thread shuts down (shutdown(2), never close: MHD owns the
 * descriptor and closes it when it sees the end) every connection past
 * its deadline. */
static void
deadline_set(struct conn_state *cs, int64_t in_ms)
{
    if (cs != NULL)
        atomic_store(&cs->deadline,
                     in_ms == INT64_MAX ? INT64_MAX : now_ms() + in_ms);
}

/* The connection's first request has begun, or it closed without one. */
static void
conn_begun(struct conn_state *cs)
{
    if (cs != NULL && atomic_exchange(&cs->fresh, false))
        atomic_fetch_sub(&n_fresh, 1);
}

static void
notify_conn(void *cls, struct MHD_Connection *conn, void **socket_context,
            enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct conn_state *cs = ab_xcalloc(1, sizeof(*cs));
        cs->fd = ci ? (int)ci->connect_fd : -1;
        atomic_store(&cs->deadline, now_ms() + lim.header_ms);
        atomic_store(&cs->fresh, true);
        atomic_fetch_add(&n_fresh, 1);
        pthread_mutex_lock(&conns_lock);
        cs->next = conns;
        if (conns)
            conns->prev = cs;
        conns = cs;
        pthread_mutex_unlock(&conns_lock);
        *socket_context = cs;
        return;
    }
    struct conn_state *cs = *socket_context;
    if (cs == NULL)
        return;
    conn_begun(cs);
    pthread_mutex_lock(&conns_lock);
    if (cs->prev)
        cs->prev->next = cs->next;
    else
        conns = cs->next;
    if (cs->next)
        cs->next->prev = cs->prev;
    pthread_mutex_unlock(&conns_lock);
    free(cs);
    *socket_context = NULL;
}

static struct conn_state *
conn_state_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void *
reaper_main(void *arg)
{
    /* named, for top -H and /proc/PID/task/TID/comm (bench/assign_cpu.sh) */
    prctl(PR_SET_NAME, "ab-reaper", 0, 0, 0);
    struct server *srv = arg;
    while (!atomic_load(&srv->reaper_stop)) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
        int64_t now = now_ms();
        pthread_mutex_lock(&conns_lock);
        for (struct conn_state *cs = conns; cs; cs = cs->next)
            if (!cs->reaped && cs->fd >= 0 &&
                atomic_load(&cs->deadline) < now) {
                shutdown(cs->fd, SHUT_RDWR);
                cs->reaped = true;
            }
        pthread_mutex_unlock(&conns_lock);
    }
    return NULL;
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
    if (r->status == 503)
        count_unavailable(r->body, r->body_len);
    struct MHD_Response *mr = MHD_create_response_from_buffer(
        r->body_len, r->body, MHD_RESPMEM_MUST_FREE);
    r->body = NULL;
    if (mr == NULL)
        return MHD_NO;
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r->content_type ? r->content_type
                                            : "application/json");
    if (c->route && c->match == 200 && c->route->cors) {
        MHD_add_response_header(mr, "Access-Control-Allow-Origin", "*");
        MHD_add_response_header(mr, "Access-Control-Expose-Headers",
                                "ETag, Retry-After");
    }
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
    if (atomic_load(&draining))
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONNECTION, "close");
    deadline_set(c->cs, lim.body_ms);
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

/* True when 'given' is one of the tokens in 'list' (separated by ',' or
 * whitespace: several per scope, for rotation without downtime). Every
 * token of the list is compared, in constant time in its contents. */
static bool
token_in_list(const char *given, size_t given_len, const char *list)
{
    if (list == NULL || given_len == 0)
        return false;
    bool found = false;
    char tok[512];
    const char *p = list;
    while (*p) {
        size_t skip = strspn(p, ", \t\r\n");
        p += skip;
        size_t n = strcspn(p, ", \t\r\n");
        if (n == 0)
            break;
        if (n < sizeof(tok)) {
            memcpy(tok, p, n);
            tok[n] = '\0';
            found |= token_equal(given, given_len, tok);
        }
        p += n;
    }
    return found;
}

int
api_authorize_token(const struct app *app, const char *tok, size_t len,
                    enum api_scope need, enum api_scope *granted)
{
    bool admin = false, client = false, readonly = false;
    if (tok != NULL) {
        admin = token_in_list(tok, len, app->cfg.admin_token);
        client = token_in_list(tok, len, app->cfg.client_token);
        readonly = token_in_list(tok, len, app->cfg.readonly_token);
    }
    enum api_scope g = API_SCOPE_NONE;
    if (admin)
        g = API_SCOPE_ADMIN;
    else if (need == API_SCOPE_READ && readonly)
        g = API_SCOPE_READ;
    else if (client)
        g = API_SCOPE_CLIENT;
    else if (readonly)
        g = API_SCOPE_READ;
    *granted = g;
    if (need == API_SCOPE_NONE)
        return 0;
    if (g == API_SCOPE_NONE)
        return 401;
    if (g == API_SCOPE_ADMIN || g == need)
        return 0;
    return 403;
}

/* The caller's token: "Authorization: Bearer T", else "X-API-Key: T"
 * (OpenFeature's two schemes), else, on routes that allow it (Flagger's
 * webhooks cannot send headers), the "token" query parameter. */
static const char *
request_token(struct MHD_Connection *conn, const struct api_route *route)
{
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    if (h && strncasecmp(h, "Bearer ", 7) == 0)
        return h + 7;
    h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-API-Key");
    if (h && *h)
        return h;
    if (route->token_in_query) {
        h = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "token");
        if (h && *h)
            return h;
    }
    return NULL;
}

/* 0 = ok; else the HTTP status to answer (401 or 403). Routes with
 * token_in_body check the body's token themselves when the request
 * carries none elsewhere (they are dispatched with scope NONE). */
static int
authorize(struct app *app, struct MHD_Connection *conn, struct call *c)
{
    const char *tok = request_token(conn, c->route);
    int rc = api_authorize_token(app, tok, tok ? strlen(tok) : 0,
                                 c->route->scope, &c->req.scope);
    if (rc == 401 && tok == NULL && c->route->token_in_body)
        return 0;
    return rc;
}

/* Query values arrive URL-decoded with their length: a %00 inside one
 * makes the length differ from strlen, and the request is refused (else
 * "unit=a%00b" would be read as unit "a"). */
/* GET /metrics asks for a token when ARBITER_METRICS_TOKEN is set: that
 * token or the admin token (the series name experiments and arms). */
static bool
metrics_authorized(struct app *app, struct MHD_Connection *conn,
                   const struct call *c)
{
    if (lim.metrics_token == NULL || strcmp(c->route->pattern, "/metrics"))
        return true;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    size_t len = strlen(h + 7);
    return token_equal(h + 7, len, lim.metrics_token) ||
           token_equal(h + 7, len, app->cfg.admin_token);
}

static enum MHD_Result
collect_query(void *cls, enum MHD_ValueKind kind, const char *key,
              size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    struct call *c = cls;
    if (strlen(key) != key_size || (value && strlen(value) != value_size))
        c->query_nul = true;
    if (c->req.n_query == API_MAX_QUERY) {
        c->req.n_query++; /* marks overflow */
        return MHD_NO;
    }
    c->req.query[c->req.n_query].key = key;
    c->req.query[c->req.n_query].value = value ? value : "";
    c->req.n_query++;
    return MHD_YES;
}

/* ---- strict framing (on the 1st call, before any body is read) -----------
 * Refused with 400 and the connection closed, as RFC 9112 6.3 asks of a
 * server: Transfer-Encoding together with Content-Length (request
 * smuggling), several Content-Length values that differ, a Content-Length
 * that is not a plain decimal number, and a NUL byte inside the
 * Authorization header ("Bearer <token>\0junk" must not authenticate). */
#define TOKEN_HEADERS 4 /* Authorization and X-API-Key lines checked */

struct framing {
    int n_cl, n_te;
    const char *cl;
    bool cl_conflict, cl_bad, nul;
    /* token header values, and the start of the line after each */
    int n_tok;
    const char *tok[TOKEN_HEADERS];
    size_t tok_size[TOKEN_HEADERS];
    const char *next[TOKEN_HEADERS];
    const char *end; /* the end of the header block */
};

static bool
is_header(const char *key, size_t key_size, const char *name)
{
    return key_size == strlen(name) && strncasecmp(key, name, key_size) == 0;
}

static enum MHD_Result
framing_scan(void *cls, enum MHD_ValueKind kind, const char *key,
             size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    struct framing *f = cls;
    if (value == NULL)
        value = "";
    bool has_nul = strlen(value) != value_size || strlen(key) != key_size;
    if (is_header(key, key_size, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
        if (f->n_cl > 0 && strcmp(f->cl, value) != 0)
            f->cl_conflict = true;
        if (value_size == 0 || has_nul ||
            strspn(value, "0123456789") != value_size)
            f->cl_bad = true;
        f->cl = value;
        f->n_cl++;
    } else if (is_header(key, key_size, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        f->n_te++;
    } else if (is_header(key, key_size, MHD_HTTP_HEADER_AUTHORIZATION) ||
               is_header(key, key_size, "X-API-Key")) {
        if (has_nul || f->n_tok == TOKEN_HEADERS)
            f->nul = true; /* (more token headers than anyone sends) */
        else {
            f->tok[f->n_tok] = value;
            f->tok_size[f->n_tok++] = value_size;
        }
    }
    return MHD_YES;
}

/* For each token header: the nearest header name after its value (the
 * start of the next line), or NULL when it is the last header. */
static enum MHD_Result
next_line_scan(void *cls, enum MHD_ValueKind kind, const char *key,
               size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    (void)key_size;
    (void)value;
    (void)value_size;
    struct framing *f = cls;
    for (int i = 0; i < f->n_tok; i++)
        if (key > f->tok[i] && key < f->end &&
            (f->next[i] == NULL || key < f->next[i]))
            f->next[i] = key;
    return MHD_YES;
}

/* A NUL inside a token header line ("Authorization: Bearer <token>\0junk"
 * must not authenticate as <token>). libmicrohttpd 0.9.75 hides it from
 * the API: a line ends at CR LF or LF only (a NUL does not end it), and
 * the value is then handed on with value_size = strlen(value), so the
 * value_size of MHD_get_connection_values_n() never differs from strlen
 * -- src/microhttpd/connection.c at tag v0.9.75, process_broken_line(),
 * lines 3518-3524: connection_add_header (connection, last, strlen (last),
 * connection->colon, strlen (connection->colon), kind); the same cut
 * stops Bearer parsing at the NUL (tests/integration/test_hardening.py).
 * What 0.9.75 keeps is the header block itself, in place: it starts at
 * the access callback's 'method' (connection->method, line 2952, the
 * start of the read buffer), it is MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE
 * bytes long (lines 4496 and 4533: read_buffer - method, after the empty
 * line), and every line terminator in it was overwritten with NULs
 * (get_next_header_line(), lines 2599-2616: CR LF -> two NULs, bare LF ->
 * one). So in a sound request a value is followed, up to the next line,
 * by one or two NUL bytes (up to four for the last header: its own
 * terminator and the empty line's). More bytes, or one that is not NUL,
 * is what followed a NUL inside the line; a value outside the block was
 * moved by an obs-fold continuation: both are refused. The one case the
 * rewrite leaves ambiguous: a single NUL right before a bare LF ("T\0\n")
 * reads like "T\r\n"; it can authenticate only the token T before it,
 * which the client had to know, and nothing can follow it. */
static bool
token_lines_clean(struct MHD_Connection *conn, const char *method,
                  struct framing *f)
{
    if (f->n_tok == 0)
        return true;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (ci == NULL || method == NULL)
        return false;
    const char *lo = method, *end = method + ci->header_size;
    f->end = end;
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, next_line_scan, f);
    for (int i = 0; i < f->n_tok; i++) {
        const char *v = f->tok[i], *stop = f->next[i] ? f->next[i] : end;
        if (v < lo || v + f->tok_size[i] >= end || stop > end ||
            stop <= v + f->tok_size[i])
            return false;
        size_t gap = (size_t)(stop - (v + f->tok_size[i]));
        if (gap > (f->next[i] ? 2u : 4u))
            return false;
        for (const char *p = v + f->tok_size[i]; p < stop; p++)
            if (*p != '\0')
                return false;
    }
    return true;
}

/* NULL when the framing is sound; else the message of the 400. */
static const char *
framing_check(struct MHD_Connection *conn, const char *method)
{
    struct framing f = {0};
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, framing_scan, &f);
    if (!f.nul && !token_lines_clean(conn, method, &f))
        f.nul = true;
    if (f.n_te > 0 && f.n_cl > 0)
        return "both Transfer-Encoding and Content-Length";
    if (f.cl_conflict)
        return "conflicting Content-Length values";
    if (f.cl_bad)
        return "Content-Length is not a decimal number";
    if (f.nul)
        return "NUL byte in the Authorization or X-API-Key header";
    return NULL;
}

static bool is_slow(const struct api_route *r);
static enum MHD_Result slow_submit(struct app *app,
                                   struct MHD_Connection *conn,
                                   struct call *c, json_t *doc);
static enum MHD_Result run_inline(struct app *app,
                                  struct MHD_Connection *conn, struct call *c,
                                  json_t *doc);

static enum MHD_Result
dispatch(struct app *app, struct MHD_Connection *conn, struct call *c)
{
    if (c->match == 404)
        return send_error(conn, c, 404, "not_found", "no such route");
    if (c->match == 405)
        return send_error(conn, c, 405, "method_not_allowed",
                          "method not allowed on this route");
    int auth = c->auth;
    if (auth == 401)
        return send_error(conn, c, 401, "unauthorized",
                          "missing or unknown bearer token");
    if (auth == 403)
        return send_error(conn, c, 403, "forbidden",
                          "this token may not use this route");
    if (c->too_big)
        return send_error(conn, c, 413, "too_big",
                          "request body over the limit");
    MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, collect_query,
                                c);
    if (c->req.n_query > API_MAX_QUERY)
        return send_error(conn, c, 400, "invalid", "too many query parameters");
    if (c->query_nul)
        return send_error(conn, c, 400, "invalid",
                          "NUL byte in a query parameter");
    for (size_t i = 0; i < c->req.n_query; i++) {
        const char *k = c->req.query[i].key, *v = c->req.query[i].value;
        if (!ab_utf8_valid(k, strlen(k)) || !ab_utf8_valid(v, strlen(v)))
            return send_error(conn, c, 400, "invalid_utf8",
                              "query parameters must be valid UTF-8");
    }
    c->req.content_type =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                    MHD_HTTP_HEADER_CONTENT_TYPE);
    c->req.if_none_match =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                    MHD_HTTP_HEADER_IF_NONE_MATCH);
    c->req.body = c->body ? c->body : "";
    c->req.body_len = c->body_len;

    json_t *doc = NULL;
    if (c->route->body == API_BODY_JSON) {
        if (c->body_len == 0)
            return send_error(conn, c, 400, "invalid_json",
                              "a JSON body is required");
        if (!ab_utf8_valid(c->body, c->body_len))
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
               !ab_utf8_valid(c->body, c->body_len)) {
        return send_error(conn, c, 400, "invalid_utf8",
                          "request body is not valid UTF-8");
    }

    c->conn = conn;
    c->req.defer = c;
    if (is_slow(c->route))
        return slow_submit(app, conn, c, doc);
    return run_inline(app, conn, c, doc);
}

/* The handler on this HTTP worker (fast routes). */
static enum MHD_Result
run_inline(struct app *app, struct MHD_Connection *conn, struct call *c,
           json_t *doc)
{
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
        deadline_set(c->cs, INT64_MAX);
        return MHD_YES;
    }
    if (resp.body == NULL) /* a handler bug: never leave the caller hanging */
        api_reply_error(&resp, 500, "internal", "no response");
    return send_resp(conn, c, &resp);
}

/* ---- the slow pool ----------------------------------------------------------
 * Routes that use the database (admin, results) and analyze run here, on
 * ARBITER_SLOW_THREADS threads with a queue of ARBITER_SLOW_QUEUE: the
 * HTTP worker parses and checks the request, suspends the connection and
 * goes back to its other connections; the job answers through
 * api_complete(). A full queue answers 503 "busy" with Retry-After at
 * once. So a stalled database or a 1,000-arm analysis occupies these
 * threads, never the workers that assign. */
static struct slow_pool slow;

static bool
is_slow(const struct api_route *r)
{
    return r->needs_db || strcmp(r->pattern, "/v1/analyze") == 0;
}

static enum MHD_Result
slow_submit(struct app *app, struct MHD_Connection *conn, struct call *c,
            json_t *doc)
{
    pthread_mutex_lock(&slow.lock);
    if (slow.stopping || slow.n_queued >= slow.max || slow.n_threads == 0) {
        pthread_mutex_unlock(&slow.lock);
        json_decref(doc);
        c->req.json = NULL;
        struct api_resp resp = {0};
        api_reply_header(&resp, "Retry-After", "1");
        api_reply_error(&resp, 503, "busy",
                        "too many slow requests in progress; retry later");
        return send_resp(conn, c, &resp);
    }
    c->app = app;
    c->job_doc = doc;
    c->next_job = NULL;
    pthread_mutex_lock(&defer_lock);
    c->deferred = true;
    n_deferred++;
    MHD_suspend_connection(conn);
    pthread_mutex_unlock(&defer_lock);
    deadline_set(c->cs, INT64_MAX);
    if (slow.tail)
        slow.tail->next_job = c;
    else
        slow.head = c;
    slow.tail = c;
    slow.n_queued++;
    pthread_cond_signal(&slow.cv);
    pthread_mutex_unlock(&slow.lock);
    return MHD_YES;
}

static void
slow_run(struct call *c)
{
    struct api_ctx ctx = {.app = c->app, .db = NULL};
    struct api_resp resp = {0};
    json_t *doc = c->job_doc;
    c->job_doc = NULL;
    if (c->route->needs_db)
        ctx.db = app_db_get(c->app);
    if (c->route->needs_db && ctx.db == NULL) {
        api_reply_header(&resp, "Retry-After", "1");
        api_reply_error(&resp, 503, "database_unavailable",
                        "the database is unreachable; retry later");
    } else {
        c->route->handler(&ctx, &c->req, &resp);
    }
    app_db_put(c->app, ctx.db);
    json_decref(doc);
    c->req.json = NULL;
    if (resp.status == API_DEFERRED) /* the handler completes it later */
        return;
    if (resp.body == NULL)
        api_reply_error(&resp, 500, "internal", "no response");
    api_complete(c, &resp);
}

static void *
slow_main(void *arg)
{
    /* named, for top -H and /proc/PID/task/TID/comm (bench/assign_cpu.sh) */
    prctl(PR_SET_NAME, "ab-slow", 0, 0, 0);
    (void)arg;
    pthread_mutex_lock(&slow.lock);
    for (;;) {
        while (slow.head == NULL && !slow.stopping)
            pthread_cond_wait(&slow.cv, &slow.lock);
        if (slow.head == NULL)
            break;
        struct call *c = slow.head;
        slow.head = c->next_job;
        if (slow.head == NULL)
            slow.tail = NULL;
        slow.n_queued--;
        pthread_mutex_unlock(&slow.lock);
        slow_run(c);
        pthread_mutex_lock(&slow.lock);
    }
    pthread_mutex_unlock(&slow.lock);
    return NULL;
}

static void
slow_start(void)
{
    pthread_mutex_init(&slow.lock, NULL);
    pthread_cond_init(&slow.cv, NULL);
    slow.head = slow.tail = NULL;
    slow.n_queued = 0;
    slow.stopping = false;
    slow.max = lim.slow_queue;
    slow.n_threads = 0;
    size_t n = lim.slow_threads;
    if (n > AB_ARRAY_LEN(slow.threads))
        n = AB_ARRAY_LEN(slow.threads);
    for (size_t i = 0; i < n; i++)
        if (pthread_create(&slow.threads[slow.n_threads], NULL, slow_main,
                           NULL) == 0)
            slow.n_threads++;
}

/* Runs every queued job, then joins the threads. */
static void
slow_stop(void)
{
    pthread_mutex_lock(&slow.lock);
    slow.stopping = true;
    pthread_cond_broadcast(&slow.cv);
    pthread_mutex_unlock(&slow.lock);
    for (size_t i = 0; i < slow.n_threads; i++)
        pthread_join(slow.threads[i], NULL);
    slow.n_threads = 0;
    pthread_cond_destroy(&slow.cv);
    pthread_mutex_destroy(&slow.lock);
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
    c->req.if_none_match = NULL;
    c->req.body = NULL;
    c->req.body_len = 0;
    c->req.json = NULL;
    c->req.scope = API_SCOPE_NONE;
    c->body = NULL;
    c->body_len = c->body_cap = 0;
    c->too_big = false;
    c->answered = false;
    c->query_nul = false;
    c->auth = 0;
    c->cs = NULL;
    c->next_job = NULL;
    c->app = NULL;
    c->job_doc = NULL;
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
        c->cs = conn_state_of(conn);
        deadline_set(c->cs, lim.body_ms);
        atomic_fetch_add(&n_in_flight, 1);
        conn_begun(c->cs);
        /* Refusals decided from the headers alone are answered now,
         * before a byte of the body is read; answering on this call makes
         * MHD close the connection afterwards, which is what an unread
         * body, an ambiguous framing or an unknown caller deserve. */
        const char *bad = framing_check(conn, method);
        if (bad != NULL)
            return send_error(conn, c, 400, "bad_request", bad);
        if (c->match == 200) {
            c->auth = authorize(app, conn, c);
            if (c->auth == 0 && !metrics_authorized(app, conn, c))
                c->auth = 401;
            if (c->auth != 0)
                return dispatch(app, conn, c);
        }
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
    atomic_fetch_sub(&n_in_flight, 1);
    deadline_set(c->cs, lim.idle_ms);
    json_decref(c->job_doc);
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

static int64_t
env_num(const char *name, int64_t def, int64_t lo, int64_t hi)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return def;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || *end || n < lo || n > hi) {
        log_msg(LOG_WARN, "ignoring a bad limit", "name", name, "value", v,
                NULL);
        return def;
    }
    return n;
}

/* The limits of README "Limits", from the environment (flags in
 * cli/cmd_serve.c may set these variables). */
static void
limits_load(void)
{
    lim.per_ip = (unsigned)env_num("ARBITER_MAX_CONNS_PER_IP", 256, 0, 65535);
    lim.header_ms = env_num("ARBITER_HEADER_TIMEOUT_MS", 10000, 100, 3600000);
    lim.body_ms = env_num("ARBITER_BODY_TIMEOUT_MS", 30000, 100, 3600000);
    lim.idle_ms = env_num("ARBITER_IDLE_TIMEOUT_MS", 30000, 100, 3600000);
    lim.drain_ms = env_num("ARBITER_DRAIN_TIMEOUT_MS", 20000, 0, 3600000);
    lim.slow_threads = (size_t)env_num("ARBITER_SLOW_THREADS", 2, 1, 16);
    lim.slow_queue = (size_t)env_num("ARBITER_SLOW_QUEUE", 64, 1, 100000);
    const char *t = getenv("ARBITER_METRICS_TOKEN");
    lim.metrics_token = t && *t ? t : NULL;
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
    /* A listening socket handed over by the previous process (restart
     * without downtime, cli/cmd_serve.c): ARBITER_LISTEN_FD; else our own. */
    int family = AF_INET;
    int fd = (int)env_num("ARBITER_LISTEN_FD", -1, -1, 65535);
    if (fd >= 0) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
            family = ss.ss_family;
    } else {
        fd = listen_socket(app->cfg.host, app->cfg.port, &family);
    }
    if (fd < 0)
        return AB_EINVAL;
    pthread_once(&spare_once, spare_key_make);
    limits_load();
    atomic_store(&draining, false);
    /* epoll, not poll (issue 17): poll() hands the kernel every open
     * connection and MHD walks them all on every wake-up, so a request
     * costs more the more idle keep-alive connections there are -- at
     * low and medium load, when each wake-up finds one ready connection
     * among 64, 42,100 instructions per GET against 28,000 with epoll
     * (callgrind, bench/results/assign.md). ARBITER_HTTP_POLL=poll
     * brings poll back (for comparisons). */
    const char *pm = getenv("ARBITER_HTTP_POLL");
    if (pm && *pm && strcmp(pm, "poll") != 0 && strcmp(pm, "epoll") != 0)
        log_msg(LOG_WARN, "ignoring ARBITER_HTTP_POLL (epoll or poll)",
                "value", pm, NULL);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD |
                     (pm && strcmp(pm, "poll") == 0 ? MHD_USE_POLL
                                                    : MHD_USE_EPOLL) |
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
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, lim.per_ip,
        MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
        MHD_OPTION_NOTIFY_CONNECTION, notify_conn, NULL,
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
    s->listen_fd = server_listen_fd(s);
    slow_start();
    atomic_store(&s->reaper_stop, false);
    s->reaper_started =
        pthread_create(&s->reaper, NULL, reaper_main, s) == 0;
    *out = s;
    return AB_OK;
}

int
server_listen_fd(struct server *srv)
{
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_LISTEN_FD);
    return di ? (int)di->listen_fd : -1;
}

/* Stop accepting (the listening socket stays open for whoever holds it
 * too: a successor process); answers from now on close their
 * connections. */
void
server_quiesce(struct server *srv)
{
    if (srv == NULL || atomic_exchange(&draining, true))
        return;
    MHD_quiesce_daemon(srv->daemon);
}

void
server_drain(struct server *srv)
{
    if (srv == NULL)
        return;
    /* stop accepting, then let every request already received finish
     * (its answer closes the connection) for up to drain_ms */
    server_quiesce(srv);
    if (srv->listen_fd >= 0)
        close(srv->listen_fd); /* quiesced: MHD no longer owns it */
    srv->listen_fd = -1;
    int64_t start = now_ms(), until = start + lim.drain_ms;
    /* connections accepted just before the quiesce get DRAIN_FRESH_MS to
     * begin their request (then answered with Connection: close); a
     * connection that sends nothing is not worth waiting longer for */
    int64_t fresh_until = start + (DRAIN_FRESH_MS < lim.drain_ms
                                       ? DRAIN_FRESH_MS
                                       : lim.drain_ms);
    while ((atomic_load(&n_in_flight) > 0 ||
            (atomic_load(&n_fresh) > 0 && now_ms() < fresh_until)) &&
           now_ms() < until) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

void
server_stop(struct server *srv)
{
    if (srv == NULL)
        return;
    server_drain(srv);
    /* requests waiting in the slow pool run to the end */
    slow_stop();
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
    if (srv->reaper_started) {
        atomic_store(&srv->reaper_stop, true);
        pthread_join(srv->reaper, NULL);
    }
    /* the workers' spares went with their threads; requests finished on
     * this thread during the stop may have left one here */
    free(pthread_getspecific(spare_key));
    pthread_setspecific(spare_key, NULL);
    free(srv);
}
