"""test_stats_analyze.py -- the `arbiter analyze` front end: malformed
requests exit 2 naming the field; degenerate inputs answer with a status
and a reason and never print NaN; the sequential methods (part B's
stats/msprt.c and stats/gst.c) are wired correctly:

  msprt: p-value and interval re-derived here from the published normal
    mixture (Johari, Pekelis & Walsh 2017; stats/msprt.h):
      rho2 = (-2 ln a + ln(1 - 2 ln a)) / n_star, r = rho2 t_eff,
      LR = (1 + r)^(-1/2) exp(z^2 r / (2 (1 + r))), p = min(1, 1/LR)
  gst: boundaries against R rpact 3.x getDesignGroupSequential (values
    written below), repeated confidence interval estimate -/+ c_k se
    (Jennison & Turnbull 2000, ch. 9).
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


def run(text):
    return harness.run_cli(["analyze"], stdin=text)


def analyze(req):
    r = run(json.dumps(req))
    if r.returncode != 0:
        raise AssertionError("analyze exit %d: %s" % (r.returncode, r.stderr))
    assert "NaN" not in r.stdout and "Infinity" not in r.stdout, r.stdout
    return json.loads(r.stdout)


ARMS = [{"name": "c", "n": 1000, "sum": 5000.0, "sum_sq": 29000.0},
        {"name": "t", "n": 1100, "sum": 5720.0, "sum_sq": 33500.0}]


class Close:
    def close(self, got, want, what, rtol=1e-9, atol=1e-12):
        self.assertIsNotNone(got, what)
        self.assertLessEqual(abs(got - want), rtol * abs(want) + atol,
                             "%s: got %r want %r" % (what, got, want))


class TestMalformed(unittest.TestCase):
    CASES = [
        ("", "malformed JSON"),
        ("{", "malformed JSON"),
        ('{"metric": {"kind": "mean"}, "arms": [], "arms": []}',
         "malformed JSON"),
        ('{"metric": {"kind": "mean"}, "alpha": NaN, "arms": []}',
         "malformed JSON"),
        ('{"metric": {"kind": "mean"}, "alpha": 1e400, "arms": []}',
         "malformed JSON"),
        ('[1]', "request"),
        (json.dumps({"arms": ARMS}), "metric: required"),
        (json.dumps({"metric": {"kind": "mean"}, "bogus": 1, "arms": ARMS}),
         "bogus: unknown field"),
        (json.dumps({"metric": {"kind": "mean", "direction": "up"},
                     "arms": ARMS}), "metric.direction"),
        (json.dumps({"metric": {"kind": "mean"}, "effect": "ratio",
                     "arms": ARMS}), "effect"),
        (json.dumps({"metric": {"kind": "mean"}, "correction": "bonf",
                     "arms": ARMS}), "correction"),
        (json.dumps({"metric": {"kind": "mean"}, "cuped": "yes",
                     "arms": ARMS}), "cuped"),
        (json.dumps({"metric": {"kind": "mean"}, "method": "gst",
                     "information": [0.5, "x"], "arms": ARMS}),
         "information[1]"),
        (json.dumps({"metric": {"kind": "mean"}, "method": "gst",
                     "spending": "power", "information": [0.5],
                     "arms": ARMS}), "rho"),
        (json.dumps({"metric": {"kind": "mean"}, "arms": [ARMS[0]]}),
         "arms"),
        (json.dumps({"metric": {"kind": "mean"}, "arms": [
            dict(ARMS[0], control=True), dict(ARMS[1], control=True)]}),
         "arms[1].control"),
        (json.dumps({"metric": {"kind": "mean"}, "arms": [
            dict(ARMS[0], extra=1), ARMS[1]]}), "arms[0].extra"),
        (json.dumps({"metric": {"kind": "mean"}, "arms": [
            dict(ARMS[0], weight=50), ARMS[1]]}), "weight"),
        (json.dumps({"metric": {"kind": "mean"}, "arms": [
            dict(ARMS[0], weight=-1), dict(ARMS[1], weight=1)]}),
         "arms[0].weight"),
    ]

    def test_exit_2_with_the_field(self):
        for text, needle in self.CASES:
            r = run(text)
            self.assertEqual(r.returncode, 2, (text, r.stdout, r.stderr))
            self.assertEqual(r.stdout, "")
            self.assertIn(needle, r.stderr, text)
            self.assertNotIn("Sanitizer", r.stderr)

    def test_help(self):
        r = harness.run_cli(["analyze", "--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("stdin", r.stdout)


class TestDegenerate(unittest.TestCase):
    def test_every_method_gives_status_not_nan(self):
        bad_arms = [
            ({"n": 1, "sum": 1, "sum_sq": 1}, "few_units"),
            ({"n": 0, "sum": 0, "sum_sq": 0}, "few_units"),
            ({"n": -5, "sum": 1, "sum_sq": 1}, "negative"),
            ({"n": 5, "sum": 1e300, "sum_sq": 1e300}, "overflow"),
            ({"n": 5, "sum": 10, "sum_sq": 20}, "zero_variance"),
        ]
        for method in ("welch", "z", "bayes", "msprt", "gst"):
            for arm, reason in bad_arms:
                req = {"metric": {"kind": "mean"}, "method": method,
                       "arms": [dict(name="c", **arm),
                                dict(name="t", **arm)]}
                if method == "gst":
                    req["information"] = [0.5]
                ans = analyze(req)
                cmp = ans["comparisons"][0]
                self.assertNotEqual(cmp["status"], "ok", (method, arm))
                self.assertEqual(cmp["reason_code"], reason, (method, arm))
                self.assertIsInstance(cmp["reason"], str)
                self.assertIsNone(cmp["effect"])
                self.assertIsNone(cmp["significant"])

    def test_binary_more_conversions_than_units(self):
        ans = analyze({"metric": {"kind": "binary"}, "arms": [
            {"name": "c", "n": 10, "sum": 11},
            {"name": "t", "n": 10, "sum": 5}]})
        self.assertEqual(ans["comparisons"][0]["reason_code"],
                         "inconsistent")

    def test_zero_control_mean_relative(self):
        for method in ("welch", "z", "msprt", "bayes"):
            ans = analyze({"metric": {"kind": "mean"}, "method": method,
                           "effect": "relative", "arms": [
                               {"name": "c", "n": 4, "sum": 0, "sum_sq": 4},
                               {"name": "t", "n": 4, "sum": 2,
                                "sum_sq": 4}]})
            self.assertEqual(ans["comparisons"][0]["reason_code"],
                             "zero_control_mean", method)

    def test_srm_without_units(self):
        ans = analyze({"metric": {"kind": "mean"}, "arms": [
            {"name": "c", "n": 0, "sum": 0, "sum_sq": 0},
            {"name": "t", "n": 0, "sum": 0, "sum_sq": 0}]})
        self.assertIsNone(ans["srm"]["p_value"])
        self.assertNotEqual(ans["srm"]["status"], "ok")


class TestSequentialWiring(unittest.TestCase, Close):
    def msprt_ref(self, c, t, alpha, n_star, relative):
        (nc, mc, vc), (nt, mt, vt) = c, t
        if relative:
            s2 = vt / mc**2 + mt**2 * vc / mc**4
            V = vt / (nt * mc**2) + mt**2 * vc / (nc * mc**4)
            d = mt / mc - 1
        else:
            s2 = vc + vt
            V = vc / nc + vt / nt
            d = mt - mc
        rho2 = (-2 * math.log(alpha) + math.log(1 - 2 * math.log(alpha))) \
            / n_star
        r = rho2 * s2 / V
        z = d / math.sqrt(V)
        log_lr = -0.5 * math.log1p(r) + z * z * r / (2 * (1 + r))
        p = min(1.0, math.exp(-log_lr))
        zc = math.sqrt(2 * (1 + r) / r *
                       (math.log(1 / alpha) + 0.5 * math.log1p(r)))
        return d, p, d - zc * math.sqrt(V), d + zc * math.sqrt(V)

    def test_msprt_two_sided(self):
        """24 requests of one control and 5 treatments: 120 comparisons."""
        rng = np.random.default_rng(61)
        cases = 0
        for rep in range(24):
            c = rng.normal(5, 2, int(rng.integers(50, 5000)))
            ts = [rng.normal(5 + rng.normal(0, 0.2), 2,
                             int(rng.integers(50, 5000))) for _ in range(5)]
            alpha = float(rng.choice([0.01, 0.05, 0.1]))
            n_star = float(rng.choice([500, 5000, 50000]))
            relative = rep % 2 == 1
            arm = lambda name, y: {"name": name, "n": len(y),  # noqa: E731
                                   "sum": math.fsum(y),
                                   "sum_sq": math.fsum(y * y)}
            req = {"metric": {"kind": "mean"}, "method": "msprt",
                   "alpha": alpha, "tuning": n_star,
                   "effect": "relative" if relative else "absolute",
                   "arms": [arm("c", c)] + [arm("t%d" % i, t)
                                            for i, t in enumerate(ts)]}
            for t, cmp in zip(ts, analyze(req)["comparisons"]):
                d, p, lo, hi = self.msprt_ref(
                    (len(c), c.mean(), c.var(ddof=1)),
                    (len(t), t.mean(), t.var(ddof=1)), alpha, n_star,
                    relative)
                self.close(cmp["effect"], d, "msprt effect")
                self.close(cmp["p_value"], p, "msprt p", 1e-9, 1e-14)
                self.close(cmp["ci"][0], lo, "msprt lo")
                self.close(cmp["ci"][1], hi, "msprt hi")
                self.assertEqual(cmp["significant"], p <= alpha)
                cases += 1
        self.assertEqual(cases, 120)

    def test_gst_boundaries_rpact(self):
        # R rpact: getDesignGroupSequential(kMax = 2, alpha = 0.05,
        # sided = 2, typeOfDesign = "asOF", informationRates = c(0.5, 1))
        # $criticalValues = 2.9625880427275479 1.9685956463217735
        ans = analyze({"metric": {"kind": "mean"}, "method": "gst",
                       "information": [0.5, 1.0], "arms": ARMS})
        cmp = ans["comparisons"][0]
        self.close(cmp["boundaries"][0], 2.9625880427275479, "OBF 1", 1e-6)
        self.close(cmp["boundaries"][1], 1.9685956463217735, "OBF 2", 1e-6)
        # getDesignGroupSequential(kMax = 3, alpha = 0.025, sided = 1,
        # typeOfDesign = "asP", informationRates = c(0.3, 0.6, 1)):
        # 2.3118353038057839 2.3209672346711159 2.2689142748713493
        # (the first two looks; the planned third is not reported)
        ans = analyze({"metric": {"kind": "mean"}, "method": "gst",
                       "spending": "pocock", "sided": "greater",
                       "alpha": 0.025, "information": [0.3, 0.6],
                       "arms": ARMS})
        cmp = ans["comparisons"][0]
        self.assertEqual(len(cmp["boundaries"]), 2)
        self.close(cmp["boundaries"][0], 2.3118353038057839, "P 1", 1e-6)
        # with a planned final look at 1, look 2 matches rpact's design
        # with informationRates = c(0.3, 0.6, 1)
        self.close(cmp["boundaries"][1], 2.3209672346711159, "P 2", 1e-6)

    def test_gst_decision_and_repeated_interval(self):
        ans = analyze({"metric": {"kind": "mean"}, "method": "gst",
                       "information": [0.5, 1.0], "arms": ARMS})
        cmp = ans["comparisons"][0]
        mc, mt = 5.0, 5720.0 / 1100
        vc = (29000 - 5000 * mc) / 999
        vt = (33500 - 5720 * mt) / 1099
        se = math.sqrt(vc / 1000 + vt / 1100)
        z = (mt - mc) / se
        self.close(cmp["z"], z, "z")
        self.close(cmp["ci"][0], (mt - mc) - cmp["boundaries"][1] * se, "RCI")
        want = "efficacy" if abs(z) >= cmp["boundaries"][1] else "accept"
        self.assertEqual(cmp["decision"], want)
        self.assertEqual(cmp["significant"], want == "efficacy")
        self.assertIsNone(cmp["p_value"])


if __name__ == "__main__":
    harness.main()
