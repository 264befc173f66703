# bandits.mk -- `make bandit-report`: bandit simulations written up as
# docs/bandits/REPORT.md with SVG plots (bench/bandit_report.py runs the
# optimised bin/arbiter simulate; a few minutes on 2 cores).
.PHONY: bandit-report
BENCHES += bandit-report
bandit-report: bin/arbiter
	@/usr/bin/python3 bench/bandit_report.py bin/arbiter docs/bandits
