"""test_stats_plan.py -- the parts of stats/ that `arbiter analyze` does
not expose, through the line driver build/.../tests/stats_a_driver:

  error counts (stats/counts.c): mixture e-value of the conditional
    binomial, re-implemented here from the formula in counts.h with
    scipy.integrate.quad; the rate-ratio MLE against its closed form
    (constant share: (x_t/pi) / (x_c/(1-pi))) and scipy brentq on the score;
    validity under a ramp by simulation (Ville: P(sup E >= 1/alpha) <=
    alpha).
  planning (stats/power.c): statsmodels NormalIndPower.power evaluated at
    the sample size we return must equal the requested power (1e-9);
    mSPRT planning against the published boundary (Johari et al. 2017;
    stats/msprt.h) re-derived here.
  t quantiles (stats/welch.c): scipy t.ppf refined by Newton on
    scipy.special.stdtr, plus mpmath golden values.
"""
import json
import math
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402

import unittest  # noqa: E402

import numpy as np  # noqa: E402
import scipy.integrate as si  # noqa: E402
import scipy.optimize as so  # noqa: E402
import scipy.special as sp  # noqa: E402
import scipy.stats as st  # noqa: E402
from statsmodels.stats.power import NormalIndPower  # noqa: E402

DRIVER = os.path.join(harness.BUILD, "tests", "stats_a_driver")


def drive(requests):
    text = "".join(json.dumps(r) + "\n" for r in requests)
    out = subprocess.run([DRIVER], input=text, capture_output=True,
                         text=True, timeout=600, check=True)
    lines = out.stdout.splitlines()
    assert len(lines) == len(requests), out.stderr
    return [json.loads(x) for x in lines]


class Close:
    def close(self, got, want, what, rtol=1e-9, atol=1e-300):
        self.assertIsNotNone(got, what)
        self.assertLessEqual(abs(got - want), rtol * abs(want) + atol,
                             "%s: got %r want %r" % (what, got, want))


# ---- error counts: the formula of counts.h, written again -------------

def loglik(u, periods):
    total = 0.0
    for xc, xt, pi in periods:
        th = sp.expit(u + sp.logit(pi))
        if xt:
            total += xt * (math.log(th) - math.log(pi))
        if xc:
            total += xc * (math.log1p(-th) - math.log1p(-pi))
    return total


def log_e_value(periods, tau, side):
    lo, hi = -math.inf, math.inf
    if side == "greater":
        lo = 0.0
    elif side == "less":
        hi = 0.0
    norm = -math.log(tau) - 0.5 * math.log(2 * math.pi) + \
        (0 if side == "two" else math.log(2))
    h = lambda u: loglik(u, periods) - 0.5 * (u / tau) ** 2  # noqa: E731
    b = (max(lo, -30), min(hi, 30))
    mode = so.minimize_scalar(lambda u: -h(u), bounds=b, method="bounded",
                              options={"xatol": 1e-12}).x
    shift = h(mode)
    n = sum(xc + xt for xc, xt, _ in periods)
    width = 60 / math.sqrt(n / 4 + 1 / tau**2)
    a, c = max(lo, mode - width), min(hi, mode + width)
    v, _ = si.quad(lambda u: math.exp(h(u) - shift), a, c, points=[mode]
                   if a < mode < c else None, epsabs=0, epsrel=1e-12,
                   limit=400)
    return shift + math.log(v) + norm


class TestCounts(unittest.TestCase, Close):
    def test_random_cases(self):
        rng = np.random.default_rng(31)
        reqs, refs = [], []
        for rep in range(300):
            k = int(rng.integers(1, 6))
            shares = np.sort(rng.uniform(0.01, 0.5, k))     # a ramp
            rate = float(rng.uniform(0.001, 0.05))
            ratio = float(rng.choice([1.0, 1.0, 1.2, 1.5, 0.8]))
            periods = []
            for s in shares:
                units = int(rng.integers(100, 20000))
                xt = int(rng.poisson(units * s * rate * ratio))
                xc = int(rng.poisson(units * (1 - s) * rate))
                periods.append((xc, xt, float(s)))
            if sum(a + b for a, b, _ in periods) == 0:
                continue
            tau = float(rng.choice([0.25, 0.5, 1.0]))
            side = ("two", "greater", "less")[rep % 3]
            reqs.append({"fn": "counts", "periods": periods, "tau": tau,
                         "side": side})
            refs.append((periods, tau, side))
        outs = drive(reqs)
        for out, (periods, tau, side) in zip(outs, refs):
            self.assertEqual(out["status"], "ok")
            want = log_e_value(periods, tau, side)
            self.close(out["log_e"], want, "log E (quad)", 1e-7, 1e-9)
            self.close(out["p"], min(1.0, math.exp(-want)), "p", 1e-7,
                       1e-12)
            xt = sum(p[1] for p in periods)
            xc = sum(p[0] for p in periods)
            if xt > 0 and xc > 0:
                score = lambda u: sum(  # noqa: E731
                    b - (a + b) * sp.expit(u + sp.logit(s))
                    for a, b, s in periods)
                mle = so.brentq(score, -30, 30, xtol=1e-14, rtol=1e-14)
                self.close(out["rate_ratio"], math.exp(mle), "MLE", 1e-9)
        self.assertGreater(len(outs), 250)

    def test_golden_constant_share(self):
        # One period, share 0.1: MLE = (x_t/0.1) / (x_c/0.9) = (30/0.1) /
        # (200/0.9) = 1.35 exactly (closed form). No errors: E = 1, p = 1.
        out = drive([{"fn": "counts", "periods": [[200, 30, 0.1]],
                      "side": "two"},
                     {"fn": "counts", "periods": [[0, 0, 0.3]],
                      "side": "greater"}])
        self.close(out[0]["rate_ratio"], 1.35, "closed-form MLE", 1e-12)
        self.assertEqual(out[1]["log_e"], 0.0)
        self.assertEqual(out[1]["p"], 1.0)

    def test_degenerate(self):
        out = drive([{"fn": "counts", "periods": [[-1, 3, 0.5]]},
                     {"fn": "counts", "periods": [[1, 3, 1.0]]},
                     {"fn": "counts", "periods": [[1.5, 3, 0.5]]},
                     {"fn": "counts", "periods": []}])
        self.assertEqual([o["reason"] for o in out],
                         ["negative", "bad_parameter", "inconsistent",
                          "bad_parameter"])
        self.assertTrue(all(o["status"] == "invalid" for o in out))

    def test_valid_under_a_ramp(self):
        """A/A with the treatment share ramping 1 -> 5 -> 25 -> 50 percent,
        analysed after every batch: the fraction of experiments whose
        e-value ever reaches 1/alpha stays <= alpha (plus 3 Monte Carlo
        standard errors). Seeded."""
        rng = np.random.default_rng(2024)
        alpha, sims, rejected = 0.05, 200, 0
        ramp = [0.01, 0.05, 0.25, 0.5]
        reqs, owner = [], []
        for s in range(sims):
            periods = []
            for share in ramp:
                for batch in range(3):
                    units = 3000
                    xt = int(rng.poisson(units * share * 0.02))
                    xc = int(rng.poisson(units * (1 - share) * 0.02))
                    periods.append([xc, xt, share])
                    reqs.append({"fn": "counts", "periods": list(periods),
                                 "side": "two"})
                    owner.append(s)
        outs = drive(reqs)
        crossed = set(o for o, r in zip(owner, outs) if r["p"] <= alpha)
        rejected = len(crossed)
        mc = 3 * math.sqrt(alpha * (1 - alpha) / sims)
        self.assertLessEqual(rejected / sims, alpha + mc)


# ---- planning ----------------------------------------------------------

def msprt_z_crit(r, alpha, side):
    """Critical |z| of the normal mixture at r (msprt.h): two-sided in
    closed form, one-sided (half-normal mixture) by brentq."""
    if side == "two":
        return math.sqrt(2 * (1 + r) / r *
                         (math.log(1 / alpha) + 0.5 * math.log1p(r)))

    def f(z):
        return (math.log(2) + st.norm.logcdf(z * math.sqrt(r / (1 + r))) -
                0.5 * math.log1p(r) + z * z * r / (2 * (1 + r)) -
                math.log(1 / alpha))
    return so.brentq(f, 0, 100, xtol=1e-15, rtol=1e-15)


class TestPower(unittest.TestCase, Close):
    def test_fixed_horizon(self):
        rng = np.random.default_rng(41)
        reqs = []
        for rep in range(300):
            side = ("two", "greater", "less")[rep % 3]
            mde = float(rng.uniform(0.01, 2)) * (-1 if side == "less" else 1)
            reqs.append({"fn": "power_fixed",
                         "sd_c": float(rng.uniform(0.5, 5)),
                         "sd_t": float(rng.uniform(0.5, 5)), "mde": mde,
                         "alpha": float(rng.choice([0.01, 0.05, 0.1])),
                         "power": float(rng.choice([0.5, 0.8, 0.9, 0.95])),
                         "ratio": float(rng.choice([1, 0.5, 2, 19])),
                         "side": side})
        outs = drive(reqs)
        for q, out in zip(reqs, outs):
            self.assertEqual(out["status"], "ok")
            r = q["ratio"]
            # common sd so that statsmodels' se = sd sqrt(1/n + 1/(r n))
            sd = math.sqrt((q["sd_c"] ** 2 + q["sd_t"] ** 2 / r) /
                           (1 + 1 / r))
            alt = {"two": "two-sided", "greater": "larger",
                   "less": "smaller"}[q["side"]]
            pw = NormalIndPower().power(effect_size=q["mde"] / sd,
                                        nobs1=out["n"], alpha=q["alpha"],
                                        ratio=r, alternative=alt)
            self.close(pw, q["power"], "statsmodels power at our n", 1e-9)

    def test_golden(self):
        # Classic: sd 1 both arms, mde 0.2, alpha 0.05 two-sided, power 0.8:
        # n = 2 (1.959964 + 0.841621)^2 / 0.04 = 392.4 per arm (one tail;
        # the far tail lowers it by ~1e-6). statsmodels NormalIndPower
        # .solve_power(0.2, alpha=0.05, power=0.8) = 392.443...
        out = drive([{"fn": "power_fixed", "sd_c": 1, "sd_t": 1, "mde": 0.2,
                      "alpha": 0.05, "power": 0.8, "side": "two"}])[0]
        want = NormalIndPower().solve_power(0.2, alpha=0.05, power=0.8)
        self.close(out["n"], want, "solve_power", 1e-6)
        self.assertAlmostEqual(out["n"], 392.44, places=1)

    def test_msprt(self):
        rng = np.random.default_rng(43)
        reqs = []
        for rep in range(150):
            side = ("two", "greater")[rep % 2]
            reqs.append({"fn": "power_msprt",
                         "sd_c": float(rng.uniform(0.5, 3)),
                         "sd_t": float(rng.uniform(0.5, 3)),
                         "mde": float(rng.uniform(0.02, 0.5)),
                         "alpha": float(rng.choice([0.01, 0.05, 0.1])),
                         "power": float(rng.choice([0.8, 0.9])),
                         "n_star": float(rng.choice([1000, 5000, 20000])),
                         "side": side})
        outs = drive(reqs)
        fixed = drive([dict(q, fn="power_fixed") for q in reqs])
        for q, out, fx in zip(reqs, outs, fixed):
            self.assertEqual(out["status"], "ok", out)
            a = q["alpha"]
            rho2 = (-2 * math.log(a) + math.log(1 - 2 * math.log(a))) / \
                q["n_star"]
            s2 = q["sd_c"] ** 2 + q["sd_t"] ** 2

            def power_at(n):
                c = msprt_z_crit(rho2 * n, a, q["side"])
                d = q["mde"] / math.sqrt(s2 / n)
                p = st.norm.sf(c - d)
                if q["side"] == "two":
                    p += st.norm.cdf(-c - d)
                return p, c, d
            p, _, _ = power_at(out["n_power"])
            self.close(p, q["power"], "single-look power at n_power", 1e-8)
            _, c, d = power_at(out["n_expected"])
            self.close(d, c, "drift meets boundary at n_expected", 1e-8)
            # the sequential test needs more units than the fixed one
            self.assertGreater(out["n_power"], fx["n"])


class TestQuantiles(unittest.TestCase, Close):
    def test_random(self):
        rng = np.random.default_rng(47)
        reqs = []
        for _ in range(400):
            p = float(rng.choice([rng.uniform(1e-6, 1 - 1e-6),
                                  10 ** -rng.uniform(1, 8)]))
            df = float(10 ** rng.uniform(0, 4))
            reqs.append({"fn": "tq", "p": p, "df": df})
        for q, out in zip(reqs, drive(reqs)):
            x = st.t.ppf(q["p"], q["df"])
            for _ in range(6):
                x -= (sp.stdtr(q["df"], x) - q["p"]) / st.t.pdf(x, q["df"])
            self.close(out["x"], x, "t quantile", 1e-11)

    def test_golden_mpmath(self):
        # mpmath 1.2.1, 40 digits, findroot on betainc:
        #   qt(0.975, 6)                 = 2.4469118511449699711
        #   qt(0.975, 6.134734001542021) = 2.4339439196875326429
        #   qt(0.975, 100.5)             = 1.9838506553357997992
        outs = drive([{"fn": "tq", "p": 0.975, "df": 6},
                      {"fn": "tq", "p": 0.975, "df": 6.134734001542021},
                      {"fn": "tq", "p": 0.975, "df": 100.5}])
        for out, want in zip(outs, [2.4469118511449699711,
                                    2.4339439196875326429,
                                    1.9838506553357997992]):
            self.close(out["x"], want, "mpmath golden", 1e-14)


if __name__ == "__main__":
    harness.main()
