# rollout.mk -- the rollout rules (pure: core + stats) and their simulator.
ROLLOUT_SRCS := core/status.c core/experiment.c core/rollout.c \
                core/rollout_eval.c stats/msprt.c stats/counts.c stats/srm.c \
                stats/delta.c

UNIT_TESTS += test_rollout
test_rollout_SRCS := $(ROLLOUT_SRCS) tests/test_rollout.c
test_rollout_LIBS := gsl
