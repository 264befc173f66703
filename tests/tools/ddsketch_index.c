/* ddsketch_index.c -- prints stats_ddsketch_index() at the stored alpha
 * (STATS_DDSKETCH_ALPHA) for each value read from stdin (one per line,
 * any strtod syntax): the C side of the SQL/C bucket agreement test
 * (tests/integration/test_quantile_fold.py). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "stats/ddsketch.h"

int
main(void)
{
    struct stats_ddsketch_bin bin;
    struct stats_ddsketch s;
    char line[128];
    if (stats_ddsketch_init(&s, STATS_DDSKETCH_ALPHA, &bin, 1) != AB_OK)
        return 1;
    while (fgets(line, sizeof(line), stdin)) {
        char *end;
        double x = strtod(line, &end);
        if (end == line)
            continue;
        printf("%ld\n", (long)stats_ddsketch_index(s.ln_gamma, x));
    }
    return 0;
}
