"""test_exact_canary_units.py -- issue 10, "Must show": a canary start and a
manual weight change never move a unit out of the candidate except on
rollback, checked unit by unit over 10,000 units at every step of a ramp.

tests/e2e/test_decisions.py checks the start (steps[0] served at once), the
refused PATCH and one advance (1 % -> 50 %). This suite follows the same
10,000 units through the whole partial ramp (5 -> 25 -> 50 %) of two
canaries side by side, with decision ticks between looks (the bug was a
jump at the first tick), a refused PATCH at every step, and then the two
endings: a promotion moves every unit INTO the candidate, a rollback every
unit out of it.
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from service_client import ADMIN, FAST, Client, state  # noqa: E402

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

    def candidates(self, keys, reason=None):
        """{key: the units the candidate serves now}, both experiments
        answered by one POST /v1/assign per unit."""
        out = {k: set() for k in keys}
        for u in self.units:
            st, ans = self.c.call("POST", "/v1/assign",
                                  {"unit": u, "experiments": list(keys)})
            self.assertEqual(st, 200, ans)
            for a in ans["assignments"]:
                if reason is not None:
                    self.assertEqual(a["reason"], reason[a["experiment"]],
                                     a)
                if a["arm"] == "next":
                    out[a["experiment"]].add(u)
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

    def advance_to(self, keys, share):
        """Approve until both serve share %. A step needs step_min_units
        units first seen under its weights: new units (not among the
        10,000 followed) keep arriving meanwhile."""
        deadline, i = time.time() + 120, 0
        while time.time() < deadline and any(
                self.weights(k)["next"] != share for k in keys):
            for _ in range(50):
                i += 1
                st, ans = self.c.call("POST", "/v1/assign",
                                      {"unit": "f%d-%d" % (share, i),
                                       "experiments": list(keys)})
                self.assertEqual(st, 200, ans)
            for k in keys:
                self.c.call("POST", "/v1/experiments/%s/approve" % k, {},
                            token=ADMIN)
            time.sleep(0.2)
        for k in keys:
            st, res = self.c.call("GET", "/v1/experiments/%s/results" % k,
                                  token=ADMIN)
            ro = dict(res.get("rollout") or {})
            ro.pop("evidence", None)
            self.assertEqual(self.weights(k), {"stable": 100 - share,
                                               "next": share}, (k, ro))

    def test_ramp_then_promotion_or_rollback(self):
        """Two canaries ramped side by side; the candidate's units only
        ever grow (start, first ticks, refused PATCHes, 5 -> 25 -> 50 %);
        then a promotion moves every unit INTO the candidate and a
        rollback every unit out of it."""
        keys = ("units-promote", "units-rollback")
        for k in keys:
            self.assertEqual(self.create_start(k), {"stable": 95, "next": 5})
        c0 = self.candidates(keys)
        for k in keys:
            self.assertTrue(400 < len(c0[k]) < 600, len(c0[k]))  # not 10 %
        time.sleep(1.5)          # several decision ticks (200 ms each)
        for k in keys:
            self.refused_patch(k)
        self.assertEqual(self.candidates(keys), c0,
                         "moved at the first ticks or by a refused PATCH")
        last = c0
        for share in (25, 50):
            self.advance_to(keys, share)
            for k in keys:
                self.refused_patch(k)
            now = self.candidates(keys)
            for k in keys:
                self.assertEqual(sorted(last[k] - now[k]), [],
                                 "%s: left the candidate at %d %%"
                                 % (k, share))
                self.assertTrue(abs(len(now[k]) - N_UNITS * share / 100)
                                < 4 * (N_UNITS * 0.25) ** 0.5, len(now[k]))
            last = now
        st, ans = self.c.call("POST", "/v1/experiments/%s/promote" % keys[0],
                              {"arm": "next", "reason": "test"}, token=ADMIN)
        self.assertEqual(st, 200, ans)
        st, ans = self.c.call("POST", "/v1/experiments/%s/rollback"
                              % keys[1], {"reason": "test"}, token=ADMIN)
        self.assertEqual(st, 200, ans)
        self.wait_reason(keys[0], "promoted")
        self.wait_reason(keys[1], "rolled_back")
        end = self.candidates(keys, reason={keys[0]: "promoted",
                                            keys[1]: "rolled_back"})
        self.assertEqual(end[keys[0]], set(self.units))
        self.assertEqual(end[keys[1]], set())


if __name__ == "__main__":
    harness.main()
