# stats_a.mk -- unit tests and tools of the fixed-horizon, Bayesian,
# health and planning statistics (part A), and codec/analyze.c. Each test
# links only its module's sources (purity is proved at link time).

UNIT_TESTS += test_welch
test_welch_SRCS := lib/status.c stats/welch.c stats/delta.c \
                   tests/unit/test_welch.c
test_welch_LIBS := gsl

UNIT_TESTS += test_prop
test_prop_SRCS := lib/status.c stats/prop.c stats/welch.c stats/delta.c \
                  tests/unit/test_prop.c
test_prop_LIBS := gsl

UNIT_TESTS += test_delta
test_delta_SRCS := lib/status.c stats/delta.c stats/welch.c \
                   tests/unit/test_delta.c
test_delta_LIBS := gsl

UNIT_TESTS += test_cuped
test_cuped_SRCS := lib/status.c stats/cuped.c stats/welch.c stats/delta.c \
                   tests/unit/test_cuped.c
test_cuped_LIBS := gsl

UNIT_TESTS += test_bayes
test_bayes_SRCS := lib/status.c stats/root.c stats/bayes.c stats/prop.c stats/welch.c \
                   stats/delta.c tests/unit/test_bayes.c
test_bayes_LIBS := gsl

UNIT_TESTS += test_counts
test_counts_SRCS := lib/status.c stats/counts.c tests/unit/test_counts.c
test_counts_LIBS := gsl

UNIT_TESTS += test_srm
test_srm_SRCS := lib/status.c stats/srm.c tests/unit/test_srm.c
test_srm_LIBS := gsl

UNIT_TESTS += test_multiple
test_multiple_SRCS := lib/status.c stats/multiple.c tests/unit/test_multiple.c
test_multiple_LIBS :=

UNIT_TESTS += test_power
test_power_SRCS := lib/status.c stats/root.c stats/power.c stats/msprt.c \
                   tests/unit/test_power.c
test_power_LIBS := gsl

STATS_ALL_SRCS := lib/status.c stats/welch.c stats/delta.c stats/prop.c \
                  stats/cuped.c stats/bayes.c stats/srm.c stats/multiple.c \
                  stats/msprt.c stats/gst.c stats/root.c

UNIT_TESTS += test_analyze
test_analyze_SRCS := $(STATS_ALL_SRCS) codec/analyze.c core/analysis.c core/metric_kind.c \
                     codec/field.c \
                     tests/unit/test_analyze.c
test_analyze_LIBS := gsl jansson

# line driver for tests/oracle/test_stats_*.py (counts, power, quantiles)
TEST_TOOLS += stats_a_driver
stats_a_driver_SRCS := lib/status.c stats/root.c stats/counts.c stats/power.c \
                       stats/msprt.c stats/welch.c stats/delta.c \
                       tests/tools/stats_a_driver.c
stats_a_driver_LIBS := gsl jansson
