# service.mk -- unit tests of service/ pieces that need no database.

UNIT_TESTS += test_hazard
test_hazard_SRCS := lib/status.c service/hazard.c tests/unit/test_hazard.c
test_hazard_LIBS :=

# The route table and its matcher (api/routes.c) with stub handlers.
UNIT_TESTS += test_routes
test_routes_SRCS := lib/status.c lib/metrics.c api/routes.c \
                    tests/unit/test_routes.c
test_routes_LIBS :=
