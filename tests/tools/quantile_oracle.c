/* quantile_oracle.c -- driver for tests/oracle/test_stats_quantile.py:
 * reads "c VALUE" / "t VALUE" lines (control, treatment), sketches them at
 * STATS_DDSKETCH_ALPHA and prints, with %.17g,
 *   fixed rc diff diff_low diff_high rel rel_low rel_high
 *   cs    rc diff diff_low diff_high rel rel_low rel_high
 *   ranks s_lo s_hi          (the sequence's ranks for the control's n)
 * for the q, alpha and r given as arguments. */
#include <stdio.h>
#include <stdlib.h>

#include "stats/quantile.h"

#define CAP 65536
static struct stats_ddsketch_bin bc[CAP], bt[CAP];

static void
show(const char *what, ab_status rc, const struct stats_quantile_diff *d)
{
    if (rc != AB_OK) {
        printf("%s %d\n", what, (int)rc);
        return;
    }
    printf("%s 0 %.17g %.17g %.17g %.17g %.17g %.17g\n", what, d->diff,
           d->diff_low, d->diff_high, d->rel, d->rel_low, d->rel_high);
}

int
main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: quantile_oracle Q ALPHA R < values\n");
        return 2;
    }
    double q = strtod(argv[1], NULL), alpha = strtod(argv[2], NULL);
    double r = strtod(argv[3], NULL);
    struct stats_ddsketch c, t;
    stats_ddsketch_init(&c, STATS_DDSKETCH_ALPHA, bc, CAP);
    stats_ddsketch_init(&t, STATS_DDSKETCH_ALPHA, bt, CAP);
    char arm;
    double v;
    while (scanf(" %c %lf", &arm, &v) == 2)
        if (stats_ddsketch_add(arm == 'c' ? &c : &t, v, 1) != AB_OK)
            return 1;
    struct stats_quantile_diff d;
    show("fixed", stats_quantile_fixed(&c, &t, q, alpha, &d), &d);
    show("cs", stats_quantile_cs(&c, &t, q, alpha, r, &d), &d);
    uint64_t lo, hi;
    stats_quantile_cs_ranks(c.n, q, alpha / 2, r, &lo, &hi);
    printf("ranks %llu %llu\n", (unsigned long long)lo,
           (unsigned long long)hi);
    return 0;
}
