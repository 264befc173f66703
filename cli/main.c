/* main.c -- bin/arbiter: one binary, subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "lib/version.h"
#include "core/assign.h"
#include "sql/migrations.h"

static const char usage[] =
    "usage: arbiter <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve      run the HTTP service (applies pending migrations first)\n"
    "  migrate    apply pending database migrations and exit\n"
    "  analyze    read one analysis request (JSON) on stdin, answer on stdout\n"
    "  simulate   run reproducible bandit simulations\n"
    "  rollout    `rollout wait KEY`: block until a rollout ends (exit code\n"
    "             0 promoted, 3 rolled back, 4 stopped, 5 timed out)\n"
    "  version    print the version, hash version and schema version\n"
    "\n"
    "`arbiter <command> --help` describes each command.\n"
    "Configuration: flags or ARBITER_* environment variables (see serve).\n";

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
};

static const struct command commands[] = {
    {"serve", cmd_serve},
    {"migrate", cmd_migrate},
    {"analyze", cmd_analyze},
    {"simulate", cmd_simulate},
    {"rollout", cmd_rollout},
};

int
main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("arbiter %s (hash version %d, schema version %d)\n",
               ARBITER_VERSION, CORE_HASH_VERSION,
               db_n_migrations ? db_migrations[db_n_migrations - 1].version
                               : 0);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "arbiter: unknown command \"%s\"\n\n%s", argv[1], usage);
    return 2;
}
