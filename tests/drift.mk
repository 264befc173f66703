# drift.mk -- issue 16 part C: drift watch (stats/drift.c) and the
# post-promotion holdback watch (core/holdback.c).
UNIT_TESTS += test_drift
test_drift_SRCS := lib/status.c stats/drift.c tests/unit/test_drift.c
test_drift_LIBS := gsl
