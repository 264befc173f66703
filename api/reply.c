/* reply.c -- building responses; the one error shape lives here:
 *   {"error":{"code":"not_found","message":"no experiment \"exp-42\""}}
 * code is a stable word, message is short, lowercase, no trailing period.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "lib/json_text.h"
#include "lib/utf8.h"

void
api_reply_raw(struct api_resp *resp, int status, const char *ctype,
              char *body, size_t len)
{
    free(resp->body);
    resp->status = status;
    resp->content_type = ctype;
    resp->body = body;
    resp->body_len = len;
}

void
api_reply_json(struct api_resp *resp, int status, json_t *body)
{
    /* reals with the shortest digits that read back equal: a user's 0.05
     * comes back as 0.05 (lib/json_text.h) */
    char *text = ab_json_text(body, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(body);
    if (text == NULL) /* only on out-of-memory */
        text = ab_xstrdup("{}");
    api_reply_raw(resp, status, "application/json", text, strlen(text));
}

/* Messages may quote what the caller sent; jansson refuses strings that
 * are not UTF-8 (json_pack would fail and the caller would get "{}"), so
 * every invalid byte becomes '?' (lib/utf8.h). A truncated last character
 * too. */
static void
utf8_sanitize(char *s)
{
    unsigned char *p = (unsigned char *)s, *end = p + strlen(s);
    while (p < end) {
        size_t n = ab_utf8_len(p, end);
        if (n == 0) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

__attribute__((format(printf, 4, 0))) static void
reply_error_v(struct api_resp *resp, int status, const char *code,
              const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap); /* truncation is acceptable */
    utf8_sanitize(msg);
    api_reply_json(resp, status,
                   json_pack("{s:{s:s,s:s}}", "error", "code", code,
                             "message", msg));
}

void
api_reply_error(struct api_resp *resp, int status, const char *code,
                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reply_error_v(resp, status, code, fmt, ap);
    va_end(ap);
}

void
api_reply_status(struct api_resp *resp, ab_status rc, const char *fmt, ...)
{
    int status;
    switch (rc) {
    case AB_EINVAL: status = 400; break;
    case AB_ENOTFOUND: status = 404; break;
    case AB_ECONFLICT: status = 409; break;
    case AB_ETOOBIG: status = 413; break;
    case AB_ENUMERIC: status = 422; break;
    case AB_EDB:
    case AB_EBUSY: status = 503; break;
    default: status = 500; break;
    }
    if (status == 503)
        api_reply_header(resp, "Retry-After", "1");
    va_list ap;
    va_start(ap, fmt);
    reply_error_v(resp, status, ab_status_name(rc), fmt, ap);
    va_end(ap);
}

void
api_reply_header(struct api_resp *resp, const char *key, const char *value)
{
    if (resp->n_headers == API_MAX_HEADERS)
        return;
    resp->headers[resp->n_headers].key = key;
    resp->headers[resp->n_headers].value = ab_xstrdup(value);
    resp->n_headers++;
}

const char *
api_req_query(const struct api_req *req, const char *key)
{
    for (size_t i = 0; i < req->n_query; i++)
        if (strcmp(req->query[i].key, key) == 0)
            return req->query[i].value;
    return NULL;
}

size_t
api_json_escape(char *out, size_t n, const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (w + 7 >= n)
            break;
        if (*p == '"' || *p == '\\') {
            out[w++] = '\\';
            out[w++] = (char)*p;
        } else if (*p < 0x20) {
            w += (size_t)snprintf(out + w, n - w, "\\u%04x", *p);
        } else
            out[w++] = (char)*p;
    }
    out[w] = '\0';
    return w;
}

/* Depth of JSON nesting outside strings; a cheap pre-check so a hostile
 * body cannot make the parser recurse deeply. */
size_t
api_json_depth(const char *s, size_t n)
{
    size_t depth = 0, max = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (in_str) {
            if (esc)
                esc = false;
            else if (ch == '\\')
                esc = true;
            else if (ch == '"')
                in_str = false;
            continue;
        }
        if (ch == '"')
            in_str = true;
        else if (ch == '[' || ch == '{') {
            if (++depth > max)
                max = depth;
        } else if ((ch == ']' || ch == '}') && depth > 0)
            depth--;
    }
    return max;
}

/* An optional body of string fields (see api.h). */
bool
api_body_strings(const struct api_req *req, struct api_resp *resp,
                 const char *const *allowed, char values[][API_STRING_MAX],
                 size_t n)
{
    for (size_t i = 0; i < n; i++)
        values[i][0] = '\0';
    size_t i = 0;
    while (i < req->body_len && strchr(" \t\r\n", req->body[i]))
        i++;
    if (i == req->body_len)
        return true;
    json_error_t jerr;
    json_t *doc = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES,
                             &jerr);
    if (!json_is_object(doc)) {
        json_decref(doc);
        api_reply_error(resp, 400, "invalid_json",
                        "body must be a JSON object");
        return false;
    }
    const char *k;
    json_t *v;
    json_object_foreach(doc, k, v) {
        size_t f = 0;
        while (f < n && strcmp(k, allowed[f]) != 0)
            f++;
        if (f == n) {
            api_reply_error(resp, 400, "invalid", "%s: unknown field",
                            strlen(k) < 64 ? k : "(long name)");
            json_decref(doc);
            return false;
        }
        if (!json_is_string(v) || json_string_length(v) >= API_STRING_MAX) {
            api_reply_error(resp, 400, "invalid",
                            "%s: must be a string under %d bytes", k,
                            API_STRING_MAX);
            json_decref(doc);
            return false;
        }
        snprintf(values[f], API_STRING_MAX, "%s", json_string_value(v));
    }
    json_decref(doc);
    return true;
}
