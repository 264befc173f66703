/* h_assign.c -- GET and POST /v1/assign: which arm a unit gets.
 *
 * Reads only the in-memory snapshot; the database is touched only by the
 * sticky store on a cache miss after a weight change (bounded by
 * sticky_timeout_ms, skipped while the database is down). Exposures go to
 * the asynchronous writer. Replies are built with snprintf: on the hottest
 * path this saves microseconds over building a json_t.
 *
 * One answer:
 *   {"experiment":"k","arm":"a","model":"m@1","in_experiment":true,
 *    "reason":"hashed","bucket":123456,"hash_version":1,
 *    "bucket_version":1,"weights_version":3,"propensity":0.5}
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/app.h"
#include "lib/clock.h"
#include "api/handlers.h"
#include "core/assign.h"
#include "lib/utf8.h"

#define ANSWER_MAX (3 * CORE_KEY_MAX + 6 * 256 + 512)

struct answer {
    const struct core_experiment *e;
    struct core_assignment a;
};

/* Assign, apply stickiness, record the exposure (when 'expose') and the
 * metric. Shared with the OpenFeature routes (h_ofrep.c): a bulk
 * evaluation assigns without exposing. */
void
api_assign_unit(struct app *app, struct snapshot *s, size_t idx,
                const char *unit, size_t unit_len,
                const struct core_attr *attrs, size_t n_attrs, bool expose,
                struct core_assignment *out)
{
    const struct core_experiment *e = s->exps[idx];
    struct core_assignment a;
    core_assign(e, unit, unit_len, attrs, n_attrs, &a); /* unit pre-checked */
    if (a.in_experiment && e->sticky) {
        bool unavailable;
        char *first = app_sticky_lookup(app, e, unit, &unavailable);
        if (first) {
            for (size_t i = 0; i < e->n_arms; i++)
                if (strcmp(e->arms[i].name, first) == 0 &&
                    e->arms[i].weight > 0) {
                    if (i != a.arm) {
                        a.arm = i;
                        a.propensity = (double)e->arms[i].weight / CORE_SCALE;
                    }
                    a.reason = CORE_REASON_STICKY;
                    break;
                }
            free(first);
        } else if (!unavailable && expose) {
            app_sticky_remember(app, e, unit, e->arms[a.arm].name);
        }
    }
    if (a.in_experiment && expose) {
        struct exposure x = {
            .experiment_id = e->id,
            .unit = unit,
            .arm = e->arms[a.arm].name,
            .bucket_version = (int32_t)e->bucket_version,
            .weights_version = e->weights_version,
            .propensity = a.propensity,
            .ts_ms = ab_now_ms(),
        };
        app_expose(app, &x);
    }
    atomic_fetch_add_explicit(s->counters[idx][a.arm], 1,
                              memory_order_relaxed);
    *out = a;
}

static void
assign_one(struct app *app, struct snapshot *s, size_t idx, const char *unit,
           size_t unit_len, const struct core_attr *attrs, size_t n_attrs,
           struct answer *out)
{
    api_assign_unit(app, s, idx, unit, unit_len, attrs, n_attrs, true,
                    &out->a);
    out->e = s->exps[idx];
}

/* ---- the answer, without printf ------------------------------------------
 * format_answer() writes exactly what
 *   snprintf(buf, n, "{\"experiment\":\"%s\",\"arm\":\"%s\",...,"
 *            "\"propensity\":%.17g}", ...)
 * wrote before, with memcpy and integer conversion: on the hottest path
 * the printf machinery (format parsing, and above all %.17g, which runs
 * glibc's multi-precision __printf_fp) cost about 6,500 of the 35,000
 * instructions of a whole GET (callgrind, bench/results/assign.md). The
 * propensity is still formatted by snprintf("%.17g"), but once per
 * distinct value and thread: arms have a handful of weights, so a small
 * direct-mapped cache keyed by the double's bits answers nearly always,
 * and answers exactly what snprintf would. */

struct out {
    char *p;
    size_t len, cap; /* cap includes room for the final NUL */
};

static void
put_truncated(struct out *o, const char *s, size_t n)
{
    n = o->len + 1 < o->cap ? o->cap - o->len - 1 : 0;
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

/* Inlined, so that the copy of a literal (PUT_LIT) is a few moves rather
 * than a call of memcpy: 17 calls per answer before (callgrind). */
static inline __attribute__((always_inline)) void
put(struct out *o, const char *s, size_t n)
{
    if (__builtin_expect(o->len + n >= o->cap, 0)) {
        put_truncated(o, s, n); /* never with ANSWER_MAX; as snprintf */
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

#define PUT_LIT(o, lit) put((o), (lit), sizeof(lit) - 1)

static void
put_str(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void
put_u64(struct out *o, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, tmp + i, sizeof(tmp) - i);
}

static void
put_i64(struct out *o, int64_t v)
{
    if (v < 0) {
        PUT_LIT(o, "-");
        put_u64(o, (uint64_t)0 - (uint64_t)v);
    } else
        put_u64(o, (uint64_t)v);
}

/* 64 slots indexed by a multiplicative hash of the bits: with 16 slots
 * and an xor-shift index, two of the ten propensities of the benchmark's
 * batch shared a slot and evicted each other on every request (callgrind:
 * two snprintf("%.17g") per batch, 8 % of its instructions). */
#define PROP_CACHE 64
_Static_assert(PROP_CACHE == 64, "the index is the top 6 bits");
struct prop_slot {
    uint64_t bits;
    unsigned char len; /* 0: empty */
    char text[31];
};

/* %.17g of x, through the per-thread cache. */
static void
put_propensity(struct out *o, double x)
{
    static _Thread_local struct prop_slot cache[PROP_CACHE];
    uint64_t bits;
    memcpy(&bits, &x, sizeof(bits));
    struct prop_slot *slot =
        &cache[(bits * 0x9e3779b97f4a7c15ULL) >> 58]; /* top 6 bits */
    if (slot->len == 0 || slot->bits != bits) {
        int n = snprintf(slot->text, sizeof(slot->text), "%.17g", x);
        slot->bits = bits;
        slot->len = (unsigned char)(n > 0 ? n : 0); /* %.17g: <= 24 chars */
    }
    put(o, slot->text, slot->len);
}

/* Same bytes as api_json_escape(tmp, 2 * 256 + 8, s) followed by "%s" of
 * tmp. A model name with nothing to escape (all of them in practice) is
 * copied as it is: api_json_escape() would copy it byte by byte too, and
 * stops only past 2 * 256 bytes. */
#define MODEL_ESCAPED_MAX (2 * 256 + 8)
static void
put_escaped_model(struct out *o, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    while (p[n] >= 0x20 && p[n] != '"' && p[n] != '\\')
        n++;
    if (p[n] == '\0' && n + 7 < MODEL_ESCAPED_MAX) {
        put(o, s, n);
        return;
    }
    char tmp[MODEL_ESCAPED_MAX];
    n = api_json_escape(tmp, sizeof(tmp), s);
    put(o, tmp, n);
}

static int
format_answer(char *buf, size_t n, const struct answer *ans)
{
    const struct core_experiment *e = ans->e;
    const struct core_arm *arm = &e->arms[ans->a.arm];
    /* shadow: the control arm serves; a unit hashed into the other arm is
     * also mirrored to it ("shadow"), whose output the caller does not
     * serve. Outcomes are then posted for both arms. */
    const struct core_arm *shadow = NULL;
    bool is_shadow = e->strategy == CORE_STRATEGY_SHADOW &&
                     e->state == CORE_STATE_RUNNING;
    if (is_shadow) {
        if (ans->a.in_experiment && ans->a.arm != e->control)
            shadow = arm;
        arm = &e->arms[e->control];
    }
    struct out o = {buf, 0, n};
    PUT_LIT(&o, "{\"experiment\":\"");
    put_str(&o, e->key);
    PUT_LIT(&o, "\",\"arm\":\"");
    put_str(&o, arm->name);
    PUT_LIT(&o, "\",\"model\":\"");
    put_escaped_model(&o, arm->model ? arm->model : "");
    if (ans->a.in_experiment)
        PUT_LIT(&o, "\",\"in_experiment\":true,\"reason\":\"");
    else
        PUT_LIT(&o, "\",\"in_experiment\":false,\"reason\":\"");
    put_str(&o, ans->a.reason);
    PUT_LIT(&o, "\",\"bucket\":");
    put_u64(&o, ans->a.bucket);
    _Static_assert(CORE_HASH_VERSION == 1, "the literal below says 1");
    PUT_LIT(&o, ",\"hash_version\":1,\"bucket_version\":");
    put_u64(&o, e->bucket_version);
    PUT_LIT(&o, ",\"weights_version\":");
    put_i64(&o, (int64_t)e->weights_version);
    PUT_LIT(&o, ",\"propensity\":");
    put_propensity(&o, ans->a.propensity);
    if (is_shadow) {
        if (shadow) {
            PUT_LIT(&o, ",\"shadow\":\"");
            put_str(&o, shadow->name);
            PUT_LIT(&o, "\",\"shadow_model\":\"");
            put_escaped_model(&o, shadow->model ? shadow->model : "");
            PUT_LIT(&o, "\"");
        } else {
            PUT_LIT(&o, ",\"shadow\":null,\"shadow_model\":null");
        }
    }
    PUT_LIT(&o, "}");
    buf[o.len] = '\0';
    return (int)o.len;
}

static bool
unit_ok(const char *unit, size_t len)
{
    return len >= 1 && len <= CORE_UNIT_MAX && ab_utf8_valid(unit, len);
}

void
api_assign_get(struct api_ctx *ctx, const struct api_req *req,
               struct api_resp *resp)
{
    const char *key = api_req_query(req, "experiment");
    const char *unit = api_req_query(req, "unit");
    if (key == NULL || *key == '\0') {
        api_reply_error(resp, 400, "invalid",
                        "query parameter \"experiment\" is required");
        return;
    }
    if (unit == NULL || *unit == '\0') {
        api_reply_error(resp, 400, "invalid",
                        "query parameter \"unit\" is required");
        return;
    }
    size_t unit_len = strlen(unit);
    if (!unit_ok(unit, unit_len)) {
        api_reply_error(resp, 400, "invalid",
                        "unit: must be 1 to %d bytes of UTF-8", CORE_UNIT_MAX);
        return;
    }
    struct core_attr attrs[API_MAX_QUERY];
    size_t n_attrs = 0;
    for (size_t i = 0; i < req->n_query; i++) {
        const char *k = req->query[i].key;
        if (strcmp(k, "experiment") == 0 || strcmp(k, "unit") == 0)
            continue;
        attrs[n_attrs].key = k;
        attrs[n_attrs].value = req->query[i].value;
        n_attrs++;
    }
    struct snapshot *s;
    size_t idx;
    if (api_snapshot_experiment(ctx, key, resp, &s, &idx) == NULL)
        return;
    struct answer ans;
    assign_one(ctx->app, s, idx, unit, unit_len, attrs, n_attrs, &ans);
    /* Format on the stack, then allocate the exact size: a 2 KiB block is
     * past glibc's per-thread cache (tcache, blocks up to 1032 bytes) and
     * took the slower arena path on every request. */
    char tmp[ANSWER_MAX];
    size_t len = (size_t)format_answer(tmp, sizeof(tmp), &ans);
    app_snapshot_release(s);
    char *buf = ab_xmalloc(len + 1);
    memcpy(buf, tmp, len + 1);
    api_reply_raw(resp, 200, "application/json", buf, len);
}

/* Attribute values: strings as they are, numbers and booleans in their
 * JSON text; anything else is refused. Writes into store (one slot per
 * attribute). */
static bool
attr_value(json_t *v, char *slot, size_t n)
{
    if (json_is_string(v)) {
        if (json_string_length(v) >= n)
            return false;
        memcpy(slot, json_string_value(v), json_string_length(v) + 1);
        return strlen(slot) == json_string_length(v); /* no NUL inside */
    }
    if (json_is_integer(v)) {
        snprintf(slot, n, "%lld", (long long)json_integer_value(v));
        return true;
    }
    if (json_is_real(v)) {
        snprintf(slot, n, "%.17g", json_real_value(v));
        return true;
    }
    if (json_is_boolean(v)) {
        snprintf(slot, n, "%s", json_is_true(v) ? "true" : "false");
        return true;
    }
    return false;
}

#define ATTR_MAX 64
#define ATTR_VALUE_MAX 256

/* Validates the optional "attributes" object into attrs[ATTR_MAX] (the
 * values live in thread-local storage until the next call); replies 400
 * and returns false when it is not an object of scalars. */
static bool
read_attributes(json_t *ja, struct core_attr *attrs, size_t *n_attrs,
                struct api_resp *resp)
{
    static _Thread_local char values[ATTR_MAX][ATTR_VALUE_MAX];
    const char *k;
    json_t *jv;
    size_t n = 0;
    if (ja && !json_is_object(ja) && !json_is_null(ja)) {
        api_reply_error(resp, 400, "invalid", "attributes: must be an object");
        return false;
    }
    if (json_object_size(ja) > ATTR_MAX) {
        api_reply_error(resp, 400, "invalid",
                        "attributes: at most %d attributes", ATTR_MAX);
        return false;
    }
    json_object_foreach(ja, k, jv) {
        if (!attr_value(jv, values[n], ATTR_VALUE_MAX)) {
            api_reply_error(resp, 400, "invalid",
                            "attributes.%s: must be a string (under %d "
                            "bytes), number or boolean",
                            strlen(k) < 64 ? k : "(long name)", ATTR_VALUE_MAX);
            return false;
        }
        attrs[n].key = k;
        attrs[n].value = values[n];
        n++;
    }
    *n_attrs = n;
    return true;
}

void
api_assign_post(struct api_ctx *ctx, const struct api_req *req,
                struct api_resp *resp)
{
    json_t *doc = req->json, *jv;
    const char *k;
    if (!json_is_object(doc)) {
        api_reply_error(resp, 400, "invalid", "body must be a JSON object");
        return;
    }
    json_object_foreach(doc, k, jv) {
        if (strcmp(k, "unit") && strcmp(k, "attributes") &&
            strcmp(k, "experiments")) {
            api_reply_error(resp, 400, "invalid", "%s: unknown field",
                            strlen(k) < 64 ? k : "(long name)");
            return;
        }
    }
    json_t *ju = json_object_get(doc, "unit");
    if (!json_is_string(ju)) {
        api_reply_error(resp, 400, "invalid", "unit: must be a string");
        return;
    }
    const char *unit = json_string_value(ju);
    size_t unit_len = json_string_length(ju);
    if (!unit_ok(unit, unit_len) || strlen(unit) != unit_len) {
        api_reply_error(resp, 400, "invalid",
                        "unit: must be 1 to %d bytes of UTF-8", CORE_UNIT_MAX);
        return;
    }
    struct core_attr attrs[ATTR_MAX];
    size_t n_attrs = 0;
    if (!read_attributes(json_object_get(doc, "attributes"), attrs, &n_attrs,
                         resp))
        return;
    json_t *je = json_object_get(doc, "experiments");
    if (je && !json_is_array(je) && !json_is_null(je)) {
        api_reply_error(resp, 400, "invalid",
                        "experiments: must be an array of keys");
        return;
    }
    size_t i;
    json_array_foreach(je, i, jv) {
        if (!json_is_string(jv)) {
            api_reply_error(resp, 400, "invalid",
                            "experiments[%zu]: must be a string", i);
            return;
        }
    }

    struct snapshot *s = app_snapshot_get(ctx->app);
    size_t n_sel = je ? json_array_size(je) : s->n;
    size_t *sel = ab_xmalloc((n_sel ? n_sel : 1) * sizeof(*sel));
    size_t n = 0;
    if (je) {
        json_array_foreach(je, i, jv) {
            size_t idx;
            if (snapshot_find(s, json_string_value(jv), &idx) == NULL) {
                char key[2 * CORE_KEY_MAX + 8];
                api_json_escape(key, sizeof(key),
                       json_string_length(jv) > CORE_KEY_MAX
                           ? "(too long)"
                           : json_string_value(jv));
                free(sel);
                app_snapshot_release(s);
                api_reply_error(resp, 404, "not_found",
                                "experiments[%zu]: no experiment \"%s\"", i,
                                key);
                return;
            }
            sel[n++] = idx;
        }
    } else {
        /* every experiment that serves an arm: running ones, and the
         * concluded ones that serve their winner (promoted) or control
         * (rolled back) to every unit, so a service that relies on this
         * call keeps its model when a rollout ends */
        for (i = 0; i < s->n; i++)
            if (s->exps[i]->state == CORE_STATE_RUNNING ||
                s->exps[i]->state == CORE_STATE_PROMOTED ||
                s->exps[i]->state == CORE_STATE_ROLLED_BACK)
                sel[n++] = i;
    }
    /* {"unit":..., "assignments":[...]} */
    size_t cap = 64 + 2 * unit_len * 6 + (n + 1) * ANSWER_MAX, len = 0;
    char *buf = ab_xmalloc(cap);
    static const char head[] = "{\"unit\":\"", mid[] = "\",\"assignments\":[";
    memcpy(buf, head, sizeof(head) - 1);
    len = sizeof(head) - 1;
    len += api_json_escape(buf + len, cap - len, unit);
    memcpy(buf + len, mid, sizeof(mid) - 1);
    len += sizeof(mid) - 1;
    bool first = true;
    for (i = 0; i < n; i++) {
        struct answer ans;
        assign_one(ctx->app, s, sel[i], unit, unit_len, attrs, n_attrs, &ans);
        /* Without an explicit list, answer only the experiments the unit
         * is eligible for: in the experiment, forced, or served by a
         * concluded rollout. */
        if (!je && !ans.a.in_experiment &&
            strcmp(ans.a.reason, CORE_REASON_FORCED) != 0 &&
            strcmp(ans.a.reason, CORE_REASON_PROMOTED) != 0 &&
            strcmp(ans.a.reason, CORE_REASON_ROLLED_BACK) != 0)
            continue;
        if (!first)
            buf[len++] = ',';
        first = false;
        len += (size_t)format_answer(buf + len, cap - len, &ans);
    }
    memcpy(buf + len, "]}", 3);
    len += 2;
    free(sel);
    app_snapshot_release(s);
    api_reply_raw(resp, 200, "application/json", buf, len);
}
