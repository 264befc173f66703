# stats.mk -- `make bench-stats`: cost of one analysis (api_analyze, 2, 10
# and 50 arms, per method) and of a 20-look group sequential boundary
# computation, optimised build, results on stdout (bench/bench_stats.c).

BENCHES += bench-stats

BENCH_STATS_SRCS := lib/status.c stats/welch.c stats/delta.c stats/prop.c \
                    stats/cuped.c stats/bayes.c stats/srm.c \
                    stats/multiple.c stats/msprt.c stats/gst.c stats/root.c \
                    codec/analyze.c core/analysis.c core/metric_kind.c \
                    bench/bench_stats.c

$(BUILD)/bench/bench_stats: $(BENCH_STATS_SRCS:%.c=$(BUILD)/obj/%.o)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(AB_LDFLAGS) -o $@ $^ $(call pc_libs,gsl jansson) -lm

.PHONY: bench-stats
bench-stats: $(BUILD)/bench/bench_stats
	$(Q)$(BUILD)/bench/bench_stats
