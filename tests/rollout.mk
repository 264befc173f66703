# rollout.mk -- the rollout rules (pure: core + stats) and their simulator.
ROLLOUT_SRCS := lib/status.c core/experiment.c core/rollout.c \
                core/rollout_eval.c core/metric_kind.c core/analysis.c \
                stats/msprt.c stats/counts.c stats/srm.c \
                stats/delta.c stats/power.c stats/root.c \
                stats/welch.c stats/prop.c stats/cuped.c stats/bayes.c \
                stats/multiple.c stats/gst.c

UNIT_TESTS += test_rollout
test_rollout_SRCS := $(ROLLOUT_SRCS) tests/unit/test_rollout.c
test_rollout_LIBS := gsl

# The operating-characteristics simulator (tests/oracle/test_rollout_sim.py
# runs a small, seeded version; `make rollout-report` the full one).
TEST_TOOLS += sim_rollouts
sim_rollouts_SRCS := $(ROLLOUT_SRCS) tests/tools/sim_rollouts.c
sim_rollouts_LIBS := gsl
