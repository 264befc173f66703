# service.mk -- unit tests of service/ pieces that need no database.

UNIT_TESTS += test_hazard
test_hazard_SRCS := lib/status.c service/hazard.c tests/unit/test_hazard.c
test_hazard_LIBS :=

# The route table and its matcher (api/routes.c) with stub handlers.
UNIT_TESTS += test_routes
test_routes_SRCS := lib/status.c lib/metrics.c lib/strbuf.c api/routes.c \
                    tests/unit/test_routes.c
test_routes_LIBS :=

# The spool's file format and crash rules (service/spool.c), in /tmp.
UNIT_TESTS += test_spool
test_spool_SRCS := lib/status.c service/spool.c tests/unit/test_spool.c
test_spool_LIBS := libxxhash

# The exposure writer's merge rule (service/exposures.c; no thread started,
# no database reached).
UNIT_TESTS += test_exposure_merge
test_exposure_merge_SRCS := lib/status.c lib/clock.c lib/json_text.c \
                            lib/utf8.c lib/log.c lib/metrics.c lib/strbuf.c \
                            service/exposures.c sql/db.c sql/pgarray.c \
                            tests/unit/test_exposure_merge.c
test_exposure_merge_LIBS := libpq libxxhash jansson
