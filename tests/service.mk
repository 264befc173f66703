# service.mk -- unit tests of service/ pieces that need no database.

UNIT_TESTS += test_hazard
test_hazard_SRCS := lib/status.c service/hazard.c tests/unit/test_hazard.c
test_hazard_LIBS :=
