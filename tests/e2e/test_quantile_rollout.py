"""test_quantile_rollout.py -- quantile metrics end to end on the real
binary (issue 16): a canary whose candidate has a 10 % higher p99 latency
and an unchanged mean is rolled back by the quantile guardrail; a harmless
candidate is not rolled back and is promoted; bad definitions get a 400.

Traffic: units assigned through POST /v1/assign, 20 requests per unit,
each posting its latency as "latency_p99" (kind quantile, q 0.99,
guardrail, lower is better) and every 4th also as "latency_mean" (kind
mean, secondary).
Latencies are lognormal: control sigma 0.3, median 100 ms; the harmful
candidate sigma 0.3476 with mu lowered so that the mean is the same
(exp(mu + sigma^2 / 2) equal) and the p99 exp(mu + 2.3263 sigma) is 1.100
times the control's (values below). The guardrail is the always-valid
confidence sequence of the relative difference (stats/quantile.h, Howard &
Ramdas 2022) at the rollout's harm level, margin 0 ("p99 no worse"); with
these distributions it separates after about 20,000 requests per arm
(computed beforehand with the same formulas in scipy: rel_low 0.013 at
20,000 for r = 5,000). The mean metric sees no difference: /results'
interval for latency_mean contains 0.
"""
import math
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import harness  # noqa: E402
from service_client import (ADMIN, ServiceCase, decisions,  # noqa: E402
                            run_until)
from service_client import drive as drive_units  # noqa: E402

SIGMA_C = 0.3
MU_C = math.log(100)
SIGMA_T = 0.3475955424341003  # brentq: p99 ratio 1.1 at an equal mean
MU_T = MU_C + (SIGMA_C ** 2 - SIGMA_T ** 2) / 2
PER_UNIT = 20


def drive(client, key, n_units, harmful, prefix, rng):
    """PER_UNIT requests per unit: lognormal latencies, the candidate's with
    the heavier tail when harmful."""
    def requests(a, rng):
        bad = harmful and a["arm"] == "next"
        out = []
        for j in range(PER_UNIT):
            v = round(rng.lognormvariate(MU_T if bad else MU_C,
                                         SIGMA_T if bad else SIGMA_C), 4)
            out.append(("latency_p99", v, None))
            if j % 4 == 0:  # the mean from every 4th request of the unit
                out.append(("latency_mean", v, None))
        return out
    drive_units(client, key, n_units, requests, prefix, rng, chunk=4000)


class QuantileRollout(ServiceCase):
    DB = "e2e_quantile_rollout"

    def create(self, key, step_min_s=20, **metric):
        m = {"name": "latency_p99", "kind": "quantile", "q": 0.99,
             "direction": "decrease", "role": "guardrail"}
        m.update(metric)
        doc = {"key": key, "strategy": "canary",
               "arms": [{"name": "stable", "weight": 100, "control": True},
                        {"name": "next", "weight": 0}],
               "metrics": [m, {"name": "latency_mean", "kind": "mean",
                               "direction": "decrease"}],
               "rollout": {"steps": [50, 100], "step_min_s": step_min_s,
                           "step_min_units": 100, "min_test_units": 100}}
        st, ans = self.c.call("POST", "/v1/experiments", doc, token=ADMIN)
        if st != 201:
            return st, ans
        st2, ans2 = self.c.call("POST", "/v1/experiments/%s/start" % key,
                                token=ADMIN)
        self.assertEqual(st2, 200, ans2)
        return st, ans

    def results(self, key):
        st, doc = self.c.call("GET", "/v1/experiments/%s/results" % key,
                              token=ADMIN)
        self.assertEqual(st, 200, doc)
        return {m["name"]: m for m in doc["metrics"]}, doc

    def test_p99_regression_with_unchanged_mean_is_rolled_back(self):
        # the 50 % step lasts long enough for about 20,000 requests per
        # arm on a loaded 2-core machine
        st, ans = self.create("q-bad", step_min_s=120)
        self.assertEqual(st, 201, ans)
        rng = random.Random(16)
        t0 = time.time()
        doc = run_until(self.c, "q-bad",
                        lambda r: drive(self.c, "q-bad", 200, True,
                                        "bad%d" % r, rng),
                        lambda d: d["state"] != "running", rounds=80,
                        pause=0.2)
        self.assertEqual(doc["state"], "rolled_back", doc)
        last = decisions(self.c, "q-bad")[-1]
        self.assertEqual((last["action"], last["actor"]), ("rollback", "engine"))
        self.assertIn("latency_p99", last["reason"])
        lines = last["details"]["quantile_guardrails"]
        self.assertEqual(len(lines), 1)
        g = lines[0]
        self.assertEqual((g["metric"], g["verdict"]), ("latency_p99", "failed"))
        # margin 0; bounds are open bucket edges (core/quantile_guard.h)
        self.assertGreaterEqual(g["relative_ci_low"], g["margin"])
        print("rolled back after %.1f s: control %d, candidate %d requests; "
              "p99 relative difference %.4f, sequence [%.4f, %.4f] at alpha %.4f"
              % (time.time() - t0, g["n_control"], g["n_treatment"],
                 g["relative"], g["relative_ci_low"], g["relative_ci_high"],
                 g["alpha"]))
        # the mean does not see it: latency_mean's interval contains 0
        ms, _ = self.results("q-bad")
        c = ms["latency_mean"]["analysis"]["comparisons"][0]
        self.assertLessEqual(c["ci"][0], 0, c)
        self.assertGreaterEqual(c["ci"][1], 0, c)
        q = ms["latency_p99"]["analysis"]
        self.assertEqual(q["comparisons"][0]["verdict"], "worse")

    def test_harmless_candidate_is_not_rolled_back(self):
        st, ans = self.create("q-fine")
        self.assertEqual(st, 201, ans)
        rng = random.Random(61)
        doc = run_until(self.c, "q-fine",
                        lambda r: drive(self.c, "q-fine", 200 if r < 10 else 20,
                                        False, "ok%d" % r, rng),
                        lambda d: d["state"] != "running", rounds=120,
                        pause=0.5)
        self.assertEqual(doc["state"], "promoted", doc)
        acts = [d["action"] for d in decisions(self.c, "q-fine")]
        self.assertNotIn("rollback", acts)
        ms, full = self.results("q-fine")
        q = ms["latency_p99"]["analysis"]
        self.assertEqual(q["status"], "ok")
        self.assertGreater(q["arms"][1]["n"], 10000)
        self.assertNotEqual(q["comparisons"][0]["verdict"], "worse")

    def test_bad_definitions_are_400(self):
        cases = [({"q": None}, "metrics[0].q"),
                 ({"q": 1}, "metrics[0].q"),
                 ({"q": 0}, "metrics[0].q"),
                 ({"q": "0.99"}, "metrics[0].q"),
                 ({"kind": "mean"}, "metrics[0].q"),
                 ({"covariate": "x"}, "metrics[0].covariate")]
        for i, (patch, field) in enumerate(cases):
            st, ans = self.create("q-bad-def-%d" % i, **patch)
            self.assertEqual(st, 400, (patch, ans))
            self.assertEqual(ans["error"]["code"], "invalid", ans)
            self.assertIn(field, ans["error"]["message"], (patch, ans))


if __name__ == "__main__":
    harness.main()
