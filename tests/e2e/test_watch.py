"""test_watch.py -- watching models after promotion (issue 16, part C) on
the real binary and PostgreSQL.

  - holdback: a canary with rollout.holdback_pct is promoted into a
    holdback (the previous version keeps its share, units keep their arm);
    a reversal injected after the promotion (the promoted arm's latency
    +25 %) raises the alert: a "holdback_alert" decision row with the
    numbers, arbiter_holdback_reversed{...} 1 in /metrics, and the
    holdback does not complete by itself;
  - a holdback whose benefit holds ends after holdback_s: a
    "holdback_end" decision row, state promoted, every unit on the winner;
  - drift: a feature whose distribution shifts is flagged in /results and
    /metrics; a stationary one is not.
"""
import os
import random
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import harness  # noqa: E402
from service_client import (ADMIN, ServiceCase, decisions,  # noqa: E402
                            drive, run_until, state)


def canary(key, **rollout):
    r = {"steps": [10, 50, 100], "step_min_s": 1, "step_min_units": 40,
         "min_test_units": 30, "plan_error_ratio": 5, "plan_power": 0.8,
         "holdback_pct": 20, "holdback_s": 3600}
    r.update(rollout)
    return {"key": key, "strategy": "canary",
            "arms": [{"name": "stable", "weight": 100, "control": True,
                      "model": "m@1"},
                     {"name": "next", "weight": 0, "model": "m@2"}],
            "metrics": [{"name": "latency", "kind": "mean",
                         "direction": "decrease", "role": "guardrail"}],
            "rollout": r}


def metric_value(text, name, **labels):
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r'^%s\{([^}]*)\} (\S+)$' % re.escape(name), line)
        if m and ",".join(sorted(m.group(1).split(","))) == want:
            return float(m.group(2))
    return None


class Watch(ServiceCase):
    DB = "e2e_watch"

    def metrics(self):
        r = harness.request("http://127.0.0.1:%d" % self.server.port, "GET",
                            "/metrics")
        self.assertEqual(r.status, 200)
        return r.body

    def promote_into_holdback(self, key, rng):
        def better(a, rng):
            mu = 90 if a["arm"] == "next" else 100
            return [("latency", rng.gauss(mu, 10), None)]

        run_until(self.c, key,
                  lambda r: drive(self.c, key, 150, better, "p%d" % r, rng),
                  lambda d: any(x["action"] == "holdback"
                                for x in decisions(self.c, key)),
                  rounds=80)
        acts = decisions(self.c, key)
        hb = [x for x in acts if x["action"] == "holdback"]
        self.assertEqual(len(hb), 1, [x["action"] for x in acts])
        self.assertNotIn("promote", [x["action"] for x in acts])
        self.assertIn('"stable" keeps 20 %', hb[0]["reason"])
        self.assertEqual(hb[0]["details"]["holdback"]["previous"], "stable")
        doc = state(self.c, key)
        self.assertEqual(doc["state"], "running")
        w = {a["name"]: a["weight"] for a in doc["arms"]}
        self.assertEqual(w, {"stable": 20, "next": 80})

    def test_reversal_after_promotion_raises_the_alert(self):
        key = "hb-reversal"
        self.create(canary(key))
        rng = random.Random(1601)
        self.promote_into_holdback(key, rng)
        # units keep their arm across the holdback
        arms = {}
        for i in range(200):
            st, a = self.c.call("POST", "/v1/assign",
                                {"unit": "s%d" % i, "experiments": [key]})
            arms["s%d" % i] = a["assignments"][0]["arm"]
        share = sum(v == "stable" for v in arms.values()) / len(arms)
        self.assertTrue(0.10 < share < 0.30, share)

        def worse(a, rng):  # the benefit reverses: next is 25 % slower
            mu = 125 if a["arm"] == "next" else 100
            return [("latency", rng.gauss(mu, 10), None)]

        run_until(self.c, key,
                  lambda r: drive(self.c, key, 150, worse, "r%d" % r, rng),
                  lambda d: any(x["action"] == "holdback_alert"
                                for x in decisions(self.c, key)),
                  rounds=80)
        acts = decisions(self.c, key)
        alert = [x for x in acts if x["action"] == "holdback_alert"]
        self.assertEqual(len(alert), 1, [x["action"] for x in acts])
        self.assertEqual(alert[0]["actor"], "engine")
        self.assertIn('"next" is significantly higher', alert[0]["reason"])
        self.assertIn('on "latency"', alert[0]["reason"])
        h = alert[0]["details"]["holdback"]
        self.assertEqual(h["verdict"], "reversed")
        line = h["metrics"][0]
        self.assertEqual(line["metric"], "latency")
        self.assertTrue(line["reversed"])
        self.assertGreater(line["ci_running"][0], 0)  # next minus stable
        self.assertLessEqual(line["p_running"], h["alpha_each"])
        m = self.metrics()
        self.assertEqual(metric_value(m, "arbiter_holdback_reversed",
                                      experiment=key, metric="latency"), 1)
        self.assertEqual(metric_value(m, "arbiter_holdback_active",
                                      experiment=key), 1)
        # the alert is raised once; the holdback waits for a person
        for r in range(4):
            drive(self.c, key, 50, worse, "q%d" % r, rng)
            time.sleep(0.3)
        acts = decisions(self.c, key)
        self.assertEqual(sum(x["action"] == "holdback_alert" for x in acts),
                         1)
        self.assertEqual(state(self.c, key)["state"], "running")
        for u, arm in list(arms.items())[:50]:
            st, a = self.c.call("POST", "/v1/assign",
                                {"unit": u, "experiments": [key]})
            self.assertEqual(a["assignments"][0]["arm"], arm)
        st, res = self.c.call("GET", "/v1/experiments/%s/results" % key,
                              token=ADMIN)
        self.assertEqual(st, 200)
        self.assertEqual(res["rollout"]["phase"], "holdback")
        self.assertEqual(
            res["rollout"]["evidence"]["holdback"]["verdict"], "reversed")
        # a person rolls back: the previous version serves everyone
        st, ans = self.c.call("POST", "/v1/experiments/%s/rollback" % key,
                              {"reason": "holdback alert"}, token=ADMIN)
        self.assertEqual(st, 200, ans)
        self.assertEqual(state(self.c, key)["state"], "rolled_back")
        deadline = time.time() + 10
        while metric_value(self.metrics(), "arbiter_holdback_active",
                           experiment=key) != 0:
            self.assertLess(time.time(), deadline, "holdback still active")
            time.sleep(0.2)

    def test_holding_benefit_ends_the_holdback(self):
        key = "hb-holds"
        self.create(canary(key, holdback_s=3))
        rng = random.Random(1602)
        self.promote_into_holdback(key, rng)

        def same(a, rng):
            mu = 90 if a["arm"] == "next" else 100
            return [("latency", rng.gauss(mu, 10), None)]

        doc = run_until(self.c, key,
                        lambda r: drive(self.c, key, 60, same, "h%d" % r,
                                        rng),
                        lambda d: d["state"] != "running", rounds=60)
        self.assertEqual(doc["state"], "promoted")
        acts = decisions(self.c, key)
        self.assertEqual(acts[-1]["action"], "holdback_end")
        self.assertNotIn("holdback_alert", [x["action"] for x in acts])
        self.assertEqual(acts[-1]["details"]["holdback"]["verdict"], "ended")
        st, ans = self.c.call("GET", "/v1/assign?experiment=%s&unit=x1" % key)
        self.assertEqual((ans["arm"], ans["reason"]), ("next", "promoted"))
        self.assertEqual(metric_value(self.metrics(),
                                      "arbiter_holdback_active",
                                      experiment=key), 0)

    def test_holdback_needs_two_arms(self):
        doc = canary("hb-bad")
        doc["strategy"] = "ab"
        doc["arms"].append({"name": "third", "weight": 0})
        st, ans = self.c.call("POST", "/v1/experiments", doc, token=ADMIN)
        self.assertEqual(st, 400, ans)
        self.assertIn("holdback_pct", ans["error"]["message"])
        doc = canary("hb-bad2", holdback_pct=60)
        st, ans = self.c.call("POST", "/v1/experiments", doc, token=ADMIN)
        self.assertEqual(st, 400, ans)

    def post_values(self, key, metric, values, ts):
        events = [{"experiment": key, "unit": "f%d" % (i % 400),
                   "metric": metric, "value": v,
                   "ts": time.strftime("%Y-%m-%dT%H:%M:%S",
                                       time.gmtime(ts + i * 0.05)) + "Z"}
                  for i, v in enumerate(values)]
        st, ans = self.c.call("POST", "/v1/events", events)
        self.assertEqual(st, 202, ans)
        self.assertFalse(ans["rejected"], ans["rejected"][:3])

    def test_shift_in_a_posted_feature_is_flagged(self):
        key = "drift-features"
        watch = {"reference_s": 60, "window_s": 300, "interval_s": 1,
                 "bins": 10, "alpha": 0.01, "min_values": 200}
        self.create({
            "key": key, "strategy": "ab",
            "arms": [{"name": "a", "weight": 50, "control": True},
                     {"name": "b", "weight": 50}],
            "metrics": [{"name": "click", "kind": "binary",
                         "role": "primary"},
                        {"name": "age", "kind": "mean", "drift": watch},
                        {"name": "score", "kind": "mean", "drift": watch}],
            "rollout": {"auto_promote": False}})
        st, doc = self.c.call("GET", "/v1/experiments/" + key, token=ADMIN)
        self.assertEqual(doc["metrics"][1]["drift"], watch)
        self.assertNotIn("drift", doc["metrics"][0])
        rng = random.Random(1603)
        now = time.time()
        # the reference: 15 minutes ago, within its 60 s
        self.post_values(key, "age", [rng.gauss(40, 10) for _ in range(600)],
                         now - 900)
        self.post_values(key, "score", [rng.gauss(0, 1) for _ in range(600)],
                         now - 900)
        # now: "age" shifted by half a standard deviation, "score" not
        self.post_values(key, "age", [rng.gauss(45, 10) for _ in range(600)],
                         now - 30)
        self.post_values(key, "score", [rng.gauss(0, 1) for _ in range(600)],
                         now - 30)
        res = None
        for _ in range(60):
            st, res = self.c.call("GET", "/v1/experiments/%s/results" % key,
                                  token=ADMIN)
            self.assertEqual(st, 200, res)
            by = {d["metric"]: d for d in res["drift"]}
            if by["age"]["looks"] >= 1 and by["score"]["looks"] >= 1:
                break
            time.sleep(0.5)
        by = {d["metric"]: d for d in res["drift"]}
        self.assertEqual(set(by), {"age", "score"})
        age, score = by["age"], by["score"]
        self.assertEqual(age["status"], "drift", age)
        self.assertTrue(age["flagged"])
        self.assertEqual(age["reference_values"], 600)
        self.assertEqual(age["current_values"], 600)
        self.assertGreater(age["psi"], 0.1)
        self.assertLessEqual(age["ks_p"], age["alpha_look"])
        self.assertEqual(score["status"], "watching", score)
        self.assertFalse(score["flagged"])
        self.assertLess(score["psi"], 0.1)
        m = self.metrics()
        self.assertEqual(metric_value(m, "arbiter_drift_detected",
                                      experiment=key, metric="age"), 1)
        self.assertEqual(metric_value(m, "arbiter_drift_detected",
                                      experiment=key, metric="score"), 0)
        self.assertAlmostEqual(metric_value(m, "arbiter_drift_psi",
                                            experiment=key, metric="age"),
                               age["psi"], places=9)
        # the view Grafana reads
        out = harness.psql(self.db, "SELECT flagged FROM arbiter.drift "
                           "WHERE experiment = 'drift-features' AND "
                           "metric = 'age'")
        self.assertEqual(out.strip(), "t")

    def test_bad_drift_declaration_is_400(self):
        for bad in ({"bins": 1}, {"alpha": 0.7}, {"window": 3}, [1]):
            st, ans = self.c.call("POST", "/v1/experiments", {
                "key": "drift-bad", "strategy": "ab",
                "arms": [{"name": "a", "weight": 50, "control": True},
                         {"name": "b", "weight": 50}],
                "metrics": [{"name": "age", "kind": "mean", "drift": bad}]},
                token=ADMIN)
            self.assertEqual(st, 400, ans)
            self.assertIn("metrics[0].drift", ans["error"]["message"])


if __name__ == "__main__":
    unittest.main()
