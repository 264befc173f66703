/* paired_oracle.c -- line driver that exposes stats/paired to the Python
 * oracle suite (tests/oracle/test_stats_paired.py). Test tool only: one
 * command per stdin line, one JSON object per stdout line.
 *
 *   agree K N ALPHA           Clopper-Pearson interval
 *   binom K N P0              exact P(X >= K), X ~ Bin(N, P0)
 *   mcnemar B C
 *   mean N MEAN VAR ALPHA NSTAR
 *   quantile Q X1 .. Xn       (the values need not be sorted)
 *   wilcoxon D1 .. Dn
 *
 * Doubles carry 17 significant digits; a refused input prints
 * {"status": "..."}.
 */
#include <gsl/gsl_errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats/paired.h"

#define MAX_VALUES 100000

static double values[MAX_VALUES], work[MAX_VALUES];

static int
cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static size_t
read_values(char *rest)
{
    size_t n = 0;
    char *end;
    for (;;) {
        double v = strtod(rest, &end);
        if (end == rest || n == MAX_VALUES)
            break;
        values[n++] = v;
        rest = end;
    }
    return n;
}

static void
refused(ab_status rc)
{
    printf("{\"status\":\"%s\"}\n", ab_status_name(rc));
}

static void
line(char *s)
{
    char cmd[16];
    int used = 0;
    if (sscanf(s, "%15s%n", cmd, &used) != 1)
        return;
    char *rest = s + used;
    ab_status rc;
    if (strcmp(cmd, "agree") == 0) {
        unsigned long long k, n;
        double a;
        struct stats_agreement r;
        sscanf(rest, "%llu %llu %lf", &k, &n, &a);
        rc = stats_paired_agreement(k, n, a, &r);
        if (rc != AB_OK)
            return refused(rc);
        printf("{\"rate\":%.17g,\"low\":%.17g,\"high\":%.17g}\n", r.rate,
               r.ci_low, r.ci_high);
    } else if (strcmp(cmd, "binom") == 0) {
        unsigned long long k, n;
        double p0, p;
        sscanf(rest, "%llu %llu %lf", &k, &n, &p0);
        rc = stats_binom_p_greater(k, n, p0, &p);
        if (rc != AB_OK)
            return refused(rc);
        printf("{\"p\":%.17g}\n", p);
    } else if (strcmp(cmd, "mcnemar") == 0) {
        unsigned long long b, c;
        struct stats_mcnemar r;
        sscanf(rest, "%llu %llu", &b, &c);
        rc = stats_mcnemar(b, c, &r);
        if (rc != AB_OK)
            return refused(rc);
        printf("{\"p_exact\":%.17g,\"chi2\":%.17g,\"p_chi2\":%.17g,"
               "\"method\":\"%s\",\"p\":%.17g}\n",
               r.p_exact, r.chi2, r.p_chi2,
               stats_mcnemar_method_name(r.method), r.p_value);
    } else if (strcmp(cmd, "mean") == 0) {
        struct stats_summary d;
        double a, ns;
        struct stats_paired_mean r;
        sscanf(rest, "%lf %lf %lf %lf %lf", &d.n, &d.mean, &d.var, &a, &ns);
        rc = stats_paired_mean(&d, a, ns, &r);
        if (rc != AB_OK)
            return refused(rc);
        printf("{\"t\":%.17g,\"p\":%.17g,\"cs_low\":%.17g,\"cs_high\":%.17g}"
               "\n",
               r.t, r.p_value, r.cs_low, r.cs_high);
    } else if (strcmp(cmd, "quantile") == 0) {
        char *end;
        double q = strtod(rest, &end);
        size_t n = read_values(end);
        qsort(values, n, sizeof(double), cmp);
        printf("{\"q\":%.17g}\n", stats_quantile_sorted(values, n, q));
    } else if (strcmp(cmd, "wilcoxon") == 0) {
        size_t n = read_values(rest);
        struct stats_wilcoxon r;
        rc = stats_wilcoxon(values, n, work, &r);
        if (rc != AB_OK)
            return refused(rc);
        printf("{\"statistic\":%.17g,\"z\":%.17g,\"p\":%.17g,\"n\":%.17g}\n",
               r.statistic, r.z, r.p_value, r.n_used);
    } else {
        printf("{\"status\":\"unknown_command\"}\n");
    }
}

int
main(void)
{
    gsl_set_error_handler_off();
    static char buf[8 << 20];
    while (fgets(buf, sizeof(buf), stdin))
        line(buf);
    return 0;
}
