# ops.mk -- unit tests of the logger, the JSON number printer and the
# connection-string redaction (sql/conninfo.c: libpq's own parser).

UNIT_TESTS += test_log
test_log_SRCS := lib/json_text.c lib/utf8.c lib/log.c tests/unit/test_log.c
test_log_LIBS := jansson

UNIT_TESTS += test_conninfo
test_conninfo_SRCS := sql/conninfo.c tests/unit/test_conninfo.c
test_conninfo_LIBS := libpq

UNIT_TESTS += test_utf8
test_utf8_SRCS := lib/utf8.c lib/json_text.c tests/unit/test_utf8.c
test_utf8_LIBS := jansson

# the /metrics registry: the label-set limit (issue 14)
UNIT_TESTS += test_metrics
test_metrics_SRCS := lib/status.c lib/metrics.c lib/strbuf.c tests/unit/test_metrics.c
test_metrics_LIBS :=

# the growable printf buffer behind every in-memory /metrics text
UNIT_TESTS += test_strbuf
test_strbuf_SRCS := lib/status.c lib/strbuf.c tests/unit/test_strbuf.c
test_strbuf_LIBS :=
