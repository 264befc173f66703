/* cmd_analyze.c -- placeholder until the statistics engine lands; replaced
 * by the stats work (`arbiter analyze`). */
#include <stdio.h>
#include "api/commands.h"

int
cmd_analyze(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("arbiter analyze: not built yet\n", stderr);
    return 1;
}
