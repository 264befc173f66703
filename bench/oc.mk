# oc.mk -- operating characteristics of the sequential methods.
#
#   make sim-stats    build the simulator optimised (tests/tools/sim_stats.c),
#                     run 400000 A/A and 100000 A/B experiments (20 looks
#                     of 1000 units per arm, rate 0.10, lift +8 %, alpha
#                     0.05, seed 1), print the table and write
#                     docs/operating_characteristics.md
#
# The CI suite tests/oracle/test_operating_characteristics.py runs the same
# simulator, smaller and under the sanitizers, and asserts the inequalities.
SIM_STATS_ARGS ?= --seed 1 --reps-null 400000 --reps-alt 100000 \
                  --looks 20 --batch 1000 --p0 0.10 --lift 0.08 --alpha 0.05

.PHONY: sim-stats
sim-stats: $(BUILD)/tests/sim_stats
	@mkdir -p docs
	$(BUILD)/tests/sim_stats $(SIM_STATS_ARGS) \
	    --out docs/operating_characteristics.md
