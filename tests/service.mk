# service.mk -- unit tests of service/ pieces that need no database.

UNIT_TESTS += test_hazard
test_hazard_SRCS := lib/status.c service/hazard.c tests/unit/test_hazard.c
test_hazard_LIBS :=

# The route table and its matcher (api/routes.c) with stub handlers.
UNIT_TESTS += test_routes
test_routes_SRCS := lib/status.c lib/metrics.c api/routes.c \
                    tests/unit/test_routes.c
test_routes_LIBS :=

# The spool's file format and crash rules (service/spool.c), in /tmp.
UNIT_TESTS += test_spool
test_spool_SRCS := lib/status.c service/spool.c tests/unit/test_spool.c
test_spool_LIBS := libxxhash
