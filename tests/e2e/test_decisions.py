"""test_decisions.py -- decisions users can trust (issue 10), end to end on
the real binary and PostgreSQL.

  - /results tests a guardrail one-sided in its HARMFUL direction, as the
    rollout engine does (core_guardrail_harm_side): a treatment twice as
    slow on a `decrease` latency guardrail, or with half the throughput on
    an `increase` guardrail, is reported worse with a small p for welch,
    z and msprt (before the fix: p = 1.0, "inconclusive").
"""
import os
import random
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from test_rollouts import ADMIN, Client  # noqa: E402


def post_events(c, events):
    for k in range(0, len(events), 2000):
        st, ans = c.call("POST", "/v1/events", events[k:k + 2000])
        assert st == 202, ans
        assert not ans["rejected"], ans["rejected"][:3]


class GuardrailSidedness(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = harness.fresh_database("e2e_decisions")
        cls.server = harness.Server(cls.db).start()
        cls.c = Client(cls.server.port)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        cls.server.stop()

    def test_harmful_guardrails_are_reported_worse(self):
        key = "guard-sides"
        doc = {"key": key, "strategy": "ab",
               "arms": [{"name": "control", "weight": 50, "control": True},
                        {"name": "slow", "weight": 50}],
               "metrics": [
                   {"name": "latency", "kind": "mean",
                    "direction": "decrease", "role": "guardrail"},
                   {"name": "throughput", "kind": "mean",
                    "direction": "increase", "role": "guardrail"}],
               "rollout": {"auto_promote": False}}
        st, ans = self.c.call("POST", "/v1/experiments", doc, token=ADMIN)
        self.assertEqual(st, 201, ans)
        st, ans = self.c.call("POST", "/v1/experiments/%s/start" % key,
                              token=ADMIN)
        self.assertEqual(st, 200, ans)
        rng = random.Random(3)
        events = []
        for i in range(400):
            unit = "u%d" % i
            st, a = self.c.call("POST", "/v1/assign",
                                {"unit": unit, "experiments": [key]})
            self.assertEqual(st, 200, a)
            slow = a["assignments"][0]["arm"] == "slow"
            lat = rng.gauss(200 if slow else 100, 10)
            thr = rng.gauss(50 if slow else 100, 10)
            events.append({"experiment": key, "unit": unit,
                           "metric": "latency", "value": lat})
            events.append({"experiment": key, "unit": unit,
                           "metric": "throughput", "value": thr})
        post_events(self.c, events)
        for method in ("welch", "z", "msprt"):
            for effect in ("absolute", "relative"):
                res = None
                for _ in range(100):
                    st, res = self.c.call(
                        "GET", "/v1/experiments/%s/results?method=%s&effect=%s"
                        % (key, method, effect), token=ADMIN)
                    self.assertEqual(st, 200, res)
                    ns = [a["n"] for m in res["metrics"]
                          for a in m["analysis"]["arms"]]
                    if sum(ns) >= 800:
                        break
                    import time
                    time.sleep(0.1)
                for m in res["metrics"]:
                    cmp_ = m["analysis"]["comparisons"][0]
                    where = (method, effect, m["name"], cmp_)
                    self.assertLess(cmp_["p_value"], 1e-6, where)
                    self.assertTrue(cmp_["significant"], where)
                    self.assertEqual(cmp_["verdict"], "worse", where)


if __name__ == "__main__":
    harness.main()
