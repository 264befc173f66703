"""test_rollout_sim.py -- operating characteristics of the rollout rules.

Runs the seeded simulator (tests/tools/sim_rollouts.c, the same core/rollout.c and
core/rollout_eval.c the service runs) with a few runs per scenario and
checks the guarantees with Monte Carlo error bounds (3 standard errors of a
binomial proportion at the run count):
  - a harmless canary is rolled back with probability <= alpha = 0.05
    (Bonferroni across the tests that may roll back);
  - an A/A test under continuous monitoring promotes with probability
    <= alpha;
  - clearly harmful candidates (latency +10 %, errors x4) are rolled back
    with probability >= 0.9, and a +20 % conversion lift is promoted with
    probability >= 0.8;
  - with the DEFAULT settings (issue 10, "Must show"): a candidate with 2x
    or 3x the control's error rate, or 10 % more latency, is rolled back in
    >= 99 % of rollouts, a harmless one promoted in >= 95 % and falsely
    rolled back in <= 5 % (each within 3 Monte Carlo standard errors at
    this run count; `make rollout-report` shows 400 runs per row).
The full table (400 runs per row) is `make rollout-report` (docs/rollouts.md).
"""
import math
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402

RUNS = 60


def bound(p, n=RUNS):
    return p + 3 * math.sqrt(p * (1 - p) / n)


def floor(p, n=RUNS):
    return p - 3 * math.sqrt(p * (1 - p) / n)


class RolloutSim(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        tool = os.path.join(harness.BUILD, "tests", "sim_rollouts")
        out = subprocess.run([tool, "--runs", str(RUNS), "--seed", "7"],
                             capture_output=True, text=True, timeout=900,
                             check=True).stdout
        cls.rows = {}
        for line in out.splitlines()[2:]:
            cells = [c.strip() for c in line.strip("|").split("|")]
            cls.rows[cells[0]] = {
                "promoted": float(cells[2]), "rolled_back": float(cells[3]),
                "stopped": float(cells[4]), "paused": float(cells[5]),
                "time_promote": cells[7], "time_rollback": cells[8],
                "cand_units_rollback": cells[9],
                "units_promote": cells[10], "units_rollback": cells[11]}

    def test_table_has_every_scenario(self):
        self.assertEqual(len(self.rows), 13)

    def test_harmless_canary_is_rarely_rolled_back(self):
        r = self.rows["canary, harmless candidate (canary)"]
        self.assertLessEqual(r["rolled_back"], bound(0.05))
        self.assertGreaterEqual(r["promoted"], 0.8)

    def test_must_show_with_defaults(self):
        for name in ("canary, errors x2 (canary)",
                     "canary, errors x3 (canary)",
                     "canary, latency +10 % (canary)"):
            self.assertGreaterEqual(self.rows[name]["rolled_back"],
                                    floor(0.99), name)
        r = self.rows["canary, harmless candidate (canary)"]
        self.assertGreaterEqual(r["promoted"], floor(0.95))
        self.assertLessEqual(r["rolled_back"], bound(0.05))

    def test_time_and_units_to_each_decision_are_reported(self):
        """Issue 10, "Must show": time and units to each decision. Every
        row with promotions reports the mean time and units to promote,
        every row with rollbacks the mean time, the candidate's units and
        all units to roll back; a decision nobody took shows "-"."""
        for name, r in self.rows.items():
            for frac, cols in (("promoted", ("time_promote",
                                             "units_promote")),
                               ("rolled_back", ("time_rollback",
                                                "cand_units_rollback",
                                                "units_rollback"))):
                for col in cols:
                    if r[frac] > 0:
                        self.assertGreater(float(r[col]), 0, (name, col))
                    else:
                        self.assertEqual(r[col], "-", (name, col))
        # the harmful canaries are rolled back after more than one tick's
        # units (200) in all, and a harmless one promoted only after the
        # last partial step's planned power (tens of thousands of units)
        for name in ("canary, errors x2 (canary)",
                     "canary, errors x3 (canary)",
                     "canary, latency +10 % (canary)"):
            self.assertGreater(float(self.rows[name]["units_rollback"]), 200)
        self.assertGreater(float(self.rows[
            "canary, harmless candidate (canary)"]["units_promote"]), 10000)

    def test_aa_test_rarely_promotes(self):
        r = self.rows["ab, A/A (no effect) (ab)"]
        self.assertLessEqual(r["promoted"], bound(0.05))

    def test_harmful_candidates_are_rolled_back(self):
        for name in ("canary, latency +10 % (canary)",
                     "canary, errors x4 (canary)"):
            self.assertGreaterEqual(self.rows[name]["rolled_back"], 0.9, name)
        bg = self.rows["blue_green, latency +10 % (blue_green)"]
        # caught in the smoke period (stopped) or after the switch
        self.assertGreaterEqual(bg["rolled_back"] + bg["stopped"], 0.9)
        self.assertEqual(bg["promoted"], 0)

    def test_better_candidates_are_promoted(self):
        self.assertGreaterEqual(
            self.rows["ab, conversion +20 % (ab)"]["promoted"], 0.8)
        self.assertGreaterEqual(
            self.rows["canary, better (latency -5 %) (canary)"]["promoted"],
            0.8)


def table_rows(text):
    """{scenario: cells} of the markdown table with a "| scenario |" head."""
    rows, inside = {}, False
    for line in text.splitlines():
        if line.startswith("| scenario |"):
            inside = True
            continue
        if inside and line.startswith("|---"):
            continue
        if inside and line.startswith("| "):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells
        elif inside:
            break
    return rows


class RecordedReport(unittest.TestCase):
    """The committed `make rollout-report` output (docs/rollouts.md, 400
    seeded runs per row) meets the issue-10 targets as stated, without
    Monte Carlo slack, and the README shows that same table."""

    @classmethod
    def setUpClass(cls):
        with open(os.path.join(harness.ROOT, "docs", "rollouts.md")) as f:
            cls.rows = table_rows(f.read())
        with open(os.path.join(harness.ROOT, "README.md")) as f:
            cls.readme = table_rows(f.read().split(
                "**Operating characteristics** (`make rollout-report`", 1)[1])

    def test_targets_with_400_runs(self):
        self.assertEqual(len(self.rows), 13)
        for name in ("canary, errors x2 (canary)",
                     "canary, errors x3 (canary)",
                     "canary, latency +10 % (canary)"):
            self.assertEqual(self.rows[name][1], "400")
            self.assertGreaterEqual(float(self.rows[name][3]), 0.99, name)
            self.assertGreater(float(self.rows[name][8]), 0, name)
            self.assertGreater(float(self.rows[name][11]), 0, name)
        harmless = self.rows["canary, harmless candidate (canary)"]
        self.assertGreaterEqual(float(harmless[2]), 0.95)
        self.assertLessEqual(float(harmless[3]), 0.05)
        self.assertGreater(float(harmless[7]), 0)
        self.assertGreater(float(harmless[10]), 0)

    def test_readme_shows_the_report(self):
        self.assertEqual(self.readme, self.rows)


if __name__ == "__main__":
    harness.main()
