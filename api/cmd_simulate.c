/* cmd_simulate.c -- placeholder until the bandits work lands; replaced
 * by the stats work (`arbiter simulate`). */
#include <stdio.h>
#include "api/commands.h"

int
cmd_simulate(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("arbiter simulate: not built yet\n", stderr);
    return 1;
}
