"""test_stats_health.py -- sample-ratio mismatch and multiple-comparison
adjustment in `arbiter analyze`, against:

  scipy.stats.chisquare(observed, expected)      SRM chi-square and p
  statsmodels multipletests(method="holm"|"fdr_bh")
                                                 Holm / Benjamini-Hochberg
Random seeded cases plus golden ones. Agreement 1e-9 relative.
"""
import json
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402

import unittest  # noqa: E402

import numpy as np  # noqa: E402
import scipy.stats as st  # noqa: E402
from statsmodels.stats.multitest import multipletests  # noqa: E402


def analyze(req):
    r = harness.run_cli(["analyze"], stdin=json.dumps(req))
    if r.returncode != 0:
        raise AssertionError("analyze exit %d: %s" % (r.returncode, r.stderr))
    assert "NaN" not in r.stdout and "Infinity" not in r.stdout, r.stdout
    return json.loads(r.stdout)


class Close:
    def close(self, got, want, what, rtol=1e-9, atol=1e-300):
        self.assertIsNotNone(got, what)
        self.assertLessEqual(abs(got - want), rtol * abs(want) + atol,
                             "%s: got %r want %r" % (what, got, want))


class TestSrm(unittest.TestCase, Close):
    def test_random_cases(self):
        rng = np.random.default_rng(1)
        cases = 0
        for rep in range(200):
            k = int(rng.integers(2, 9))
            w = rng.uniform(1, 50, k)
            if rep % 5 == 0:
                w = np.full(k, 100.0 / k)
            n = int(rng.integers(100, 1000000))
            probs = w / w.sum()
            if rep % 3 == 0:        # a real mismatch
                probs = probs * rng.uniform(0.9, 1.1, k)
                probs /= probs.sum()
            counts = rng.multinomial(n, probs)
            if (counts < 2).any():
                continue
            arms = [{"name": "a%d" % i, "n": int(counts[i]),
                     "sum": float(counts[i]), "sum_sq": float(counts[i]),
                     "weight": float(w[i])} for i in range(k)]
            ans = analyze({"metric": {"kind": "mean"}, "arms": arms})
            exp = counts.sum() * w / w.sum()
            ref = st.chisquare(counts, exp)
            self.close(ans["srm"]["chi2"], ref.statistic, "chi2 (scipy)")
            self.close(ans["srm"]["p_value"], ref.pvalue, "p (scipy)",
                       1e-9, 1e-300)
            self.assertEqual(ans["srm"]["mismatch"], ref.pvalue < 0.001)
            cases += 1
        self.assertGreater(cases, 150)

    def test_golden(self):
        # scipy.stats.chisquare([5100, 4900], [5000, 5000]):
        # statistic = 4.0, pvalue = 0.04550026389635842
        ans = analyze({"metric": {"kind": "mean"}, "arms": [
            {"name": "c", "n": 5100, "sum": 1, "sum_sq": 1, "weight": 50},
            {"name": "t", "n": 4900, "sum": 1, "sum_sq": 1, "weight": 50}]})
        self.close(ans["srm"]["chi2"], 4.0, "golden chi2")
        self.close(ans["srm"]["p_value"], 0.04550026389635842, "golden p")
        self.assertFalse(ans["srm"]["mismatch"])
        # 95/5 canary with 5 percent too few canary units:
        # chisquare([9525, 475], [9500, 500]) = 1.3157894736842106,
        # p = 0.25134910881022265 (scipy)
        ans = analyze({"metric": {"kind": "mean"}, "arms": [
            {"name": "c", "n": 9525, "sum": 1, "sum_sq": 1, "weight": 95},
            {"name": "t", "n": 475, "sum": 1, "sum_sq": 1, "weight": 5}]})
        self.close(ans["srm"]["p_value"], 0.25134910881022265, "canary p")


class TestCorrections(unittest.TestCase, Close):
    def test_random_families(self):
        rng = np.random.default_rng(2)
        cases = 0
        for rep in range(40):
            k = int(rng.integers(3, 12))
            data = [rng.normal(10 + (0.3 if i % 3 == 1 else 0), 2,
                               int(rng.integers(30, 500))) for i in range(k)]
            arms = [{"name": "a%d" % i, "n": len(y),
                     "sum": math.fsum(y), "sum_sq": math.fsum(y * y)}
                    for i, y in enumerate(data)]
            method = ("welch", "z", "msprt")[rep % 3]
            for corr, sm_name in (("holm", "holm"), ("bh", "fdr_bh")):
                ans = analyze({"metric": {"kind": "mean"}, "method": method,
                               "correction": corr, "alpha": 0.1,
                               "arms": arms})
                ps = [c["p_value"] for c in ans["comparisons"]]
                reject, adj, _, _ = multipletests(ps, alpha=0.1,
                                                  method=sm_name)
                for c, a, rj in zip(ans["comparisons"], adj, reject):
                    self.close(c["adjusted_p_value"], a,
                               "%s adjusted (statsmodels)" % corr)
                    self.assertEqual(c["significant"], bool(rj))
                    cases += 1
        self.assertGreater(cases, 300)


if __name__ == "__main__":
    harness.main()
