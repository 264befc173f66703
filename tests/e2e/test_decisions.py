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
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import harness  # noqa: E402
from service_client import (ADMIN, ServiceCase, decisions,  # noqa: E402
                            drive, post_events, run_until)


class GuardrailSidedness(ServiceCase):
    DB = "e2e_decisions"

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
        self.create(doc)
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
                    time.sleep(0.1)
                for m in res["metrics"]:
                    cmp_ = m["analysis"]["comparisons"][0]
                    where = (method, effect, m["name"], cmp_)
                    self.assertLess(cmp_["p_value"], 1e-6, where)
                    self.assertTrue(cmp_["significant"], where)
                    self.assertEqual(cmp_["verdict"], "worse", where)


    # -- canaries ---------------------------------------------------------

    @staticmethod
    def canary(key, weights=(100, 0), **rollout):
        return {"key": key, "strategy": "canary",
                "arms": [{"name": "stable", "weight": weights[0],
                          "control": True},
                         {"name": "next", "weight": weights[1]}],
                "metrics": [
                    {"name": "errors", "kind": "binary",
                     "direction": "decrease", "role": "guardrail"},
                    {"name": "latency", "kind": "mean",
                     "direction": "decrease", "role": "guardrail"}],
                "rollout": rollout}

    def arms_of(self, key, units):
        out = {}
        for k in range(0, len(units)):
            st, a = self.c.call("GET", "/v1/assign?experiment=%s&unit=%s"
                                % (key, units[k]))
            self.assertEqual(st, 200, a)
            out[units[k]] = a["arm"]
        return out

    def test_canary_start_patch_and_10000_units_never_leave_the_candidate(
            self):
        key = "canary-sticky"
        doc = self.canary(key, weights=(95, 5), steps=[1, 50, 100],
                          step_min_s=1, step_min_units=20,
                          manual_approval=True, error_metric="errors")
        started = self.create(doc)
        # the start itself serves the first step, not the declared 95/5
        arms = {a["name"]: a["weight"] for a in started["arms"]}
        self.assertEqual(arms, {"stable": 99, "next": 1}, started)
        units = ["s%d" % i for i in range(10000)]
        first = self.arms_of(key, units)
        cand = {u for u, a in first.items() if a == "next"}
        self.assertGreater(len(cand), 50)
        self.assertLess(len(cand), 200)   # 1 % of 10,000, not 5 %
        # a manual change of engine-owned weights is refused
        st, ans = self.c.call("PATCH", "/v1/experiments/" + key,
                              {"arms": [{"name": "stable", "weight": 100,
                                         "control": True},
                                        {"name": "next", "weight": 0}]},
                              token=ADMIN)
        self.assertEqual(st, 409, ans)
        self.assertIn("rollout engine", ans["error"]["message"])
        # the engine advances to 50 % once approved (no events: the last
        # partial step then waits for the planned power, so it stays there)
        def approve(r):
            self.c.call("POST", "/v1/experiments/%s/approve" % key, {},
                        token=ADMIN)
        doc = run_until(self.c, key, approve,
                        lambda d: {a["name"]: a["weight"]
                                   for a in d["arms"]}["next"] == 50,
                        rounds=80)
        self.assertEqual({a["name"]: a["weight"] for a in doc["arms"]},
                         {"stable": 50, "next": 50}, doc)
        second = self.arms_of(key, units)
        moved_out = [u for u in cand if second[u] != "next"]
        self.assertEqual(moved_out, [])
        moved_in = sum(1 for u in units if second[u] == "next")
        self.assertGreater(moved_in, 4500)
        # only a rollback takes units out of the candidate
        st, ans = self.c.call("POST", "/v1/experiments/%s/rollback" % key,
                              {"reason": "test"}, token=ADMIN)
        self.assertEqual(st, 200, ans)
        deadline = time.time() + 10
        while time.time() < deadline:
            st, a = self.c.call("GET", "/v1/assign?experiment=%s&unit=%s"
                                % (key, next(iter(cand))))
            if a["arm"] == "stable":
                break
            time.sleep(0.1)
        self.assertEqual(a["arm"], "stable")

    def test_batch_assign_includes_promoted_experiments(self):
        key = "promoted-batch"
        self.create({"key": key, "strategy": "ab",
                           "arms": [{"name": "a", "weight": 50,
                                     "control": True},
                                    {"name": "b", "weight": 50}]})
        st, ans = self.c.call("POST", "/v1/experiments/%s/promote" % key,
                              {"arm": "b"}, token=ADMIN)
        self.assertEqual(st, 200, ans)
        deadline = time.time() + 10
        found = None
        while time.time() < deadline and found is None:
            st, ans = self.c.call("POST", "/v1/assign", {"unit": "anyone"})
            self.assertEqual(st, 200, ans)
            for a in ans["assignments"]:
                if a["experiment"] == key and a["reason"] == "promoted":
                    found = a
            time.sleep(0.1)
        self.assertIsNotNone(found, ans)
        self.assertEqual(found["arm"], "b")

    def harmful(self, key, p_c, p_t, lat_t, seed):
        """A canary with the default statistics; True when rolled back."""
        self.create(self.canary(key, steps=[10, 50, 100], step_min_s=1,
                                      step_min_units=100,
                                      error_metric="errors"))
        rng = random.Random(seed)

        def outcome(a, rng):
            bad = a["arm"] == "next"
            out = [("latency", rng.gauss(lat_t if bad else 100, 10), None)]
            if rng.random() < (p_t if bad else p_c):
                out.append(("errors", 1, None))
            return out

        doc = run_until(self.c, key,
                        lambda r: drive(self.c, key, 400, outcome,
                                        "%s-%d" % (key, r), rng),
                        lambda d: d["state"] != "running", rounds=150,
                        pause=0.2)
        return doc

    def test_harmful_canaries_with_default_statistics_are_rolled_back(self):
        for key, p_c, p_t, lat in (("errors-x2", 0.02, 0.04, 100),
                                   ("errors-x3", 0.02, 0.06, 100),
                                   ("latency-10", 0.02, 0.02, 110)):
            doc = self.harmful(key, p_c, p_t, lat, seed=len(key))
            self.assertEqual(doc["state"], "rolled_back", (key, doc))
            last = decisions(self.c, key)[-1]
            self.assertEqual(last["action"], "rollback")
            failed = "latency" if lat > 100 else "errors"
            self.assertIn('"%s"' % failed, last["reason"], last)
            ev = last["details"]
            for g in ev["guardrails"]:
                if g["verdict"] == "harm":
                    # evidence consistent: the harm test's p, not p = 1
                    self.assertLessEqual(g["p_harm_running"],
                                         ev["alpha_harm"], g)
                    self.assertEqual(g["p_running"], g["p_harm_running"])
            self.assertEqual(ev["rollback_alpha"], 0.02)


if __name__ == "__main__":
    harness.main()
