# fuzz.mk -- libFuzzer harnesses (tests/fuzz/), built with clang
# -fsanitize=fuzzer,address,undefined in build/fuzz. Not part of `make test`.
#
#   make fuzz                      every harness for FUZZ_SECONDS (60) each
#   make fuzz FUZZ_SECONDS=5       the short bounded run CI does
#   make fuzz FUZZERS=event        one harness
#
# Each run starts from the committed seeds (tests/fuzz/corpus/<name>/) and
# the inputs it found before (build/fuzz/corpus/<name>/, where new ones are
# written); a crash leaves its input in build/fuzz/crashes/ and fails the
# target: add that input to tests/fuzz/corpus/<name>/ with the fix, so the
# corpus grows with every crash found. The executions of each run are
# appended to build/fuzz/runs.log (README "Fuzzing" records the totals).

FUZZERS ?= experiment rollout event assign_body analyze
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_DIR := build/fuzz
FUZZ_CFLAGS = $(STD) $(WARN) -O1 -g -I. \
              -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
              $(call pc_cflags,$(PKGS))

FUZZ_CORE_SRCS := lib/status.c lib/json_text.c lib/utf8.c api/reply.c core/experiment.c core/assign.c core/semver.c \
                  core/targeting.c core/rollout.c codec/experiment_json.c \
                  codec/rollout_json.c codec/field.c \
                  codec/shadow_config_json.c
FUZZ_experiment_SRCS  := $(FUZZ_CORE_SRCS)
FUZZ_rollout_SRCS     := $(FUZZ_CORE_SRCS)
FUZZ_analyze_SRCS     := lib/status.c lib/json_text.c lib/utf8.c api/reply.c codec/analyze.c codec/field.c core/analysis.c core/metric_kind.c $(wildcard stats/*.c)
FUZZ_SERVICE_SRCS     := $(FUZZ_CORE_SRCS) lib/clock.c \
                         tests/fuzz/fake_service.c
FUZZ_event_SRCS       := $(FUZZ_SERVICE_SRCS) api/h_events.c
FUZZ_assign_body_SRCS := $(FUZZ_SERVICE_SRCS) api/h_assign.c api/lookup.c

define fuzz_rule
$(FUZZ_DIR)/fuzz_$(1): tests/fuzz/fuzz_$(1).c $$(FUZZ_$(1)_SRCS) \
                       tests/fuzz/fuzz.h
	@mkdir -p $$(@D)
	@echo "  FUZZ-CC $$@"
	$$(Q)$$(FUZZ_CC) $$(FUZZ_CFLAGS) -o $$@ tests/fuzz/fuzz_$(1).c \
	    $$(FUZZ_$(1)_SRCS) $$(call pc_libs,$(PKGS)) -lpthread -lm
endef
$(foreach f,$(FUZZERS),$(eval $(call fuzz_rule,$(f))))

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZERS:%=$(FUZZ_DIR)/fuzz_%)

fuzz: fuzz-build
	$(Q)set -e; for f in $(FUZZERS); do \
	    mkdir -p $(FUZZ_DIR)/corpus/$$f $(FUZZ_DIR)/crashes; \
	    echo "  FUZZ    $$f ($(FUZZ_SECONDS) s)"; \
	    $(FUZZ_DIR)/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) \
	        -print_final_stats=1 -max_len=65536 -rss_limit_mb=2048 \
	        -artifact_prefix=$(FUZZ_DIR)/crashes/$$f- \
	        $(FUZZ_DIR)/corpus/$$f tests/fuzz/corpus/$$f \
	        > $(FUZZ_DIR)/$$f.log 2>&1 || { tail -40 $(FUZZ_DIR)/$$f.log; exit 1; }; \
	    n=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(FUZZ_DIR)/$$f.log); \
	    echo "$$(date -u +%FT%TZ) $$f seconds=$(FUZZ_SECONDS) execs=$$n crashes=0" \
	        | tee -a $(FUZZ_DIR)/runs.log; \
	done
