/* stats_a_driver.c -- line driver for tests/oracle/test_stats_*.py: the
 * parts of stats/ that `arbiter analyze` does not expose (error counts,
 * planning, t quantiles). One JSON object per input line, one per output
 * line:
 *   {"fn":"tq","p":P,"df":DF}                       -> {"x":X}
 *   {"fn":"counts","periods":[[xc,xt,share],...],"tau":T,"side":"two"}
 *        -> {"log_e","p","rate_ratio","status","reason"}
 *   {"fn":"power_fixed"|"power_msprt","sd_c","sd_t","mde","alpha",
 *    "power","side","ratio","n_star"} -> {"n","power_at_n"} |
 *                                        {"n_power","n_expected"}
 * Non-finite results are written as null.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats/counts.h"
#include "stats/power.h"
#include "stats/welch.h"

static json_t *
num(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

static double
getn(const json_t *o, const char *k, double dflt)
{
    const json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

static enum stats_side
side_of(const json_t *o)
{
    const char *s = json_string_value(json_object_get(o, "side"));
    if (s != NULL && strcmp(s, "greater") == 0)
        return STATS_SIDE_GREATER;
    if (s != NULL && strcmp(s, "less") == 0)
        return STATS_SIDE_LESS;
    return STATS_SIDE_TWO;
}

static void
status(json_t *out, ab_status rc, enum stats_reason why)
{
    json_object_set_new(out, "status", json_string(ab_status_name(rc)));
    json_object_set_new(out, "reason", json_string(stats_reason_code(why)));
}

static json_t *
run(const json_t *in)
{
    const char *fn = json_string_value(json_object_get(in, "fn"));
    json_t *out = json_object();
    enum stats_reason why = STATS_REASON_NONE;
    ab_status rc = AB_OK;

    if (fn == NULL) {
        rc = AB_EINVAL;
    } else if (strcmp(fn, "tq") == 0) {
        json_object_set_new(out, "x", num(stats_t_quantile(
                                          getn(in, "p", NAN),
                                          getn(in, "df", INFINITY))));
    } else if (strcmp(fn, "counts") == 0) {
        const json_t *ps = json_object_get(in, "periods");
        size_t k = json_array_size(ps);
        struct stats_count_period *p = calloc(k ? k : 1, sizeof(*p));
        struct stats_counts_result r;
        for (size_t i = 0; i < k; i++) {
            const json_t *e = json_array_get(ps, i);
            p[i].errors_c = json_number_value(json_array_get(e, 0));
            p[i].errors_t = json_number_value(json_array_get(e, 1));
            p[i].share_t = json_number_value(json_array_get(e, 2));
        }
        rc = stats_counts_test(p, k, getn(in, "tau", 0), side_of(in), &r,
                               &why);
        free(p);
        if (rc == AB_OK) {
            json_object_set_new(out, "log_e", num(r.log_e_value));
            json_object_set_new(out, "p", num(r.p_value));
            json_object_set_new(out, "rate_ratio", num(r.rate_ratio));
        }
    } else if (strcmp(fn, "power_fixed") == 0 ||
               strcmp(fn, "power_msprt") == 0) {
        struct stats_power_plan pl = {
            getn(in, "sd_c", NAN), getn(in, "sd_t", NAN),
            getn(in, "mde", NAN),  getn(in, "alpha", 0.05),
            getn(in, "power", 0.8), side_of(in), getn(in, "ratio", 1)
        };
        if (fn[6] == 'f') {
            double n, pw;
            rc = stats_power_n_fixed(&pl, &n, &why);
            if (rc == AB_OK)
                rc = stats_power_fixed(&pl, n, &pw, &why);
            if (rc == AB_OK) {
                json_object_set_new(out, "n", num(n));
                json_object_set_new(out, "power_at_n", num(pw));
            }
        } else {
            double np, ne;
            rc = stats_power_n_msprt(&pl, getn(in, "n_star", 0), &np, &ne,
                                     &why);
            if (rc == AB_OK) {
                json_object_set_new(out, "n_power", num(np));
                json_object_set_new(out, "n_expected", num(ne));
            }
        }
    } else {
        rc = AB_EINVAL;
    }
    status(out, rc, why);
    return out;
}

int
main(void)
{
    char line[1 << 16];

    while (fgets(line, sizeof(line), stdin) != NULL) {
        json_error_t err;
        json_t *in = json_loads(line, 0, &err), *out;
        char *text;
        if (in == NULL) {
            printf("{\"status\":\"bad_json\"}\n");
            continue;
        }
        out = run(in);
        text = json_dumps(out, JSON_REAL_PRECISION(17) | JSON_COMPACT);
        puts(text);
        free(text);
        json_decref(out);
        json_decref(in);
    }
    return 0;
}
