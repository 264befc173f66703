# ecosystem.mk -- the in-memory verdict holder behind the verdict route,
# Flagger's webhooks and the rollout metrics (service/verdicts.c): it links
# only the core model and rollout rules, no database, no HTTP.
UNIT_TESTS += test_verdicts
test_verdicts_SRCS := lib/status.c core/experiment.c core/rollout.c \
                      service/verdicts.c lib/strbuf.c tests/unit/test_verdicts.c
test_verdicts_LIBS :=
