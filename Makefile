# arbiter -- one Makefile.
#
#   make            build bin/arbiter (optimised, warnings are errors)
#   make run        start the service on 127.0.0.1:8080 (private PostgreSQL
#                   under var/ when ARBITER_DATABASE_URL is unset)
#   make test       every suite: unit (cmocka) under ASan+UBSan, integration
#                   against a private PostgreSQL, end-to-end over HTTP, oracles
#   make bench      every benchmark (bench-assign, bench-ingest, bench-stats)
#   make deps       install missing Debian packages (root) or name them
#
# Unit tests are declared in tests/*.mk fragments:
#   UNIT_TESTS += test_prop
#   test_prop_SRCS := lib/status.c stats/prop.c tests/unit/test_prop.c
#   test_prop_LIBS := gsl
# so a test links only what its module may use (purity is proved at link time).

.DEFAULT_GOAL := all
SHELL := /bin/bash

BUILD ?= build
SANITIZE ?= 0
V ?= 0
Q := $(if $(filter 1,$(V)),,@)

CC ?= cc
STD  := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -Wpointer-arith -Wformat=2 -Wvla -Wundef
SAN  := -fsanitize=address,undefined -fno-sanitize-recover=all \
        -fno-omit-frame-pointer
ifeq ($(SANITIZE),1)
OPT    ?= -O1 -g
AB_SAN := $(SAN)
else
OPT    ?= -O2 -g
AB_SAN :=
endif

PKGS := libmicrohttpd gsl jansson libpq libxxhash
pc_cflags = $(shell pkg-config --cflags $(1) 2>/dev/null)
pc_libs   = $(shell pkg-config --libs $(1) 2>/dev/null)

AB_CFLAGS  = $(STD) $(WARN) $(OPT) $(AB_SAN) -I. -MMD -MP \
             $(call pc_cflags,$(PKGS)) $(CFLAGS)
AB_LDFLAGS = $(AB_SAN) $(LDFLAGS)

# The binary links every module.
APP_SRCS := $(sort $(wildcard lib/*.c core/*.c stats/*.c bandits/*.c sql/*.c codec/*.c service/*.c api/*.c cli/*.c))
MIGRATIONS := $(sort $(wildcard sql/migrations/*.sql))
APP_OBJS := $(APP_SRCS:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/migrations.o
APP_LIBS := $(call pc_libs,$(PKGS)) -lpthread -lm

ifeq ($(BUILD),build)
BIN := bin/arbiter
else
BIN := $(BUILD)/bin/arbiter
endif

.PHONY: all
all: $(BIN)

$(BIN): $(APP_OBJS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(AB_LDFLAGS) -o $@ $^ $(APP_LIBS)

$(BUILD)/gen/migrations.c: $(MIGRATIONS) scripts/embed-sql.sh
	@mkdir -p $(@D)
	$(Q)scripts/embed-sql.sh $@ $(MIGRATIONS)

$(BUILD)/obj/gen/migrations.o: $(BUILD)/gen/migrations.c
	@mkdir -p $(@D)
	$(Q)$(CC) $(AB_CFLAGS) -c -o $@ $<

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(AB_CFLAGS) -c -o $@ $<

# ---- unit tests ---------------------------------------------------------
UNIT_TESTS :=
TEST_TOOLS :=
include $(sort $(wildcard tests/*.mk))

define unit_test_rule
$(BUILD)/tests/$(1): $$(patsubst %.c,$(BUILD)/obj/%.o,$$($(1)_SRCS))
	@mkdir -p $$(@D)
	@$$(if $$(Q),echo "  LINK    $$@")
	$$(Q)$$(CC) $$(AB_LDFLAGS) -o $$@ $$^ \
	    $$(call pc_libs,$$($(1)_LIBS) cmocka) -lpthread -lm
endef
$(foreach t,$(UNIT_TESTS),$(eval $(call unit_test_rule,$(t))))
UNIT_BINS := $(UNIT_TESTS:%=$(BUILD)/tests/%)
# TEST_TOOLS: helper programs that suites run (oracle drivers, simulators);
# declared like unit tests, built by `make test`, not run by themselves.
TEST_TOOLS ?=
$(foreach t,$(TEST_TOOLS),$(eval $(call unit_test_rule,$(t))))
TOOL_BINS := $(TEST_TOOLS:%=$(BUILD)/tests/%)

.PHONY: test run-tests unit-tests check-deps check-layers
# `make test`: the binary also builds with clang (warnings are errors there
# too), an unsanitized -O1 build serves the valgrind suite, and everything
# runs under ASan+UBSan.
test: check-deps check-layers check-func-length
	@$(MAKE) --no-print-directory CC=clang BUILD=build/clang build/clang/bin/arbiter
	@$(MAKE) --no-print-directory BUILD=build/vg OPT="-O1 -g" build/vg/bin/arbiter
	@$(MAKE) --no-print-directory SANITIZE=1 BUILD=build/test run-tests

# run-tests: what `make test` runs inside the sanitized build.
run-tests: $(BIN) $(UNIT_BINS) $(TOOL_BINS)
	$(Q)tests/harness/run.sh "$(BUILD)" "$(BIN)" $(UNIT_BINS)

unit-tests: $(UNIT_BINS)
	$(Q)for t in $(UNIT_BINS); do $$t || exit 1; done

check-deps:
	$(Q)scripts/deps.sh

# The include graph runs one way (scripts/check-layers.sh names the table).
check-layers:
	$(Q)scripts/check-layers.sh

# No product function longer than 120 lines (part of `make test`; see
# scripts/check-func-length.py for how a function is counted).
.PHONY: check-func-length
check-func-length:
	$(Q)scripts/check-func-length.py

.PHONY: deps
deps:
	$(Q)scripts/deps.sh

# ---- running ------------------------------------------------------------
.PHONY: run
run: check-deps $(BIN)
	$(Q)scripts/run.sh $(BIN)

# ---- benchmarks -----------------------------------------------------------
BENCHES :=
include $(sort $(wildcard bench/*.mk))
.PHONY: bench
bench: $(BENCHES)

# ---- housekeeping -------------------------------------------------------
.PHONY: clean format
clean:
	rm -rf build bin

format:
	clang-format -i $(APP_SRCS) $(wildcard */*.h tests/unit/*.c tests/tools/*.c)

# Lines `make format` would change in the product tree (reports, exit 0).
.PHONY: format-check
format-check:
	$(Q)scripts/format-check.sh

-include $(APP_OBJS:.o=.d)
-include $(foreach t,$(UNIT_TESTS) $(TEST_TOOLS),$(patsubst %.c,$(BUILD)/obj/%.d,$($(t)_SRCS)))
