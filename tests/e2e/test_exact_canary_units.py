"""test_exact_canary_units.py -- issue 10, "Must show": a canary start and a
manual weight change never move a unit out of the candidate except on
rollback, checked unit by unit over 10,000 units at every step of a ramp.

tests/e2e/test_decisions.py checks the start (steps[0] served at once), the
refused PATCH and one advance (1 % -> 50 %). This suite follows the same
10,000 units through the whole partial ramp (5 -> 25 -> 50 %), with decision
ticks between looks (the bug was a jump at the first tick), a refused PATCH
at two steps, and then the two endings: a promotion moves every unit INTO
the candidate, a rollback every unit out of it.
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from test_rollouts import ADMIN, FAST, Client, state  # noqa: E402

N_UNITS = 10000


class CanaryUnitsNeverLeave(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = harness.fresh_database("e2e_exact_canary_units")
        cls.server = harness.Server(cls.url, env=FAST).start()
        cls.c = Client(cls.server.port)
        cls.units = ["w%d" % i for i in range(N_UNITS)]

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        cls.server.stop()

    def create_start(self, key):
        doc = {"key": key, "strategy": "canary",
               "arms": [{"name": "stable", "weight": 90, "control": True},
                        {"name": "next", "weight": 10}],
               "metrics": [{"name": "errors", "kind": "binary",
                            "direction": "decrease", "role": "guardrail"}],
               "rollout": {"steps": [5, 25, 50, 100], "step_min_s": 1,
                           "step_min_units": 10, "manual_approval": True,
                           "error_metric": "errors"}}
        st, ans = self.c.call("POST", "/v1/experiments", doc, token=ADMIN)
        self.assertEqual(st, 201, ans)
        st, ans = self.c.call("POST", "/v1/experiments/%s/start" % key,
                              token=ADMIN)
        self.assertEqual(st, 200, ans)
        return {a["name"]: a["weight"] for a in ans["arms"]}

    def candidates(self, key, reason=None):
        """The units the candidate serves now (GET /v1/assign each)."""
        out = set()
        for u in self.units:
            st, a = self.c.call("GET", "/v1/assign?experiment=%s&unit=%s"
                                % (key, u))
            self.assertEqual(st, 200, a)
            if reason is not None:
                self.assertEqual(a["reason"], reason, a)
            if a["arm"] == "next":
                out.add(u)
        return out

    def wait_reason(self, key, reason):
        """Until the snapshot of this process serves the ending (NOTIFY)."""
        deadline = time.time() + 10
        while time.time() < deadline:
            st, a = self.c.call("GET", "/v1/assign?experiment=%s&unit=w0"
                                % key)
            if a.get("reason") == reason:
                return
            time.sleep(0.1)
        self.fail("no %s answer within 10 s: %r" % (reason, a))

    def weights(self, key):
        return {a["name"]: a["weight"] for a in state(self.c, key)["arms"]}

    def refused_patch(self, key):
        st, ans = self.c.call("PATCH", "/v1/experiments/" + key,
                              {"arms": [{"name": "stable", "weight": 100,
                                         "control": True},
                                        {"name": "next", "weight": 0}]},
                              token=ADMIN)
        self.assertEqual(st, 409, ans)

    def advance_to(self, key, share):
        deadline = time.time() + 30
        while time.time() < deadline and self.weights(key)["next"] != share:
            self.c.call("POST", "/v1/experiments/%s/approve" % key, {},
                        token=ADMIN)
            time.sleep(0.2)
        self.assertEqual(self.weights(key), {"stable": 100 - share,
                                             "next": share})

    def ramp(self, key):
        """Start, the first ticks, a refused PATCH and two advances; the
        candidate's units only ever grow. Returns the last set."""
        self.assertEqual(self.create_start(key), {"stable": 95, "next": 5})
        c0 = self.candidates(key)
        self.assertTrue(400 < len(c0) < 600, len(c0))   # 5 %, not 10 %
        time.sleep(1.5)          # several decision ticks (200 ms each)
        self.assertEqual(self.candidates(key), c0, "moved at the first tick")
        self.refused_patch(key)
        time.sleep(0.5)
        self.assertEqual(self.candidates(key), c0, "moved by a PATCH")
        last = c0
        for share in (25, 50):
            self.advance_to(key, share)
            now = self.candidates(key)
            self.assertEqual(sorted(last - now), [],
                             "left the candidate at %d %%" % share)
            self.assertTrue(abs(len(now) - N_UNITS * share / 100)
                            < 4 * (N_UNITS * 0.25) ** 0.5, len(now))
            self.refused_patch(key)
            self.assertEqual(self.candidates(key), now)
            last = now
        return last

    def test_ramp_then_promotion_moves_units_only_into_the_candidate(self):
        key = "units-promote"
        self.ramp(key)
        st, ans = self.c.call("POST", "/v1/experiments/%s/promote" % key,
                              {"arm": "next", "reason": "test"}, token=ADMIN)
        self.assertEqual(st, 200, ans)
        self.wait_reason(key, "promoted")
        self.assertEqual(self.candidates(key, reason="promoted"),
                         set(self.units))

    def test_ramp_then_rollback_moves_every_unit_out(self):
        key = "units-rollback"
        self.ramp(key)
        st, ans = self.c.call("POST", "/v1/experiments/%s/rollback" % key,
                              {"reason": "test"}, token=ADMIN)
        self.assertEqual(st, 200, ans)
        self.wait_reason(key, "rolled_back")
        self.assertEqual(self.candidates(key, reason="rolled_back"), set())


if __name__ == "__main__":
    harness.main()
