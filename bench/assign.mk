# assign.mk -- `make bench-assign`: wrk against the assign path of the
# optimised bin/arbiter and against nginx serving a fixed body of the same
# size, same machine, same run (bench/assign.sh says how; the recorded
# result is bench/results/assign.md).
#
#   make bench-assign                          5 rounds; 5 s per target and load
#   make bench-assign BENCH_RUNS=3             fewer rounds
#   make bench-assign BENCH_OUT=FILE           also write report + raw wrk
#   make bench-assign BENCH_CONN_MEMORY=4096   arbiter's ARBITER_CONN_MEMORY
#   make bench-assign BENCH_PIN=0              unpinned, 2 workers each
# (every BENCH_* variable of bench/assign.sh can be given this way)

BENCHES += bench-assign

BENCH_RUNS ?= 5
export BENCH_RUNS BENCH_OUT BENCH_DURATION BENCH_CONNECTIONS BENCH_THREADS \
       BENCH_PIN BENCH_WORKERS BENCH_CONN_MEMORY BENCH_STRICT BENCH_KEEP

.PHONY: bench-assign
bench-assign: bin/arbiter
	$(Q)scripts/deps.sh
	$(Q)bench/assign.sh bin/arbiter
