"""test_operating_characteristics.py -- the sequential methods keep their
false positive rate under continuous peeking; a fixed-horizon test does not.

Runs the seeded simulator tests/tools/sim_stats.c (built with the sanitizers, so
kept lean: 20000 A/A and 4000 A/B experiments, 20 looks of 1000 units per
arm, conversion rate 0.10, lift +8 %, alpha 0.05). The README table comes
from the same simulator with 400000 / 100000 replicates (`make sim-stats`).

Monte Carlo error: a rate estimated from R replicates has standard error
sqrt(p (1 - p) / R); for p = alpha = 0.05 and R = 20000 that is 0.00154.
"At or below alpha within Monte Carlo error" is asserted as
    fpr <= alpha + 3 se(alpha)    (one-sided 3 sigma: a method whose true
                                   rate is exactly alpha fails by chance
                                   with probability 0.0013)
and "does not" as the published value for peeking: 20 equally spaced looks
at a nominal 0.05 two-sided z test give an overall level of 0.248
(Armitage, McPherson & Rowe 1969; Jennison & Turnbull 2000, Table 1.1),
asserted within 3 se.
"""
import json
import math
import os
import subprocess
import sys
import unittest

from scipy.stats import norm

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402

SIM = os.path.join(harness.BUILD, "tests", "sim_stats")
SEED = 20261123
R0, R1 = 20000, 4000
LOOKS, BATCH, P0, LIFT, ALPHA = 20, 1000, 0.10, 0.08, 0.05
SEQUENTIAL = ("msprt_two", "msprt_one", "gst_obf", "gst_pocock")


def se(p, r):
    return math.sqrt(p * (1 - p) / r)


class OperatingCharacteristics(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        out = subprocess.run(
            [SIM, "--json", "--seed", str(SEED), "--reps-null", str(R0),
             "--reps-alt", str(R1), "--looks", str(LOOKS), "--batch",
             str(BATCH), "--p0", repr(P0), "--lift", repr(LIFT), "--alpha",
             repr(ALPHA)], capture_output=True, text=True, timeout=900)
        if out.returncode != 0:
            raise RuntimeError("sim_stats failed:\n" + out.stderr)
        cls.res = json.loads(out.stdout)
        cls.m = cls.res["methods"]
        print("\n" + json.dumps(cls.res, indent=1), file=sys.stderr)

    def test_run_is_what_was_asked(self):
        self.assertEqual((self.res["reps_null"], self.res["reps_alt"]),
                         (R0, R1))
        self.assertEqual(self.res["looks"], LOOKS)

    def test_sequential_methods_keep_alpha_under_peeking(self):
        bound = ALPHA + 3 * se(ALPHA, R0)
        for key in SEQUENTIAL:
            self.assertLessEqual(self.m[key]["fpr"], bound, key)

    def test_peeking_fixed_horizon_does_not(self):
        fpr = self.m["fixed_peeking"]["fpr"]
        self.assertGreater(fpr, ALPHA + 3 * se(ALPHA, R0))
        # published: 0.248 for 20 looks (J&T 2000, Table 1.1)
        self.assertAlmostEqual(fpr, 0.248, delta=3 * se(0.248, R0))
        for key in SEQUENTIAL:
            self.assertLess(self.m[key]["fpr"], fpr - 10 * se(fpr, R0), key)

    def test_simulator_is_calibrated(self):
        """The single final look is a plain z test: its rate is alpha and
        its power the normal-theory power, each within 3 se."""
        m = self.m["fixed_final"]
        self.assertAlmostEqual(m["fpr"], ALPHA, delta=3 * se(ALPHA, R0))
        n = LOOKS * BATCH
        p1 = P0 * (1 + LIFT)
        s = math.sqrt(P0 * (1 - P0) / n + p1 * (1 - p1) / n)
        z = norm.isf(ALPHA / 2)
        power = norm.sf(z - (p1 - P0) / s) + norm.cdf(-z - (p1 - P0) / s)
        self.assertAlmostEqual(m["power"], power, delta=3 * se(power, R1))
        self.assertEqual(m["units_alt"], n)

    def test_group_sequential_spends_alpha_exactly(self):
        """GST designs spend all of alpha over the planned looks: their rate
        is alpha within 3 se (not just below it)."""
        for key in ("gst_obf", "gst_pocock"):
            self.assertAlmostEqual(self.m[key]["fpr"], ALPHA,
                                   delta=3 * se(ALPHA, R0), msg=key)

    def test_power_and_expected_sample_size(self):
        """At lift +8 %: every sequential method has real power and stops
        early on average; O'Brien-Fleming is within 5 points of the fixed
        design; the one-sided mSPRT beats the two-sided one in the
        direction it tests."""
        n_max = LOOKS * BATCH
        fixed = self.m["fixed_final"]["power"]
        for key in SEQUENTIAL:
            m = self.m[key]
            self.assertGreater(m["power"], 0.3, key)
            self.assertLess(m["units_alt"], 0.9 * n_max, key)
            self.assertLessEqual(m["power"], fixed + 3 * se(fixed, R1), key)
        self.assertGreater(self.m["gst_obf"]["power"], fixed - 0.05)
        self.assertGreater(self.m["msprt_one"]["power"],
                           self.m["msprt_two"]["power"])


if __name__ == "__main__":
    harness.main()
