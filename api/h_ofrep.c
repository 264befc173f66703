/* h_ofrep.c -- the OpenFeature Remote Evaluation Protocol (OFREP 0.x,
 * open-feature/protocol service/openapi.yaml) and a provisional tracking
 * route, so that the stock OpenFeature SDKs (Go, Java, Python, JS, .NET,
 * Kotlin, Swift) can use arbiter as their flag service.
 *
 * Mapping: flag key = experiment key; context.targetingKey = unit; the
 * other context properties = targeting attributes (strings, numbers and
 * booleans; nested values are ignored: no rule can match them).
 *
 *   POST /ofrep/v1/evaluate/flags/{key}     one flag; an exposure (as
 *                                           /v1/assign)
 *   POST /ofrep/v1/evaluate/flags           every live flag for a context
 *                                           (client-side providers); NOT an
 *                                           exposure; ETag / 304
 *   OPTIONS on both                         CORS preflight (browsers)
 *   GET  /ofrep/v1/configuration            provider configuration
 *   POST /v1/track                          outcomes by unit and metric,
 *                                           attributed to every running
 *                                           experiment that exposed the unit
 *
 * An evaluation:
 *   {"key":"k","value":<arm value>,"variant":"<arm>","reason":"SPLIT",
 *    "metadata":{"experiment":"k","in_experiment":true,
 *                "arbiter_reason":"hashed","bucket":123,"hash_version":1,
 *                "bucket_version":1,"weights_version":3,"propensity":0.5,
 *                "model":"m@1"}}
 * value: the arm's "value" from the definition (any JSON), else its model,
 * else its name. Reasons (OpenFeature's enum):
 *   hashed, sticky               SPLIT
 *   forced                       TARGETING_MATCH (a rule picked the arm)
 *   promoted, rolled_back        STATIC
 *   draft, paused, stopped       DISABLED (the served arm: control)
 *   coverage, layer, targeting   DEFAULT and no value: the unit is not in
 *                                the experiment, the SDK keeps its default
 * Errors follow OFREP's shapes ({"key","errorCode","errorDetails"}), not
 * arbiter's: 400 PARSE_ERROR / TARGETING_KEY_MISSING / INVALID_CONTEXT,
 * 404 FLAG_NOT_FOUND. Where arbiter answers 503 (the tracking route's
 * queue is full, the database is down), OFREP clients get 429 with
 * Retry-After, which their providers honour.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "api/handlers.h"
#include "core/assign.h"
#include "lib/clock.h"
#include "lib/json_text.h"
#include "service/app.h"
#include "service/ingest.h"
#include "sql/db_audit.h"
#include "lib/utf8.h"

#define ATTR_MAX 64
#define ATTR_VALUE_MAX 256

/* ---- replies ---------------------------------------------------------------- */

/* {"key"?, "errorCode", "errorDetails"} */
__attribute__((format(printf, 5, 6))) static void
ofrep_error(struct api_resp *resp, int status, const char *key,
            const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *o = json_pack("{s:s}", "errorCode", code);
    json_t *details = json_string(msg); /* NULL: not UTF-8 */
    json_object_set_new(o, "errorDetails",
                        details ? details : json_string("(not UTF-8)"));
    json_t *jk = key ? json_string(key) : NULL;
    if (jk != NULL)
        json_object_set_new(o, "key", jk);
    api_reply_json(resp, status, o);
}

/* ---- the request's context ---------------------------------------------- */

struct context {
    json_t *doc;     /* the parsed body (owned) */
    json_t *ctx;     /* borrowed from doc; NULL when absent */
    const char *unit;
    size_t unit_len;
    struct core_attr attrs[ATTR_MAX];
    char values[ATTR_MAX][ATTR_VALUE_MAX];
    size_t n_attrs;
};

static bool
scalar_text(json_t *v, char *slot, size_t n)
{
    if (json_is_string(v)) {
        if (json_string_length(v) >= n ||
            strlen(json_string_value(v)) != json_string_length(v))
            return false;
        memcpy(slot, json_string_value(v), json_string_length(v) + 1);
        return true;
    }
    if (json_is_integer(v))
        snprintf(slot, n, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(slot, n, "%.17g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(slot, n, "%s", json_is_true(v) ? "true" : "false");
    return true;
}

/* Parse body and context. false: an OFREP 400 was written (key may be
 * NULL for the bulk route). */
static bool
parse_context(const struct api_req *req, const char *key,
              struct api_resp *resp, struct context *c)
{
    /* the header fields only: attrs and values are written before they
     * are read (up to n_attrs), and zeroing 16 KiB per request showed in
     * callgrind as a quarter of the route's instructions */
    c->doc = NULL;
    c->ctx = NULL;
    c->unit = NULL;
    c->unit_len = 0;
    c->n_attrs = 0;
    if (req->body_len > 0) {
        if (api_json_depth(req->body, req->body_len) > API_MAX_DEPTH) {
            ofrep_error(resp, 400, key, "PARSE_ERROR",
                        "JSON nesting deeper than %d levels", API_MAX_DEPTH);
            return false;
        }
        json_error_t jerr;
        c->doc = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES,
                            &jerr);
        if (c->doc == NULL) {
            ofrep_error(resp, 400, key, "PARSE_ERROR",
                        "malformed JSON at line %d column %d: %s", jerr.line,
                        jerr.column, jerr.text);
            return false;
        }
        if (!json_is_object(c->doc)) {
            ofrep_error(resp, 400, key, "PARSE_ERROR",
                        "the body must be a JSON object");
            return false;
        }
        c->ctx = json_object_get(c->doc, "context");
    }
    if (c->ctx != NULL && !json_is_null(c->ctx) && !json_is_object(c->ctx)) {
        ofrep_error(resp, 400, key, "INVALID_CONTEXT",
                    "context must be an object");
        return false;
    }
    json_t *tk = json_object_get(c->ctx, "targetingKey");
    if (tk == NULL || json_is_null(tk) ||
        (json_is_string(tk) && json_string_length(tk) == 0)) {
        ofrep_error(resp, 400, key, "TARGETING_KEY_MISSING",
                    "context.targetingKey is required: it is the unit");
        return false;
    }
    if (!json_is_string(tk) || json_string_length(tk) > CORE_UNIT_MAX ||
        strlen(json_string_value(tk)) != json_string_length(tk)) {
        ofrep_error(resp, 400, key, "INVALID_CONTEXT",
                    "context.targetingKey must be a string of 1 to %d bytes",
                    CORE_UNIT_MAX);
        return false;
    }
    c->unit = json_string_value(tk);
    c->unit_len = json_string_length(tk);
    const char *k;
    json_t *v;
    json_object_foreach(c->ctx, k, v) {
        if (strcmp(k, "targetingKey") == 0 || json_is_object(v) ||
            json_is_array(v) || json_is_null(v))
            continue; /* nested values match no targeting rule */
        if (c->n_attrs == ATTR_MAX) {
            ofrep_error(resp, 400, key, "INVALID_CONTEXT",
                        "at most %d context attributes", ATTR_MAX);
            return false;
        }
        if (!scalar_text(v, c->values[c->n_attrs], ATTR_VALUE_MAX)) {
            ofrep_error(resp, 400, key, "INVALID_CONTEXT",
                        "context.%.64s: strings must be under %d bytes",
                        k, ATTR_VALUE_MAX);
            return false;
        }
        c->attrs[c->n_attrs].key = k;
        c->attrs[c->n_attrs].value = c->values[c->n_attrs];
        c->n_attrs++;
    }
    return true;
}

/* ---- one evaluation ------------------------------------------------------- */

static const char *
ofrep_reason(const char *r)
{
    if (!strcmp(r, CORE_REASON_HASHED) || !strcmp(r, CORE_REASON_STICKY))
        return "SPLIT";
    if (!strcmp(r, CORE_REASON_FORCED))
        return "TARGETING_MATCH";
    if (!strcmp(r, CORE_REASON_PROMOTED) || !strcmp(r, CORE_REASON_ROLLED_BACK))
        return "STATIC";
    if (!strcmp(r, CORE_REASON_DRAFT) || !strcmp(r, CORE_REASON_PAUSED) ||
        !strcmp(r, CORE_REASON_STOPPED))
        return "DISABLED";
    return "DEFAULT"; /* coverage, layer, targeting */
}

static json_t *
evaluation_json(const struct core_experiment *e,
                const struct core_assignment *a)
{
    const struct core_arm *arm = &e->arms[a->arm];
    if (e->strategy == CORE_STRATEGY_SHADOW && e->state == CORE_STATE_RUNNING)
        arm = &e->arms[e->control]; /* control serves; the other is mirrored */
    const char *reason = ofrep_reason(a->reason);
    json_t *meta = json_pack(
        "{s:s,s:b,s:s,s:I,s:i,s:I,s:I,s:f,s:s}", "experiment", e->key,
        "in_experiment", a->in_experiment, "arbiter_reason", a->reason,
        "bucket", (json_int_t)a->bucket, "hash_version", CORE_HASH_VERSION,
        "bucket_version", (json_int_t)e->bucket_version, "weights_version",
        (json_int_t)e->weights_version, "propensity", a->propensity, "model",
        arm->model ? arm->model : "");
    json_t *o = json_pack("{s:s,s:s,s:s,s:o}", "key", e->key, "variant",
                          arm->name, "reason", reason, "metadata", meta);
    if (strcmp(reason, "DEFAULT") != 0) {
        json_t *value = NULL;
        const char *text = core_arm_value(e, (size_t)(arm - e->arms));
        if (text != NULL)
            value = json_loads(text, JSON_DECODE_ANY, NULL);
        if (value == NULL)
            value = json_string(arm->model && *arm->model ? arm->model
                                                          : arm->name);
        json_object_set_new(o, "value", value);
    }
    return o;
}

/* ---- one evaluation as text ----------------------------------------------
 * evaluation_text() writes, byte for byte, what api_reply_json() of
 * evaluation_json() answers -- the same keys in the same order, strings and
 * reals through lib/json_text.h's pieces of ab_json_text() -- without a
 * json_t tree, its hash tables and json_dumps: on the single-flag route
 * (the hot one: an SDK evaluates a flag per request) the tree cost about as
 * much as the assignment itself (callgrind, bench/results/assign.md).
 * tests/e2e/test_ofrep.py checks the bytes against the bulk route, which
 * keeps the tree. A piece jansson would refuse (a string that is not
 * UTF-8) makes it return false, and the caller takes the tree's path. */
struct text {
    char *p;
    size_t len, cap;
};

static void
text_reserve(struct text *t, size_t n)
{
    if (t->len + n + 1 <= t->cap)
        return;
    size_t cap = t->cap ? t->cap : 512;
    while (cap < t->len + n + 1)
        cap *= 2;
    t->p = ab_xrealloc(t->p, cap);
    t->cap = cap;
}

static void
text_put(struct text *t, const char *s, size_t n)
{
    text_reserve(t, n);
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

#define TEXT_LIT(t, lit) text_put((t), (lit), sizeof(lit) - 1)

static bool
text_string(struct text *t, const char *s)
{
    size_t room = 6 * strlen(s) + 3;
    text_reserve(t, room);
    size_t n = ab_json_string_put(t->p + t->len, room, s);
    if (n == (size_t)-1)
        return false;
    t->len += n;
    return true;
}

static void
text_int(struct text *t, long long v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v
                                 : (unsigned long long)v;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[--i] = '-';
    text_put(t, tmp + i, sizeof(tmp) - i);
}

/* An arm's "value" (JSON text from the definition) as ab_json_text()
 * writes it once parsed: a per-thread cache keyed by the text itself
 * (arms have few values, and parsing them per request is the tree's cost
 * again). False when the text does not parse (the caller answers the
 * model or name instead, as evaluation_json() does). */
#define VALUE_SRC_MAX 256
#define VALUE_TEXT_MAX 512
struct value_slot {
    char src[VALUE_SRC_MAX];
    char text[VALUE_TEXT_MAX];
    size_t len; /* 0: empty */
};

static bool
text_value(struct text *t, const char *src)
{
    static _Thread_local struct value_slot cache[16];
    size_t n = strlen(src);
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)src[i]) * 16777619u;
    struct value_slot *slot = &cache[h & 15];
    if (slot->len > 0 && strcmp(slot->src, src) == 0) {
        text_put(t, slot->text, slot->len);
        return true;
    }
    json_t *v = json_loads(src, JSON_DECODE_ANY, NULL);
    char *text = v ? ab_json_text(v, JSON_ENCODE_ANY | JSON_COMPACT |
                                         JSON_ENSURE_ASCII)
                   : NULL;
    json_decref(v);
    if (text == NULL)
        return false;
    size_t len = strlen(text);
    text_put(t, text, len);
    if (n < VALUE_SRC_MAX && len < VALUE_TEXT_MAX && len > 0) {
        memcpy(slot->src, src, n + 1);
        memcpy(slot->text, text, len + 1);
        slot->len = len;
    }
    free(text);
    return true;
}

static bool
evaluation_text(const struct core_experiment *e,
                const struct core_assignment *a, struct text *t)
{
    const struct core_arm *arm = &e->arms[a->arm];
    if (e->strategy == CORE_STRATEGY_SHADOW && e->state == CORE_STATE_RUNNING)
        arm = &e->arms[e->control]; /* as evaluation_json() */
    const char *reason = ofrep_reason(a->reason);
    char real[32];
    int real_len = ab_json_real_text(a->propensity, real);
    if (real_len < 0)
        return false;
    bool ok = true;
    TEXT_LIT(t, "{\"key\":");
    ok = ok && text_string(t, e->key);
    TEXT_LIT(t, ",\"variant\":");
    ok = ok && text_string(t, arm->name);
    TEXT_LIT(t, ",\"reason\":");
    ok = ok && text_string(t, reason);
    TEXT_LIT(t, ",\"metadata\":{\"experiment\":");
    ok = ok && text_string(t, e->key);
    if (a->in_experiment)
        TEXT_LIT(t, ",\"in_experiment\":true,\"arbiter_reason\":");
    else
        TEXT_LIT(t, ",\"in_experiment\":false,\"arbiter_reason\":");
    ok = ok && text_string(t, a->reason);
    TEXT_LIT(t, ",\"bucket\":");
    text_int(t, (long long)(json_int_t)a->bucket);
    TEXT_LIT(t, ",\"hash_version\":");
    text_int(t, CORE_HASH_VERSION);
    TEXT_LIT(t, ",\"bucket_version\":");
    text_int(t, (long long)(json_int_t)e->bucket_version);
    TEXT_LIT(t, ",\"weights_version\":");
    text_int(t, (long long)(json_int_t)e->weights_version);
    TEXT_LIT(t, ",\"propensity\":");
    text_put(t, real, (size_t)real_len);
    TEXT_LIT(t, ",\"model\":");
    ok = ok && text_string(t, arm->model ? arm->model : "");
    TEXT_LIT(t, "}");
    if (ok && strcmp(reason, "DEFAULT") != 0) {
        TEXT_LIT(t, ",\"value\":");
        const char *src = core_arm_value(e, (size_t)(arm - e->arms));
        if (src == NULL || !text_value(t, src))
            ok = text_string(t, arm->model && *arm->model ? arm->model
                                                          : arm->name);
    }
    TEXT_LIT(t, "}");
    return ok;
}

void
api_ofrep_evaluate(struct api_ctx *ctx, const struct api_req *req,
                   struct api_resp *resp)
{
    const char *key = req->params[0];
    if (!ab_utf8_valid(key, strlen(key))) {
        ofrep_error(resp, 400, NULL, "INVALID_CONTEXT",
                    "the flag key is not valid UTF-8");
        return;
    }
    struct context *c = ab_xmalloc(sizeof(*c)); /* 16 KiB: not the stack */
    if (!parse_context(req, key, resp, c)) {
        json_decref(c->doc);
        free(c);
        return;
    }
    struct snapshot *s = app_snapshot_get(ctx->app);
    size_t idx;
    if (snapshot_find(s, key, &idx) == NULL) {
        app_snapshot_release(s);
        json_decref(c->doc);
        free(c);
        ofrep_error(resp, 404, key, "FLAG_NOT_FOUND", "no experiment \"%.64s\"",
                    key);
        return;
    }
    struct core_assignment a;
    api_assign_unit(ctx->app, s, idx, c->unit, c->unit_len, c->attrs,
                    c->n_attrs, true, &a);
    struct text text = {0};
    if (evaluation_text(s->exps[idx], &a, &text)) {
        api_reply_raw(resp, 200, "application/json", text.p, text.len);
    } else {
        free(text.p);
        api_reply_json(resp, 200, evaluation_json(s->exps[idx], &a));
    }
    app_snapshot_release(s);
    json_decref(c->doc);
    free(c);
}

/* ---- bulk ------------------------------------------------------------------ */

/* Flags a bulk evaluation lists: every experiment that serves traffic. */
static bool
live(const struct core_experiment *e)
{
    return e->state == CORE_STATE_RUNNING || e->state == CORE_STATE_PAUSED ||
           e->state == CORE_STATE_PROMOTED ||
           e->state == CORE_STATE_ROLLED_BACK;
}

/* ETag: XXH3-64 of what the answer is a function of -- each listed
 * experiment's key, row version, weights version and state (together the
 * snapshot's content, the same on every instance) and the context with
 * sorted keys -- so equal inputs give equal tags on any instance. */
static void
bulk_etag(const struct snapshot *s, json_t *ctx, char *out, size_t n)
{
    XXH3_state_t *st = XXH3_createState();
    XXH3_64bits_reset(st);
    for (size_t i = 0; i < s->n; i++) {
        const struct core_experiment *e = s->exps[i];
        if (!live(e))
            continue;
        int64_t nums[3] = {e->version, e->weights_version, (int64_t)e->state};
        XXH3_64bits_update(st, e->key, strlen(e->key) + 1);
        XXH3_64bits_update(st, nums, sizeof(nums));
    }
    char *text = ctx ? json_dumps(ctx, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (text)
        XXH3_64bits_update(st, text, strlen(text));
    free(text);
    snprintf(out, n, "\"%016llx\"", (unsigned long long)XXH3_64bits_digest(st));
    XXH3_freeState(st);
}

static bool
etag_matches(const char *header, const char *etag)
{
    if (header == NULL)
        return false;
    if (strcmp(header, "*") == 0)
        return true;
    return strstr(header, etag) != NULL; /* a list, or W/"..." */
}

void
api_ofrep_bulk(struct api_ctx *ctx, const struct api_req *req,
               struct api_resp *resp)
{
    struct context *c = ab_xmalloc(sizeof(*c));
    if (!parse_context(req, NULL, resp, c)) {
        json_decref(c->doc);
        free(c);
        return;
    }
    struct snapshot *s = app_snapshot_get(ctx->app);
    char etag[24];
    bulk_etag(s, c->ctx, etag, sizeof(etag));
    api_reply_header(resp, "ETag", etag);
    if (etag_matches(req->if_none_match, etag)) {
        app_snapshot_release(s);
        json_decref(c->doc);
        free(c);
        api_reply_raw(resp, 304, "application/json", ab_xstrdup(""), 0);
        return;
    }
    json_t *flags = json_array();
    for (size_t i = 0; i < s->n; i++) {
        if (!live(s->exps[i]))
            continue;
        struct core_assignment a;
        api_assign_unit(ctx->app, s, i, c->unit, c->unit_len, c->attrs,
                        c->n_attrs, false, &a);
        json_array_append_new(flags, evaluation_json(s->exps[i], &a));
    }
    app_snapshot_release(s);
    json_decref(c->doc);
    free(c);
    api_reply_json(resp, 200, json_pack("{s:o}", "flags", flags));
}

/* OPTIONS: a browser's preflight carries no credentials (route scope
 * NONE); the actual request is authorized as usual. The server adds
 * Access-Control-Allow-Origin and -Expose-Headers (route field cors). */
void
api_ofrep_preflight(struct api_ctx *ctx, const struct api_req *req,
                    struct api_resp *resp)
{
    (void)ctx;
    (void)req;
    api_reply_header(resp, "Access-Control-Allow-Methods", "POST, OPTIONS");
    api_reply_header(resp, "Access-Control-Allow-Headers",
                     "Content-Type, Authorization, X-API-Key, If-None-Match");
    api_reply_header(resp, "Access-Control-Max-Age", "86400");
    api_reply_raw(resp, 204, "text/plain", ab_xstrdup(""), 0);
}

void
api_ofrep_configuration(struct api_ctx *ctx, const struct api_req *req,
                        struct api_resp *resp)
{
    (void)ctx;
    (void)req;
    api_reply_json(
        resp, 200,
        json_pack("{s:s,s:{s:{s:{s:b,s:i}},s:{s:[sssss]}}}", "name", "arbiter",
                  "capabilities", "cacheInvalidation", "polling", "enabled", 1,
                  "minPollingIntervalMs", 1000, "flagEvaluation",
                  "supportedTypes", "boolean", "string", "int", "float",
                  "object"));
}

/* ---- tracking (provisional) ---------------------------------------------------
 * OpenFeature's tracking API names a unit and an event, never an
 * experiment, and OFREP defines no tracking endpoint yet. POST /v1/track
 * takes one event or an array of them:
 *   {"unit":"user-42","metric":"purchase","value":12.5,"ts":1764770000000,
 *    "id":"evt-1"}
 * and attributes each to every running experiment that exposed the unit at
 * or before ts (exposure_units.first_seen) and declares the metric -- the
 * events API's rule, with the experiment found instead of named. The arm is
 * the unit's exposure's, as for /v1/events without "arm"; "id" is the
 * idempotency key in each experiment. 202 once durable (deferred, like
 * /v1/events); 429 + Retry-After where /v1/events answers 503. */

#define TRACK_MAX 1000
#define TRACK_VALUE_ABS_MAX 1e15

struct track_pending {
    void *defer;
    int events, attributed, unattributed;
};

static void
track_reply(struct api_resp *resp, ab_status rc, int events, int attributed,
            int unattributed, int duplicates)
{
    if (rc != AB_OK) {
        api_reply_header(resp, "Retry-After", "1");
        api_reply_error(resp, 429, "overloaded",
                        "events could not be made durable now; retry later");
        return;
    }
    api_reply_json(resp, 202,
                   json_pack("{s:i,s:i,s:i,s:i}", "events", events,
                             "attributed", attributed, "unattributed",
                             unattributed, "duplicates", duplicates));
}

static void
track_done(void *arg, ab_status rc, const struct ingest_result *res)
{
    struct track_pending *p = arg;
    struct api_resp resp = {0};
    track_reply(&resp, rc, p->events, p->attributed, p->unattributed,
                res ? res->duplicates : 0);
    api_complete(p->defer, &resp);
    free(p);
}

/* One event's fields; false: a 400 was written. */
static bool
track_check(json_t *ev, size_t i, struct api_resp *resp, double *value,
            int64_t *ts, int64_t now)
{
    static const char *const fields[] = {"unit", "metric", "value", "ts",
                                         "id"};
    const char *k;
    json_t *v;
    if (!json_is_object(ev)) {
        api_reply_error(resp, 400, "invalid", "events[%zu]: must be an object",
                        i);
        return false;
    }
    json_object_foreach(ev, k, v) {
        bool known = false;
        for (size_t f = 0; f < AB_ARRAY_LEN(fields); f++)
            known |= strcmp(k, fields[f]) == 0;
        if (!known) {
            api_reply_error(resp, 400, "invalid",
                            "events[%zu].%.64s: unknown field", i, k);
            return false;
        }
    }
    json_t *ju = json_object_get(ev, "unit");
    if (!json_is_string(ju) || json_string_length(ju) == 0 ||
        json_string_length(ju) > CORE_UNIT_MAX ||
        strlen(json_string_value(ju)) != json_string_length(ju)) {
        api_reply_error(resp, 400, "invalid",
                        "events[%zu].unit: must be 1 to %d bytes", i,
                        CORE_UNIT_MAX);
        return false;
    }
    json_t *jm = json_object_get(ev, "metric");
    if (!json_is_string(jm) || json_string_length(jm) == 0 ||
        json_string_length(jm) > CORE_KEY_MAX) {
        api_reply_error(resp, 400, "invalid",
                        "events[%zu].metric: must be a metric name", i);
        return false;
    }
    json_t *jv = json_object_get(ev, "value");
    *value = 1;
    if (jv && !json_is_null(jv)) {
        if (!json_is_number(jv) || !isfinite(json_number_value(jv)) ||
            fabs(json_number_value(jv)) > TRACK_VALUE_ABS_MAX) {
            api_reply_error(resp, 400, "invalid",
                            "events[%zu].value: must be a finite number of "
                            "at most 1e15 in magnitude",
                            i);
            return false;
        }
        *value = json_number_value(jv);
    }
    json_t *jt = json_object_get(ev, "ts");
    *ts = now;
    if (jt && !json_is_null(jt)) {
        if (!json_is_integer(jt) || json_integer_value(jt) > now + 300000 ||
            json_integer_value(jt) < 946684800000LL) {
            api_reply_error(resp, 400, "invalid",
                            "events[%zu].ts: epoch milliseconds, after 2000 "
                            "and at most 5 minutes ahead",
                            i);
            return false;
        }
        *ts = (int64_t)json_integer_value(jt);
    }
    json_t *jid = json_object_get(ev, "id");
    if (jid && !json_is_null(jid) &&
        (!json_is_string(jid) || json_string_length(jid) == 0 ||
         json_string_length(jid) > 128 ||
         strlen(json_string_value(jid)) != json_string_length(jid))) {
        api_reply_error(resp, 400, "invalid",
                        "events[%zu].id: must be 1 to 128 bytes", i);
        return false;
    }
    return true;
}

static bool
declares(const struct core_experiment *e, const char *metric)
{
    for (size_t m = 0; m < e->n_metrics; m++)
        if (strcmp(e->metrics[m].name, metric) == 0)
            return true;
    return false;
}

void
api_ofrep_track(struct api_ctx *ctx, const struct api_req *req,
                struct api_resp *resp)
{
    json_t *doc = req->json;
    json_t *list = json_is_array(doc) ? json_incref(doc) : json_pack("[O]", doc);
    size_t n = json_array_size(list);
    if (n == 0 || n > TRACK_MAX) {
        json_decref(list);
        api_reply_error(resp, 400, "invalid", "1 to %d events per request",
                        TRACK_MAX);
        return;
    }
    int64_t now = ab_now_ms();
    double *values = ab_xcalloc(n, sizeof(*values));
    int64_t *tss = ab_xcalloc(n, sizeof(*tss));
    for (size_t i = 0; i < n; i++)
        if (!track_check(json_array_get(list, i), i, resp, &values[i],
                         &tss[i], now)) {
            json_decref(list);
            free(values);
            free(tss);
            return;
        }
    struct db *db = app_db_get(ctx->app);
    if (db == NULL) {
        json_decref(list);
        free(values);
        free(tss);
        track_reply(resp, AB_EDB, 0, 0, 0, 0);
        return;
    }
    struct snapshot *s = app_snapshot_get(ctx->app);
    size_t cap = n * 4, n_out = 0;
    struct ingest_event *out = ab_xcalloc(cap, sizeof(*out));
    int unattributed = 0;
    ab_status rc = AB_OK;
    for (size_t i = 0; i < n && rc == AB_OK; i++) {
        json_t *ev = json_array_get(list, i);
        const char *unit = json_string_value(json_object_get(ev, "unit"));
        const char *metric = json_string_value(json_object_get(ev, "metric"));
        json_t *jid = json_object_get(ev, "id");
        char *keys_text = NULL;
        rc = db_exposed_running_json(db, unit, tss[i], &keys_text);
        if (rc != AB_OK)
            break;
        json_t *keys = json_loads(keys_text, 0, NULL);
        free(keys_text);
        int attributed = 0;
        size_t k;
        json_t *jk;
        json_array_foreach(keys, k, jk) {
            const struct core_experiment *e =
                snapshot_find(s, json_string_value(jk), NULL);
            if (e == NULL || !declares(e, metric))
                continue;
            if (n_out == cap) {
                cap *= 2;
                out = ab_xrealloc(out, cap * sizeof(*out));
            }
            struct core_assignment a;
            core_assign(e, unit, strlen(unit), NULL, 0, &a);
            struct ingest_event *x = &out[n_out++];
            memset(x, 0, sizeof(*x));
            x->experiment_id = e->id;
            x->event_id = json_is_string(jid)
                              ? ab_xstrdup(json_string_value(jid))
                              : NULL;
            x->unit = ab_xstrdup(unit);
            x->arm = NULL; /* the exposure's arm */
            x->arm_hint = ab_xstrdup(e->arms[a.arm].name);
            x->metric = ab_xstrdup(metric);
            x->value = values[i];
            x->ts_ms = tss[i];
            attributed++;
        }
        json_decref(keys);
        if (attributed == 0)
            unattributed++;
    }
    app_snapshot_release(s);
    app_db_put(ctx->app, db);
    json_decref(list);
    free(values);
    free(tss);
    if (rc != AB_OK) {
        for (size_t i = 0; i < n_out; i++)
            ingest_event_clear(&out[i]);
        free(out);
        track_reply(resp, rc, 0, 0, 0, 0);
        return;
    }
    if (n_out == 0) {
        free(out);
        track_reply(resp, AB_OK, (int)n, 0, unattributed, 0);
        return;
    }
    struct track_pending *p = ab_xmalloc(sizeof(*p));
    p->defer = req->defer;
    p->events = (int)n;
    p->attributed = (int)n_out;
    p->unattributed = unattributed;
    rc = ingest_submit_async(ctx->app->ingest, out, n_out, track_done, p);
    if (rc != AB_OK) {
        free(p);
        track_reply(resp, rc, 0, 0, 0, 0);
        return;
    }
    resp->status = API_DEFERRED;
}
