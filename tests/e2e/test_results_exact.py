"""test_results_exact.py -- every number /results reports for an A/B test
without ramps, recomputed here from the raw events (numpy / scipy) and
equal within 1e-9 (issue 10, the parts of the exactness suite that belong
to /results: its methods, absolute and relative effects, guardrails in
both directions).

Units are assigned through POST /v1/assign; each posts one value per
metric. References, written beside the values:
  arm means and variances: numpy (ddof=1);
  welch absolute: scipy.stats.ttest_ind(t, c, equal_var=False,
    alternative=...) (Welch 1947); its df for the relative effect too;
  relative: effect m_t/m_c - 1, se^2 = v_t/(n_t m_c^2) + m_t^2 v_c/(n_c m_c^4)
    (delta method, stats/welch.h);
  z: the same standard errors against the normal (scipy.stats.norm);
  msprt (two-sided, primary): the normal mixture of Johari, Pekelis &
    Walsh 2017 (formula in tests/oracle/test_stats_analyze.py);
  guardrails are one-sided in the HARMFUL direction: "greater" for a
  `decrease` metric, "less" for an `increase` one.
"""
import math
import os
import random
import sys
import time
import unittest

import numpy as np
from scipy import stats as sst

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import harness  # noqa: E402
from service_client import ADMIN, Client  # noqa: E402

KEY = "exact"
METRICS = [("latency", "decrease", "guardrail"),
           ("throughput", "increase", "guardrail"),
           ("revenue", "increase", "primary")]


class ResultsExact(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = harness.fresh_database("e2e_results_exact")
        cls.server = harness.Server(cls.db).start()
        cls.c = Client(cls.server.port)
        doc = {"key": KEY, "strategy": "ab",
               "arms": [{"name": "control", "weight": 50, "control": True},
                        {"name": "treatment", "weight": 50}],
               "metrics": [{"name": n, "kind": "mean", "direction": d,
                            "role": r} for n, d, r in METRICS],
               "rollout": {"auto_promote": False}}
        st, ans = cls.c.call("POST", "/v1/experiments", doc, token=ADMIN)
        assert st == 201, ans
        st, ans = cls.c.call("POST", "/v1/experiments/%s/start" % KEY,
                             token=ADMIN)
        assert st == 200, ans
        rng = random.Random(5)
        cls.values = {(m, a): [] for m, _, _ in METRICS
                      for a in ("control", "treatment")}
        events = []
        for i in range(500):
            unit = "x%d" % i
            st, a = cls.c.call("POST", "/v1/assign",
                               {"unit": unit, "experiments": [KEY]})
            assert st == 200, a
            arm = a["assignments"][0]["arm"]
            t = arm == "treatment"
            vals = {"latency": rng.gauss(104 if t else 100, 15),
                    "throughput": rng.gauss(97 if t else 100, 12),
                    "revenue": rng.gauss(10.5 if t else 10, 4)}
            for m, v in vals.items():
                v = round(v, 6)
                cls.values[(m, arm)].append(v)
                events.append({"experiment": KEY, "unit": unit, "metric": m,
                               "value": v})
        for k in range(0, len(events), 2000):
            st, ans = cls.c.call("POST", "/v1/events", events[k:k + 2000])
            assert st == 202, ans
        # wait until every event is in the statistics
        want = len(events)
        deadline = time.time() + 30
        while time.time() < deadline:
            st, res = cls.c.call("GET", "/v1/experiments/%s/results?method="
                                 "welch" % KEY, token=ADMIN)
            got = sum(a["n"] for m in res["metrics"]
                      for a in m["analysis"]["arms"])
            if got >= want:
                break
            time.sleep(0.2)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        cls.server.stop()

    def results(self, method, effect):
        st, res = self.c.call(
            "GET", "/v1/experiments/%s/results?method=%s&effect=%s"
            % (KEY, method, effect), token=ADMIN)
        self.assertEqual(st, 200, res)
        return {m["name"]: m for m in res["metrics"]}

    def close(self, got, want, what):
        self.assertIsNotNone(got, what)
        self.assertTrue(abs(got - want) <= 1e-9 * max(1.0, abs(want)),
                        "%s: got %r want %r" % (what, got, want))

    def ref(self, name, relative):
        c = np.array(self.values[(name, "control")])
        t = np.array(self.values[(name, "treatment")])
        nc, nt = len(c), len(t)
        mc, mt = c.mean(), t.mean()
        vc, vt = c.var(ddof=1), t.var(ddof=1)
        a, b = vc / nc, vt / nt
        df = (a + b) ** 2 / (a * a / (nc - 1) + b * b / (nt - 1))
        if relative:
            eff = mt / mc - 1
            se = math.sqrt(vt / (nt * mc ** 2) + mt ** 2 * vc / (nc * mc ** 4))
        else:
            eff = mt - mc
            se = math.sqrt(a + b)
        return c, t, eff, se, df

    def test_arm_statistics(self):
        res = self.results("welch", "absolute")
        for name, _, _ in METRICS:
            arms = {a["name"]: a for a in res[name]["analysis"]["arms"]}
            for arm in ("control", "treatment"):
                x = np.array(self.values[(name, arm)])
                self.assertEqual(arms[arm]["n"], len(x))
                self.close(arms[arm]["mean"], x.mean(), (name, arm, "mean"))

    def test_welch_and_z_every_metric_both_effects(self):
        for method in ("welch", "z"):
            for effect in ("absolute", "relative"):
                res = self.results(method, effect)
                for name, direction, role in METRICS:
                    c, t, eff, se, df = self.ref(name, effect == "relative")
                    side = ("two-sided" if role != "guardrail" else
                            "greater" if direction == "decrease" else "less")
                    stat = eff / se
                    dist = sst.t(df) if method == "welch" else sst.norm
                    p = (2 * dist.sf(abs(stat)) if side == "two-sided" else
                         dist.sf(stat) if side == "greater" else
                         dist.cdf(stat))
                    if method == "welch" and effect == "absolute":
                        # the textbook routine agrees
                        p2 = sst.ttest_ind(t, c, equal_var=False,
                                           alternative=side).pvalue
                        self.close(p, p2, "scipy welch")
                    cmp_ = res[name]["analysis"]["comparisons"][0]
                    what = (method, effect, name)
                    self.close(cmp_["effect"], eff, what + ("effect",))
                    self.close(cmp_["se"], se, what + ("se",))
                    self.close(cmp_["p_value"], p, what + ("p",))
                    q = dist.ppf(0.95 if side != "two-sided" else 0.975)
                    lo, hi = cmp_["ci"]
                    if side in ("two-sided", "greater"):
                        self.close(lo, eff - q * se, what + ("lo",))
                    if side in ("two-sided", "less"):
                        self.close(hi, eff + q * se, what + ("hi",))

    def test_msprt_primary(self):
        for effect in ("absolute", "relative"):
            res = self.results("msprt", effect)
            c, t, eff, se, _ = self.ref("revenue", effect == "relative")
            nc, nt = len(c), len(t)
            mc, mt = c.mean(), t.mean()
            vc, vt = c.var(ddof=1), t.var(ddof=1)
            if effect == "relative":
                s2 = vt / mc ** 2 + mt ** 2 * vc / mc ** 4
            else:
                s2 = vc + vt
            V = se * se
            alpha, n_star = 0.05, 5000.0
            rho2 = (-2 * math.log(alpha) +
                    math.log(1 - 2 * math.log(alpha))) / n_star
            r = rho2 * s2 / V
            z = eff / se
            log_lr = -0.5 * math.log1p(r) + z * z * r / (2 * (1 + r))
            p = min(1.0, math.exp(-log_lr))
            cmp_ = res["revenue"]["analysis"]["comparisons"][0]
            self.close(cmp_["effect"], eff, ("msprt", effect, "effect"))
            self.close(cmp_["p_value"], p, ("msprt", effect, "p"))

    def test_msprt_guardrails_both_directions(self):
        """One-sided always-valid test in the harmful direction ("greater"
        for the `decrease` latency, "less" for the `increase` throughput):
        LR = 2 Phi(z' sqrt(r/(1+r))) (1+r)^(-1/2) exp(z'^2 r / (2 (1+r))),
        z' = z for greater, -z for less (stats/msprt.h; Johari et al. 2017,
        one-sided mixture over the half line)."""
        for effect in ("absolute", "relative"):
            res = self.results("msprt", effect)
            for name, direction, role in METRICS:
                if role != "guardrail":
                    continue
                c, t, eff, se, _ = self.ref(name, effect == "relative")
                mc, mt = c.mean(), t.mean()
                vc, vt = c.var(ddof=1), t.var(ddof=1)
                s2 = (vt / mc ** 2 + mt ** 2 * vc / mc ** 4
                      if effect == "relative" else vc + vt)
                alpha, n_star = 0.05, 5000.0
                rho2 = (-2 * math.log(alpha) +
                        math.log(1 - 2 * math.log(alpha))) / n_star
                r = rho2 * s2 / (se * se)
                z = eff / se
                zs = z if direction == "decrease" else -z
                log_lr = (math.log(2 * sst.norm.cdf(zs * math.sqrt(r / (1 + r))))
                          - 0.5 * math.log1p(r) + zs * zs * r / (2 * (1 + r)))
                p = min(1.0, math.exp(-log_lr))
                cmp_ = res[name]["analysis"]["comparisons"][0]
                what = ("msprt", effect, name)
                self.close(cmp_["effect"], eff, what + ("effect",))
                self.close(cmp_["se"], se, what + ("se",))
                self.close(cmp_["p_value"], p, what + ("p",))
                # the interval has one finite end, on the harmful side
                lo, hi = cmp_["ci"]
                if direction == "decrease":
                    self.assertIsNone(hi, what)
                    self.assertLess(lo, eff, what)
                else:
                    self.assertIsNone(lo, what)
                    self.assertGreater(hi, eff, what)

    def test_bayes_every_metric_both_effects(self):
        """Normal model with a flat prior on the effect: posterior mean =
        the estimate, sd = its standard error, equal-tailed 95 % interval,
        chance_to_win = P(effect in the metric's good direction)
        (stats/bayes.h; scipy.stats.norm)."""
        for effect in ("absolute", "relative"):
            res = self.results("bayes", effect)
            for name, direction, _ in METRICS:
                _, _, eff, se, _ = self.ref(name, effect == "relative")
                cmp_ = res[name]["analysis"]["comparisons"][0]
                what = ("bayes", effect, name)
                self.close(cmp_["effect"], eff, what + ("effect",))
                self.close(cmp_["se"], se, what + ("se",))
                q = sst.norm.ppf(0.975)
                self.close(cmp_["ci"][0], eff - q * se, what + ("lo",))
                self.close(cmp_["ci"][1], eff + q * se, what + ("hi",))
                good = eff if direction == "increase" else -eff
                self.close(cmp_["chance_to_win"], sst.norm.cdf(good / se),
                           what + ("chance",))


class MetricSrm(unittest.TestCase):
    """The SRM test of each metric's n in /results: Pearson's chi-square
    against the experiment's weights while they never changed
    (scipy.stats.chisquare with f_exp in the weights' shares); once the
    weights changed, the arms' n mix several weightings and the test is
    refused with reason_code "mixed_weights" (before: tested against equal
    shares, so every 20/80 experiment showed a mismatch)."""

    @classmethod
    def setUpClass(cls):
        cls.db = harness.fresh_database("e2e_results_metric_srm")
        cls.server = harness.Server(cls.db).start()
        cls.c = Client(cls.server.port)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        cls.server.stop()

    def metric_srm(self, key):
        deadline = time.time() + 30
        while True:
            st, res = self.c.call("GET", "/v1/experiments/%s/results?method="
                                  "welch" % key, token=ADMIN)
            self.assertEqual(st, 200, res)
            an = res["metrics"][0]["analysis"]
            if sum(a["n"] for a in an["arms"]) >= 400 or \
                    time.time() > deadline:
                return an
            time.sleep(0.2)

    def test_against_the_weights_then_refused_after_a_change(self):
        key = "srm-metric"
        doc = {"key": key, "strategy": "ab",
               "arms": [{"name": "control", "weight": 20, "control": True},
                        {"name": "treatment", "weight": 80}],
               "metrics": [{"name": "buy", "kind": "binary",
                            "direction": "increase", "role": "primary"}],
               "rollout": {"auto_promote": False}}
        st, ans = self.c.call("POST", "/v1/experiments", doc, token=ADMIN)
        self.assertEqual(st, 201, ans)
        st, ans = self.c.call("POST", "/v1/experiments/%s/start" % key,
                              token=ADMIN)
        self.assertEqual(st, 200, ans)
        events = []
        for i in range(400):
            st, a = self.c.call("POST", "/v1/assign",
                                {"unit": "s%d" % i, "experiments": [key]})
            self.assertEqual(st, 200, a)
            events.append({"experiment": key, "unit": "s%d" % i,
                           "metric": "buy", "value": 1 if i % 3 == 0 else 0})
        st, ans = self.c.call("POST", "/v1/events", events)
        self.assertEqual(st, 202, ans)
        an = self.metric_srm(key)
        ns = [a["n"] for a in an["arms"]]
        self.assertEqual(sum(ns), 400)
        chi = sst.chisquare(ns, [sum(ns) * 0.2, sum(ns) * 0.8])
        srm = an["srm"]
        self.assertEqual(srm["weights"], "configured")
        self.assertAlmostEqual(srm["chi2"], chi.statistic, delta=1e-9)
        self.assertAlmostEqual(srm["p_value"], chi.pvalue, delta=1e-9)
        self.assertFalse(srm["mismatch"])  # 20/80 served as 20/80
        arms = [{"name": "control", "weight": 50, "control": True},
                {"name": "treatment", "weight": 50}]
        st, ans = self.c.call("PATCH", "/v1/experiments/" + key,
                              {"arms": arms}, token=ADMIN)
        self.assertEqual(st, 200, ans)
        srm = self.metric_srm(key)["srm"]
        self.assertEqual(srm["reason_code"], "mixed_weights")
        self.assertIsNone(srm["p_value"])
        self.assertIsNone(srm["mismatch"])


if __name__ == "__main__":
    harness.main()
