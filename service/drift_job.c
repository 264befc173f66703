/* drift_job.c -- the drift watch on the decision leader (drift_job.h). */
#include "service/drift_job.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/experiment.h"
#include "lib/log.h"
#include "service/app.h"
#include "sql/db_drift.h"
#include "stats/drift.h"

/* Values per window read for a look (the earliest of the reference, the
 * newest of the current window). */
#define DRIFT_CAP 20000

struct watch {
    char key[CORE_KEY_MAX + 1], metric[CORE_KEY_MAX + 1];
    int64_t last_look_ms; /* leader thread only */
    bool seen;            /* a look made by this process */
    double psi, ks_d, ks_p;
    int64_t looks;
    bool detected;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct watch *watches;
static size_t n_watches, cap_watches;

/* The watch of (key, metric), made on first use; call under lock. */
static struct watch *
watch_find(const char *key, const char *metric)
{
    for (size_t i = 0; i < n_watches; i++)
        if (strcmp(watches[i].key, key) == 0 &&
            strcmp(watches[i].metric, metric) == 0)
            return &watches[i];
    if (n_watches == cap_watches) {
        cap_watches = cap_watches ? 2 * cap_watches : 8;
        watches = ab_xrealloc(watches, cap_watches * sizeof(*watches));
    }
    struct watch *w = &watches[n_watches++];
    memset(w, 0, sizeof(*w));
    snprintf(w->key, sizeof(w->key), "%s", key);
    snprintf(w->metric, sizeof(w->metric), "%s", metric);
    return w;
}

static bool
str_is(json_t *v, const char *s)
{
    return json_is_string(v) && strcmp(json_string_value(v), s) == 0;
}

/* Numbers of a JSON array into a new array; *n its length. */
static double *
numbers(json_t *arr, size_t *n)
{
    size_t len = json_array_size(arr);
    double *v = ab_xmalloc((len ? len : 1) * sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        json_t *x = json_array_get(arr, i);
        if (json_is_number(x))
            v[k++] = json_number_value(x);
    }
    *n = k;
    return v;
}

static json_t *
shares_json(const double *x, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_real(x[i]));
    return a;
}

static json_t *
result_json(const struct core_drift *cfg, const struct stats_drift_result *r,
            size_t n_ref, size_t n_cur, int64_t look, json_t *cur)
{
    json_t *edges = json_array();
    for (size_t i = 0; i + 1 < r->bins; i++)
        json_array_append_new(edges, json_real(r->edges[i]));
    return json_pack(
        "{s:f,s:f,s:f,s:f,s:f,s:b,s:I,s:I,s:I,s:I,s:o,s:o,s:o,s:O,s:s}",
        "psi", r->psi, "ks_d", r->ks_d, "ks_p", r->ks_p, "alpha",
        cfg->alpha, "alpha_look", r->alpha_look, "drift", r->drift, "look",
        (json_int_t)look, "bins", (json_int_t)r->bins, "reference_values",
        (json_int_t)n_ref, "current_values", (json_int_t)n_cur, "edges",
        edges, "reference_share", shares_json(r->ref_share, r->bins),
        "current_share", shares_json(r->cur_share, r->bins), "current_from_ms",
        json_object_get(cur, "from_ms"), "method",
        "PSI on reference-quantile bins; two-sample KS, look k at alpha "
        "6/(pi^2 k^2)");
}

/* One look at (e, metric m); nothing when the reference is incomplete or
 * no value came in since the last look. */
static void
look(struct db *db, const struct core_experiment *e,
     const struct core_metric *m, struct watch *w)
{
    const struct core_drift *cfg = &m->drift;
    char *text = NULL;
    if (db_drift_reference_json(db, e->id, m->name, cfg->reference_s,
                                cfg->min_values, DRIFT_CAP, &text) != AB_OK)
        return;
    json_t *st = json_loads(text, 0, NULL);
    free(text);
    json_t *cur = NULL;
    if (!json_is_object(st) ||
        !str_is(json_object_get(st, "state"), "ready") ||
        db_drift_current_json(db, e->id, m->name, cfg->window_s, DRIFT_CAP,
                              &text) != AB_OK)
        goto done;
    cur = json_loads(text, 0, NULL);
    free(text);
    json_t *newest = json_object_get(cur, "newest_ms");
    json_t *seen = json_object_get(st, "last_seen_ms");
    size_t n_ref, n_cur;
    if (!json_is_number(newest) ||
        (json_is_number(seen) &&
         json_number_value(seen) >= json_number_value(newest)))
        goto done;
    double *ref = numbers(json_object_get(st, "reference"), &n_ref);
    double *now = numbers(json_object_get(cur, "values"), &n_cur);
    int64_t k = (int64_t)json_number_value(json_object_get(st, "looks")) + 1;
    struct stats_drift_opts o = {cfg->bins, cfg->alpha, (uint64_t)k};
    struct stats_drift_result r;
    if (n_cur >= (size_t)cfg->min_values &&
        stats_drift_compare(ref, n_ref, now, n_cur, &o, &r) == AB_OK) {
        json_t *res = result_json(cfg, &r, n_ref, n_cur, k, cur);
        char *rt = json_dumps(res, JSON_COMPACT);
        json_decref(res);
        bool was = json_is_true(json_object_get(st, "flagged"));
        if (db_drift_save(db, e->id, m->name, k,
                          (int64_t)json_number_value(newest), r.drift,
                          rt) == AB_OK) {
            pthread_mutex_lock(&lock);
            w->seen = true;
            w->psi = r.psi;
            w->ks_d = r.ks_d;
            w->ks_p = r.ks_p;
            w->looks = k;
            w->detected = was || r.drift;
            pthread_mutex_unlock(&lock);
            if (r.drift && !was)
                log_msg(LOG_WARN, "drift detected", "experiment", e->key,
                        "metric", m->name, NULL);
        }
        free(rt);
    }
    free(ref);
    free(now);
done:
    json_decref(cur);
    json_decref(st);
}

void
drift_job_tick(void *arg, struct db *db, int64_t now_ms)
{
    struct app *app = arg;
    struct snapshot *s = app_snapshot_get(app);
    for (size_t i = 0; i < s->n; i++) {
        const struct core_experiment *e = s->exps[i];
        if (e->state == CORE_STATE_DRAFT)
            continue;
        for (size_t mi = 0; mi < e->n_metrics; mi++) {
            const struct core_metric *m = &e->metrics[mi];
            if (!m->drift.on)
                continue;
            pthread_mutex_lock(&lock);
            struct watch *w = watch_find(e->key, m->name);
            bool due = now_ms - w->last_look_ms >= m->drift.interval_s * 1000;
            if (due)
                w->last_look_ms = now_ms;
            pthread_mutex_unlock(&lock);
            if (due)
                look(db, e, m, w);
        }
    }
    app_snapshot_release(s);
}

json_t *
drift_results_json(struct db *db, const struct core_experiment *e)
{
    json_t *out = json_array();
    bool any = false;
    for (size_t i = 0; i < e->n_metrics; i++)
        any |= e->metrics[i].drift.on;
    if (!any)
        return out;
    char *text = NULL;
    json_t *rows = NULL;
    if (db_drift_results_json(db, e->key, &text) == AB_OK) {
        rows = json_loads(text, 0, NULL);
        free(text);
    }
    for (size_t i = 0; i < e->n_metrics; i++) {
        const struct core_metric *m = &e->metrics[i];
        if (!m->drift.on)
            continue;
        json_t *row = NULL, *r;
        size_t k;
        json_array_foreach(rows, k, r) {
            if (str_is(json_object_get(r, "metric"), m->name))
                row = r;
        }
        json_t *o = row ? json_deep_copy(row)
                        : json_pack("{s:s,s:I,s:b}", "metric", m->name,
                                    "looks", (json_int_t)0, "flagged", 0);
        const char *status =
            row == NULL ? "collecting_reference"
            : json_is_true(json_object_get(row, "flagged")) ? "drift"
                                                            : "watching";
        json_object_set_new(o, "status", json_string(status));
        json_object_set_new(o, "alpha", json_real(m->drift.alpha));
        json_array_append_new(out, o);
    }
    json_decref(rows);
    return out;
}

/* A gauge line, or nothing when it does not fit. */
static void
gauge(char **p, size_t *n, size_t *cap, const char *name, const char *key,
      const char *metric, double v)
{
    char line[512];
    int len = snprintf(line, sizeof(line),
                       "%s{experiment=\"%s\",metric=\"%s\"} %.17g\n", name,
                       key, metric, v);
    if (len < 0 || (size_t)len >= sizeof(line))
        return;
    if (*n + (size_t)len + 1 > *cap) {
        *cap = 2 * *cap + (size_t)len;
        *p = ab_xrealloc(*p, *cap);
    }
    memcpy(*p + *n, line, (size_t)len + 1);
    *n += (size_t)len;
}

static void
header(char **p, size_t *n, size_t *cap, const char *name, const char *help)
{
    size_t need = 2 * strlen(name) + strlen(help) + 32;
    if (*n + need + 1 > *cap) {
        *cap = 2 * *cap + need;
        *p = ab_xrealloc(*p, *cap);
    }
    *n += (size_t)snprintf(*p + *n, *cap - *n,
                           "# HELP %s %s\n# TYPE %s gauge\n", name, help,
                           name);
}

/* arbiter_drift_detected: every declared watch of a non-draft experiment
 * from the start (0; the leader's says 1 once found); the others: the
 * watches this process looked at. Keys are [A-Za-z0-9_.-]. */
void
drift_metrics_render(const struct core_experiment *const *exps, size_t n_exps,
                     char **out, size_t *len)
{
    static const struct {
        const char *name, *help;
    } g[] = {
        {"arbiter_drift_psi", "Population stability index of the current "
                              "window against the reference (last look)"},
        {"arbiter_drift_ks_statistic", "Two-sample Kolmogorov-Smirnov "
                                       "statistic (last look)"},
        {"arbiter_drift_ks_p_value", "Asymptotic KS p-value of the last look "
                                     "(compare with alpha 6/(pi^2 k^2))"},
        {"arbiter_drift_looks", "Looks of the sequential drift test"},
    };
    size_t cap = 1024, n = 0;
    char *p = ab_xmalloc(cap);
    p[0] = '\0';
    pthread_mutex_lock(&lock);
    header(&p, &n, &cap, "arbiter_drift_detected",
           "1 once the sequential test found drift (latched; a stationary "
           "stream is flagged with probability at most alpha)");
    for (size_t i = 0; i < n_exps; i++) {
        const struct core_experiment *e = exps[i];
        for (size_t m = 0; e->state != CORE_STATE_DRAFT && m < e->n_metrics;
             m++) {
            if (!e->metrics[m].drift.on)
                continue;
            const struct watch *w = NULL;
            for (size_t k = 0; k < n_watches && !w; k++)
                if (strcmp(watches[k].key, e->key) == 0 &&
                    strcmp(watches[k].metric, e->metrics[m].name) == 0)
                    w = &watches[k];
            gauge(&p, &n, &cap, "arbiter_drift_detected", e->key,
                  e->metrics[m].name, w && w->seen && w->detected);
        }
    }
    for (size_t k = 0; k < AB_ARRAY_LEN(g); k++) {
        header(&p, &n, &cap, g[k].name, g[k].help);
        for (size_t i = 0; i < n_watches; i++) {
            const struct watch *w = &watches[i];
            if (!w->seen)
                continue;
            double v = k == 0   ? w->psi
                       : k == 1 ? w->ks_d
                       : k == 2 ? w->ks_p
                                : (double)w->looks;
            gauge(&p, &n, &cap, g[k].name, w->key, w->metric, v);
        }
    }
    pthread_mutex_unlock(&lock);
    *out = p;
    *len = n;
}
