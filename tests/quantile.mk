# quantile.mk -- quantile metrics (issue 16): the DDSketch, the quantile
# difference intervals and their coverage simulations (stats/ddsketch.c,
# stats/quantile.c).
UNIT_TESTS += test_quantile
test_quantile_SRCS := lib/status.c stats/ddsketch.c stats/quantile.c tests/unit/test_quantile.c
test_quantile_LIBS := gsl

# C side of the SQL/C bucket agreement (tests/integration/test_quantile_fold.py)
TEST_TOOLS += ddsketch_index
ddsketch_index_SRCS := lib/status.c stats/ddsketch.c tests/tools/ddsketch_index.c
ddsketch_index_LIBS := gsl

UNIT_TESTS += test_quantile_guard
test_quantile_guard_SRCS := lib/status.c stats/ddsketch.c stats/quantile.c core/quantile_guard.c tests/unit/test_quantile_guard.c
test_quantile_guard_LIBS := gsl

# driver for tests/oracle/test_stats_quantile.py
TEST_TOOLS += quantile_oracle
quantile_oracle_SRCS := lib/status.c stats/ddsketch.c stats/quantile.c tests/tools/quantile_oracle.c
quantile_oracle_LIBS := gsl
