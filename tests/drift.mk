# drift.mk -- issue 16 part C: drift watch (stats/drift.c) and the
# post-promotion holdback watch (core/holdback.c).
UNIT_TESTS += test_drift
test_drift_SRCS := lib/status.c stats/drift.c tests/unit/test_drift.c
test_drift_LIBS := gsl

UNIT_TESTS += test_holdback
test_holdback_SRCS := lib/status.c core/holdback.c core/rollout_eval.c core/metric_kind.c \
                      core/rollout.c core/experiment.c stats/msprt.c \
                      stats/counts.c stats/srm.c stats/delta.c stats/power.c \
                      stats/root.c core/analysis.c stats/welch.c stats/prop.c \
                      stats/cuped.c stats/bayes.c stats/multiple.c stats/gst.c \
                      tests/unit/test_holdback.c
test_holdback_LIBS := gsl

# the definition fields: metrics[].drift and rollout.holdback_*
UNIT_TESTS += test_watch_json
test_watch_json_SRCS := lib/status.c core/experiment.c core/assign.c \
                        core/semver.c core/targeting.c \
                        codec/experiment_json.c codec/rollout_json.c codec/field.c \
                        codec/shadow_config_json.c \
                        core/rollout.c tests/unit/test_watch_json.c
test_watch_json_LIBS := jansson libxxhash
