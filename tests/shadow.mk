# shadow.mk -- paired shadow analysis (issue 16, part B): stats/paired.c,
# core/shadow.c and the oracle driver of tests/oracle/test_stats_paired.py.
TEST_TOOLS += paired_oracle
paired_oracle_SRCS := lib/status.c stats/msprt.c stats/paired.c tests/tools/paired_oracle.c
paired_oracle_LIBS := gsl

UNIT_TESTS += test_shadow
test_shadow_SRCS := lib/status.c stats/msprt.c stats/paired.c core/shadow.c tests/unit/test_shadow.c
test_shadow_LIBS := gsl
