# rollouts.mk -- `make rollout-report`: operating characteristics of the
# automated rollouts by simulation (tests/tools/sim_rollouts.c), optimised build,
# seeded; writes docs/rollouts.md (recorded in the README).
.PHONY: rollout-report
rollout-report:
	$(Q)$(MAKE) --no-print-directory BUILD=build build/tests/sim_rollouts
	$(Q)mkdir -p docs
	$(Q)build/tests/sim_rollouts --runs 400 --seed 42 --out docs/rollouts.table.md
	$(Q){ echo '# Rollout operating characteristics'; echo; \
	  echo 'Produced by `make rollout-report` (tests/tools/sim_rollouts.c: 400 seeded'; \
	  echo 'rollouts per row, 200 units per 10 s tick, each strategy with its'; \
	  echo 'defaults; latency N(100, 20^2), errors 1 %, conversion 10 %; effects on'; \
	  echo 'the candidate only; alpha = 0.05 for the primary test, rollback_alpha ='; \
	  echo '0.02 shared by the tests that may roll back, the last partial step planned'; \
	  echo 'for power 0.99 at 2x the error rate or a 10 % regression). Units are those'; \
	  echo 'of both arms when the rollout ended; set SIM_REASONS=1 to see every reason.'; echo; \
	  cat docs/rollouts.table.md; } > docs/rollouts.md
	$(Q)rm -f docs/rollouts.table.md
	$(Q)cat docs/rollouts.md
