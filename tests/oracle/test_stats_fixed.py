"""test_stats_fixed.py -- fixed-horizon methods of `arbiter analyze`
(Welch t, z tests, two proportions, delta method for relative lift and
ratio metrics, CUPED) checked against independent implementations:

  scipy.stats.ttest_ind(equal_var=False)            Welch t statistic, p
  statsmodels CompareMeans.tconfint_diff/zconfint_diff/ztest_ind
                                                    Welch/z intervals
  statsmodels proportions_ztest,
  confint_proportions_2indep(method="wald")         two proportions
  numpy from raw per-unit data (formulas written here from Deng, Knoblich
  & Lu 2018, KDD, eq. 3-5)                          delta method, ratio
  statsmodels OLS y ~ C(arm) + x                    CUPED theta (ANCOVA)

Random cases are generated at test time from a fixed seed; every case
runs through the real binary (JSON in, JSON out). Agreement: 1e-9
relative (plus 1e-12 absolute for values that can be ~0).
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
import scipy.special as sp  # noqa: E402
import statsmodels.api as sm  # noqa: E402
from statsmodels.stats.proportion import (  # noqa: E402
    confint_proportions_2indep, proportions_ztest)
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW  # noqa

RTOL = 1e-9
ATOL = 1e-12
SIDES = {"two": "two-sided", "greater": "larger", "less": "smaller"}
SCIPY_SIDES = {"two": "two-sided", "greater": "greater", "less": "less"}


def t_ppf(p, df):
    """Student t quantile to ~1e-15: scipy 1.10's t.ppf is only good to
    about 1e-9 (at df = 6, p = 0.975 it gives 2.4469118487916806 where
    mpmath at 40 digits gives 2.4469118511449699711), so refine it with
    Newton steps on scipy.special.stdtr (cephes incomplete beta)."""
    if math.isinf(df):
        return st.norm.ppf(p)
    x = st.t.ppf(p, df)
    for _ in range(4):
        x -= (sp.stdtr(df, x) - p) / st.t.pdf(x, df)
    return x


def analyze(req):
    r = harness.run_cli(["analyze"], stdin=json.dumps(req))
    if r.returncode != 0:
        raise AssertionError("analyze exit %d: %s" % (r.returncode, r.stderr))
    assert "NaN" not in r.stdout and "Infinity" not in r.stdout, r.stdout
    return json.loads(r.stdout)


def moments(y):
    y = np.asarray(y, dtype=float)
    return {"n": int(len(y)), "sum": math.fsum(y),
            "sum_sq": math.fsum(y * y)}


class Close:
    def close(self, got, want, what, rtol=RTOL, atol=ATOL):
        if want is None or (isinstance(want, float) and math.isinf(want)):
            self.assertIsNone(got, what)
            return
        self.assertIsNotNone(got, what)
        self.assertLessEqual(abs(got - want), rtol * abs(want) + atol,
                             "%s: got %r want %r" % (what, got, want))


def one_sided_ci(lo, hi, side):
    if side == "greater":
        return lo, None
    if side == "less":
        return None, hi
    return lo, hi


class TestWelch(unittest.TestCase, Close):
    """Welch's t test, absolute effect: scipy + statsmodels."""

    def test_random_cases(self):
        rng = np.random.default_rng(20261123)
        cases = 0
        for rep in range(30):
            k = int(rng.integers(4, 7))
            data = []
            for _ in range(k):
                n = int(rng.integers(2, 400))
                data.append(rng.normal(rng.uniform(-5, 20),
                                       rng.uniform(0.1, 10), n))
            alpha = float(rng.choice([0.01, 0.05, 0.1, 0.2]))
            for side in ("two", "greater", "less"):
                req = {"metric": {"kind": "mean"}, "method": "welch",
                       "alpha": alpha, "sided": side,
                       "arms": [dict(name="a%d" % i, **moments(y))
                                for i, y in enumerate(data)]}
                ans = analyze(req)
                c = data[0]
                for i, cmp in enumerate(ans["comparisons"], start=1):
                    t = data[i]
                    ref = st.ttest_ind(t, c, equal_var=False,
                                       alternative=SCIPY_SIDES[side])
                    cm = CompareMeans(DescrStatsW(t), DescrStatsW(c))
                    # statsmodels' se and Satterthwaite df; the quantile
                    # refined (see t_ppf) instead of tconfint_diff's
                    se = cm.std_meandiff_separatevar
                    q = t_ppf(1 - alpha / 2 if side == "two" else 1 - alpha,
                              cm.dof_satt())
                    d = np.mean(t) - np.mean(c)
                    lo, hi = one_sided_ci(d - q * se, d + q * se, side)
                    self.assertEqual(cmp["status"], "ok")
                    self.close(cmp["effect"], np.mean(t) - np.mean(c),
                               "effect")
                    self.close(cmp["p_value"], ref.pvalue, "p (scipy)")
                    self.close(cmp["ci"][0], lo, "ci lo (statsmodels)")
                    self.close(cmp["ci"][1], hi, "ci hi (statsmodels)")
                    self.close(cmp["se"], se, "se (statsmodels)")
                    self.assertEqual(cmp["significant"],
                                     ref.pvalue <= alpha)
                    cases += 1
                for i, arm in enumerate(ans["arms"]):
                    y = data[i]
                    self.close(arm["mean"], np.mean(y), "arm mean")
                    self.close(arm["variance"], np.var(y, ddof=1), "arm var")
                    q = t_ppf(1 - alpha / 2, len(y) - 1)
                    lo, hi = np.mean(y) - q * st.sem(y), \
                        np.mean(y) + q * st.sem(y)
                    self.close(arm["ci"][0], lo, "arm ci lo (scipy t)")
                    self.close(arm["ci"][1], hi, "arm ci hi (scipy t)")
        self.assertGreater(cases, 300)

    def test_golden_small_samples(self):
        # scipy 1.10 ttest_ind([2,3,5,7,8], [1,2,3,4], equal_var=False):
        # t = 1.9080819424304414, p = 0.10391956185821301, df = 6.1347340
        ans = analyze({"metric": {"kind": "mean"}, "arms": [
            dict(name="c", **moments([1, 2, 3, 4])),
            dict(name="t", **moments([2, 3, 5, 7, 8]))]})
        cmp = ans["comparisons"][0]
        self.close(cmp["p_value"], 0.10391956185821301, "golden p")
        self.close(cmp["effect"], 2.5, "golden effect")
        # mpmath, 40 digits (Welch df 6.1347340015420200463, quantile by
        # findroot on betainc): [-0.68899291687031606231,
        # 5.6889929168703160623]. (statsmodels tconfint_diff gives
        # -0.6889929143451385: scipy's t.ppf is off by 1e-9.)
        self.close(cmp["ci"][0], -0.68899291687031606231, "golden lo", 1e-12)
        self.close(cmp["ci"][1], 5.6889929168703160623, "golden hi", 1e-12)


class TestZMeans(unittest.TestCase, Close):
    """method z on means: statsmodels CompareMeans.ztest_ind/zconfint."""

    def test_random_cases(self):
        rng = np.random.default_rng(7)
        cases = 0
        for rep in range(15):
            c = rng.lognormal(1, 0.8, int(rng.integers(20, 3000)))
            ts = [rng.lognormal(1.05, 0.8, int(rng.integers(20, 3000)))
                  for _ in range(4)]
            alpha = float(rng.choice([0.01, 0.05, 0.1]))
            for side in ("two", "greater", "less"):
                ans = analyze({"metric": {"kind": "sum"}, "method": "z",
                               "alpha": alpha, "sided": side,
                               "arms": [dict(name="c", **moments(c))] +
                               [dict(name="t%d" % i, **moments(t))
                                for i, t in enumerate(ts)]})
                for t, cmp in zip(ts, ans["comparisons"]):
                    cm = CompareMeans(DescrStatsW(t), DescrStatsW(c))
                    z, p = cm.ztest_ind(alternative=SIDES[side],
                                        usevar="unequal")
                    lo, hi = cm.zconfint_diff(alpha=alpha,
                                              alternative=SIDES[side],
                                              usevar="unequal")
                    lo, hi = one_sided_ci(lo, hi, side)
                    self.close(cmp["p_value"], p, "z p (statsmodels)")
                    self.close(cmp["ci"][0], lo, "z lo")
                    self.close(cmp["ci"][1], hi, "z hi")
                    cases += 1
        self.assertGreaterEqual(cases, 180)


class TestRelative(unittest.TestCase, Close):
    """Relative lift by the delta method, written here from Deng et al.
    2018 eq. 3: Var(t/c) = v_t/(n_t c^2) + t^2 v_c/(n_c c^4)."""

    def test_random_cases(self):
        rng = np.random.default_rng(11)
        cases = 0
        for rep in range(15):
            c = rng.normal(10, 3, int(rng.integers(5, 2000)))
            ts = [rng.normal(10.3, 3, int(rng.integers(5, 2000)))
                  for _ in range(4)]
            alpha = 0.05
            for method in ("welch", "z"):
                for side in ("two", "greater", "less"):
                    ans = analyze({
                        "metric": {"kind": "mean"}, "method": method,
                        "effect": "relative", "sided": side,
                        "arms": [dict(name="c", **moments(c))] +
                        [dict(name="t%d" % i, **moments(t))
                         for i, t in enumerate(ts)]})
                    for t, cmp in zip(ts, ans["comparisons"]):
                        mc, mt = np.mean(c), np.mean(t)
                        vc = np.var(c, ddof=1) / len(c)
                        vt = np.var(t, ddof=1) / len(t)
                        lift = mt / mc - 1
                        se = math.sqrt(vt / mc**2 + mt**2 * vc / mc**4)
                        if method == "welch":
                            df = (vc + vt) ** 2 / (vc**2 / (len(c) - 1) +
                                                   vt**2 / (len(t) - 1))
                            dist = st.t(df)
                        else:
                            dist = st.norm()
                            df = math.inf
                        z = lift / se
                        p = {"two": 2 * dist.sf(abs(z)),
                             "greater": dist.sf(z),
                             "less": dist.cdf(z)}[side]
                        q = t_ppf(1 - alpha / 2 if side == "two"
                                  else 1 - alpha, df)
                        lo, hi = one_sided_ci(lift - q * se, lift + q * se,
                                              side)
                        self.close(cmp["effect"], lift, "lift")
                        self.close(cmp["se"], se, "lift se")
                        self.close(cmp["p_value"], p, "lift p")
                        self.close(cmp["ci"][0], lo, "lift lo")
                        self.close(cmp["ci"][1], hi, "lift hi")
                        cases += 1
        self.assertGreaterEqual(cases, 360)


class TestProportions(unittest.TestCase, Close):
    """Two-proportion z test: statsmodels proportions_ztest (pooled) and
    confint_proportions_2indep(method="wald") (unpooled interval)."""

    def test_random_cases(self):
        rng = np.random.default_rng(3)
        cases = 0
        for rep in range(30):
            nc = int(rng.integers(20, 200000))
            pc = float(rng.uniform(0.01, 0.6))
            xc = int(rng.binomial(nc, pc))
            tr = []
            for _ in range(4):
                nt = int(rng.integers(20, 200000))
                xt = int(rng.binomial(nt, pc * float(rng.uniform(0.8, 1.25))))
                tr.append((nt, xt))
            if xc in (0, nc) or any(x in (0, n) for n, x in tr):
                continue
            alpha = float(rng.choice([0.01, 0.05, 0.1]))
            for side in ("two", "greater", "less"):
                ans = analyze({
                    "metric": {"kind": "binary"}, "method": "z",
                    "alpha": alpha, "sided": side,
                    "arms": [{"name": "c", "n": nc, "sum": xc}] +
                    [{"name": "t%d" % i, "n": nt, "sum": xt, "sum_sq": xt}
                     for i, (nt, xt) in enumerate(tr)]})
                for (nt, xt), cmp in zip(tr, ans["comparisons"]):
                    z, p = proportions_ztest([xt, xc], [nt, nc],
                                             alternative=SIDES[side])
                    a2 = alpha if side == "two" else 2 * alpha
                    lo, hi = confint_proportions_2indep(
                        xt, nt, xc, nc, method="wald", compare="diff",
                        alpha=a2)
                    lo, hi = one_sided_ci(lo, hi, side)
                    self.close(cmp["effect"], xt / nt - xc / nc, "diff")
                    self.close(cmp["p_value"], p, "p (proportions_ztest)")
                    self.close(cmp["ci"][0], lo, "wald lo")
                    self.close(cmp["ci"][1], hi, "wald hi")
                    cases += 1
        self.assertGreaterEqual(cases, 300)

    def test_golden(self):
        # statsmodels 0.13.5 proportions_ztest([120, 100], [1000, 1000]):
        # z = 1.4293008498232314, p = 0.1529177818639462 (pooled)
        ans = analyze({"metric": {"kind": "binary"},
                       "arms": [{"name": "c", "n": 1000, "sum": 100},
                                {"name": "t", "n": 1000, "sum": 120}]})
        cmp = ans["comparisons"][0]
        self.close(cmp["p_value"], 0.1529177818639462, "golden p")


class TestRatioMetric(unittest.TestCase, Close):
    """Ratio metrics: sum y / sum x clustered by unit, delta method from
    raw per-unit data (Deng et al. 2018, eq. 5)."""

    def test_random_cases(self):
        rng = np.random.default_rng(5)
        cases = 0
        for rep in range(20):
            arms, stats = [], []
            for i in range(5):
                n = int(rng.integers(10, 3000))
                x = rng.poisson(5, n) + 1.0                  # requests
                y = x * rng.gamma(2, 50 * (1 + 0.05 * i), n)  # latency sum
                arms.append({"name": "a%d" % i, "n": n,
                             "sum": math.fsum(y), "sum_sq": math.fsum(y * y),
                             "den_sum": math.fsum(x),
                             "den_sum_sq": math.fsum(x * x),
                             "cross_sum": math.fsum(x * y)})
                r = y.sum() / x.sum()
                lin = (y - r * x) / x.mean()
                stats.append((r, np.var(lin, ddof=1) / n, n,
                              np.var(lin, ddof=1)))
            for effect in ("absolute", "relative"):
                for method in ("welch", "z"):
                    ans = analyze({"metric": {"kind": "ratio"},
                                   "method": method, "effect": effect,
                                   "arms": arms})
                    rc, vc, nc, _ = stats[0]
                    for i, cmp in enumerate(ans["comparisons"], start=1):
                        rt, vt, nt, s_t = stats[i]
                        if effect == "absolute":
                            est, se = rt - rc, math.sqrt(vc + vt)
                        else:
                            est = rt / rc - 1
                            se = math.sqrt(vt / rc**2 + rt**2 * vc / rc**4)
                        df = (vc + vt) ** 2 / (vc**2 / (nc - 1) +
                                               vt**2 / (nt - 1))
                        dist = st.t(df) if method == "welch" else st.norm()
                        p = 2 * dist.sf(abs(est / se))
                        self.close(ans["arms"][i]["mean"], rt, "ratio R")
                        self.close(ans["arms"][i]["variance"], s_t,
                                   "linearised variance")
                        self.close(cmp["effect"], est, "ratio effect")
                        self.close(cmp["se"], se, "ratio se")
                        self.close(cmp["p_value"], p, "ratio p")
                        cases += 1
        self.assertGreaterEqual(cases, 320)


class TestCuped(unittest.TestCase, Close):
    """CUPED: theta from statsmodels OLS y ~ C(arm) + x (the pooled
    within-arm slope); adjusted per-unit y' = y - theta (x - xbar) then
    scipy Welch on y'; relative lift over the unadjusted control mean by
    the delta method with Cov(d', m_c) = -(s_yy - theta s_xy)_c / n_c."""

    def test_random_cases(self):
        rng = np.random.default_rng(17)
        cases = 0
        for rep in range(36):
            k = int(rng.integers(3, 6))
            ys, xs = [], []
            for i in range(k):
                n = int(rng.integers(10, 1500))
                x = rng.normal(20, 5, n)
                y = 0.8 * x + rng.normal(0.3 * i, 3, n) + 5
                ys.append(y)
                xs.append(x)
            arms = [{"name": "a%d" % i, **moments(ys[i]),
                     "pre_sum": math.fsum(xs[i]),
                     "pre_sum_sq": math.fsum(xs[i] ** 2),
                     "pre_cross_sum": math.fsum(xs[i] * ys[i])}
                    for i in range(k)]
            # ANCOVA slope (statsmodels OLS with arm dummies)
            yy = np.concatenate(ys)
            xx = np.concatenate(xs)
            dummies = np.zeros((len(yy), k))
            off = 0
            for i in range(k):
                dummies[off:off + len(ys[i]), i] = 1
                off += len(ys[i])
            fit = sm.OLS(yy, np.column_stack([dummies, xx])).fit()
            theta = fit.params[-1]
            xbar = xx.mean()
            adj = [ys[i] - theta * (xs[i] - xbar) for i in range(k)]
            for effect in ("absolute", "relative"):
                side = ("two", "greater", "less")[rep % 3]
                ans = analyze({"metric": {"kind": "mean"}, "cuped": True,
                               "effect": effect, "sided": side,
                               "arms": arms})
                self.close(ans["theta"], theta, "theta (OLS)", 1e-9)
                for i, cmp in enumerate(ans["comparisons"], start=1):
                    if effect == "absolute":
                        ref = st.ttest_ind(adj[i], adj[0], equal_var=False,
                                           alternative=SCIPY_SIDES[side])
                        self.close(cmp["effect"],
                                   adj[i].mean() - adj[0].mean(), "effect")
                        self.close(cmp["p_value"], ref.pvalue,
                                   "cuped p (scipy Welch on y')")
                    else:
                        c_raw, c_adj, t_adj = ys[0], adj[0], adj[i]
                        d = t_adj.mean() - c_adj.mean()
                        mc = c_raw.mean()
                        nc, nt = len(c_raw), len(t_adj)
                        vd = (np.var(t_adj, ddof=1) / nt +
                              np.var(c_adj, ddof=1) / nc)
                        vm = np.var(c_raw, ddof=1) / nc
                        cov = -np.cov(c_adj, c_raw, ddof=1)[0, 1] / nc
                        lift = d / mc
                        var = (vd / mc**2 - 2 * d * cov / mc**3 +
                               d**2 * vm / mc**4)
                        a, b = np.var(t_adj, ddof=1) / nt, \
                            np.var(c_adj, ddof=1) / nc
                        df = (a + b) ** 2 / (a**2 / (nt - 1) +
                                             b**2 / (nc - 1))
                        z = lift / math.sqrt(var)
                        dist = st.t(df)
                        p = {"two": 2 * dist.sf(abs(z)),
                             "greater": dist.sf(z),
                             "less": dist.cdf(z)}[side]
                        self.close(cmp["effect"], lift, "cuped lift")
                        self.close(cmp["se"], math.sqrt(var), "cuped lift se")
                        self.close(cmp["p_value"], p, "cuped lift p")
                    cases += 1
                for i, arm in enumerate(ans["arms"]):
                    self.close(arm["mean"], adj[i].mean(), "adjusted mean")
                    self.close(arm["unadjusted_mean"], ys[i].mean(), "raw")
        self.assertGreaterEqual(cases, 200)


if __name__ == "__main__":
    harness.main()
