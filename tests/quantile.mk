# quantile.mk -- quantile metrics (issue 16): the DDSketch, the quantile
# difference intervals and their coverage simulations (stats/ddsketch.c,
# stats/quantile.c).
UNIT_TESTS += test_quantile
test_quantile_SRCS := lib/status.c stats/ddsketch.c stats/quantile.c tests/unit/test_quantile.c
test_quantile_LIBS := gsl
