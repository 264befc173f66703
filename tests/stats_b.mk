# stats_b.mk -- unit tests and tools of the sequential statistics (part B):
# stats/msprt.c (mixture SPRT / confidence sequences), stats/gst.c (group
# sequential designs), the oracle driver and the operating-characteristics
# simulator.
# line driver for tests/oracle/test_stats_seq*.py
TEST_TOOLS += seq_oracle
seq_oracle_SRCS := lib/status.c stats/root.c stats/msprt.c stats/gst.c tests/tools/seq_oracle.c
seq_oracle_LIBS := gsl

UNIT_TESTS += test_msprt
test_msprt_SRCS := lib/status.c stats/msprt.c tests/unit/test_msprt.c
test_msprt_LIBS := gsl

UNIT_TESTS += test_gst
test_gst_SRCS := lib/status.c stats/root.c stats/gst.c tests/unit/test_gst.c
test_gst_LIBS := gsl

# operating-characteristics simulator (tests/oracle/
# test_operating_characteristics.py; `make sim-stats` in bench/oc.mk)
TEST_TOOLS += sim_stats
sim_stats_SRCS := lib/status.c stats/root.c stats/msprt.c stats/gst.c tests/tools/sim_stats.c
sim_stats_LIBS := gsl

# the bracketed root finder shared by power, bayes and gst (stats/root.h)
UNIT_TESTS += test_root
test_root_SRCS := lib/status.c stats/root.c tests/unit/test_root.c
test_root_LIBS :=
