/* metrics.c -- Prometheus registry and text rendering (see metrics.h).
 * Exposition format: prometheus.io/docs/instrumenting/exposition_formats.
 */
#include "lib/metrics.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/status.h"
#include "lib/strbuf.h"

/* Status codes we answer with; anything else is counted as "other". */
static const int statuses[] = {200, 201, 202, 204, 400, 401, 403, 404,
                               405, 409, 413, 415, 422, 429, 500, 503};
#define N_STATUS (AB_ARRAY_LEN(statuses) + 1)

/* Latency buckets in seconds (upper bounds; +Inf is implicit). */
static const double buckets[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                 0.0025,  0.005,  0.01,    0.025,  0.05,
                                 0.1,     0.25,   0.5,     1.0,    2.5};
#define N_BUCKET (AB_ARRAY_LEN(buckets))

struct series {
    _Atomic uint64_t count;
    _Atomic uint64_t sum_ns;
    _Atomic uint64_t bucket[N_BUCKET];
};

static struct series *http; /* [(n_routes + 1) * N_STATUS] */
static size_t n_route_slots;
static const char *const *route_patterns; /* borrowed, [n_route_slots - 1] */
static const char *const *route_methods;

/* Assignment counters live for the life of the process, in a list (kept in
 * creation order for rendering) and a hash table on (experiment, arm) that
 * makes metrics_assign_counter O(1): a snapshot of n experiments once
 * scanned the whole list per arm, O(n^2) per reload (issue 14). */
struct assign_counter {
    char *experiment, *arm; /* arm NULL: the experiment's own label set */
    uint64_t hash;
    bool folded; /* over the label-set limit: counted in "other" */
    _Atomic uint64_t count;
    struct assign_counter *next;  /* creation order */
    struct assign_counter *chain; /* hash bucket */
};
static struct assign_counter *assign_head, **assign_tail = &assign_head;
static struct assign_counter **assign_table; /* [assign_cap] */
static size_t assign_n, assign_cap;
static pthread_mutex_t assign_lock = PTHREAD_MUTEX_INITIALIZER;

/* The label-set limit (issue 14): at most label_limit label sets with an
 * experiment's name (0: no limit) -- one per experiment for its rollout
 * series, one per (experiment, arm) for arbiter_assignments_total. Those
 * past it are folded: their assignments go to the series labelled
 * experiment="other",arm="other", and each folded label set is counted
 * once in arbiter_metrics_label_sets_dropped_total. */
static size_t label_limit, labels_admitted, labels_dropped;
static _Atomic uint64_t other_count;

struct registered {
    const char *name, *help;
    enum metrics_type type;
    _Atomic int64_t *value;
};
static struct registered registry[64];
static size_t n_registry;

void
metrics_init(size_t n_routes, const char *const *patterns,
             const char *const *methods)
{
    n_route_slots = n_routes + 1;
    route_patterns = patterns;
    route_methods = methods;
    http = ab_xcalloc(n_route_slots * N_STATUS, sizeof(*http));
}

void
metrics_free(void)
{
    free(http);
    http = NULL;
    struct assign_counter *c = assign_head, *next;
    for (; c; c = next) {
        next = c->next;
        free(c->experiment);
        free(c->arm);
        free(c);
    }
    assign_head = NULL;
    assign_tail = &assign_head;
    free(assign_table);
    assign_table = NULL;
    assign_n = assign_cap = 0;
    label_limit = labels_admitted = labels_dropped = 0;
    atomic_store(&other_count, 0);
    n_registry = 0;
}

static size_t
status_slot(int status)
{
    for (size_t i = 0; i < AB_ARRAY_LEN(statuses); i++)
        if (statuses[i] == status)
            return i;
    return N_STATUS - 1;
}

void
metrics_observe_request(size_t route, int status, uint64_t nanos)
{
    if (http == NULL || route >= n_route_slots)
        return;
    struct series *s = &http[route * N_STATUS + status_slot(status)];
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum_ns, nanos, memory_order_relaxed);
    double secs = (double)nanos / 1e9;
    for (size_t b = 0; b < N_BUCKET; b++)
        if (secs <= buckets[b]) {
            atomic_fetch_add_explicit(&s->bucket[b], 1, memory_order_relaxed);
            break;
        }
}

/* FNV-1a 64 over experiment, a 0 byte, arm (keys hold no NUL); an
 * experiment's own label set (arm NULL) hashes a 1 byte instead. */
static uint64_t
counter_hash(const char *experiment, const char *arm)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)experiment; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    h = (h ^ (arm ? 0u : 1u)) * 0x100000001b3ULL;
    for (const unsigned char *p = (const unsigned char *)(arm ? arm : "");
         *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    return h;
}

static bool
same_arm(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

static void
table_grow(void)
{
    size_t cap = assign_cap ? assign_cap * 2 : 256;
    struct assign_counter **t = ab_xcalloc(cap, sizeof(*t));
    for (struct assign_counter *c = assign_head; c; c = c->next) {
        size_t b = c->hash & (cap - 1);
        c->chain = t[b];
        t[b] = c;
    }
    free(assign_table);
    assign_table = t;
    assign_cap = cap;
}

/* The entry of (experiment, arm), made when new (admitted or folded by
 * the limit); assign_lock is held. */
static struct assign_counter *
label_set(const char *experiment, const char *arm)
{
    uint64_t h = counter_hash(experiment, arm);
    struct assign_counter *c = NULL;
    if (assign_cap)
        for (c = assign_table[h & (assign_cap - 1)]; c; c = c->chain)
            if (c->hash == h && strcmp(c->experiment, experiment) == 0 &&
                same_arm(c->arm, arm))
                break;
    if (c == NULL) {
        if (assign_n + 1 > assign_cap / 2) /* load factor <= 1/2 */
            table_grow();
        c = ab_xcalloc(1, sizeof(*c));
        c->experiment = ab_xstrdup(experiment);
        c->arm = arm ? ab_xstrdup(arm) : NULL;
        c->hash = h;
        c->folded = label_limit > 0 && labels_admitted >= label_limit;
        if (c->folded)
            labels_dropped++;
        else
            labels_admitted++;
        *assign_tail = c;
        assign_tail = &c->next;
        size_t b = h & (assign_cap - 1);
        c->chain = assign_table[b];
        assign_table[b] = c;
        assign_n++;
    }
    return c;
}

_Atomic uint64_t *
metrics_assign_counter(const char *experiment, const char *arm)
{
    pthread_mutex_lock(&assign_lock);
    struct assign_counter *c = label_set(experiment, arm);
    _Atomic uint64_t *count = c->folded ? &other_count : &c->count;
    pthread_mutex_unlock(&assign_lock);
    return count;
}

bool
metrics_experiment_labelled(const char *experiment)
{
    pthread_mutex_lock(&assign_lock);
    bool labelled = !label_set(experiment, NULL)->folded;
    pthread_mutex_unlock(&assign_lock);
    return labelled;
}

void
metrics_set_label_limit(size_t max_label_sets)
{
    pthread_mutex_lock(&assign_lock);
    label_limit = max_label_sets;
    pthread_mutex_unlock(&assign_lock);
}

void
metrics_register(const char *name, const char *help, enum metrics_type type,
                 _Atomic int64_t *value)
{
    if (n_registry == AB_ARRAY_LEN(registry))
        return;
    registry[n_registry++] = (struct registered){name, help, type, value};
}

/* ---- rendering ---------------------------------------------------------- */

/* Label values escape \, " and newline (exposition format). */
static void
put_label(struct strbuf *o, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            strbuf_printf(o, "\\%c", *s);
        else if (*s == '\n')
            strbuf_printf(o, "\\n");
        else
            strbuf_printf(o, "%c", *s);
    }
}

static const char *
route_name(size_t r)
{
    return r + 1 < n_route_slots ? route_patterns[r] : "unmatched";
}

static const char *
route_method(size_t r)
{
    return r + 1 < n_route_slots ? route_methods[r] : "any";
}

static void
status_text(size_t slot, char *buf, size_t len)
{
    if (slot < AB_ARRAY_LEN(statuses))
        snprintf(buf, len, "%d", statuses[slot]);
    else
        snprintf(buf, len, "other");
}

/* One HTTP series (route, method, status) with a count: its label text
 * ('labels', without braces) and the series itself. */
typedef void http_row_fn(struct strbuf *o, const struct series *x, uint64_t c,
                         const char *labels);

static void
count_row(struct strbuf *o, const struct series *x, uint64_t c,
          const char *labels)
{
    (void)x;
    strbuf_printf(o, "arbiter_http_requests_total{%s} %llu\n", labels,
                  (unsigned long long)c);
}

static void
duration_rows(struct strbuf *o, const struct series *x, uint64_t c,
              const char *labels)
{
    uint64_t cum = 0;
    for (size_t b = 0; b < N_BUCKET; b++) {
        cum += atomic_load_explicit(&x->bucket[b], memory_order_relaxed);
        strbuf_printf(o,
                      "arbiter_http_request_duration_seconds_bucket{%s,"
                      "le=\"%g\"} %llu\n",
                      labels, buckets[b], (unsigned long long)cum);
    }
    /* +Inf equals the count (a request slower than every bucket is only
     * in +Inf); count was read before the buckets. */
    if (c < cum)
        c = cum;
    double sum_s = (double)atomic_load_explicit(&x->sum_ns,
                                                memory_order_relaxed) /
                   1e9;
    strbuf_printf(o,
                  "arbiter_http_request_duration_seconds_bucket{%s,"
                  "le=\"+Inf\"} %llu\n"
                  "arbiter_http_request_duration_seconds_sum{%s} %.9f\n"
                  "arbiter_http_request_duration_seconds_count{%s} %llu\n",
                  labels, (unsigned long long)c, labels, sum_s, labels,
                  (unsigned long long)c);
}

/* Every (route, status) series with a request, in table order. */
static void
http_family(struct strbuf *o, const char *head, http_row_fn *row)
{
    char st[16], labels[512];
    strbuf_printf(o, "%s", head);
    for (size_t r = 0; r < n_route_slots; r++)
        for (size_t s = 0; s < N_STATUS; s++) {
            const struct series *x = &http[r * N_STATUS + s];
            uint64_t c = atomic_load_explicit(&x->count, memory_order_relaxed);
            if (c == 0)
                continue;
            status_text(s, st, sizeof(st));
            snprintf(labels, sizeof(labels),
                     "route=\"%s\",method=\"%s\",status=\"%s\"",
                     route_name(r), route_method(r), st);
            row(o, x, c, labels);
        }
}

void
metrics_render(char **out_p, size_t *len)
{
    struct strbuf o;
    strbuf_init(&o, 16384);

    http_family(&o,
                "# HELP arbiter_http_requests_total HTTP requests answered, "
                "by route, method and status.\n"
                "# TYPE arbiter_http_requests_total counter\n",
                count_row);
    http_family(&o,
                "# HELP arbiter_http_request_duration_seconds Time from the "
                "request's arrival to its answer, by route and status.\n"
                "# TYPE arbiter_http_request_duration_seconds histogram\n",
                duration_rows);

    strbuf_printf(&o,
                  "# HELP arbiter_assignments_total Assignments answered, by "
                  "experiment and arm.\n"
                  "# TYPE arbiter_assignments_total counter\n");
    pthread_mutex_lock(&assign_lock);
    for (struct assign_counter *c = assign_head; c; c = c->next) {
        if (c->folded || c->arm == NULL)
            continue;
        strbuf_printf(&o, "arbiter_assignments_total{experiment=\"");
        put_label(&o, c->experiment);
        strbuf_printf(&o, "\",arm=\"");
        put_label(&o, c->arm);
        strbuf_printf(&o, "\"} %llu\n",
                      (unsigned long long)atomic_load_explicit(
                          &c->count, memory_order_relaxed));
    }
    if (labels_dropped > 0)
        strbuf_printf(&o,
                      "arbiter_assignments_total{experiment=\"other\","
                      "arm=\"other\"} %llu\n",
                      (unsigned long long)atomic_load_explicit(
                          &other_count, memory_order_relaxed));
    strbuf_printf(
        &o,
        "# HELP arbiter_metrics_label_sets Label sets naming an "
        "experiment (one per experiment, one per experiment and arm) "
        "rendered with their own labels.\n"
        "# TYPE arbiter_metrics_label_sets gauge\n"
        "arbiter_metrics_label_sets %zu\n"
        "# HELP arbiter_metrics_label_sets_limit The most label sets "
        "naming an experiment (0: no limit); past it they are folded "
        "into experiment=\"other\".\n"
        "# TYPE arbiter_metrics_label_sets_limit gauge\n"
        "arbiter_metrics_label_sets_limit %zu\n"
        "# HELP arbiter_metrics_label_sets_dropped_total Label sets "
        "folded into experiment=\"other\" by the limit.\n"
        "# TYPE arbiter_metrics_label_sets_dropped_total counter\n"
        "arbiter_metrics_label_sets_dropped_total %zu\n",
        labels_admitted, label_limit, labels_dropped);
    pthread_mutex_unlock(&assign_lock);

    for (size_t i = 0; i < n_registry; i++) {
        struct registered *m = &registry[i];
        if (m->type == METRICS_GAUGE_MILLI) {
            long long v =
                atomic_load_explicit(m->value, memory_order_relaxed);
            strbuf_printf(&o,
                          "# HELP %s %s\n# TYPE %s gauge\n%s %s%lld.%03lld\n",
                          m->name, m->help, m->name, m->name,
                          v < 0 ? "-" : "", llabs(v) / 1000, llabs(v) % 1000);
            continue;
        }
        strbuf_printf(&o, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", m->name,
                      m->help, m->name,
                      m->type == METRICS_COUNTER ? "counter" : "gauge",
                      m->name,
                      (long long)atomic_load_explicit(m->value,
                                                      memory_order_relaxed));
    }
    *out_p = o.p;
    *len = o.len;
}
