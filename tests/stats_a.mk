# stats_a.mk -- unit tests and tools of the fixed-horizon, Bayesian,
# health and planning statistics (part A), and api/analyze.c. Each test
# links only its module's sources (purity is proved at link time).

UNIT_TESTS += test_welch
test_welch_SRCS := core/status.c stats/welch.c stats/delta.c \
                   tests/test_welch.c
test_welch_LIBS := gsl

UNIT_TESTS += test_prop
test_prop_SRCS := core/status.c stats/prop.c stats/welch.c stats/delta.c \
                  tests/test_prop.c
test_prop_LIBS := gsl

UNIT_TESTS += test_delta
test_delta_SRCS := core/status.c stats/delta.c stats/welch.c \
                   tests/test_delta.c
test_delta_LIBS := gsl

UNIT_TESTS += test_cuped
test_cuped_SRCS := core/status.c stats/cuped.c stats/welch.c stats/delta.c \
                   tests/test_cuped.c
test_cuped_LIBS := gsl

UNIT_TESTS += test_bayes
test_bayes_SRCS := core/status.c stats/bayes.c stats/prop.c stats/welch.c \
                   stats/delta.c tests/test_bayes.c
test_bayes_LIBS := gsl

UNIT_TESTS += test_counts
test_counts_SRCS := core/status.c stats/counts.c tests/test_counts.c
test_counts_LIBS := gsl

UNIT_TESTS += test_srm
test_srm_SRCS := core/status.c stats/srm.c tests/test_srm.c
test_srm_LIBS := gsl

UNIT_TESTS += test_multiple
test_multiple_SRCS := core/status.c stats/multiple.c tests/test_multiple.c
test_multiple_LIBS :=

UNIT_TESTS += test_power
test_power_SRCS := core/status.c stats/power.c stats/msprt.c \
                   tests/test_power.c
test_power_LIBS := gsl

STATS_ALL_SRCS := core/status.c stats/welch.c stats/delta.c stats/prop.c \
                  stats/cuped.c stats/bayes.c stats/srm.c stats/multiple.c \
                  stats/msprt.c stats/gst.c

UNIT_TESTS += test_analyze
test_analyze_SRCS := $(STATS_ALL_SRCS) api/analyze.c tests/test_analyze.c
test_analyze_LIBS := gsl jansson

# line driver for tests/oracle/test_stats_*.py (counts, power, quantiles)
TEST_TOOLS += stats_a_driver
stats_a_driver_SRCS := core/status.c stats/counts.c stats/power.c \
                       stats/msprt.c stats/welch.c stats/delta.c \
                       tests/stats_a_driver.c
stats_a_driver_LIBS := gsl jansson
