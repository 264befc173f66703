# sticky.mk -- the sticky store's client-side deadline (service/sticky.c
# with the real libpq layer, against a server that never answers).
UNIT_TESTS += test_sticky_store
test_sticky_store_SRCS := lib/status.c lib/clock.c lib/json_text.c lib/utf8.c lib/log.c \
                          service/sticky.c sql/db.c sql/pgarray.c \
                          tests/unit/test_sticky_store.c
test_sticky_store_LIBS := libpq libxxhash jansson

# The in-memory cache in front of the store (no database reached).
UNIT_TESTS += test_sticky_cache
test_sticky_cache_SRCS := lib/status.c lib/clock.c lib/json_text.c lib/utf8.c \
                          lib/log.c service/sticky.c sql/db.c sql/pgarray.c \
                          tests/unit/test_sticky_cache.c
test_sticky_cache_LIBS := libpq libxxhash jansson
