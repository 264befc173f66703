/* bench_stats.c -- `make bench-stats`: the cost of one analysis through
 * api_analyze() (parse-validated request -> answer document, the work of
 * POST /v1/analyze minus HTTP) for 2, 10 and 50 arms and several methods,
 * and of one 20-look group sequential boundary computation (stats/gst.c).
 * CPU time of this process (CLOCK_PROCESS_CPUTIME_ID, so a busy shared
 * machine does not inflate it), median of 7 rounds; each round repeats the
 * call until it has used at least 0.2 s. Prints a Markdown table.
 */
#include <gsl/gsl_errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/analyze.h"
#include "stats/gst.h"

#define ROUNDS 7

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A request with k arms of a metric (deterministic, arm i slightly
 * better than the control). */
static json_t *
request(size_t k, const char *kind, const char *method, int cuped)
{
    json_t *req = json_object(), *arms = json_array();
    json_t *metric = json_object();

    json_object_set_new(metric, "kind", json_string(kind));
    json_object_set_new(req, "metric", metric);
    json_object_set_new(req, "method", json_string(method));
    if (strcmp(method, "welch") == 0 || strcmp(method, "z") == 0)
        json_object_set_new(req, "correction", json_string("holm"));
    if (strcmp(method, "gst") == 0) {
        json_t *info = json_array();
        json_array_append_new(info, json_real(0.25));
        json_array_append_new(info, json_real(0.5));
        json_object_set_new(req, "information", info);
    }
    if (cuped)
        json_object_set_new(req, "cuped", json_true());
    for (size_t i = 0; i < k; i++) {
        json_t *a = json_object();
        double n = 10000 + 37 * (double)i, p = 0.1 + 0.001 * (double)i;
        char name[32];
        snprintf(name, sizeof(name), "arm%zu", i);
        json_object_set_new(a, "name", json_string(name));
        json_object_set_new(a, "n", json_real(n));
        json_object_set_new(a, "weight", json_real(1));
        if (strcmp(kind, "binary") == 0) {
            json_object_set_new(a, "sum", json_real(floor(n * p)));
        } else {
            double m = 5 + 0.01 * (double)i;
            json_object_set_new(a, "sum", json_real(n * m));
            json_object_set_new(a, "sum_sq", json_real(n * (m * m + 4)));
            if (cuped) {
                json_object_set_new(a, "pre_sum", json_real(n * 5));
                json_object_set_new(a, "pre_sum_sq", json_real(n * 29));
                json_object_set_new(a, "pre_cross_sum",
                                    json_real(n * (5 * m + 3)));
            }
        }
        json_array_append_new(arms, a);
    }
    json_object_set_new(req, "arms", arms);
    return req;
}

static double
time_analysis(const json_t *req, int dump)
{
    double rounds[ROUNDS];
    char err[256];

    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now(), t;
        long iters = 0;
        do {
            json_t *out = NULL;
            if (api_analyze(req, &out, err, sizeof(err)) != AB_OK) {
                fprintf(stderr, "bench-stats: %s\n", err);
                exit(1);
            }
            if (dump) {
                char *s = json_dumps(out, JSON_REAL_PRECISION(17) |
                                              JSON_COMPACT);
                free(s);
            }
            json_decref(out);
            iters++;
            t = now();
        } while (t - t0 < 0.2);
        rounds[r] = (t - t0) / (double)iters;
    }
    qsort(rounds, ROUNDS, sizeof(double), cmp_double);
    return rounds[ROUNDS / 2];
}

static double
time_gst(const struct stats_gst_design *d)
{
    static struct stats_gst_work work;
    struct stats_gst_bounds b;
    double rounds[ROUNDS];

    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now(), t;
        long iters = 0;
        do {
            if (stats_gst_bounds(d, &work, &b, NULL) != AB_OK) {
                fprintf(stderr, "bench-stats: gst failed\n");
                exit(1);
            }
            iters++;
            t = now();
        } while (t - t0 < 0.2);
        rounds[r] = (t - t0) / (double)iters;
    }
    qsort(rounds, ROUNDS, sizeof(double), cmp_double);
    return rounds[ROUNDS / 2];
}

int
main(void)
{
    static const struct {
        const char *kind, *method;
        int cuped;
    } cases[] = {
        { "mean", "welch", 0 },  { "binary", "z", 0 },
        { "mean", "welch", 1 },  { "mean", "msprt", 0 },
        { "mean", "bayes", 0 },  { "binary", "bayes", 0 },
        { "mean", "gst", 0 },
    };
    static const size_t arms[] = { 2, 10, 50 };
    struct stats_gst_design d;

    gsl_set_error_handler_off();
    printf("CPU time per call, median of %d rounds\n\n", ROUNDS);
    printf("| analysis (api_analyze, incl. answer JSON) | 2 arms | 10 arms "
           "| 50 arms |\n|---|---:|---:|---:|\n");
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        printf("| %s %s%s |", cases[c].kind, cases[c].method,
               cases[c].cuped ? " + cuped" : "");
        for (size_t a = 0; a < 3; a++) {
            json_t *req = request(arms[a], cases[c].kind, cases[c].method,
                                  cases[c].cuped);
            double t = time_analysis(req, 1);
            json_decref(req);
            if (t < 1e-3)
                printf(" %.1f us |", t * 1e6);
            else
                printf(" %.2f ms |", t * 1e3);
            fflush(stdout);
        }
        printf("\n");
    }

    printf("\n| 20-look group sequential boundaries (stats_gst_bounds) | "
           "time |\n|---|---:|\n");
    memset(&d, 0, sizeof(d));
    d.k_max = 20;
    for (size_t k = 0; k < 20; k++)
        d.info[k] = (double)(k + 1) / 20;
    d.alpha = 0.05;
    d.side = STATS_SIDE_TWO;
    d.alpha_spend = STATS_GST_OBF;
    printf("| O'Brien-Fleming, two-sided, alpha 0.05 | %.2f ms |\n",
           time_gst(&d) * 1e3);
    d.alpha_spend = STATS_GST_POCOCK;
    printf("| Pocock, two-sided, alpha 0.05 | %.2f ms |\n",
           time_gst(&d) * 1e3);
    d.side = STATS_SIDE_GREATER;
    d.alpha = 0.025;
    d.alpha_spend = STATS_GST_OBF;
    d.beta_spend = STATS_GST_OBF;
    d.beta = 0.2;
    printf("| O'Brien-Fleming one-sided 0.025 + OBF futility (beta 0.2) "
           "| %.2f ms |\n", time_gst(&d) * 1e3);
    return 0;
}
