"""test_stats_quantile.py -- stats/quantile.c (the difference of quantiles
from DDSketches, issue 16) against an independent numpy / scipy
implementation of the formulas in stats/quantile.h, through the driver
build/tests/quantile_oracle (tests/tools/quantile_oracle.c).

The oracle: the sketch of a sample is the sorted array of its bucket
indices i = ceil(ln x / ln gamma), gamma = 1.01 / 0.99 (numpy); X_(r) lies
in (gamma^(i-1), gamma^i] with i the r-th smallest index, and the point
value is 2 gamma^i / (gamma + 1).
  fixed horizon: h = 1.959963984540054 sqrt(n q (1-q)), l = floor(nq - h),
    u = ceil(nq + h) + 1, se = sqrt(q(1-q)/n) n (edge_hi(u) - edge_lo(l)) /
    (u - l); z = scipy.stats.norm.ppf(1 - alpha/2); difference
    [lo_t - hi_c - z se, hi_t - lo_c + z se] over the point buckets' edges;
    relative exp(ln(lo_t/hi_c) -/+ z sqrt((se_t/lo_t)^2 + (se_c/lo_c)^2)) - 1.
  sequence: ln M(s) = betaln(qr + s, (1-q)r + t - s) - betaln(qr, (1-q)r)
    - s ln q - (t - s) ln(1 - q) (scipy.special.betaln) over every s in
    0..t; [s_lo, s_hi] = the s with ln M < ln(2 / alpha); bounds
    edge_lo(s_lo) and edge_hi(s_hi + 1).
Random samples (seeded): lognormal and Pareto arms of unequal sizes,
q = 0.5, 0.95, 0.99; every number equal within 1e-9 relative.
"""
import math
import os
import random
import subprocess
import sys
import unittest

import numpy as np
from scipy import special, stats

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import harness  # noqa: E402

DRIVER = os.path.join(harness.BUILD, "tests", "quantile_oracle")
GAMMA = (1 + 0.01) / (1 - 0.01)
LG = math.log(GAMMA)
Z0 = 1.959963984540054


def buckets(xs):
    return np.sort(np.ceil(np.log(np.asarray(xs)) / LG).astype(np.int64))


def lo_edge(i):
    return math.exp((i - 1) * LG)


def hi_edge(i):
    return math.exp(i * LG)


def point(b, q):
    k = max(1, math.ceil(q * len(b)))
    return 2 * math.exp(b[k - 1] * LG) / (GAMMA + 1), b[k - 1]


def fixed(bc, bt, q, alpha):
    def arm(b):
        n = len(b)
        h = Z0 * math.sqrt(n * q * (1 - q))
        l, u = math.floor(n * q - h), math.ceil(n * q + h) + 1
        se = math.sqrt(q * (1 - q) / n) * n * (hi_edge(b[u - 1]) - lo_edge(b[l - 1])) / (u - l)
        v, i = point(b, q)
        return v, lo_edge(i), hi_edge(i), se
    vc, lc, hc, sc = arm(bc)
    vt, lt, ht, st = arm(bt)
    z = stats.norm.ppf(1 - alpha / 2)
    se = math.hypot(sc, st)
    sel = math.hypot(st / lt, sc / lc)
    return [vt - vc, lt - hc - z * se, ht - lc + z * se, vt / vc - 1,
            math.exp(math.log(lt / hc) - z * sel) - 1,
            math.exp(math.log(ht / lc) + z * sel) - 1]


def ranks(t, q, alpha, r):
    s = np.arange(t + 1, dtype=float)
    a, b = q * r, (1 - q) * r
    lm = (special.betaln(a + s, b + t - s) - special.betaln(a, b)
          - s * math.log(q) - (t - s) * math.log1p(-q))
    ok = np.nonzero(lm < math.log(1 / alpha))[0]
    return int(ok[0]), int(ok[-1])


def seq(bc, bt, q, alpha, r):
    def arm(b):
        lo, hi = ranks(len(b), q, alpha / 2, r)
        low = lo_edge(b[lo - 1]) if lo >= 1 else 0.0
        high = hi_edge(b[hi]) if hi + 1 <= len(b) else math.inf
        return low, high
    cl, ch = arm(bc)
    tl, th = arm(bt)
    vc, _ = point(bc, q)
    vt, _ = point(bt, q)
    return [vt - vc, tl - ch, th - cl, vt / vc - 1, tl / ch - 1, th / cl - 1]


def run_driver(xc, xt, q, alpha, r):
    text = "".join("c %r\n" % x for x in xc) + "".join("t %r\n" % x for x in xt)
    out = subprocess.run([DRIVER, repr(q), repr(alpha), repr(r)], input=text,
                         capture_output=True, text=True, check=True).stdout
    rows = {}
    for line in out.splitlines():
        f = line.split()
        rows[f[0]] = [float(x) for x in f[1:]]
    return rows


class QuantileOracle(unittest.TestCase):
    def check(self, got, want, what):
        for g, w in zip(got, want):
            if math.isinf(w):
                self.assertEqual(g, w, what)
            else:
                self.assertLessEqual(abs(g - w), 1e-9 * max(1.0, abs(w)), (what, got, want))

    def test_against_numpy_scipy(self):
        rng = random.Random(2016)
        cases = 0
        for q in (0.5, 0.95, 0.99):
            for dist in ("lognormal", "pareto"):
                for n_c, n_t in ((3000, 2000), (1500, 6000)):
                    if dist == "lognormal":
                        xc = [rng.lognormvariate(3, 0.5) for _ in range(n_c)]
                        xt = [rng.lognormvariate(3.05, 0.55) for _ in range(n_t)]
                    else:
                        xc = [10 * rng.paretovariate(1.5) for _ in range(n_c)]
                        xt = [11 * rng.paretovariate(1.4) for _ in range(n_t)]
                    rows = run_driver(xc, xt, q, 0.05, 5000)
                    bc, bt = buckets(xc), buckets(xt)
                    self.assertEqual(rows["fixed"][0], 0)
                    self.check(rows["fixed"][1:], fixed(bc, bt, q, 0.05),
                               ("fixed", q, dist, n_c))
                    self.assertEqual(rows["cs"][0], 0)
                    self.check(rows["cs"][1:], seq(bc, bt, q, 0.05, 5000),
                               ("cs", q, dist, n_c))
                    self.assertEqual(tuple(int(x) for x in rows["ranks"]),
                                     ranks(n_c, q, 0.025, 5000))
                    cases += 1
        self.assertEqual(cases, 12)

    def test_too_few_values_for_the_fixed_interval(self):
        rows = run_driver([1.0 + i for i in range(50)], [2.0 + i for i in range(50)],
                          0.99, 0.05, 5000)
        self.assertEqual(rows["fixed"], [2.0])  # AB_ENOTFOUND


if __name__ == "__main__":
    harness.main()
