"""test_stats_paired.py -- stats/paired.c (paired shadow analysis) against
scipy and statsmodels, at 1e-9 relative (absolute below 1e-300).

Oracles, one per output (the source of each value is named at its check):
* agreement interval: statsmodels proportion_confint(method='beta') and
  scipy binomtest(...).proportion_ci(method='exact') (Clopper-Pearson);
* exact one-sided binomial test: scipy binomtest(alternative='greater');
* McNemar: statsmodels.stats.contingency_tables.mcnemar, exact=True and
  exact=False with correction=True;
* paired mean: scipy ttest_rel for t and p; the confidence sequence from
  the closed form of the two-sided normal mixture written here from
  Howard et al. (2021) eq. (14): |z| <= sqrt(2 (1+r)/r (ln(1/alpha) +
  ln(1+r)/2)), r = rho2 n, rho2 = (-2 ln a + ln(1 - 2 ln a)) / n_star;
* quantiles: numpy.quantile (method 'linear', type 7);
* score shift: scipy wilcoxon(method='approx', correction=False,
  zero_method='wilcox').
"""
import json
import math
import os
import random
import subprocess
import sys
import unittest

import numpy as np
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import harness  # noqa: E402

REL = 1e-9
DRIVER = os.path.join(harness.BUILD, "tests", "paired_oracle")


def drive(lines):
    out = subprocess.run([DRIVER], input="\n".join(lines) + "\n",
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError("paired_oracle failed:\n" + out.stderr)
    return [json.loads(x) for x in out.stdout.splitlines()]


class Paired(unittest.TestCase):
    def close(self, got, want, what):
        tol = max(REL * abs(want), 1e-300)
        self.assertLessEqual(abs(got - want), tol,
                             "%s: got %r want %r" % (what, got, want))

    def test_agreement_clopper_pearson(self):
        cases = [(95, 100, 0.05), (0, 20, 0.05), (20, 20, 0.05),
                 (950, 1000, 0.01), (1, 3, 0.1), (4870, 5000, 0.05),
                 (9999, 10000, 0.05), (37, 41, 0.2)]
        got = drive(["agree %d %d %r" % c for c in cases])
        for (k, n, a), g in zip(cases, got):
            lo, hi = proportion_confint(k, n, alpha=a, method="beta")
            # proportion_confint returns nan at the edges; Clopper-Pearson
            # is 0 / 1 there (scipy binomtest's interval says so too)
            ci = stats.binomtest(k, n).proportion_ci(1 - a, method="exact")
            lo = 0.0 if k == 0 else lo
            hi = 1.0 if k == n else hi
            self.close(g["low"], lo, "cp low %r" % ((k, n, a),))
            self.close(g["high"], hi, "cp high %r" % ((k, n, a),))
            self.close(g["low"], ci.low, "binomtest low %r" % ((k, n, a),))
            self.close(g["high"], ci.high, "binomtest high %r" % ((k, n, a),))
            self.close(g["rate"], k / n, "rate")

    def test_binomial_exact_greater(self):
        cases = [(5, 100, 0.02), (0, 10, 0.3), (50, 1000, 0.02),
                 (12, 200, 0.05), (3, 3, 0.5), (70, 1000, 0.05)]
        got = drive(["binom %d %d %r" % c for c in cases])
        for (k, n, p0), g in zip(cases, got):
            want = stats.binomtest(k, n, p0, alternative="greater").pvalue
            self.close(g["p"], want, "binomtest greater %r" % ((k, n, p0),))

    def test_mcnemar_both_forms(self):
        cases = [(10, 3), (0, 5), (7, 7), (24, 0), (30, 12), (100, 80),
                 (1, 0), (13, 12), (250, 300)]
        got = drive(["mcnemar %d %d" % c for c in cases])
        for (b, c), g in zip(cases, got):
            table = [[50, b], [c, 40]]
            ex = mcnemar(table, exact=True)
            ch = mcnemar(table, exact=False, correction=True)
            self.close(g["p_exact"], ex.pvalue, "mcnemar exact %r" % ((b, c),))
            self.close(g["chi2"], ch.statistic, "mcnemar chi2 %r" % ((b, c),))
            self.close(g["p_chi2"], ch.pvalue, "mcnemar chi2 p %r" % ((b, c),))
            want_method = "exact_binomial" if b + c < 25 else "chi_square"
            self.assertEqual(g["method"], want_method)
            self.close(g["p"], ex.pvalue if b + c < 25 else ch.pvalue, "p")

    def test_paired_mean_ttest_rel_and_sequence(self):
        rng = random.Random(7)
        lines, data = [], []
        for n, shift, alpha, n_star in [(30, 0.4, 0.05, 5000),
                                        (500, 1.0, 0.05, 1000),
                                        (2000, -0.1, 0.02, 5000),
                                        (12, 3.0, 0.1, 100)]:
            x = np.array([rng.gauss(20, 4) for _ in range(n)])
            y = x + np.array([rng.gauss(shift, 2) for _ in range(n)])
            d = y - x
            lines.append("mean %r %r %r %r %r" % (float(n), float(d.mean()),
                                                  float(d.var(ddof=1)),
                                                  alpha, float(n_star)))
            data.append((x, y, d, alpha, n_star))
        for g, (x, y, d, alpha, n_star) in zip(drive(lines), data):
            t = stats.ttest_rel(y, x)
            self.close(g["t"], t.statistic, "ttest_rel t")
            self.close(g["p"], t.pvalue, "ttest_rel p")
            la = math.log(alpha)
            rho2 = (-2 * la + math.log(1 - 2 * la)) / n_star
            r = rho2 * len(d)
            z = math.sqrt(2 * (1 + r) / r * (-la + 0.5 * math.log1p(r)))
            se = d.std(ddof=1) / math.sqrt(len(d))
            self.close(g["cs_low"], d.mean() - z * se, "cs low")
            self.close(g["cs_high"], d.mean() + z * se, "cs high")

    def test_quantiles_numpy_linear(self):
        rng = random.Random(11)
        x = [rng.lognormvariate(0, 1) - rng.lognormvariate(0, 1)
             for _ in range(997)]
        qs = [0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1]
        got = drive(["quantile %r %s" % (q, " ".join(map(repr, x)))
                     for q in qs])
        for q, g in zip(qs, got):
            self.close(g["q"], float(np.quantile(x, q)), "quantile %r" % q)

    def test_wilcoxon_signed_rank(self):
        rng = random.Random(3)
        samples = []
        for n, shift, digits in [(60, 0.0, 2), (300, 0.05, 1),
                                 (1000, 0.01, 3), (25, 0.5, 12)]:
            x = [round(rng.random(), digits) for _ in range(n)]
            y = [round(v + rng.gauss(shift, 0.1), digits) for v in x]
            samples.append((y, x))
        lines = []
        for y, x in samples:
            d = [a - b for a, b in zip(y, x)]
            lines.append("wilcoxon " + " ".join(map(repr, d)))
        for (y, x), g in zip(samples, drive(lines)):
            w = stats.wilcoxon(y, x, method="approx", correction=False,
                               zero_method="wilcox")
            self.close(g["statistic"], w.statistic, "wilcoxon statistic")
            self.close(g["p"], w.pvalue, "wilcoxon p")
            self.assertEqual(g["n"], sum(1 for a, b in zip(y, x) if a != b))

    def test_refusals(self):
        got = drive(["agree 5 0 0.05", "agree 6 5 0.05", "mcnemar 0 0",
                     "mean 1 2 3 0.05 0", "mean 10 1 0 0.05 0",
                     "wilcoxon 0 0 0"])
        self.assertEqual([g["status"] for g in got],
                         ["invalid", "invalid", "numeric", "numeric",
                          "numeric", "numeric"])


if __name__ == "__main__":
    unittest.main()
