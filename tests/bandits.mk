# bandits.mk -- unit tests of bandits/ (pure: GSL and lib/status.c only).
BANDIT_SRCS := lib/status.c bandits/bandit.c bandits/thompson.c \
               bandits/ucb.c bandits/estimate.c

UNIT_TESTS += test_bandit_policies
test_bandit_policies_SRCS := $(BANDIT_SRCS) tests/unit/test_bandit_policies.c
test_bandit_policies_LIBS := gsl

UNIT_TESTS += test_bandit_estimate
test_bandit_estimate_SRCS := $(BANDIT_SRCS) tests/unit/test_bandit_estimate.c
test_bandit_estimate_LIBS := gsl

# oracle driver for tests/oracle/test_bandits.py (scipy as the oracle)
TEST_TOOLS += test_bandit_driver
test_bandit_driver_SRCS := $(BANDIT_SRCS) tests/tools/test_bandit_driver.c
test_bandit_driver_LIBS := gsl

# apportionment to millionths, change test, per-version seed (bandits/alloc.h)
UNIT_TESTS += test_bandit_apportion
test_bandit_apportion_SRCS := lib/status.c bandits/alloc.c \
                              tests/unit/test_bandit_apportion.c
test_bandit_apportion_LIBS :=

# the P(best) promotion rule (bandits/promote.h)
UNIT_TESTS += test_bandit_promote
test_bandit_promote_SRCS := lib/status.c bandits/promote.c \
                            tests/unit/test_bandit_promote.c
test_bandit_promote_LIBS :=
