"""test_quantile_fold.py -- quantile sketches kept by the fold
(sql/migrations/013_quantiles.sql, issue 16).

  * SQL and C agree on the bucket of a value: arbiter.ddsketch_index()
    against stats_ddsketch_index() (the tool build/tests/ddsketch_index)
    for values at every 37th bucket boundary gamma^i (i in -3000..3000),
    one and two ulps either side, 0, negatives, the storable extremes and
    random values: equal for every value.
  * the fold sketches exactly the events it folds, once: events posted in
    several batches (explicit arms, zeros and a negative), folded by the
    leader; arbiter.quantile_buckets equals arbiter.quantile_buckets_
    recompute() (from the raw events) and equals the counts computed here
    with the C bucket function; the fold's event count is the number
    posted; events of other metrics are not sketched.
  * a quantile metric does not disturb the other statistics: arm_stats
    carries its per-unit mean (kind 'mean'), arbiter.metric_defs reports
    declared_kind 'quantile' and q.
  * /results reports per arm n and the q-quantile (within 1 % of numpy's
    inverted_cdf quantile of the same data: the sketch's documented bound)
    and a comparison whose interval contains the sketch difference.
  * arbiter.fold() called alone (as apply_retention() does) is caught up by
    the next hooked fold: the sketch still equals the recomputation.
"""
import math
import os
import random
import subprocess
import sys
import time
import unittest

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import harness  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from ingest_load import fold_wait  # noqa: E402

CLIENT = harness.CLIENT
TOOL = os.path.join(harness.BUILD, "tests", "ddsketch_index")
GAMMA = (1 + 0.01) / (1 - 0.01)


def c_index(values):
    out = subprocess.run([TOOL], input="".join(repr(v) + "\n" for v in values),
                         capture_output=True, text=True, check=True)
    return [int(x) for x in out.stdout.split()]


class QuantileFold(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = harness.fresh_database("it_quantile_fold")
        cls.srv = harness.Server(cls.db).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def test_sql_and_c_buckets_agree(self):
        lg = math.log(GAMMA)
        vals = [0.0, -1.0, -1e-300, 5e-324, 1e-154, 1e154, 1.0]
        for i in range(-3000, 3001, 37):
            b = math.exp(i * lg)
            lo = hi = b
            vals.append(b)
            for _ in range(2):
                lo, hi = math.nextafter(lo, 0), math.nextafter(hi, math.inf)
                vals += [lo, hi]
        rng = random.Random(5)
        vals += [rng.lognormvariate(0, 5) for _ in range(2000)]
        want = c_index(vals)
        sql = ("SELECT arbiter.ddsketch_index(v) FROM unnest(ARRAY[%s]::float8[])"
               " WITH ORDINALITY AS t(v, i) ORDER BY i"
               % ",".join(repr(v) for v in vals))
        got = [int(x) for x in harness.psql(self.db, sql).split()]
        self.assertEqual(len(got), len(vals))
        bad = [(v, g, w) for v, g, w in zip(vals, got, want) if g != w]
        self.assertEqual(bad, [])
        # the representative value agrees with C's formula too (1e-12)
        out = harness.psql(self.db, "SELECT arbiter.ddsketch_value(100),"
                           " arbiter.ddsketch_value(-2147483648)").split("|")
        self.assertAlmostEqual(float(out[0]) / (2 * GAMMA ** 100 / (GAMMA + 1)),
                               1, places=12)
        self.assertEqual(float(out[1]), 0)

    def test_fold_sketches_each_event_once(self):
        key = "qf"
        r = self.srv.req("POST", "/v1/experiments", {
            "key": key, "strategy": "ab",
            "arms": [{"name": "control", "weight": 50, "control": True},
                     {"name": "v2", "weight": 50}],
            "metrics": [{"name": "latency", "kind": "quantile", "q": 0.99,
                         "direction": "decrease", "role": "guardrail"},
                        {"name": "clicks", "kind": "sum"}]})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["metrics"][0]["q"], 0.99)
        self.assertEqual(self.srv.req("POST", "/v1/experiments/%s/start" % key).status, 200)
        fold_wait(self.db)
        before = int(harness.psql(self.db, "SELECT events_total FROM arbiter.fold_state"))
        rng = random.Random(11)
        values = {"control": [], "v2": []}
        n = 0
        for batch in range(6):
            ev = []
            for i in range(2000):
                arm = "control" if rng.random() < 0.5 else "v2"
                v = round(rng.lognormvariate(3 if arm == "control" else 3.1, 0.6), 3)
                if i == 7:
                    v = 0.0
                if i == 8 and batch == 0:
                    v = -2.5  # clamped to the zero bucket
                values[arm].append(v)
                ev.append({"experiment": key, "unit": "u%d" % rng.randrange(3000),
                           "metric": "latency", "arm": arm, "value": v,
                           "id": "e%d-%d" % (batch, i)})
                if i % 10 == 0:
                    ev.append({"experiment": key, "unit": "u%d" % i,
                               "metric": "clicks", "arm": arm, "value": 1})
            n += len(ev)
            r = self.srv.req("POST", "/v1/events", ev, token=CLIENT)
            self.assertEqual(r.status, 202, r)
        fold_wait(self.db)
        # the fold's own count: every event folded once
        total = int(harness.psql(self.db, "SELECT events_total FROM arbiter.fold_state"))
        self.assertEqual(total - before, n)
        stored = harness.psql(self.db, (
            "SELECT metric, arm, bucket, count FROM arbiter.quantile_buckets b"
            " JOIN arbiter.experiments e ON e.id = b.experiment_id"
            " WHERE e.key = '%s' ORDER BY 1, 2, 3" % key))
        again = harness.psql(self.db, (
            "SELECT metric, arm, bucket, count FROM"
            " arbiter.quantile_buckets_recompute('%s') ORDER BY 1, 2, 3" % key))
        self.assertEqual(stored, again)
        want = []
        for arm in ("control", "v2"):
            counts = {}
            for b in c_index(values[arm]):
                counts[b] = counts.get(b, 0) + 1
            want += ["latency|%s|%d|%d" % (arm, b, c) for b, c in sorted(counts.items())]
        self.assertEqual(stored.split("\n"), want)
        # metric_defs and arm_stats
        d = harness.psql(self.db, (
            "SELECT kind, declared_kind, q FROM arbiter.metric_defs"
            " WHERE experiment = '%s' AND name = 'latency'" % key))
        self.assertEqual(d, "mean|quantile|0.99")
        units = harness.psql(self.db, (
            "SELECT sum(units_with_events) FROM arbiter.arm_stats"
            " WHERE experiment = '%s' AND metric = 'latency'" % key))
        self.assertGreater(int(units), 2500)

        # /results: per-arm quantile within the sketch bound of numpy's
        r = self.srv.req("GET", "/v1/experiments/%s/results" % key)
        self.assertEqual(r.status, 200, r)
        m = [x for x in r.json()["metrics"] if x["name"] == "latency"][0]
        self.assertEqual(m["kind"], "quantile")
        a = m["analysis"]
        self.assertEqual(a["status"], "ok")
        self.assertEqual(a["interval"], "always_valid_confidence_sequence")
        for arm in a["arms"]:
            xs = np.maximum(np.array(values[arm["name"]]), 0)
            exact = float(np.quantile(xs, 0.99, method="inverted_cdf"))
            self.assertEqual(arm["n"], len(xs))
            self.assertLessEqual(abs(arm["quantile"] - exact), 0.01 * exact * (1 + 1e-9))
        c = a["comparisons"][0]
        self.assertEqual(c["arm"], "v2")
        self.assertLessEqual(c["ci_low"], c["difference"])
        self.assertLessEqual(c["difference"], c["ci_high"])
        self.assertLessEqual(c["relative_ci_low"], c["relative"])
        r = self.srv.req("GET", "/v1/experiments/%s/results?method=welch" % key)
        a2 = [x for x in r.json()["metrics"] if x["name"] == "latency"][0]["analysis"]
        self.assertEqual(a2["interval"], "fixed_horizon")
        c2 = a2["comparisons"][0]
        # the fixed-horizon interval is narrower than the always-valid one
        self.assertLess(c2["ci_high"] - c2["ci_low"], c["ci_high"] - c["ci_low"])

    def test_fold_called_alone_is_caught_up(self):
        """arbiter.fold() without the hook (as arbiter.apply_retention()
        calls it) moves only the fold's watermark; the next hooked fold
        sketches the skipped range: nothing lost, nothing twice."""
        key = "qf-alone"
        r = self.srv.req("POST", "/v1/experiments", {
            "key": key, "strategy": "ab",
            "arms": [{"name": "a", "weight": 50, "control": True},
                     {"name": "b", "weight": 50}],
            "metrics": [{"name": "lat", "kind": "quantile", "q": 0.5}]})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.srv.req("POST", "/v1/experiments/%s/start" % key).status, 200)
        rng = random.Random(3)
        for batch in range(3):
            ev = [{"experiment": key, "unit": "u%d" % i, "metric": "lat",
                   "arm": "ab"[i % 2], "value": rng.expovariate(0.1),
                   "id": "x%d-%d" % (batch, i)} for i in range(1000)]
            self.assertEqual(self.srv.req("POST", "/v1/events", ev, token=CLIENT).status, 202)
            harness.psql(self.db, "SELECT * FROM arbiter.fold(500000)")
        fold_wait(self.db)
        for _ in range(100):
            wq = harness.psql(self.db, "SELECT q.watermark = f.watermark FROM"
                              " arbiter.quantile_fold_state q, arbiter.fold_state f")
            if wq == "t":
                break
            time.sleep(0.1)
        self.assertEqual(wq, "t")
        stored = harness.psql(self.db, (
            "SELECT metric, arm, bucket, count FROM arbiter.quantile_buckets b"
            " JOIN arbiter.experiments e ON e.id = b.experiment_id"
            " WHERE e.key = '%s' ORDER BY 1, 2, 3" % key))
        again = harness.psql(self.db, (
            "SELECT metric, arm, bucket, count FROM"
            " arbiter.quantile_buckets_recompute('%s') ORDER BY 1, 2, 3" % key))
        self.assertEqual(stored, again)
        total = harness.psql(self.db, (
            "SELECT sum(count) FROM arbiter.quantile_buckets b JOIN"
            " arbiter.experiments e ON e.id = b.experiment_id WHERE e.key = '%s'" % key))
        self.assertEqual(int(total), 3000)


if __name__ == "__main__":
    harness.main()
