# ingest.mk -- `make bench-ingest`: committed events per second through
# POST /v1/events of the optimised bin/arbiter (batches of 1,000 events,
# several concurrent keep-alive clients), beside the raw libpq COPY ceiling
# of the same rows into the same PostgreSQL in the same run, and their
# ratio (bench/ingest.sh says how).
#
#   make bench-ingest                      3 rounds of 15 s
#   make bench-ingest BENCH_RUNS=5         more rounds
#   make bench-ingest BENCH_RECORD=1       also write the raw result to
#                                          bench/results/ingest.md.raw
#   make bench-ingest BENCH_ASSIGN=0       units never assigned (by default
#                                          every unit is assigned through
#                                          POST /v1/assign first, not timed)
#
# The load generator and the COPY program are built with the project's
# flags (warnings are errors) into $(BUILD)/bench/.

BENCHES += bench-ingest

INGEST_BENCH_BINS := $(BUILD)/bench/ingest_load $(BUILD)/bench/copy_ceiling

$(BUILD)/bench/ingest_load: $(BUILD)/obj/bench/ingest_load.o
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(AB_LDFLAGS) -o $@ $^ -lpthread

$(BUILD)/bench/copy_ceiling: $(BUILD)/obj/bench/copy_ceiling.o
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(AB_LDFLAGS) -o $@ $^ $(call pc_libs,libpq) -lpthread

.PHONY: bench-ingest bench-ingest-tools
bench-ingest-tools: $(INGEST_BENCH_BINS)

bench-ingest: $(BIN) $(INGEST_BENCH_BINS)
	$(Q)scripts/deps.sh
	$(Q)BENCH_RUNS=$(or $(BENCH_RUNS),3) BENCH_RECORD=$(or $(BENCH_RECORD),0) \
	    bench/ingest.sh $(BIN) $(BUILD)/bench

-include $(BUILD)/obj/bench/ingest_load.d $(BUILD)/obj/bench/copy_ceiling.d
