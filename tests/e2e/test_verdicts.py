"""test_verdicts.py -- verdicts for Kubernetes controllers (issue 12).

  - GET /v1/experiments/{key}/verdict: the decision leader's latest decision
    from memory; 200 with stale = true while PostgreSQL is down (Argo
    Rollouts counts a 5xx toward its consecutive-error limit);
  - a Flagger-shaped webhook sequence (event sink, rollout gate each
    iteration, confirm-promotion, rollback hook) against a canary that
    arbiter rolls back and one it promotes, asserting every status code;
  - the per-experiment rollout metrics behind the rollback alert;
  - OFREP keeps evaluating and /v1/track answers 429 + Retry-After while
    the database is down.
The decision leader ticks every 200 ms (ARBITER_DECISION_TICK_MS).
"""
import os
import random
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import harness  # noqa: E402

ADMIN, CLIENT = harness.ADMIN, harness.CLIENT
READ = "verdict-read-only-token-42"
FAST = {"ARBITER_DECISION_TICK_MS": "200", "ARBITER_TICK_MS": "100",
        "ARBITER_READONLY_TOKEN": READ}
VERDICT_KEYS = {"experiment", "strategy", "verdict", "phase", "step",
                "share", "reason", "decided_at", "age_s", "stale"}


def pg_is_up(url):
    try:
        harness.psql(url, "SELECT 1")
        return True
    except Exception:  # noqa: BLE001
        return False


def canary(key):
    return {"key": key, "strategy": "canary",
            "arms": [{"name": "stable", "weight": 100, "control": True,
                      "model": "m@1", "value": False},
                     {"name": "next", "weight": 0, "model": "m@2",
                      "value": True}],
            "metrics": [
                {"name": "errors", "kind": "binary",
                 "direction": "decrease", "role": "guardrail"},
                {"name": "latency", "kind": "mean",
                 "direction": "decrease", "role": "guardrail"}],
            "rollout": {"steps": [10, 50, 100], "step_min_s": 1,
                        "step_min_units": 40, "error_metric": "errors",
                        "min_test_units": 30,
                        # the protocol is under test, not power: plan the
                        # last partial step for a 5x harm at power 0.8 (the
                        # defaults, 2x at 0.99, need ~30,000 units)
                        "plan_error_ratio": 5, "plan_power": 0.8}}


class Verdicts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = harness.fresh_database("e2e_verdicts")
        cls.server = harness.Server(cls.db, env=FAST).start()

    @classmethod
    def tearDownClass(cls):
        if not pg_is_up(cls.db):
            harness.pg_ctl("start")
        cls.server.stop()

    def tearDown(self):
        if not pg_is_up(self.db):  # never leave the shared cluster down
            harness.pg_ctl("start")

    def call(self, method, path, body=None, token=CLIENT):
        return harness.request(self.server.base, method, path, body, token)

    def create(self, doc):
        r = self.call("POST", "/v1/experiments", doc, ADMIN)
        self.assertEqual(r.status, 201, r)
        r = self.call("POST", "/v1/experiments/%s/start" % doc["key"],
                      token=ADMIN)
        self.assertEqual(r.status, 200, r)

    def drive(self, key, n, p_error, mu, prefix, rng):
        events = []
        for i in range(n):
            unit = "%s-%d" % (prefix, i)
            r = self.call("POST", "/v1/assign",
                          {"unit": unit, "experiments": [key]})
            self.assertEqual(r.status, 200, r)
            arm = r.json()["assignments"][0]["arm"]
            events.append({"experiment": key, "unit": unit,
                           "metric": "latency",
                           "value": rng.gauss(mu[arm], 10)})
            if rng.random() < p_error[arm]:
                events.append({"experiment": key, "unit": unit,
                               "metric": "errors", "value": 1})
        r = self.call("POST", "/v1/events", events)
        self.assertEqual(r.status, 202, r)

    def verdict(self, key, token=READ):
        r = self.call("GET", "/v1/experiments/%s/verdict" % key, token=token)
        self.assertEqual(r.status, 200, r)
        doc = r.json()
        self.assertEqual(set(doc), VERDICT_KEYS)
        return doc

    def flagger(self, hook, name, namespace, metadata, query=""):
        body = {"name": name, "namespace": namespace, "phase": "Progressing",
                "metadata": metadata}
        return self.call("POST", "/v1/flagger/" + hook + query, body,
                         token=None)

    # ---- the verdict route -----------------------------------------------

    def test_verdict_route_shapes_and_errors(self):
        self.create(canary("v-shape"))
        doc = self.verdict("v-shape")
        self.assertEqual(doc["experiment"], "v-shape")
        self.assertEqual(doc["strategy"], "canary")
        self.assertEqual(doc["verdict"], "continue")
        r = self.call("GET", "/v1/experiments/nope/verdict", token=READ)
        self.assertEqual(r.status, 404)
        r = self.call("GET", "/v1/experiments/v-shape/verdict", token=CLIENT)
        self.assertEqual(r.status, 403)
        r = self.call("GET", "/v1/experiments/v-shape/verdict", token=None)
        self.assertEqual(r.status, 401)
        # the leader decides within a few ticks: the first step, fresh
        deadline = time.time() + 10
        while time.time() < deadline:
            doc = self.verdict("v-shape")
            if doc["decided_at"] is not None:
                break
            time.sleep(0.1)
        self.assertEqual(doc["verdict"], "continue")
        self.assertEqual(doc["phase"], "ramp")
        self.assertIsInstance(doc["step"], int)
        self.assertEqual(doc["share"], 10)
        self.assertFalse(doc["stale"])
        self.assertGreaterEqual(doc["age_s"], 0)
        self.assertRegex(doc["decided_at"],
                         r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

    def test_verdict_is_200_and_stale_while_postgres_is_down(self):
        self.create(canary("v-outage"))
        deadline = time.time() + 10
        while time.time() < deadline and \
                self.verdict("v-outage")["decided_at"] is None:
            time.sleep(0.1)
        before = self.verdict("v-outage")
        self.assertFalse(before["stale"])
        harness.pg_ctl("stop")
        try:
            deadline = time.time() + 20
            while time.time() < deadline:
                r = self.call("GET", "/readyz", token=None)
                if r.status == 503:
                    break
                time.sleep(0.1)
            self.assertEqual(r.status, 503, r)
            # the leader evaluates every tick while it can; a tick under
            # way when the database went away may still land, then none
            time.sleep(1.0)
            during = self.verdict("v-outage")
            for _ in range(5):
                doc = self.verdict("v-outage")
                self.assertTrue(doc["stale"])
                self.assertEqual(doc["verdict"], before["verdict"])
                self.assertEqual(doc["decided_at"], during["decided_at"])
                self.assertIsNotNone(doc["decided_at"])
                time.sleep(0.2)
            # Flagger's gates still answer from memory
            r = self.flagger("rollout", "x", "y",
                             {"experiment": "v-outage", "token": READ})
            self.assertEqual(r.status, 200, r)
            # OFREP keeps evaluating; tracking says 429 + Retry-After
            r = self.call("POST", "/ofrep/v1/evaluate/flags/v-outage",
                          {"context": {"targetingKey": "u1"}})
            self.assertEqual(r.status, 200, r)
            r = self.call("POST", "/v1/track", {"unit": "u1",
                                                "metric": "errors"})
            self.assertEqual(r.status, 429, r)
            self.assertEqual(r.headers["Retry-After"], "1")
        finally:
            harness.pg_ctl("start")
        deadline = time.time() + 20
        while time.time() < deadline and \
                self.call("GET", "/readyz", token=None).status != 200:
            time.sleep(0.1)

    # ---- Flagger ------------------------------------------------------------

    def test_flagger_sequence_on_a_canary_arbiter_rolls_back(self):
        # the experiment is {namespace}.{name}; the token in the query
        key = "prod.ranker-bad"
        self.create(canary(key))
        q = "?token=" + READ
        ev = self.flagger("event", "ranker-bad", "prod",
                          {"eventMessage": "New revision detected",
                           "eventType": "Normal", "timestamp": "1"},
                          "?token=" + CLIENT)
        self.assertEqual(ev.status, 202, ev)
        rng = random.Random(21)
        gates = []
        for it in range(60):
            g = self.flagger("rollout", "ranker-bad", "prod", {}, q)
            p = self.flagger("confirm-promotion", "ranker-bad", "prod", {}, q)
            b = self.flagger("rollback", "ranker-bad", "prod", {}, q)
            gates.append((g.status, p.status, b.status))
            if g.status != 200:
                break
            # while it continues: rollout passes, promotion waits, the
            # rollback hook says no (non-2xx)
            self.assertEqual((g.status, p.status, b.status),
                             (200, 412, 412), g)
            self.drive(key, 200, {"stable": 0.02, "next": 0.25},
                       {"stable": 100, "next": 100}, "bad%d" % it, rng)
            time.sleep(0.25)
        # arbiter rolled back: the rollout gate fails, promotion never
        # passes, the rollback hook answers 2xx (Flagger fails the canary)
        self.assertEqual(gates[-1], (412, 412, 200), gates)
        self.assertGreater(len(gates), 1)
        body = self.flagger("rollback", "ranker-bad", "prod", {}, q).json()
        self.assertEqual((body["verdict"], body["pass"]), ("rollback", True))
        doc = self.verdict(key)
        self.assertEqual((doc["verdict"], doc["share"]), ("rollback", 0))
        self.assertIsNotNone(doc["decided_at"])
        # newer Flagger versions add the canary's numbers at the top level
        ev = self.call("POST", "/v1/flagger/event",
                       {"name": "ranker-bad", "namespace": "prod",
                        "phase": "Progressing", "canaryWeight": 10,
                        "failedChecks": 1, "iterations": 3,
                        "metadata": {"eventMessage":
                                     "Canary failed! Scaling down",
                                     "eventType": "Warning",
                                     "timestamp": "2", "token": CLIENT}},
                       token=None)
        self.assertEqual(ev.status, 202, ev)
        r = self.call("GET", "/v1/experiments/%s/decisions" % key,
                      token=READ)
        acts = [(d["action"], d["actor"]) for d in r.json()["decisions"]]
        self.assertIn(("rollback", "engine"), acts)
        notes = [d for d in r.json()["decisions"]
                 if d["action"] == "flagger_event"]
        self.assertEqual([d["reason"] for d in notes],
                         ["Progressing: New revision detected",
                          "Progressing: Canary failed! Scaling down"])
        self.assertEqual(notes[1]["details"], {
            "name": "ranker-bad", "namespace": "prod",
            "phase": "Progressing", "eventType": "Warning",
            "eventMessage": "Canary failed! Scaling down", "timestamp": "2",
            "canaryWeight": 10, "failedChecks": 1, "iterations": 3})
        self.assertNotIn(CLIENT, r.body)  # the token is never recorded
        # the rollback shows in the metrics the alert reads
        m = self.call("GET", "/metrics", token=None).body
        self.assertIn('arbiter_rollout_decisions_total{experiment="%s",'
                      'action="rollback"} 1' % key, m)
        self.assertIn('arbiter_rollout_verdict{experiment="%s",'
                      'verdict="rollback"} 1' % key, m)
        self.assertIn('arbiter_experiment_state{experiment="%s",'
                      'state="rolled_back"} 1' % key, m)
        self.assertIn('arbiter_rollout_candidate_share{experiment="%s"} 0'
                      % key, m)

    def test_flagger_sequence_on_a_canary_arbiter_promotes(self):
        key = "ranker-good"  # named by metadata.experiment
        self.create(canary(key))
        meta = {"experiment": key, "token": READ}
        rng = random.Random(22)
        gates = []
        for it in range(80):
            g = self.flagger("rollout", "podinfo", "test", meta)
            p = self.flagger("confirm-promotion", "podinfo", "test", meta)
            b = self.flagger("rollback", "podinfo", "test", meta)
            gates.append((g.status, p.status, b.status))
            if p.status == 200:
                break
            self.assertEqual((g.status, p.status, b.status),
                             (200, 412, 412))
            self.drive(key, 150, {"stable": 0.02, "next": 0.02},
                       {"stable": 100, "next": 90}, "good%d" % it, rng)
            time.sleep(0.25)
        # promoted: every gate passes and the rollback hook says no
        self.assertEqual(gates[-1], (200, 200, 412), gates)
        self.assertGreater(len(gates), 3)
        doc = self.verdict(key)
        self.assertEqual((doc["verdict"], doc["share"]), ("promote", 100))
        m = self.call("GET", "/metrics", token=None).body
        self.assertIn('arbiter_rollout_decisions_total{experiment="%s",'
                      'action="promote"} 1' % key, m)
        # 10 -> 50 -> 100: the start serves steps[0] itself (issue 10)
        self.assertIn('arbiter_rollout_decisions_total{experiment="%s",'
                      'action="advance"} 2' % key, m)
        # OFREP now serves the winner's value to everyone, STATIC
        r = self.call("POST", "/ofrep/v1/evaluate/flags/" + key,
                      {"context": {"targetingKey": "anyone"}})
        self.assertEqual((r.json()["variant"], r.json()["value"],
                          r.json()["reason"]), ("next", True, "STATIC"))

    def test_flagger_bad_input(self):
        meta = {"token": READ}
        r = self.call("POST", "/v1/flagger/rollout", {"metadata": meta},
                      token=None)
        self.assertEqual(r.status, 400, r)
        r = self.flagger("rollout", "a", "b", {"experiment": 5,
                                                "token": READ})
        self.assertEqual(r.status, 400, r)
        r = self.flagger("rollout", "nope", "none", meta)
        self.assertEqual(r.status, 404, r)
        r = self.flagger("rollback", "nope", "none", meta)
        self.assertEqual(r.status, 404, r)  # not 2xx: no rollback
        r = self.call("POST", "/v1/flagger/rollout?token=" + READ, "[1",
                      token=None)
        self.assertEqual(r.status, 400, r)
        # the event sink writes: a read-only token may not
        r = self.flagger("event", "a", "b", {"experiment": "x",
                                             "token": READ})
        self.assertEqual(r.status, 403, r)


if __name__ == "__main__":
    harness.main()
