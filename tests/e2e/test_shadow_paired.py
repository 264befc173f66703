"""test_shadow_paired.py -- paired shadow analysis end to end (issue 16),
against the real binary and a private PostgreSQL:

  - a shadow whose candidate disagrees on 5 % of predictions is stopped;
  - a shadow whose candidate is 10 % slower (same predictions) is stopped;
  - an identical candidate holds and hands off to the canary configured
    in "then";
  - pairs are idempotent by request id, labels arrive later (McNemar and
    accuracy appear), and bad input gets the one 4xx error shape.
"""
import os
import random
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
from service_client import ADMIN, ServiceCase, decisions, state  # noqa: E402


def pair(i, ctrl_out, cand_out, ctrl_ms, cand_ms, label=None, prefix="r"):
    p = {"request_id": "%s-%d" % (prefix, i), "unit": "u-%d" % (i % 400),
         "control": {"output": ctrl_out, "latency_ms": ctrl_ms,
                     "error": False},
         "candidate": {"output": cand_out, "latency_ms": cand_ms}}
    if label is not None:
        p["label"] = label
    return p


class ShadowPaired(ServiceCase):
    DB = "e2e_shadow_paired"

    def create(self, key, then="stop", **paired):
        doc = {"key": key, "strategy": "shadow",
               "arms": [{"name": "live", "weight": 50, "control": True},
                        {"name": "dark", "weight": 50}],
               "metrics": [{"name": "latency", "kind": "mean",
                            "direction": "decrease", "role": "guardrail"}],
               "rollout": {"shadow_min_s": 1, "shadow_min_units": 50,
                           "then": then, "steps": [10, 50, 100]}}
        if paired:
            doc["rollout"]["paired"] = paired
        st, ans = self.c.call("POST", "/v1/experiments", doc, token=ADMIN)
        self.assertEqual(st, 201, ans)
        st, ans = self.c.call("POST", "/v1/experiments/%s/start" % key,
                              token=ADMIN)
        self.assertEqual(st, 200, ans)

    def post(self, key, pairs):
        st, ans = self.c.call("POST",
                              "/v1/experiments/%s/shadow/pairs" % key,
                              pairs)
        self.assertEqual(st, 200, ans)
        return ans

    def feed_until(self, key, make, done, rounds=40, batch=200):
        """Post batches of pairs make(i) until done(doc) or rounds run
        out; returns the experiment doc and the pairs posted."""
        doc, n = state(self.c, key), 0
        for _ in range(rounds):
            if done(doc):
                break
            self.post(key, [make(n + i) for i in range(batch)])
            n += batch
            time.sleep(0.3)
            doc = state(self.c, key)
        return doc, n

    def analysis(self, key, query=""):
        st, ans = self.c.call("GET", "/v1/experiments/%s/shadow%s"
                              % (key, query), token=ADMIN)
        self.assertEqual(st, 200, ans)
        return ans

    def test_five_percent_disagreement_is_stopped(self):
        self.create("dis")
        rng = random.Random(1)

        def make(i):
            base = rng.gauss(100, 10)
            cls = "c%d" % (i % 7)
            # every 20th request: the shadow answers another class
            return pair(i, cls, cls + "x" if i % 20 == 0 else cls, base,
                        base + rng.gauss(0, 2))

        doc, n = self.feed_until("dis", make,
                                 lambda d: d["state"] != "running")
        self.assertEqual(doc["state"], "stopped", n)
        print("disagreement stopped after %d pairs" % n, file=sys.stderr)
        last = decisions(self.c, "dis")[-1]
        self.assertEqual(last["action"], "stop")
        self.assertIn("paired check disagreement", last["reason"])
        self.assertIn("shadow arm regressed", last["reason"])
        a = self.analysis("dis")
        self.assertEqual(a["verdict"], "regressed")
        self.assertAlmostEqual(a["agreement"]["rate"], 0.95, delta=0.002)
        self.assertLess(a["agreement"]["ci_low"], 0.95)
        self.assertGreater(a["agreement"]["ci_high"], 0.95)
        self.assertTrue(a["checks"]["disagreement"]["harm"])
        self.assertGreater(a["checks"]["disagreement"]["cs_low"], 0.02)
        self.assertFalse(a["checks"]["latency"]["harm"])

    def test_ten_percent_slower_is_stopped(self):
        self.create("slow")
        rng = random.Random(2)

        def make(i):
            base = rng.gauss(100, 10)
            return pair(i, "yes" if i % 3 else "no",
                        "yes" if i % 3 else "no", base,
                        1.10 * base + rng.gauss(0, 3))

        doc, n = self.feed_until("slow", make,
                                 lambda d: d["state"] != "running")
        self.assertEqual(doc["state"], "stopped", n)
        print("latency stopped after %d pairs" % n, file=sys.stderr)
        last = decisions(self.c, "slow")[-1]
        self.assertIn("paired check latency", last["reason"])
        a = self.analysis("slow")
        self.assertEqual(a["agreement"]["rate"], 1.0)
        lat = a["latency"]
        self.assertAlmostEqual(lat["diff_mean_ms"], 10, delta=1.5)
        self.assertGreater(a["checks"]["latency"]["cs_low"],
                           0.05 * lat["control_mean_ms"])
        self.assertAlmostEqual(lat["diff_quantiles_ms"]["p50"], 10,
                               delta=1.5)
        self.assertLess(lat["paired_t"]["p_value"], 1e-6)

    def test_identical_candidate_hands_off_to_canary(self):
        self.create("same", then="canary")
        rng = random.Random(3)

        def make(i):
            base = rng.gauss(100, 10)
            return pair(i, "c%d" % (i % 5), "c%d" % (i % 5), base,
                        base + rng.gauss(0, 2))

        doc, n = self.feed_until("same", make,
                                 lambda d: d["strategy"] != "shadow",
                                 batch=100)
        self.assertEqual(doc["strategy"], "canary", n)
        print("identical handed off after %d pairs" % n, file=sys.stderr)
        self.assertEqual(doc["state"], "running")
        self.assertEqual([a["weight"] for a in doc["arms"]], [90, 10])
        convert = [d for d in decisions(self.c, "same")
                   if d["action"] == "convert"]
        self.assertEqual(len(convert), 1)
        self.assertIn("shadow comparison passed", convert[0]["reason"])
        # the pairs stay readable after the hand-off
        self.assertEqual(self.analysis("same")["verdict"], "holding")
        paired = convert[0]["details"]["paired"]
        self.assertEqual(paired["verdict"], "holding")
        self.assertGreaterEqual(paired["pairs"], 100)
        self.assertFalse(any(c["harm"] for c in paired["checks"].values()))

    def test_pairs_are_idempotent_and_labels_arrive_later(self):
        self.create("lab", min_pairs=10000)
        batch = []
        for i in range(60):
            truth = "a" if i % 2 else "b"
            ctrl = truth if i % 10 else ("b" if truth == "a" else "a")
            cand = truth if i % 4 else ("b" if truth == "a" else "a")
            batch.append(pair(i, ctrl, cand, 10.0, 11.0, prefix="l"))
        self.assertEqual(self.post("lab", batch),
                         {"accepted": 60, "duplicates": 0})
        # a retried batch, and a repeated id inside one, are no-ops
        self.assertEqual(self.post("lab", batch[:30] + [batch[0]]),
                         {"accepted": 0, "duplicates": 31})
        labels = [{"request_id": "l-%d" % i, "label": "a" if i % 2 else "b"}
                  for i in range(60)]
        st, ans = self.c.call("POST", "/v1/experiments/lab/shadow/labels",
                              {"labels": labels})
        self.assertEqual((st, ans), (200, {"labelled": 60, "unchanged": 0}))
        st, ans = self.c.call("POST", "/v1/experiments/lab/shadow/labels",
                              labels[:5])
        self.assertEqual((st, ans), (200, {"labelled": 0, "unchanged": 5}))
        # another label for a labelled request: 409, nothing written
        st, ans = self.c.call("POST", "/v1/experiments/lab/shadow/labels",
                              [{"request_id": "l-1", "label": "b"}])
        self.assertEqual(st, 409, ans)
        self.assertEqual(ans["error"]["code"], "conflict")
        st, ans = self.c.call("POST", "/v1/experiments/lab/shadow/labels",
                              [{"request_id": "nope", "label": "a"}])
        self.assertEqual(st, 404, ans)
        self.assertIn('"nope"', ans["error"]["message"])
        a = self.analysis("lab", "?alpha=0.1")
        self.assertEqual(a["pairs"], 60)
        self.assertEqual(a["verdict"], "waiting")
        acc = a["accuracy"]
        # control wrong on i % 10 == 0 (6), candidate on i % 4 == 0 (15)
        self.assertEqual(acc["labelled"], 60)
        self.assertAlmostEqual(acc["control"], 54 / 60)
        self.assertAlmostEqual(acc["candidate"], 45 / 60)
        mc = acc["mcnemar"]
        # both wrong on i % 20 == 0 (3): b = 15 - 3, c = 6 - 3
        self.assertEqual((mc["control_only_right"],
                          mc["candidate_only_right"]), (12, 3))
        self.assertEqual(mc["method"], "exact_binomial")
        # scipy.stats.binomtest(3, 15, 0.5).pvalue
        self.assertAlmostEqual(mc["p_exact"], 0.03515625, places=12)
        self.assertEqual(a["latency"]["diff_mean_ms"], 1.0)
        self.assertEqual(a["alpha"], 0.1)

    def test_scores_shift_is_tested(self):
        self.create("score", min_pairs=10000, score_tolerance=0.01)
        rng = random.Random(5)
        pairs = []
        for i in range(300):
            s = rng.random()
            pairs.append(pair(i, s, min(1.0, s + 0.05 + rng.gauss(0, 0.02)),
                              5.0, 5.0, prefix="s"))
        self.post("score", pairs)
        a = self.analysis("score")
        self.assertEqual(a["scores"]["n"], 300)
        self.assertEqual(a["scores"]["shift"]["test"],
                         "wilcoxon_signed_rank")
        self.assertLess(a["scores"]["shift"]["p_value"], 1e-10)
        self.assertLess(a["agreement"]["rate"], 0.2)

    def test_bad_input_is_a_clear_4xx(self):
        draft = {"key": "draft", "strategy": "shadow",
                 "arms": [{"name": "live", "weight": 50, "control": True},
                          {"name": "dark", "weight": 50}],
                 "metrics": [{"name": "m", "kind": "binary"}]}
        st, ans = self.c.call("POST", "/v1/experiments", draft, token=ADMIN)
        self.assertEqual(st, 201, ans)
        st, ans = self.c.call("POST", "/v1/experiments/draft/shadow/pairs",
                              [pair(1, "x", "x", 1.0, 1.0)])
        self.assertEqual((st, ans["error"]["code"]),
                         (409, "experiment_not_started"))
        self.create("bad")
        good = pair(1, "x", "x", 1.0, 1.0)
        cases = [
            ([], 400, "invalid"),
            ({"pairs": "no"}, 400, "invalid"),
            ([dict(good, extra=1)], 400, "invalid_pair"),
            ([dict(good, request_id="")], 400, "invalid_pair"),
            ([dict(good, unit=5)], 400, "invalid_pair"),
            ([dict(good, control={"output": [1], "latency_ms": 1})], 400,
             "invalid_pair"),
            ([dict(good, control={"latency_ms": 1})], 400, "invalid_pair"),
            ([dict(good, candidate={"output": "x", "latency_ms": -1})], 400,
             "invalid_pair"),
            ([dict(good, candidate={"output": 1e300})], 400, "invalid_pair"),
            # the JSON parser refuses NUL in strings (PostgreSQL's text
            # could not hold it)
            ([dict(good, label="a\u0000b")], 400, "invalid_json"),
            ([good] * 10001, 413, "too_many_pairs"),
        ]
        for body, status, code in cases:
            st, ans = self.c.call("POST", "/v1/experiments/bad/shadow/pairs",
                                  body)
            self.assertEqual(st, status, (body if len(body) < 5 else "", ans))
            self.assertEqual(ans["error"]["code"], code)
        st, ans = self.c.call("POST", "/v1/experiments/bad/shadow/pairs",
                              [good, dict(good, request_id="r-2",
                                          unit=None)])
        self.assertEqual(st, 400)
        self.assertIn("pairs[1].unit", ans["error"]["message"])
        # nothing of a refused batch was stored
        self.assertEqual(self.analysis("bad")["pairs"], 0)
        # an errored model needs no output
        self.post("bad", [dict(good, request_id="e-1",
                               candidate={"error": True, "latency_ms": 3})])
        self.assertEqual(self.analysis("bad")["errors"]["candidate"], 1)
        st, ans = self.c.call("GET", "/v1/experiments/nope/shadow",
                              token=ADMIN)
        self.assertEqual((st, ans["error"]["code"]), (404, "not_found"))
        st, ans = self.c.call("GET", "/v1/experiments/bad/shadow?alpha=2",
                              token=ADMIN)
        self.assertEqual((st, ans["error"]["code"]), (400, "invalid"))
        ab = {"key": "plain", "arms": [{"name": "a", "weight": 50,
                                        "control": True},
                                       {"name": "b", "weight": 50}],
              "metrics": [{"name": "m", "kind": "binary"}]}
        st, ans = self.c.call("POST", "/v1/experiments", ab, token=ADMIN)
        self.assertEqual(st, 201, ans)
        st, ans = self.c.call("POST", "/v1/experiments/plain/shadow/pairs",
                              [good])
        self.assertEqual((st, ans["error"]["code"]), (409, "not_shadow"))
        self.assertEqual(self.analysis("plain")["verdict"], "no_data")
        # the paired thresholds are validated with the definition
        doc = {"key": "badcfg", "strategy": "shadow",
               "arms": [{"name": "live", "weight": 50, "control": True},
                        {"name": "dark", "weight": 50}],
               "metrics": [{"name": "m", "kind": "binary"}],
               "rollout": {"paired": {"max_disagreement": 2}}}
        st, ans = self.c.call("POST", "/v1/experiments", doc, token=ADMIN)
        self.assertEqual(st, 400, ans)
        self.assertIn("rollout.paired.max_disagreement",
                      ans["error"]["message"])
        st, ans = self.c.call("POST", "/v1/experiments/bad/shadow/pairs",
                              [good], token="not-a-token")
        self.assertEqual((st, ans["error"]["code"]), (401, "unauthorized"))


if __name__ == "__main__":
    unittest.main()
