# assign.mk -- `make bench-assign`: wrk against the assign path of the
# optimised bin/arbiter and against nginx serving a fixed body of the same
# size, same machine, same run (bench/assign.sh says how).
#
#   make bench-assign                      3 rounds of 10 s per target
#   make bench-assign BENCH_RUNS=5         more rounds
#   make bench-assign BENCH_OUT=FILE       also write report + raw wrk output

BENCHES += bench-assign

.PHONY: bench-assign
bench-assign: bin/arbiter
	$(Q)scripts/deps.sh
	$(Q)BENCH_RUNS=$(or $(BENCH_RUNS),3) BENCH_OUT=$(BENCH_OUT) \
	    bench/assign.sh bin/arbiter
