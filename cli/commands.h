/* commands.h -- the subcommands of bin/arbiter. Each returns the process
 * exit code. Exit code 2 always means "the caller's input was invalid". */
#ifndef CLI_COMMANDS_H
#define CLI_COMMANDS_H

int cmd_serve(int argc, char **argv);    /* cli/cmd_serve.c */
int cmd_migrate(int argc, char **argv);  /* cli/cmd_serve.c */
int cmd_analyze(int argc, char **argv);  /* cli/cmd_analyze.c */
int cmd_simulate(int argc, char **argv); /* cli/cmd_simulate.c */
int cmd_rollout(int argc, char **argv);  /* cli/cmd_rollout.c */

#endif /* CLI_COMMANDS_H */
