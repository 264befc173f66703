/* h_events.c -- POST /v1/events: outcome events, a JSON array or NDJSON.
 *
 * The body as a whole must parse (else 400, nothing stored). Each event is
 * then checked on its own: a bad one is listed in "rejected" with its
 * index, a stable code and a message, and never sinks the others. The
 * accepted ones go to the group-commit writer; the answer (202) waits until
 * they are committed in PostgreSQL or fsync'd to the spool.
 *
 *   {"accepted": 998, "duplicates": 1, "spooled": false,
 *    "rejected": [{"index": 3, "code": "unknown_metric", "message": ...}]}
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "service/app.h"
#include "lib/clock.h"
#include "api/handlers.h"
#include "service/ingest.h"
#include "core/assign.h"

#define EVENTS_MAX 10000
#define EVENT_ID_MAX 128
#define ATTRIBUTES_MAX 4096
#define VALUE_ABS_MAX 1e15
/* Validation equals storability: a nonzero value must be at least 1e-100
 * in magnitude (refused, never flushed). PostgreSQL's float8 arithmetic
 * raises "value out of range: underflow" when a product of nonzero
 * operands rounds to zero, and the fold squares values and multiplies
 * per-unit sums: below about 1.5e-162 a square underflows, and a batch
 * holding such a value would be refused after its 2xx. With |v| in
 * [1e-100, 1e15] a square or a product of two values lies in
 * [1e-200, 1e30], and sums of values (whose nonzero magnitude cannot drop
 * below the ulp of 1e-100, about 1e-116) square to at least 1e-232: all
 * normal doubles, far from both ends of the range. */
#define VALUE_ABS_MIN 1e-100
#define FUTURE_SKEW_MS (5 * 60 * 1000)
#define EPOCH_2000_MS 946684800000LL

/* Parse RFC 3339 ("2026-11-23T10:00:00.123Z", "...+02:00"). */
static bool
parse_rfc3339(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, sec;
    int n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
        return false;
    if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
        return false;
    const char *p = s + 11;
    if (sscanf(p, "%2d:%2d:%2d%n", &h, &mi, &sec, &n) != 3 || n != 8)
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return false;
    for (int i = 0; i < 8; i++)
        if (i != 2 && i != 5 && (p[i] < '0' || p[i] > '9'))
            return false;
    p += 8;
    int64_t frac_ms = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (digits == 0 || digits > 9)
            return false;
        for (int i = digits; i < 3; i++)
            frac_ms *= 10;
    }
    int off_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        /* digits only: %d alone would take " 2" or "-1" */
        if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]) ||
            p[3] != ':' || !isdigit((unsigned char)p[4]) ||
            !isdigit((unsigned char)p[5]))
            return false;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || n != 5 ||
            oh > 23 || om > 59)
            return false;
        off_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 6;
    } else
        return false;
    if (*p != '\0')
        return false;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
        (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || sec > 60)
        return false;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                    .tm_hour = h, .tm_min = mi, .tm_sec = sec == 60 ? 59 : sec};
    time_t t = timegm(&tm);
    *ms = (int64_t)t * 1000 + frac_ms - (int64_t)off_min * 60000;
    return true;
}

struct rejects {
    json_t *list;
};

__attribute__((format(printf, 4, 5))) static void
reject(struct rejects *r, size_t index, const char *code, const char *fmt,
       ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_array_append_new(r->list, json_pack("{s:I,s:s,s:s}", "index",
                                             (json_int_t)index, "code", code,
                                             "message", msg));
}

static bool
metric_known(const struct core_experiment *e, const char *name)
{
    for (size_t i = 0; i < e->n_metrics; i++)
        if (strcmp(e->metrics[i].name, name) == 0 ||
            (e->metrics[i].covariate &&
             strcmp(e->metrics[i].covariate, name) == 0))
            return true;
    return false;
}

/* The arm an event is credited to (README, "Attribution"): an outcome
 * belongs to the arm that served the unit when it happened. An explicit arm
 * is kept. A sticky experiment serves a unit its first arm for good, so the
 * recorded exposure decides (in SQL: NULL here); any other one serves what
 * its current weights give (a), so that arm is named: a unit moved by a
 * ramp has its later outcomes credited to the arm that produced them.
 * New string or NULL. */
static char *
attributed_arm(const struct core_experiment *e, const char *explicit_arm,
               const struct core_assignment *a)
{
    if (explicit_arm != NULL)
        return ab_xstrdup(explicit_arm);
    if (!e->sticky && a->in_experiment)
        return ab_xstrdup(e->arms[a->arm].name);
    return NULL;
}

static const struct core_arm *
arm_named(const struct core_experiment *e, const char *name)
{
    for (size_t i = 0; i < e->n_arms; i++)
        if (strcmp(e->arms[i].name, name) == 0)
            return &e->arms[i];
    return NULL;
}

static const char *
short_name(const char *s)
{
    return strlen(s) <= 64 ? s : "(too long)";
}

/* An event is an object with only the known fields. */
static bool
check_fields(json_t *ev, size_t index, struct rejects *r)
{
    static const char *const fields[] = {"id",  "experiment", "unit",
                                         "metric", "value",  "arm",
                                         "ts",  "attributes"};
    if (!json_is_object(ev)) {
        reject(r, index, "invalid_event", "an event must be a JSON object");
        return false;
    }
    const char *k;
    json_t *v;
    json_object_foreach(ev, k, v) {
        bool known = false;
        for (size_t i = 0; i < AB_ARRAY_LEN(fields); i++)
            known |= strcmp(k, fields[i]) == 0;
        if (!known) {
            reject(r, index, "unknown_field", "%s: unknown field",
                   short_name(k));
            return false;
        }
    }
    return true;
}

/* The optional "value": a finite number that survives squaring; *value
 * keeps its default when the field is absent or null. */
static bool
check_value(json_t *jvalue, size_t index, struct rejects *r, double *value)
{
    if (jvalue == NULL || json_is_null(jvalue))
        return true;
    if (!json_is_number(jvalue)) {
        reject(r, index, "invalid_type", "value: must be a number");
        return false;
    }
    double v = json_number_value(jvalue);
    if (!isfinite(v) || fabs(v) > VALUE_ABS_MAX) {
        reject(r, index, "value_out_of_range",
               "value: must be finite and at most 1e15 in magnitude");
        return false;
    }
    if (v != 0 && fabs(v) < VALUE_ABS_MIN) {
        reject(r, index, "value_out_of_range",
               "value: nonzero values must be at least 1e-100 in "
               "magnitude (smaller ones underflow when squared)");
        return false;
    }
    *value = v;
    return true;
}

/* The optional "ts": RFC 3339 or epoch milliseconds, not in the future
 * beyond the skew and not older than retention; *ts keeps its default
 * (now) when the field is absent or null. */
static bool
check_ts(const struct app *app, json_t *jts, size_t index, int64_t now,
         struct rejects *r, int64_t *ts_out)
{
    if (jts == NULL || json_is_null(jts))
        return true;
    int64_t ts = now;
    if (json_is_integer(jts))
        ts = (int64_t)json_integer_value(jts);
    else if (!json_is_string(jts) ||
             !parse_rfc3339(json_string_value(jts), &ts)) {
        reject(r, index, "invalid_timestamp",
               "ts: must be RFC 3339 or epoch milliseconds");
        return false;
    }
    if (ts > now + FUTURE_SKEW_MS) {
        reject(r, index, "future_timestamp",
               "ts: more than 5 minutes in the future");
        return false;
    }
    int64_t oldest =
        now - (int64_t)app->cfg.event_retention_days * 86400000LL;
    if (ts < oldest || ts < EPOCH_2000_MS) {
        reject(r, index, "ancient_timestamp",
               "ts: older than the %d-day retention",
               app->cfg.event_retention_days);
        return false;
    }
    *ts_out = ts;
    return true;
}

/* Check one event; on success fill *out (owned strings). */
static bool
check_event(struct app *app, const struct snapshot *s, json_t *ev,
            size_t index, int64_t now, struct rejects *r,
            struct ingest_event *out)
{
    if (!check_fields(ev, index, r))
        return false;
    json_t *jexp = json_object_get(ev, "experiment");
    json_t *junit = json_object_get(ev, "unit");
    json_t *jmetric = json_object_get(ev, "metric");
    json_t *jid = json_object_get(ev, "id");
    json_t *jvalue = json_object_get(ev, "value");
    json_t *jarm = json_object_get(ev, "arm");
    json_t *jts = json_object_get(ev, "ts");
    json_t *jattr = json_object_get(ev, "attributes");
    static const char *const required[] = {"experiment", "unit", "metric"};
    json_t *req_v[] = {jexp, junit, jmetric};
    for (size_t i = 0; i < 3; i++) {
        if (req_v[i] == NULL) {
            reject(r, index, "missing_field", "%s: required", required[i]);
            return false;
        }
        if (!json_is_string(req_v[i])) {
            reject(r, index, "invalid_type", "%s: must be a string",
                   required[i]);
            return false;
        }
    }
    size_t unit_len = json_string_length(junit);
    const char *unit = json_string_value(junit);
    if (unit_len == 0 || unit_len > CORE_UNIT_MAX || strlen(unit) != unit_len) {
        reject(r, index, "invalid_unit", "unit: must be 1 to %d bytes",
               CORE_UNIT_MAX);
        return false;
    }
    const struct core_experiment *e =
        snapshot_find(s, json_string_value(jexp), NULL);
    if (e == NULL) {
        reject(r, index, "unknown_experiment", "no experiment \"%s\"",
               short_name(json_string_value(jexp)));
        return false;
    }
    if (e->state == CORE_STATE_DRAFT) {
        reject(r, index, "experiment_not_started",
               "experiment \"%s\" is a draft", e->key);
        return false;
    }
    const char *metric = json_string_value(jmetric);
    if (!metric_known(e, metric)) {
        reject(r, index, "unknown_metric",
               "metric \"%s\" is not declared by experiment \"%s\"",
               short_name(metric), e->key);
        return false;
    }
    if (jid && !json_is_null(jid)) {
        if (!json_is_string(jid)) {
            reject(r, index, "invalid_type", "id: must be a string");
            return false;
        }
        size_t n = json_string_length(jid);
        if (n == 0 || n > EVENT_ID_MAX ||
            strlen(json_string_value(jid)) != n) {
            reject(r, index, "invalid_id", "id: must be 1 to %d bytes",
                   EVENT_ID_MAX);
            return false;
        }
    }
    double value = 1;
    if (!check_value(jvalue, index, r, &value))
        return false;
    const char *arm = NULL;
    if (jarm && !json_is_null(jarm)) {
        if (!json_is_string(jarm)) {
            reject(r, index, "invalid_type", "arm: must be a string");
            return false;
        }
        arm = json_string_value(jarm);
        if (arm_named(e, arm) == NULL) {
            reject(r, index, "unknown_arm",
                   "experiment \"%s\" has no arm \"%s\"", e->key,
                   short_name(arm));
            return false;
        }
    }
    int64_t ts = now;
    if (!check_ts(app, jts, index, now, r, &ts))
        return false;
    char *attrs = NULL;
    if (jattr && !json_is_null(jattr)) {
        if (!json_is_object(jattr)) {
            reject(r, index, "invalid_type", "attributes: must be an object");
            return false;
        }
        attrs = json_dumps(jattr, JSON_COMPACT | JSON_SORT_KEYS);
        if (attrs == NULL || strlen(attrs) > ATTRIBUTES_MAX) {
            free(attrs);
            reject(r, index, "too_long", "attributes: over %d bytes",
                   ATTRIBUTES_MAX);
            return false;
        }
    }
    /* the arm the snapshot assigns, used when the unit has no exposure */
    struct core_assignment a;
    core_assign(e, unit, unit_len, NULL, 0, &a);
    out->experiment_id = e->id;
    out->event_id = jid && json_is_string(jid)
                        ? ab_xstrdup(json_string_value(jid))
                        : NULL;
    out->unit = ab_xstrdup(unit);
    out->arm = attributed_arm(e, arm, &a);
    out->arm_hint = ab_xstrdup(e->arms[a.arm].name);
    out->metric = ab_xstrdup(metric);
    out->value = value;
    out->ts_ms = ts;
    out->attributes = attrs;
    return true;
}

static bool
is_ndjson(const char *ctype)
{
    return ctype && (strncmp(ctype, "application/x-ndjson", 20) == 0 ||
                     strncmp(ctype, "application/ndjson", 18) == 0 ||
                     strncmp(ctype, "application/jsonl", 17) == 0);
}

/* Parse the body into an array of events; NULL + message on failure. */
static json_t *
parse_body(const struct api_req *req, char *err, size_t len)
{
    json_error_t jerr;
    if (!is_ndjson(req->content_type)) {
        json_t *doc = json_loadb(req->body, req->body_len,
                                 JSON_REJECT_DUPLICATES, &jerr);
        if (doc == NULL) {
            snprintf(err, len, "malformed JSON at line %d column %d: %s",
                     jerr.line, jerr.column, jerr.text);
            return NULL;
        }
        if (!json_is_array(doc)) {
            json_decref(doc);
            snprintf(err, len,
                     "body must be a JSON array of events (or NDJSON with "
                     "Content-Type application/x-ndjson)");
            return NULL;
        }
        return doc;
    }
    json_t *arr = json_array();
    const char *p = req->body, *end = req->body + req->body_len;
    size_t line = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        line++;
        const char *q = p;
        while (q < stop && (*q == ' ' || *q == '\t' || *q == '\r'))
            q++;
        if (q < stop) {
            json_t *ev = json_loadb(p, (size_t)(stop - p),
                                    JSON_REJECT_DUPLICATES, &jerr);
            if (ev == NULL) {
                snprintf(err, len, "malformed JSON on NDJSON line %zu: %s",
                         line, jerr.text);
                json_decref(arr);
                return NULL;
            }
            json_array_append_new(arr, ev);
            if (json_array_size(arr) > EVENTS_MAX)
                break;
        }
        p = nl ? nl + 1 : end;
    }
    return arr;
}

/* The answer: 202 with the counts, or 503 with Retry-After when the
 * events could not be made durable. Steals rejected. */
static void
reply_accepted(struct api_resp *resp, ab_status rc,
               const struct ingest_result *res, json_t *rejected)
{
    if (rc != AB_OK) {
        json_decref(rejected);
        api_reply_header(resp, "Retry-After", "1");
        if (rc == AB_EBUSY)
            api_reply_error(resp, 503, "overloaded",
                            "ingestion queue or spool is full; retry later");
        else
            api_reply_error(resp, 503, "unavailable",
                            "events could not be made durable; retry later");
        return;
    }
    api_reply_json(resp, 202,
                   json_pack("{s:i,s:i,s:b,s:o}", "accepted", res->accepted,
                             "duplicates", res->duplicates, "spooled",
                             res->spooled, "rejected", rejected));
}

struct pending {
    json_t *rejected;
    void *defer;
};

/* ingest_done_fn: on the writer thread, once the batch is durable. */
static void
events_done(void *arg, ab_status rc, const struct ingest_result *res)
{
    struct pending *p = arg;
    struct api_resp resp = {0};
    reply_accepted(&resp, rc, res, p->rejected);
    api_complete(p->defer, &resp);
    free(p);
}

void
api_events_post(struct api_ctx *ctx, const struct api_req *req,
                struct api_resp *resp)
{
    char err[400];
    if (req->body_len == 0) {
        api_reply_error(resp, 400, "invalid_json", "a body is required");
        return;
    }
    if (api_json_depth(req->body, req->body_len) > API_MAX_DEPTH) {
        api_reply_error(resp, 400, "too_deep",
                        "JSON nesting deeper than %d levels", API_MAX_DEPTH);
        return;
    }
    json_t *events = parse_body(req, err, sizeof(err));
    if (events == NULL) {
        api_reply_error(resp, 400, "invalid_json", "%s", err);
        return;
    }
    size_t n = json_array_size(events);
    if (n > EVENTS_MAX) {
        json_decref(events);
        api_reply_error(resp, 413, "too_many_events",
                        "at most %d events per request", EVENTS_MAX);
        return;
    }
    struct app *app = ctx->app;
    struct snapshot *s = app_snapshot_get(app);
    struct rejects r = {json_array()};
    struct ingest_event *ok = ab_xcalloc(n ? n : 1, sizeof(*ok));
    size_t n_ok = 0;
    int64_t now = ab_now_ms();
    for (size_t i = 0; i < n; i++)
        if (check_event(app, s, json_array_get(events, i), i, now, &r,
                        &ok[n_ok]))
            n_ok++;
    app_snapshot_release(s);
    json_decref(events);

    if (n_ok == 0) {
        free(ok);
        reply_accepted(resp, AB_OK, &(struct ingest_result){0, 0, false},
                       r.list);
        return;
    }
    /* the answer waits for the group commit (or the spool's fsync) without
     * holding this HTTP worker: see API_DEFERRED */
    struct pending *p = ab_xmalloc(sizeof(*p));
    p->rejected = r.list;
    p->defer = req->defer;
    ab_status rc = ingest_submit_async(app->ingest, ok, n_ok, events_done, p);
    if (rc != AB_OK) {
        free(p);
        reply_accepted(resp, rc, NULL, r.list);
        return;
    }
    resp->status = API_DEFERRED;
}
