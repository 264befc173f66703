/* report_html.c -- the deployment report page (see report_html.h).
 *
 * Layout: summary, model lifecycle moves, charts, per-metric results of
 * the last analysis (effect with its always-valid interval, the running
 * p-value, the verdict), the timeline of traffic shares, and every decision
 * with the evidence it was taken on.
 *
 * Charts (inline SVG, drawn here, one generic line chart):
 *   effect_<metric>_<arm>   the effect of the arm against control with its
 *                           confidence sequence (running intersection) as a
 *                           band, one point per analysis tick
 *   traffic                 each arm's share of traffic, a step function of
 *                           the weights history
 *   metric_<metric>         each arm's mean per active unit in time buckets
 *                           (error rate, latency, ...)
 */
#include "codec/report_html.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a growable buffer ----------------------------------------------------- */

struct buf {
    char *p;
    size_t len, cap;
};

static void
put(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = ab_xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void
puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3)))
putf(struct buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        put(b, small, (size_t)n);
        return;
    }
    char *big = ab_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    put(b, big, (size_t)n);
    free(big);
}

/* HTML text and attribute values. */
static void
esc(struct buf *b, const char *s)
{
    if (s == NULL)
        return;
    for (const char *p = s; *p; p++) {
        switch (*p) {
        case '<': puts_(b, "&lt;"); break;
        case '>': puts_(b, "&gt;"); break;
        case '&': puts_(b, "&amp;"); break;
        case '"': puts_(b, "&quot;"); break;
        case '\'': puts_(b, "&#39;"); break;
        default: put(b, p, 1);
        }
    }
}

static const char *
str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* One text cell of a row: o's member k, escaped, then the next cell
 * opens. */
static void
td(struct buf *b, json_t *o, const char *k)
{
    esc(b, str(o, k));
    puts_(b, "</td><td>");
}

/* A row opened by o's integer member k in its first cell. */
static void
row_id(struct buf *b, json_t *o, const char *k)
{
    putf(b, "<tr><td>%lld</td><td>",
         (long long)json_integer_value(json_object_get(o, k)));
}

static double
num(json_t *v)
{
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* A class/id-safe fragment of a name. */
static void
slug(char *out, size_t n, const char *s)
{
    size_t j = 0;
    for (const char *p = s; *p && j + 1 < n; p++)
        out[j++] = ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_')
                       ? *p
                       : '_';
    out[j] = '\0';
}

/* ---- the line chart ----------------------------------------------------------- */

struct series {
    char name[160];
    size_t n, cap;
    double *x, *y, *lo, *hi; /* lo/hi: NAN when there is no band */
    bool step;               /* a step function (traffic shares) */
};

static void
series_add(struct series *s, double x, double y, double lo, double hi)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 32;
        s->x = ab_xrealloc(s->x, s->cap * sizeof(double));
        s->y = ab_xrealloc(s->y, s->cap * sizeof(double));
        s->lo = ab_xrealloc(s->lo, s->cap * sizeof(double));
        s->hi = ab_xrealloc(s->hi, s->cap * sizeof(double));
    }
    s->x[s->n] = x;
    s->y[s->n] = y;
    s->lo[s->n] = lo;
    s->hi[s->n] = hi;
    s->n++;
}

static void
series_free(struct series *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(s[i].x);
        free(s[i].y);
        free(s[i].lo);
        free(s[i].hi);
    }
    free(s);
}

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c",
                                      "#9467bd", "#ff7f0e", "#17becf",
                                      "#8c564b", "#e377c2"};

#define CH_W 720.0
#define CH_H 260.0
#define CH_ML 64.0
#define CH_MR 150.0
#define CH_MT 28.0
#define CH_MB 40.0

static void
fmt_num(char *out, size_t n, double v)
{
    double a = fabs(v);
    if (a != 0 && (a < 1e-3 || a >= 1e6))
        snprintf(out, n, "%.2e", v);
    else
        snprintf(out, n, "%.4g", v);
}

/* The plot area of a chart: the data ranges and the pixels they span. */
struct frame {
    double x0, x1, y0, y1, pw, ph;
};

/* Series i of a chart: its band or one-sided bound, its line, its points
 * and its legend entry. */
static void
draw_series(struct buf *b, const struct series *e, size_t i,
            const struct frame *f)
{
#define PX(v) (CH_ML + ((v) - f->x0) / (f->x1 - f->x0) * f->pw)
#define PY(v) (CH_MT + f->ph - ((v) - f->y0) / (f->y1 - f->y0) * f->ph)
    const char *col = palette[i % AB_ARRAY_LEN(palette)];
    /* the band: upper edge forward, lower edge back */
    size_t nb = 0;
    for (size_t k = 0; k < e->n; k++)
        nb += isfinite(e->lo[k]) && isfinite(e->hi[k]);
    if (nb > 1) {
        putf(b, "<polygon class=\"band\" fill=\"%s\" fill-opacity=\"0.18\""
                " stroke=\"none\" points=\"",
             col);
        for (size_t k = 0; k < e->n; k++)
            if (isfinite(e->lo[k]) && isfinite(e->hi[k]))
                putf(b, "%.1f,%.1f ", PX(e->x[k]), PY(e->hi[k]));
        for (size_t k = e->n; k-- > 0;)
            if (isfinite(e->lo[k]) && isfinite(e->hi[k]))
                putf(b, "%.1f,%.1f ", PX(e->x[k]), PY(e->lo[k]));
        puts_(b, "\"/>");
    }
    /* a one-sided sequence: its finite bound, dashed */
    for (int side = 0; side < 2 && nb <= 1; side++) {
        const double *bound = side ? e->hi : e->lo;
        size_t nf = 0;
        for (size_t k = 0; k < e->n; k++)
            nf += isfinite(bound[k]);
        if (nf == 0)
            continue;
        putf(b, "<polyline class=\"bound\" fill=\"none\" stroke=\"%s\""
                " stroke-dasharray=\"5 3\" points=\"",
             col);
        for (size_t k = 0; k < e->n; k++)
            if (isfinite(bound[k]))
                putf(b, "%.1f,%.1f ", PX(e->x[k]), PY(bound[k]));
        puts_(b, "\"/>");
    }
    putf(b, "<polyline class=\"line\" fill=\"none\" stroke=\"%s\""
            " stroke-width=\"2\" points=\"",
         col);
    double last_y = NAN;
    for (size_t k = 0; k < e->n; k++) {
        if (!isfinite(e->y[k]))
            continue;
        if (e->step && isfinite(last_y))
            putf(b, "%.1f,%.1f ", PX(e->x[k]), PY(last_y));
        putf(b, "%.1f,%.1f ", PX(e->x[k]), PY(e->y[k]));
        last_y = e->y[k];
    }
    puts_(b, "\"/>");
    if (!e->step)
        for (size_t k = 0; k < e->n; k++)
            if (isfinite(e->y[k]) && e->n <= 60)
                putf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\""
                        " fill=\"%s\"/>",
                     PX(e->x[k]), PY(e->y[k]), col);
    putf(b, "<rect x=\"%.0f\" y=\"%.0f\" width=\"10\" height=\"10\""
            " fill=\"%s\"/><text x=\"%.0f\" y=\"%.0f\">",
         CH_W - CH_MR + 10, CH_MT + 4 + 16.0 * (double)i, col,
         CH_W - CH_MR + 24, CH_MT + 13 + 16.0 * (double)i);
    esc(b, e->name);
    puts_(b, "</text>");
#undef PX
#undef PY
}

/* One chart. x values are epoch ms; they are labelled as time since t0. */
static void
chart(struct buf *b, const char *id, const char *title, const char *ylabel,
      const struct series *s, size_t ns, double t0, bool zero_line)
{
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    size_t points = 0;
    for (size_t i = 0; i < ns; i++)
        for (size_t k = 0; k < s[i].n; k++) {
            if (!isfinite(s[i].y[k]))
                continue;
            points++;
            x0 = fmin(x0, s[i].x[k]);
            x1 = fmax(x1, s[i].x[k]);
            y0 = fmin(y0, s[i].y[k]);
            y1 = fmax(y1, s[i].y[k]);
            if (isfinite(s[i].lo[k])) {
                y0 = fmin(y0, s[i].lo[k]);
                y1 = fmax(y1, s[i].lo[k]);
            }
            if (isfinite(s[i].hi[k])) {
                y0 = fmin(y0, s[i].hi[k]);
                y1 = fmax(y1, s[i].hi[k]);
            }
        }
    putf(b, "<figure><svg class=\"chart\" data-chart=\"");
    esc(b, id);
    putf(b, "\" data-points=\"%zu\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\""
            " height=\"%.0f\" xmlns=\"http://www.w3.org/2000/svg\""
            " role=\"img\"><title>",
         points, CH_W, CH_H, CH_W, CH_H);
    esc(b, title);
    puts_(b, "</title>");
    putf(b, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\""
            " fill=\"#fff\" stroke=\"#999\"/>",
         CH_ML, CH_MT, CH_W - CH_ML - CH_MR, CH_H - CH_MT - CH_MB);
    putf(b, "<text x=\"%.0f\" y=\"18\" class=\"t\">", CH_ML);
    esc(b, title);
    puts_(b, "</text>");
    if (points == 0) {
        putf(b, "<text x=\"%.0f\" y=\"%.0f\">no data yet</text></svg>"
                "</figure>",
             CH_ML + 10, CH_MT + 30);
        return;
    }
    if (zero_line) {
        y0 = fmin(y0, 0);
        y1 = fmax(y1, 0);
    }
    if (y1 - y0 < 1e-12) {
        double pad = fabs(y0) > 0 ? fabs(y0) * 0.1 : 1;
        y0 -= pad;
        y1 += pad;
    } else {
        double pad = (y1 - y0) * 0.06;
        y0 -= pad;
        y1 += pad;
    }
    if (x1 - x0 < 1)
        x1 = x0 + 1000;
    double pw = CH_W - CH_ML - CH_MR, ph = CH_H - CH_MT - CH_MB;
#define PX(v) (CH_ML + ((v) - x0) / (x1 - x0) * pw)
#define PY(v) (CH_MT + ph - ((v) - y0) / (y1 - y0) * ph)
    /* axes: 5 y ticks, 5 x ticks (time since the first event shown) */
    for (int k = 0; k <= 4; k++) {
        double v = y0 + (y1 - y0) * k / 4.0;
        char lab[32];
        fmt_num(lab, sizeof(lab), v);
        putf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\""
                " stroke=\"#eee\"/><text x=\"%.1f\" y=\"%.1f\""
                " text-anchor=\"end\">%s</text>",
             CH_ML, CH_ML + pw, PY(v), PY(v), CH_ML - 4, PY(v) + 4, lab);
        double t = x0 + (x1 - x0) * k / 4.0;
        double sec = (t - t0) / 1000.0;
        char tl[32];
        if ((x1 - x0) < 20000)
            snprintf(tl, sizeof(tl), "%.1fs", sec);
        else if (sec < 120)
            snprintf(tl, sizeof(tl), "%.0fs", sec);
        else if (sec < 7200)
            snprintf(tl, sizeof(tl), "%.1fm", sec / 60);
        else
            snprintf(tl, sizeof(tl), "%.1fh", sec / 3600);
        putf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s"
                "</text>",
             PX(t), CH_MT + ph + 16, tl);
    }
    putf(b, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">time since "
            "start</text>",
         CH_ML + pw / 2, CH_H - 6);
    putf(b, "<text x=\"14\" y=\"%.0f\" transform=\"rotate(-90 14 %.0f)\""
            " text-anchor=\"middle\">",
         CH_MT + ph / 2, CH_MT + ph / 2);
    esc(b, ylabel);
    puts_(b, "</text>");
    if (zero_line && y0 < 0 && y1 > 0)
        putf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\""
                " stroke=\"#333\" stroke-dasharray=\"4 3\"/>",
             CH_ML, CH_ML + pw, PY(0.0), PY(0.0));
    const struct frame fr = {x0, x1, y0, y1, pw, ph};
    for (size_t i = 0; i < ns; i++)
        draw_series(b, &s[i], i, &fr);
#undef PX
#undef PY
    puts_(b, "</svg></figure>\n");
}

/* ---- sections ---------------------------------------------------------------- */

static void
summary(struct buf *b, json_t *x, json_t *rollout)
{
    json_t *def = json_object_get(x, "definition");
    puts_(b, "<h1>Deployment report: ");
    esc(b, str(x, "key"));
    puts_(b, "</h1>\n<table class=\"kv\">");
    const char *rows[][2] = {
        {"state", str(x, "state")},
        {"strategy", str(def, "strategy")},
        {"served arm", str(x, "served_arm")},
        {"created", str(x, "created_at")},
        {"started", str(x, "started_at")},
        {"ended", str(x, "stopped_at")},
        {"phase", rollout ? str(rollout, "phase") : ""},
        {"report generated", str(x, "generated_at")},
    };
    for (size_t i = 0; i < AB_ARRAY_LEN(rows); i++) {
        puts_(b, "<tr><th>");
        esc(b, rows[i][0]);
        puts_(b, "</th><td>");
        esc(b, rows[i][1][0] ? rows[i][1] : "-");
        puts_(b, "</td></tr>");
    }
    puts_(b, "</table>\n<h2>Arms</h2>\n<table><tr><th>arm</th><th>model</th>"
             "<th>control</th><th>weight (%)</th></tr>");
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(def, "arms"), i, a) {
        puts_(b, "<tr><td>");
        td(b, a, "name");
        esc(b, str(a, "model"));
        putf(b, "</td><td>%s</td><td>%.4g</td></tr>",
             json_is_true(json_object_get(a, "control")) ? "yes" : "",
             num(json_object_get(a, "weight")));
    }
    puts_(b, "</table>\n");
}

static void
model_moves(struct buf *b, json_t *models)
{
    puts_(b, "<h2>Model lifecycle</h2>\n");
    if (json_array_size(models) == 0) {
        puts_(b, "<p>No registered model version moved (arms name no "
                 "registered <code>model@version</code>).</p>\n");
        return;
    }
    puts_(b, "<table><tr><th>at</th><th>model</th><th>action</th>"
             "<th>from</th><th>to</th><th>decision</th></tr>");
    size_t i;
    json_t *m;
    json_array_foreach(models, i, m) {
        puts_(b, "<tr><td>");
        td(b, m, "at");
        esc(b, str(m, "model"));
        puts_(b, "@");
        td(b, m, "version");
        td(b, m, "action");
        td(b, m, "from_stage");
        td(b, m, "to_stage");
        json_t *d = json_object_get(m, "decision_id");
        if (json_is_integer(d))
            putf(b, "#%lld", (long long)json_integer_value(d));
        puts_(b, "</td></tr>");
    }
    puts_(b, "</table>\n");
}

/* The analysis lines of one evidence object: primary then guardrails. */
static void
lines_foreach(json_t *evidence, void (*fn)(void *, json_t *, const char *),
              void *arg)
{
    static const char *const kinds[] = {"primary", "guardrails"};
    for (size_t k = 0; k < 2; k++) {
        size_t i;
        json_t *l;
        json_array_foreach(json_object_get(evidence, kinds[k]), i, l)
            fn(arg, l, kinds[k]);
    }
}

struct effect_acc {
    struct series *s;
    size_t n, cap;
    double t;
};

static void
effect_add(void *arg, json_t *l, const char *kind)
{
    struct effect_acc *acc = arg;
    char name[160];
    snprintf(name, sizeof(name), "%s: %s (%s)", str(l, "metric"),
             str(l, "arm"), kind);
    size_t i;
    for (i = 0; i < acc->n; i++)
        if (strcmp(acc->s[i].name, name) == 0)
            break;
    if (i == acc->n) {
        if (acc->n == acc->cap) {
            acc->cap = acc->cap ? acc->cap * 2 : 4;
            acc->s = ab_xrealloc(acc->s, acc->cap * sizeof(*acc->s));
        }
        memset(&acc->s[i], 0, sizeof(acc->s[i]));
        snprintf(acc->s[i].name, sizeof(acc->s[i].name), "%s", name);
        acc->n++;
    }
    json_t *ci = json_object_get(l, "ci_running");
    series_add(&acc->s[i], acc->t, num(json_object_get(l, "effect")),
               num(json_array_get(ci, 0)), num(json_array_get(ci, 1)));
}

static void
effect_charts(struct buf *b, json_t *evidence, double t0)
{
    struct effect_acc acc = {0};
    size_t i;
    json_t *e;
    json_array_foreach(evidence, i, e) {
        acc.t = num(json_object_get(e, "t"));
        lines_foreach(json_object_get(e, "evidence"), effect_add, &acc);
    }
    puts_(b, "<h2>Effects and confidence sequences</h2>\n<p>Effect of each "
             "arm against control (absolute difference of means), one point "
             "per analysis tick; the band is the always-valid confidence "
             "sequence (running intersection), a dashed line its bound when "
             "it is one-sided (guardrails).</p>\n");
    if (acc.n == 0) {
        struct series none = {0};
        snprintf(none.name, sizeof(none.name), "effect");
        chart(b, "effect", "effect vs control", "effect", &none, 1, t0, true);
    }
    for (i = 0; i < acc.n; i++) {
        char id[200], sl[160];
        slug(sl, sizeof(sl), acc.s[i].name);
        snprintf(id, sizeof(id), "effect_%s", sl);
        chart(b, id, acc.s[i].name, "effect", &acc.s[i], 1, t0, true);
    }
    series_free(acc.s, acc.n);
}

static void
traffic_chart(struct buf *b, json_t *x, json_t *weights, double t0,
              double t_end)
{
    json_t *arms = json_object_get(json_object_get(x, "definition"), "arms");
    size_t na = json_array_size(arms);
    struct series *s = ab_xcalloc(na ? na : 1, sizeof(*s));
    size_t i;
    json_t *a;
    json_array_foreach(arms, i, a) {
        snprintf(s[i].name, sizeof(s[i].name), "%s", str(a, "name"));
        s[i].step = true;
    }
    json_t *w;
    size_t k;
    json_array_foreach(weights, k, w) {
        double t = num(json_object_get(w, "t"));
        json_array_foreach(arms, i, a) series_add(
            &s[i], t,
            num(json_object_get(json_object_get(w, "weights"),
                                str(a, "name"))),
            NAN, NAN);
    }
    /* hold the last shares until the end (or now) */
    for (i = 0; i < na; i++)
        if (s[i].n > 0 && t_end > s[i].x[s[i].n - 1])
            series_add(&s[i], t_end, s[i].y[s[i].n - 1], NAN, NAN);
    puts_(b, "<h2>Traffic share</h2>\n");
    chart(b, "traffic", "traffic share per arm", "percent", s, na, t0,
          false);
    series_free(s, na);
}

static void
metric_charts(struct buf *b, json_t *x, json_t *series, double t0)
{
    json_t *def = json_object_get(x, "definition");
    json_t *arms = json_object_get(def, "arms");
    size_t na = json_array_size(arms);
    puts_(b, "<h2>Per-arm metrics over time</h2>\n<p>Each arm's outcome "
             "per active unit in each time bucket (for an error metric: the "
             "error rate; for latency: the mean latency).</p>\n");
    size_t m;
    json_t *metric;
    json_array_foreach(json_object_get(def, "metrics"), m, metric) {
        const char *mname = str(metric, "name");
        struct series *s = ab_xcalloc(na ? na : 1, sizeof(*s));
        size_t i;
        json_t *a;
        json_array_foreach(arms, i, a)
            snprintf(s[i].name, sizeof(s[i].name), "%s", str(a, "name"));
        size_t k;
        json_t *row;
        json_array_foreach(series, k, row) {
            if (strcmp(str(row, "metric"), mname) != 0)
                continue;
            json_array_foreach(arms, i, a) {
                if (strcmp(str(row, "arm"), str(a, "name")) != 0)
                    continue;
                double units = num(json_object_get(row, "active_units"));
                series_add(&s[i], num(json_object_get(row, "t")),
                           units > 0 ? num(json_object_get(row, "sum")) /
                                           units
                                     : NAN,
                           NAN, NAN);
            }
        }
        char id[200], sl[160], title[200];
        slug(sl, sizeof(sl), mname);
        snprintf(id, sizeof(id), "metric_%s", sl);
        snprintf(title, sizeof(title), "%s per active unit, by arm", mname);
        chart(b, id, title, mname, s, na, t0, false);
        series_free(s, na);
    }
}

struct result_ctx {
    struct buf *b;
};

static void
result_row(void *arg, json_t *l, const char *kind)
{
    struct buf *b = ((struct result_ctx *)arg)->b;
    json_t *ci = json_object_get(l, "ci_running");
    char v[5][32];
    double vals[5] = {num(json_object_get(l, "control_mean")),
                      num(json_object_get(l, "effect")),
                      num(json_array_get(ci, 0)), num(json_array_get(ci, 1)),
                      num(json_object_get(l, "p_running"))};
    for (int i = 0; i < 5; i++) {
        if (isfinite(vals[i]))
            fmt_num(v[i], sizeof(v[i]), vals[i]);
        else
            snprintf(v[i], sizeof(v[i]), "%s", i == 2 ? "-inf" :
                                               i == 3 ? "+inf" : "-");
    }
    puts_(b, "<tr><td>");
    td(b, l, "metric");
    esc(b, kind);
    puts_(b, "</td><td>");
    esc(b, str(l, "arm"));
    putf(b, "</td><td>%s</td><td>%s</td><td>[%s, %s]</td><td>%s</td><td>",
         v[0], v[1], v[2], v[3], v[4]);
    esc(b, str(l, "verdict"));
    puts_(b, "</td></tr>");
}

static void
results(struct buf *b, json_t *evidence_log, json_t *rollout)
{
    json_t *last = NULL;
    if (json_array_size(evidence_log) > 0)
        last = json_object_get(
            json_array_get(evidence_log, json_array_size(evidence_log) - 1),
            "evidence");
    else if (rollout)
        last = json_object_get(rollout, "evidence");
    puts_(b, "<h2>Results per metric (last analysis)</h2>\n");
    if (!json_is_object(last) || json_object_size(last) == 0) {
        puts_(b, "<p>No analysis yet.</p>\n");
        return;
    }
    puts_(b, "<table><tr><th>metric</th><th>role</th><th>arm</th>"
             "<th>control mean</th><th>effect</th><th>confidence sequence"
             "</th><th>p (always valid)</th><th>verdict</th></tr>");
    struct result_ctx rc = {b};
    lines_foreach(last, result_row, &rc);
    puts_(b, "</table>\n");
    json_t *srm = json_object_get(last, "srm");
    if (json_is_object(srm))
        putf(b, "<p>Sample ratio: p = %.4g%s; units: %.0f in total, %.0f in "
                "the smallest arm.</p>\n",
             num(json_object_get(srm, "p_value")),
             json_is_true(json_object_get(srm, "mismatch")) ? " (MISMATCH)"
                                                            : "",
             num(json_object_get(last, "total_units")),
             num(json_object_get(last, "min_units")));
}

static void
timeline(struct buf *b, json_t *weights)
{
    puts_(b, "<h2>Timeline of traffic shares</h2>\n<table><tr><th>weights "
             "version</th><th>at</th><th>source</th><th>shares (%)</th>"
             "</tr>");
    size_t i;
    json_t *w;
    json_array_foreach(weights, i, w) {
        row_id(b, w, "version");
        td(b, w, "at");
        td(b, w, "source");
        const char *arm;
        json_t *v;
        bool first = true;
        json_object_foreach(json_object_get(w, "weights"), arm, v) {
            if (!first)
                puts_(b, ", ");
            first = false;
            esc(b, arm);
            putf(b, " %.4g", num(v));
        }
        puts_(b, "</td></tr>");
    }
    puts_(b, "</table>\n");
}

static void
decisions(struct buf *b, json_t *list)
{
    puts_(b, "<h2>Decisions and their evidence</h2>\n<table><tr><th>#</th>"
             "<th>at</th><th>action</th><th>state</th><th>actor</th>"
             "<th>reason</th><th>evidence</th></tr>");
    size_t i;
    json_t *d;
    json_array_foreach(list, i, d) {
        row_id(b, d, "id");
        td(b, d, "at");
        td(b, d, "action");
        esc(b, str(d, "from_state"));
        puts_(b, " &#8594; ");
        td(b, d, "to_state");
        td(b, d, "actor");
        td(b, d, "reason");
        json_t *det = json_object_get(d, "details");
        if (json_object_size(det) > 0) {
            char *text = json_dumps(det, JSON_INDENT(1) | JSON_SORT_KEYS);
            puts_(b, "<details><summary>numbers</summary><pre>");
            esc(b, text);
            puts_(b, "</pre></details>");
            free(text);
        }
        puts_(b, "</td></tr>");
    }
    puts_(b, "</table>\n");
}

static const char style[] =
    "body{font:14px/1.4 sans-serif;margin:24px;color:#222;max-width:1000px}"
    "table{border-collapse:collapse;margin:8px 0 16px}"
    "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;"
    "vertical-align:top}"
    "th{background:#f3f3f3}pre{margin:0;font-size:12px;max-height:320px;"
    "overflow:auto}svg.chart text{font:11px sans-serif;fill:#333}"
    "svg.chart text.t{font-weight:bold;font-size:13px}"
    "figure{margin:8px 0}.live{color:#a60}";

ab_status
report_html_render(json_t *doc, int64_t now_ms, char **html, size_t *len)
{
    json_t *x = json_object_get(doc, "experiment");
    if (!json_is_object(x) ||
        !json_is_object(json_object_get(x, "definition")))
        return AB_EINVAL;
    json_t *rollout = json_object_get(doc, "rollout");
    if (!json_is_object(rollout))
        rollout = NULL;
    json_t *dec = json_object_get(doc, "decisions");
    json_t *weights = json_object_get(doc, "weights");
    json_t *evidence = json_object_get(doc, "evidence");
    json_t *series = json_object_get(doc, "series");
    const char *state = str(x, "state");
    bool live = strcmp(state, "running") == 0 || strcmp(state, "paused") == 0 ||
                strcmp(state, "draft") == 0;
    /* t0: the first decision (creation); t_end: the last decision when the
     * experiment has ended, else now */
    double t0 = num(json_object_get(json_array_get(dec, 0), "t"));
    if (!isfinite(t0))
        t0 = (double)now_ms;
    double t_end = (double)now_ms;
    if (!live && json_array_size(dec) > 0)
        t_end = num(json_object_get(
            json_array_get(dec, json_array_size(dec) - 1), "t"));

    struct buf b = {0};
    puts_(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8"
              "\"><title>arbiter report: ");
    esc(&b, str(x, "key"));
    putf(&b, "</title><style>%s</style></head><body>\n", style);
    summary(&b, x, rollout);
    if (live)
        puts_(&b, "<p class=\"live\">Live report: the experiment is still "
                  "running; reload for the latest numbers.</p>\n");
    model_moves(&b, json_object_get(doc, "models"));
    effect_charts(&b, evidence, t0);
    traffic_chart(&b, x, weights, t0, t_end);
    metric_charts(&b, x, series, t0);
    results(&b, evidence, rollout);
    timeline(&b, weights);
    decisions(&b, dec);
    puts_(&b, "<p>Generated by arbiter from the decision trail "
              "(arbiter.decision_log, arbiter.weights_history, "
              "arbiter.rollout_evidence_log, arbiter.events_raw).</p>\n"
              "</body></html>\n");
    *html = b.p;
    *len = b.len;
    return AB_OK;
}
