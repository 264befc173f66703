"""test_bandits.py -- bandits/ against scipy on random problems.

The oracle is scipy 1.10 (Debian 12, /usr/bin/python3):
  P(best)  scipy.integrate.quad of f_k(x) prod_{j != k} F_j(x) with
           scipy.stats.beta / scipy.stats.t posteriors built here from the
           conjugate formulas (Beta(1 + s, 1 + n - s); Murphy 2007 NIG with
           mu0 = 0, kappa0 = 1e-3, a0 = 1, b0 = 1, the defaults of
           bandit_config_default), epsabs 1e-13, breakpoints at every
           posterior's mean +- sd;
  KL-UCB   scipy.optimize.brentq of n kl(p, q) = ln t + c ln ln t.
The C side runs through build/.../tests/test_bandit_driver. Bounds:
quadrature 1e-6 absolute (the unit tests see <= 1e-7 on fixed cases);
Monte Carlo 5 standard errors sqrt(p (1 - p) / D) + 1e-6.
"""
import math
import os
import random
import subprocess
import sys
import unittest

import numpy as np
from scipy import integrate, optimize, stats

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402

DRIVER = os.path.join(harness.BUILD, "tests", "test_bandit_driver")


def drive(lines):
    r = subprocess.run([DRIVER], input="\n".join(lines) + "\n",
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr
    return r.stdout.splitlines()


def beta_post(n, s):
    return stats.beta(1 + s, 1 + n - s)


def t_post(n, s, ss, mu0=0.0, k0=1e-3, a0=1.0, b0=1.0):
    xbar = s / n if n > 0 else 0.0
    S = max(ss - s * xbar, 0.0) if n > 0 else 0.0
    kn = k0 + n
    mun = (k0 * mu0 + n * xbar) / kn
    an = a0 + n / 2
    bn = b0 + S / 2 + k0 * n * (xbar - mu0) ** 2 / (2 * kn)
    return stats.t(df=2 * an, loc=mun, scale=math.sqrt(bn / (an * kn)))


def scipy_pbest(dists):
    out = []
    for k, d in enumerate(dists):
        lo, hi = d.ppf(1e-13), d.isf(1e-13)
        pts = sorted({float(x) for e in dists
                      for x in (e.mean() - e.std(), e.mean(),
                                e.mean() + e.std()) if lo < x < hi})

        def f(x, k=k, d=d):
            v = d.pdf(x)
            for j, e in enumerate(dists):
                if j != k:
                    v *= e.cdf(x)
            return v
        v, _ = integrate.quad(f, lo, hi, points=pts, epsabs=1e-13,
                              epsrel=1e-12, limit=2000)
        out.append(v)
    return out


def random_problems(rng, count):
    probs = []
    for i in range(count):
        k = rng.randint(2, 5)
        gaussian = i % 2 == 1
        arms = []
        for _ in range(k):
            n = rng.choice([0, 3, 20, 200, 1000, 5000, 20000])
            if gaussian:
                n = max(n, 2)
                m = rng.uniform(-0.5, 0.5)
                v = rng.uniform(0.5, 4.0)
                arms.append((n, n * m, n * (m * m + v)))
            else:
                p = rng.uniform(0.01, 0.3)
                s = float(round(n * p))
                arms.append((n, s, s))
        probs.append((gaussian, arms))
    return probs


def line(kind, method, draws, seed, arms):
    parts = ["pbest", "gaussian" if kind else "binary", method, str(draws),
             str(seed), str(len(arms))]
    for a in arms:
        parts += ["%.17g" % x for x in a]
    return " ".join(parts)


class BanditOracle(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rng = random.Random(20240611)
        cls.problems = random_problems(rng, 24)
        cls.want = []
        for gaussian, arms in cls.problems:
            if gaussian:
                d = [t_post(*a) for a in arms]
            else:
                d = [beta_post(a[0], a[1]) for a in arms]
            cls.want.append(scipy_pbest(d))

    def test_quadrature_matches_scipy(self):
        got = drive([line(g, "quad", 0, 0, a) for g, a in self.problems])
        worst = 0.0
        for (g, arms), out, want in zip(self.problems, got, self.want):
            p = [float(x) for x in out.split()]
            self.assertEqual(len(p), len(arms), out)
            for x, w in zip(p, want):
                worst = max(worst, abs(x - w))
                self.assertAlmostEqual(x, w, delta=1e-6,
                                       msg="%s %s" % (g, arms))
        print("quadrature: max |C - scipy| = %.2e" % worst, file=sys.stderr)

    def test_monte_carlo_within_five_standard_errors(self):
        D = 100000
        got = drive([line(g, "mc", D, 1000 + i, a)
                     for i, (g, a) in enumerate(self.problems)])
        for (g, arms), out, want in zip(self.problems, got, self.want):
            p = [float(x) for x in out.split()]
            for x, w in zip(p, want):
                se = math.sqrt(max(w * (1 - w), 0.0) / D)
                self.assertAlmostEqual(x, w, delta=5 * se + 1e-6,
                                       msg="%s %s" % (g, arms))

    def test_klucb_index_matches_brentq(self):
        rng = random.Random(7)
        cases, lines = [], []
        for _ in range(40):
            n = rng.choice([5, 50, 500, 5000])
            s = float(rng.randint(0, n))
            t = n * rng.choice([2, 10, 100])
            c = rng.choice([0, 3])
            cases.append((n, s, t, c))
            lines.append("klucb binary %d %d %d %.17g %.17g" % (t, c, n, s,
                                                               s))
        got = drive(lines)
        for (n, s, t, c), out in zip(cases, got):
            p = s / n
            level = (math.log(t) + c * math.log(math.log(t))) / n

            def g(q):
                return stats.entropy([p, 1 - p], [q, 1 - q]) - level
            if p >= 1.0:
                want = 1.0
            elif g(1 - 1e-15) <= 0:
                want = 1.0
            else:
                want = optimize.brentq(g, p, 1 - 1e-15, xtol=1e-14)
            self.assertAlmostEqual(float(out), want, delta=2e-10,
                                   msg=str((n, s, t, c)))

    def test_invalid_statistics_are_rejected(self):
        got = drive(["pbest binary quad 0 0 2 10 11 11 10 3 3",
                     "pbest gaussian quad 0 0 2 4 8 10 4 1 1"])
        self.assertEqual(got, ["error invalid", "error invalid"])


if __name__ == "__main__":
    harness.main()
