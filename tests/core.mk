# core.mk -- unit tests of the assignment core and the definition parser.
# Each test links only what its module may use (purity at link time):
# core/ needs libxxhash only; codec/experiment_json.c adds jansson.

CORE_ASSIGN_SRCS := lib/status.c core/experiment.c core/assign.c \
                    core/semver.c core/targeting.c

UNIT_TESTS += test_experiment_json
test_experiment_json_SRCS := $(CORE_ASSIGN_SRCS) codec/experiment_json.c \
                             codec/rollout_json.c codec/field.c core/rollout.c \
                             codec/shadow_config_json.c \
                             tests/unit/test_experiment_json.c
test_experiment_json_LIBS := jansson libxxhash

# Driver for tests/oracle/test_hash_vectors.py (prints hash v1 internals).
TEST_TOOLS += tool_hash
tool_hash_SRCS := $(CORE_ASSIGN_SRCS) tests/tools/tool_hash.c
tool_hash_LIBS := libxxhash

UNIT_TESTS += test_assign
test_assign_SRCS := $(CORE_ASSIGN_SRCS) tests/unit/test_assign.c
test_assign_LIBS := libxxhash gsl

UNIT_TESTS += test_semver
test_semver_SRCS := lib/status.c core/semver.c tests/unit/test_semver.c
test_semver_LIBS :=

UNIT_TESTS += test_targeting
test_targeting_SRCS := lib/status.c core/semver.c core/targeting.c \
                       tests/unit/test_targeting.c
test_targeting_LIBS :=

# the codecs' one set of field readers (codec/field.c)
UNIT_TESTS += test_field
test_field_SRCS := lib/status.c codec/field.c tests/unit/test_field.c
test_field_LIBS := jansson
