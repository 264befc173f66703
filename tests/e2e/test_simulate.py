"""test_simulate.py -- `arbiter simulate` smoke test under ASan.

Tiny configurations whose output is fixed by the seed: the golden text was
produced by this binary (gcc -O2 and the ASan -O1 build give the same
bytes); it changes only if the policies, the seeding or the reward model
change, which must then be a deliberate, reviewed update. The Lai-Robbins
constant is recomputed here from its definition (Lai and Robbins 1985).
"""
import json
import math
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402

TINY = ["simulate", "--means", "0.2,0.5,0.3", "--horizon", "400",
        "--runs", "3", "--seed", "7", "--points", "4"]

GOLDEN = """\
arbiter simulate: bernoulli, 3 arms, horizon 400, 3 runs, batch 1, seed 7, stationary
lai-robbins constant 3.987102 (lower bound 23.8886 at t = 400)
policy               regret         se   best_share   lr_ratio
uniform           64.700000   1.569501     0.356667     2.7084
thompson          13.000000   2.260531     0.936667     0.5442
top_two           42.966667   2.245242     0.526667     1.7986
ucb1              29.166667   5.011431     0.806667     1.2209
kl_ucb            13.100000   5.716642     0.966667     0.5484
eps_greedy         9.266667   1.747697     0.926667     0.3879
"""

BATCHED = ["simulate", "--means", "0.1,0.3", "--means-end", "0.4,0.6",
           "--horizon", "600", "--runs", "4", "--batch", "100", "--seed",
           "5", "--estimators", "--policies", "thompson", "--floor", "0.1",
           "--points", "3", "--json"]


def kl(p, q):
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


class SimulateTest(unittest.TestCase):
    def run_ok(self, args):
        r = harness.run_cli(args)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("Sanitizer", r.stderr)
        self.assertNotIn("runtime error", r.stderr)
        return r.stdout

    def test_tiny_online_run_is_the_golden_text(self):
        self.assertEqual(self.run_ok(TINY), GOLDEN)

    def test_same_seed_same_json_other_seed_differs(self):
        a = self.run_ok(TINY + ["--json"])
        b = self.run_ok(TINY + ["--json"])
        c = self.run_ok(TINY[:-4] + ["--seed", "8", "--points", "4",
                                     "--json"])
        self.assertEqual(a, b)
        self.assertNotEqual(a, c)

    def test_json_curves(self):
        d = json.loads(self.run_ok(TINY + ["--json"]))
        # sum over suboptimal arms of (mu* - mu) / kl(mu, mu*)
        want = (0.3 / kl(0.2, 0.5)) + (0.2 / kl(0.3, 0.5))
        self.assertAlmostEqual(d["lai_robbins_constant"], want, places=6)
        self.assertEqual([p["policy"] for p in d["policies"]],
                         ["uniform", "thompson", "top_two", "ucb1", "kl_ucb",
                          "eps_greedy"])
        for p in d["policies"]:
            ts = [c["t"] for c in p["curve"]]
            self.assertEqual(ts, [100, 200, 300, 400])
            regs = [c["regret"] for c in p["curve"]]
            self.assertEqual(regs, sorted(regs))  # cumulative
            last = p["curve"][-1]
            self.assertAlmostEqual(
                last["lr_ratio"],
                last["regret"] / (want * math.log(400)), places=5)
        th = d["policies"][1]["curve"][-1]
        self.assertAlmostEqual(th["regret"], 13.0, places=6)
        self.assertAlmostEqual(th["best_share"], 0.936667, places=6)

    def test_batched_drifting_estimators(self):
        d = json.loads(self.run_ok(BATCHED))
        self.assertTrue(d["drifting"])
        self.assertIsNone(d["lai_robbins_constant"])
        p = d["policies"][0]
        self.assertEqual(p["policy"], "thompson")
        self.assertAlmostEqual(p["curve"][-1]["regret"], 20.0, places=6)
        e = p["estimators"]
        # population means: average of the linear drift
        self.assertAlmostEqual(e[0]["truth"], 0.25, places=6)
        self.assertAlmostEqual(e[1]["truth"], 0.45, places=6)
        self.assertAlmostEqual(e[1]["naive"]["bias"], 0.013599, places=6)
        self.assertAlmostEqual(e[1]["ht"]["bias"], 0.005537, places=6)
        self.assertAlmostEqual(e[1]["hajek"]["bias"], 0.001525, places=6)
        self.assertAlmostEqual(e[1]["period"]["bias"], 0.002796, places=6)
        for k in ("naive", "ht", "hajek", "period"):
            self.assertEqual(e[0][k]["runs"], 4)

    def test_lower_is_better_mirrors_the_problem(self):
        # error rates 0.10 / 0.20 / 0.25, lower is better: the Lai-Robbins
        # constant is that of success rates 0.90 / 0.80 / 0.75
        d = json.loads(self.run_ok(
            ["simulate", "--means", "0.10,0.20,0.25", "--lower-is-better",
             "--horizon", "2000", "--runs", "2", "--seed", "3", "--points",
             "2", "--policies", "thompson,uniform", "--json"]))
        want = 0.1 / kl(0.8, 0.9) + 0.15 / kl(0.75, 0.9)
        self.assertAlmostEqual(d["lai_robbins_constant"], want, places=6)
        th, un = d["policies"]
        # Thompson sends most late traffic to arm 0, the lowest error rate
        self.assertGreater(th["curve"][-1]["best_share"], 0.8)
        self.assertLess(th["curve"][-1]["regret"], un["curve"][-1]["regret"])

    def test_pinned_control_and_floor_bound_the_best_share(self):
        # control arm 0 pinned at 0.3 and floor 0.05: the best arm (2) can
        # never get more than 1 - 0.3 - 0.05 = 0.65 of a window
        d = json.loads(self.run_ok(
            ["simulate", "--means", "0.1,0.2,0.5", "--horizon", "3000",
             "--runs", "2", "--batch", "300", "--seed", "9", "--points",
             "10", "--policies", "thompson", "--control", "0",
             "--control-share", "0.3", "--floor", "0.05", "--json"]))
        shares = [c["best_share"] for c in d["policies"][0]["curve"]]
        self.assertLessEqual(max(shares), 0.75)  # sampling noise in 300
        self.assertGreater(shares[-1], 0.5)

    def test_late_arm_joins_and_wins(self):
        d = json.loads(self.run_ok(
            ["simulate", "--means", "0.1,0.2,0.6", "--late-arm", "1000",
             "--min-units", "50", "--horizon", "3000", "--runs", "2",
             "--batch", "100", "--seed", "4", "--points", "6",
             "--policies", "thompson", "--json"]))
        self.assertEqual(d["late_arm"], 1000)
        self.assertIsNone(d["lai_robbins_constant"])
        c = d["policies"][0]["curve"]
        # before the join the best present arm is arm 1 (0.2); after it,
        # arm 2 (0.6) takes over
        self.assertGreater(c[1]["best_share"], 0.8)
        self.assertGreater(c[-1]["best_share"], 0.9)

    def test_invalid_arguments_exit_2(self):
        for args in (["--means", "0.5"], ["--means", "0.2,1.5"],
                     ["--means", "0.2,0.3", "--policies", "ucb2"],
                     ["--means", "0.2,0.3", "--estimators"],
                     ["--means", "0.2,0.3", "--means-end", "0.1"],
                     ["--means", "0.2,0.3", "--floor", "0.7"],
                     ["--means", "0.2,0.3", "--late-arm", "10", "--batch",
                      "5", "--estimators"],
                     ["--bogus"]):
            r = harness.run_cli(["simulate"] + args)
            self.assertEqual(r.returncode, 2, (args, r.stdout, r.stderr))
            self.assertIn("invalid", r.stderr)

    def test_help(self):
        r = harness.run_cli(["simulate", "--help"])
        self.assertEqual(r.returncode, 0)
        for flag in ("--means", "--batch", "--estimators", "--floor",
                     "--policies", "--json"):
            self.assertIn(flag, r.stdout)


if __name__ == "__main__":
    harness.main()
