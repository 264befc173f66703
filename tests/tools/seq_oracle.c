/* seq_oracle.c -- line driver that exposes stats/msprt and stats/gst to
 * the Python oracle suites (tests/oracle/test_stats_seq*.py). Test tool
 * only: it reads commands on stdin and writes one JSON object per line.
 *
 *   gst SIDE ALPHA ASPEND APARAM BSPEND BETA BPARAM K t_1 .. t_K
 *   decide SIDE ALPHA ASPEND APARAM BSPEND BETA BPARAM K t_1 .. t_K LOOK Z
 *   spend FAMILY PARAM X T
 *   msprt SIDE ALPHA NSTAR MARGIN_ABS MARGIN_REL NC MC VC NT MT VT
 *   reset                (forget the running msprt state)
 *   zcrit R ALPHA SIDE
 *
 * SIDE is two|greater|less, families none|obf|pocock|power|hsd. Doubles
 * are printed with 17 significant digits; infinities as Infinity, which
 * Python's json accepts. A refused input prints {"status": "...",
 * "reason": "..."}.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_errno.h>

#include "stats/gst.h"
#include "stats/msprt.h"

#define MAX_TOK 64

static void
put_num(double v)
{
    if (isnan(v))
        fputs("NaN", stdout);
    else if (isinf(v))
        fputs(v > 0 ? "Infinity" : "-Infinity", stdout);
    else
        printf("%.17g", v);
}

static void
put_arr(const char *name, const double *v, size_t n)
{
    printf("\"%s\": [", name);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputs(", ", stdout);
        put_num(v[i]);
    }
    fputs("]", stdout);
}

static void
put_err(ab_status rc, enum stats_reason why)
{
    printf("{\"status\": \"%s\", \"reason\": \"%s\"}\n", ab_status_name(rc),
           stats_reason_code(why));
}

static int
parse_side(const char *s, enum stats_side *side)
{
    if (strcmp(s, "two") == 0)
        *side = STATS_SIDE_TWO;
    else if (strcmp(s, "greater") == 0)
        *side = STATS_SIDE_GREATER;
    else if (strcmp(s, "less") == 0)
        *side = STATS_SIDE_LESS;
    else
        return -1;
    return 0;
}

static int
parse_spend(const char *s, enum stats_gst_spend *f)
{
    static const char *const names[] = {"none", "obf", "pocock", "power",
                                        "hsd"};
    for (size_t i = 0; i < AB_ARRAY_LEN(names); i++)
        if (strcmp(s, names[i]) == 0) {
            *f = (enum stats_gst_spend)i;
            return 0;
        }
    return -1;
}

static double
num(const char *s)
{
    return strtod(s, NULL);
}

/* Parses "SIDE ALPHA ASPEND APARAM BSPEND BETA BPARAM K t.." at tok[0];
 * returns the number of tokens used or -1. */
static int
parse_design(char **tok, int n, struct stats_gst_design *d)
{
    size_t k;

    memset(d, 0, sizeof(*d));
    if (n < 8 || parse_side(tok[0], &d->side) ||
        parse_spend(tok[2], &d->alpha_spend) ||
        parse_spend(tok[4], &d->beta_spend))
        return -1;
    d->alpha = num(tok[1]);
    d->alpha_param = num(tok[3]);
    d->beta = num(tok[5]);
    d->beta_param = num(tok[6]);
    d->k_max = (size_t)strtoul(tok[7], NULL, 10);
    if (d->k_max > STATS_GST_MAX_LOOKS || n < 8 + (int)d->k_max)
        return -1;
    for (k = 0; k < d->k_max; k++)
        d->info[k] = num(tok[8 + k]);
    return 8 + (int)d->k_max;
}

static void
put_effect(const char *name, const struct stats_msprt_effect *e)
{
    printf("\"%s\": {", name);
    printf("\"estimate\": ");
    put_num(e->estimate);
    printf(", \"se\": ");
    put_num(e->se);
    printf(", \"null\": ");
    put_num(e->null_value);
    printf(", \"z\": ");
    put_num(e->z);
    printf(", \"log_lr\": ");
    put_num(e->log_lr);
    printf(", \"p\": ");
    put_num(e->p_value);
    printf(", \"lo\": ");
    put_num(e->ci_low);
    printf(", \"hi\": ");
    put_num(e->ci_high);
    printf(", \"p_run\": ");
    put_num(e->p_running);
    printf(", \"lo_run\": ");
    put_num(e->ci_low_running);
    printf(", \"hi_run\": ");
    put_num(e->ci_high_running);
    printf(", \"reject\": %d}", e->reject);
}

static struct stats_gst_work work;

static void
run_line(char **tok, int n, struct stats_msprt_state *st)
{
    enum stats_reason why = STATS_REASON_NONE;
    ab_status rc;

    if (strcmp(tok[0], "gst") == 0) {
        struct stats_gst_design d;
        struct stats_gst_bounds b;
        if (parse_design(tok + 1, n - 1, &d) < 0)
            goto usage;
        rc = stats_gst_bounds(&d, &work, &b, &why);
        if (rc != AB_OK) {
            put_err(rc, why);
            return;
        }
        printf("{\"status\": \"ok\", ");
        put_arr("efficacy", b.efficacy, b.k_max);
        fputs(", ", stdout);
        put_arr("futility", b.futility, b.k_max);
        fputs(", ", stdout);
        put_arr("alpha_spent", b.alpha_spent, b.k_max);
        fputs(", ", stdout);
        put_arr("beta_spent", b.beta_spent, b.k_max);
        printf(", \"drift\": ");
        put_num(b.drift);
        printf(", \"has_futility\": %d}\n", b.has_futility);
    } else if (strcmp(tok[0], "decide") == 0) {
        struct stats_gst_design d;
        struct stats_gst_decision dc;
        int used = parse_design(tok + 1, n - 1, &d);
        if (used < 0 || n < 1 + used + 2)
            goto usage;
        rc = stats_gst_decide(&d, (size_t)strtoul(tok[1 + used], NULL, 10),
                              num(tok[2 + used]), &work, &dc, &why);
        if (rc != AB_OK) {
            put_err(rc, why);
            return;
        }
        printf("{\"status\": \"ok\", \"action\": %d, \"look\": %zu, "
               "\"direction\": %d, \"efficacy\": ",
               (int)dc.action, dc.look, dc.direction);
        put_num(dc.efficacy);
        printf(", \"futility\": ");
        put_num(dc.futility);
        printf(", \"alpha_spent\": ");
        put_num(dc.alpha_spent);
        printf("}\n");
    } else if (strcmp(tok[0], "spend") == 0) {
        enum stats_gst_spend f;
        double v;
        if (n != 5 || parse_spend(tok[1], &f))
            goto usage;
        rc = stats_gst_spend_value(f, num(tok[2]), num(tok[3]), num(tok[4]),
                                   &v, &why);
        if (rc != AB_OK) {
            put_err(rc, why);
            return;
        }
        printf("{\"status\": \"ok\", \"value\": ");
        put_num(v);
        printf("}\n");
    } else if (strcmp(tok[0], "zcrit") == 0) {
        enum stats_side side;
        double z;
        if (n != 4 || parse_side(tok[3], &side))
            goto usage;
        rc = stats_msprt_z_crit(num(tok[1]), num(tok[2]), side, &z, &why);
        if (rc != AB_OK) {
            put_err(rc, why);
            return;
        }
        printf("{\"status\": \"ok\", \"z\": ");
        put_num(z);
        printf("}\n");
    } else if (strcmp(tok[0], "reset") == 0) {
        stats_msprt_state_init(st);
        printf("{\"status\": \"ok\"}\n");
    } else if (strcmp(tok[0], "msprt") == 0) {
        struct stats_msprt_opts o;
        struct stats_summary c, t;
        struct stats_msprt_result r;
        if (n != 12 || parse_side(tok[1], &o.side))
            goto usage;
        o.alpha = num(tok[2]);
        o.n_star = num(tok[3]);
        o.margin_abs = num(tok[4]);
        o.margin_rel = num(tok[5]);
        c.n = num(tok[6]);
        c.mean = num(tok[7]);
        c.var = num(tok[8]);
        t.n = num(tok[9]);
        t.mean = num(tok[10]);
        t.var = num(tok[11]);
        rc = stats_msprt_test(&c, &t, &o, st, &r, &why);
        if (rc != AB_OK) {
            put_err(rc, why);
            return;
        }
        printf("{\"status\": \"ok\", \"t_eff\": ");
        put_num(r.t_eff);
        printf(", \"rho2\": ");
        put_num(r.rho2);
        printf(", \"has_rel\": %d, \"rel_why\": \"%s\", \"empty\": %d, "
               "\"n_looks\": %llu, ",
               r.has_rel, stats_reason_code(r.rel_why), r.empty,
               (unsigned long long)st->n_looks);
        put_effect("abs", &r.abs);
        fputs(", ", stdout);
        put_effect("rel", &r.rel);
        printf("}\n");
    } else {
        goto usage;
    }
    return;
usage:
    printf("{\"status\": \"usage\"}\n");
}

int
main(void)
{
    char line[4096];
    struct stats_msprt_state st;

    gsl_set_error_handler_off();
    stats_msprt_state_init(&st);
    while (fgets(line, sizeof(line), stdin) != NULL) {
        char *tok[MAX_TOK], *p = line;
        int n = 0;
        while (*p != '\0' && n < MAX_TOK) { /* split on blanks, in place */
            while (*p != '\0' && strchr(" \t\r\n", *p) != NULL)
                *p++ = '\0';
            if (*p == '\0')
                break;
            tok[n++] = p;
            while (*p != '\0' && strchr(" \t\r\n", *p) == NULL)
                p++;
        }
        if (n == 0)
            continue;
        run_line(tok, n, &st);
        fflush(stdout);
    }
    return 0;
}
