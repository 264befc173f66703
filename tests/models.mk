# models.mk -- the deployment report page (pure: a document in, HTML out).
UNIT_TESTS += test_report_html
test_report_html_SRCS := lib/status.c codec/report_html.c \
                         tests/unit/test_report_html.c
test_report_html_LIBS := jansson
