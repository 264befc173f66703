"""test_exposures.py -- exposures, stickiness and re-randomization against
a real PostgreSQL.

  * every answer with in_experiment true becomes one row per (experiment,
    unit) in arbiter.exposures, with the arm, bucket version, weights
    version and propensity of its first exposure and the number of
    assignments; repeated assignments coalesce; per-arm totals in
    arbiter.exposure_counts and GET /v1/experiments/{key}/exposures agree
    with the answers; answers outside the experiment are not exposures
  * a sticky experiment keeps the arm of units first exposed before a
    PATCH of the weights (in the same process and after a restart, from
    the store); new units follow the new weights; a non-sticky one moves
  * raising bucket_version re-randomizes (the new hash, checked against an
    independent hash v1); min_bucket_version re-randomizes sticky units
    first exposed under an older version, and they stay on their new arm

Expected arms come from hash v1 written here from its published
description (docs/hashing.md) on top of python3-xxhash.
"""
import json
import os
import struct
import sys
import threading
import time
import unittest
import urllib.parse

import xxhash

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402

ADMIN, CLIENT = harness.ADMIN, harness.CLIENT
SCALE = 1000000


def position(purpose, salt, version, unit):
    s = salt.encode()
    seed = xxhash.xxh3_64_intdigest(b"arbiter.v1" + purpose.encode() +
                                    struct.pack("<I", len(s)) + s +
                                    struct.pack("<I", version))
    h = xxhash.xxh3_64_intdigest(unit.encode(), seed=seed)
    return ((h >> 32) * SCALE) >> 32


def oracle_arm(arms, bucket):
    end = 0
    for name, pct, control in arms:
        if control:
            continue
        end += round(pct * 10000)
        if bucket < end:
            return name
    return [a[0] for a in arms if a[2]][0]


def two_arms(control_pct, **extra):
    d = {"arms": [{"name": "control", "weight": control_pct,
                   "control": True},
                  {"name": "treat", "weight": 100 - control_pct}]}
    d.update(extra)
    return d


def tuples(control_pct):
    return [("control", control_pct, True),
            ("treat", 100 - control_pct, False)]


class Exposures(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = harness.fresh_database("it_exposures")
        cls.srv = harness.Server(cls.url)
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def req(self, method, path, body=None, token=ADMIN):
        return self.srv.req(method, path, body, token=token)

    def create(self, key, d, start=True):
        d = dict(d, key=key)
        r = self.req("POST", "/v1/experiments", d)
        self.assertEqual(r.status, 201, r)
        if start:
            self.assertEqual(self.req(
                "POST", "/v1/experiments/%s/start" % key).status, 200)

    def patch(self, key, body):
        r = self.req("PATCH", "/v1/experiments/" + key, body)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def assign(self, key, unit, srv=None):
        q = urllib.parse.urlencode({"experiment": key, "unit": unit})
        r = (srv or self.srv).req("GET", "/v1/assign?" + q, token=CLIENT)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def sql(self, q):
        return harness.psql(self.url, q)

    def wait_for(self, q, want, timeout=15):
        deadline = time.time() + timeout
        got = None
        while time.time() < deadline:
            got = self.sql(q)
            if got == want:
                return
            time.sleep(0.1)
        self.fail("%s: waited for %r, last %r" % (q, want, got))

    def rows(self, key):
        out = self.sql("SELECT coalesce(json_agg(json_build_object("
                       "'unit', unit, 'arm', arm, 'bucket_version', "
                       "bucket_version, 'weights_version', weights_version, "
                       "'propensity', propensity, 'count', count, "
                       "'ordered', first_seen <= last_seen)), '[]') "
                       "FROM arbiter.exposures WHERE experiment = '%s'"
                       % key)
        return {r["unit"]: r for r in json.loads(out)}

    def counts(self, key):
        out = self.sql("SELECT coalesce(json_object_agg(arm, "
                       "json_build_array(units, exposures)), '{}') FROM "
                       "arbiter.exposure_counts WHERE experiment = '%s'"
                       % key)
        return {k: tuple(v) for k, v in json.loads(out).items()}

    # ---- exposures -----------------------------------------------------------

    def test_exposures_rows_counts_and_coalescing(self):
        d = {"arms": [{"name": "a", "weight": 25},
                      {"name": "control", "weight": 45, "control": True},
                      {"name": "b", "weight": 30}]}
        arms = [("a", 25, False), ("control", 45, True), ("b", 30, False)]
        self.create("exp-x", d)
        units = ["x-%d" % i for i in range(300)]
        want_arm = {u: oracle_arm(arms, position("A", "exp-x", 1, u))
                    for u in units}
        for u in units:
            self.assertEqual(self.assign("exp-x", u)["arm"], want_arm[u])
        for _ in range(4):
            for u in units[:50]:
                self.assign("exp-x", u)
        # through POST too: same unit, same row
        for u in units[50:60]:
            r = self.req("POST", "/v1/assign",
                         {"unit": u, "experiments": ["exp-x"]}, token=CLIENT)
            self.assertEqual(r.status, 200, r)
        self.wait_for("SELECT sum(units) || '/' || sum(exposures) FROM "
                      "arbiter.exposure_counts WHERE experiment = 'exp-x'",
                      "300/510")
        rows = self.rows("exp-x")
        self.assertEqual(set(rows), set(units))
        for u in units:
            r = rows[u]
            self.assertEqual(r["arm"], want_arm[u], u)
            self.assertEqual(r["count"], 5 if u in units[:50] else
                             2 if u in units[50:60] else 1, u)
            self.assertEqual(r["bucket_version"], 1)
            self.assertEqual(r["weights_version"], 1)
            self.assertAlmostEqual(r["propensity"],
                                   {"a": .25, "control": .45,
                                    "b": .30}[r["arm"]], places=12)
            self.assertTrue(r["ordered"])
        want = {}
        for u in units:
            n = rows[u]["count"]
            units_n, exp_n = want.get(want_arm[u], (0, 0))
            want[want_arm[u]] = (units_n + 1, exp_n + n)
        self.assertEqual(self.counts("exp-x"), want)
        r = self.req("GET", "/v1/experiments/exp-x/exposures")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {
            "experiment": "exp-x",
            "arms": [{"arm": a, "units": want[a][0], "exposures": want[a][1]}
                     for a in sorted(want)]})
        # later assignments of known units add exposures, never units
        for u in units[:10]:
            self.assign("exp-x", u)
        self.wait_for("SELECT sum(units) || '/' || sum(exposures) FROM "
                      "arbiter.exposure_counts WHERE experiment = 'exp-x'",
                      "300/520")
        rows = self.rows("exp-x")
        self.assertEqual([rows[u]["count"] for u in units[:10]], [6] * 10)
        self.assertEqual(self.sql("SELECT count(*) FROM arbiter.exposures "
                                  "WHERE experiment = 'exp-x'"), "300")
        # the totals equal a from-scratch recomputation over the rows
        self.assertEqual(self.sql(
            "SELECT bool_and(c.units = r.units AND c.exposures = r.n) FROM "
            "arbiter.exposure_counts c JOIN (SELECT experiment, arm, "
            "count(*) AS units, sum(count) AS n FROM arbiter.exposures "
            "GROUP BY 1, 2) r USING (experiment, arm) "
            "WHERE c.experiment = 'exp-x'"), "t")

    def test_answers_outside_the_experiment_are_not_exposures(self):
        self.create("exp-out", two_arms(50, coverage=0.5,
                                        forced={"qa-1": "treat"}))
        self.create("exp-draft", two_arms(50), start=False)
        inside = set()
        for i in range(200):
            u = "o-%d" % i
            a = self.assign("exp-out", u)
            self.assertEqual(a["in_experiment"],
                             position("C", "exp-out", 1, u) < 500000)
            if a["in_experiment"]:
                inside.add(u)
            self.assertFalse(self.assign("exp-draft", u)["in_experiment"])
        self.assertEqual(self.assign("exp-out", "qa-1")["reason"], "forced")
        self.wait_for("SELECT count(*) FROM arbiter.exposures WHERE "
                      "experiment = 'exp-out'", str(len(inside)))
        time.sleep(0.5)  # two flush periods: nothing else arrives
        self.assertEqual(set(self.rows("exp-out")), inside)
        self.assertEqual(self.rows("exp-draft"), {})
        r = self.req("GET", "/v1/experiments/exp-draft/exposures")
        self.assertEqual(r.json(), {"experiment": "exp-draft", "arms": []})

    def test_queue_is_bounded_and_drops_are_counted(self):
        """ARBITER_EXPOSURE_QUEUE=10: exposures past the bound are dropped
        and counted, never queued without limit; every exposure is either
        written or counted as dropped."""
        self.create("exp-q", two_arms(50))
        small = harness.Server(self.url, env={"ARBITER_EXPOSURE_QUEUE": "10"})
        small.start()
        try:
            units = ["q-%d" % i for i in range(60)]
            for u in units:
                self.assign("exp-q", u, small)
            body = small.req("GET", "/metrics", token=None).body
        finally:
            small.stop()  # flushes what was queued
        metrics = dict(ln.rsplit(" ", 1) for ln in body.splitlines()
                       if ln.startswith("arbiter_exposures_dropped_total "))
        dropped = int(metrics["arbiter_exposures_dropped_total"])
        written = int(self.sql("SELECT count(*) FROM arbiter.exposures "
                               "WHERE experiment = 'exp-q'"))
        self.assertGreater(dropped, 0)
        self.assertEqual(written + dropped, len(units))

    def test_two_instances_writing_the_same_units(self):
        """Two processes expose the same units at the same time: every
        exposure is counted once, per-unit counts add up, and the totals
        equal a recomputation (the upserts lock rows in one order)."""
        self.create("exp-2w", two_arms(50))
        other = harness.Server(self.url).start()
        units = ["w-%d" % i for i in range(150)]
        errors = []

        def loop(srv, rounds):
            for _ in range(rounds):
                for u in units:
                    try:
                        self.assign("exp-2w", u, srv)
                    except AssertionError as e:
                        errors.append(repr(e))

        try:
            threads = [threading.Thread(target=loop, args=(s, 2))
                       for s in (self.srv, other, self.srv, other)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            other.stop()
        self.assertEqual(errors, [])
        self.wait_for("SELECT count(*) || '/' || sum(count) FROM "
                      "arbiter.exposures WHERE experiment = 'exp-2w'",
                      "150/1200")
        self.wait_for("SELECT sum(units) || '/' || sum(exposures) FROM "
                      "arbiter.exposure_counts WHERE experiment = 'exp-2w'",
                      "150/1200")
        self.assertEqual(self.sql("SELECT min(count) || '/' || max(count) "
                                  "FROM arbiter.exposures WHERE "
                                  "experiment = 'exp-2w'"), "8/8")

    # ---- stickiness ----------------------------------------------------------

    def test_sticky_units_keep_their_arm_across_weight_changes(self):
        self.create("stk", two_arms(50, sticky=True))
        self.create("nstk", two_arms(50))
        old = ["s-%d" % i for i in range(200)]
        first = {}
        for u in old:
            a = self.assign("stk", u)
            self.assertEqual(a["arm"], oracle_arm(
                tuples(50), position("A", "stk", 1, u)))
            first[u] = a["arm"]
            self.assign("nstk", u)
        # written to the store before the weights change
        self.wait_for("SELECT count(*) FROM arbiter.exposures WHERE "
                      "experiment = 'stk'", "200")
        self.assertEqual(self.patch("stk", two_arms(10))["weights_version"],
                         2)
        self.patch("nstk", two_arms(10))
        moved_nonsticky = 0
        for u in old:
            a = self.assign("stk", u)
            self.assertEqual(a["arm"], first[u], u)
            self.assertEqual(a["reason"], "sticky")
            self.assertEqual(a["weights_version"], 2)
            self.assertEqual(a["propensity"],
                             {"control": 0.1, "treat": 0.9}[a["arm"]])
            b = self.assign("nstk", u)
            self.assertEqual(b["arm"], oracle_arm(
                tuples(10), position("A", "nstk", 1, u)))
            self.assertEqual(b["reason"], "hashed")
            if b["arm"] != first[u]:
                moved_nonsticky += 1
        # 50/50 -> 10/90 moves the units with bucket in [100000, 500000)
        self.assertGreater(moved_nonsticky, 40)
        new = ["n-%d" % i for i in range(200)]
        for u in new:
            a = self.assign("stk", u)
            self.assertEqual(a["arm"], oracle_arm(
                tuples(10), position("A", "stk", 1, u)), u)
            self.assertEqual(a["reason"], "hashed")
        self.assertGreater(sum(self.assign("stk", u)["arm"] == "treat"
                               for u in new), 150)
        # a fresh process (empty cache) reads the store
        other = harness.Server(self.url)
        other.start()
        try:
            for u in old:
                self.assertEqual(self.assign("stk", u, other)["arm"],
                                 first[u], u)
            for u in new[:50]:
                self.assertEqual(self.assign("stk", u, other)["arm"],
                                 oracle_arm(tuples(10),
                                            position("A", "stk", 1, u)))
        finally:
            other.stop()
        self.wait_for("SELECT count(*) FROM arbiter.exposures WHERE "
                      "experiment = 'stk'", "400")
        rows = self.rows("stk")
        self.assertEqual({u: rows[u]["arm"] for u in old}, first)
        self.assertEqual({rows[u]["weights_version"] for u in old}, {1})
        self.assertEqual({rows[u]["weights_version"] for u in new}, {2})

    # ---- re-randomization by bucket_version --------------------------------

    def test_bucket_version_rerandomizes(self):
        self.create("bv", two_arms(50))
        units = ["b-%d" % i for i in range(200)]
        before = {u: self.assign("bv", u) for u in units}
        for u in units:
            self.assertEqual(before[u]["bucket"], position("A", "bv", 1, u))
        doc = self.patch("bv", {"bucket_version": 2})
        self.assertEqual(doc["bucket_version"], 2)
        self.assertEqual(doc["weights_version"], 1)
        changed = 0
        for u in units:
            a = self.assign("bv", u)
            bucket = position("A", "bv", 2, u)
            self.assertEqual((a["bucket"], a["bucket_version"]), (bucket, 2))
            self.assertEqual(a["arm"], oracle_arm(tuples(50), bucket))
            changed += a["arm"] != before[u]["arm"]
        # independent re-draw: about half move (binomial(200, 1/2))
        self.assertTrue(70 < changed < 130, changed)

    def test_sticky_units_keep_arm_when_only_bucket_version_rises(self):
        self.create("bvk", two_arms(50, sticky=True))
        units = ["k-%d" % i for i in range(100)]
        first = {u: self.assign("bvk", u)["arm"] for u in units}
        self.wait_for("SELECT count(*) FROM arbiter.exposures WHERE "
                      "experiment = 'bvk'", "100")
        self.patch("bvk", {"bucket_version": 2})  # min_bucket_version 1
        for u in units:
            a = self.assign("bvk", u)
            self.assertEqual((a["arm"], a["reason"]), (first[u], "sticky"))

    def test_min_bucket_version_rerandomizes_sticky_units(self):
        self.create("bvs", two_arms(50, sticky=True))
        units = ["r-%d" % i for i in range(200)]
        first = {u: self.assign("bvs", u)["arm"] for u in units}
        self.wait_for("SELECT count(*) FROM arbiter.exposures WHERE "
                      "experiment = 'bvs'", "200")
        self.patch("bvs", {"bucket_version": 2, "min_bucket_version": 2})
        second = {}
        for u in units:
            a = self.assign("bvs", u)
            want = oracle_arm(tuples(50), position("A", "bvs", 2, u))
            self.assertEqual((a["arm"], a["reason"], a["bucket_version"]),
                             (want, "hashed", 2), u)
            second[u] = a["arm"]
        moved = sum(first[u] != second[u] for u in units)
        self.assertTrue(70 < moved < 130, moved)
        # the store now holds the version-2 arm: after a weight change and
        # in a fresh process the units keep their version-2 arm
        self.wait_for("SELECT count(*) FROM arbiter.exposures WHERE "
                      "experiment = 'bvs' AND bucket_version = 2", "200")
        rows = self.rows("bvs")
        self.assertEqual({u: rows[u]["arm"] for u in units}, second)
        self.assertEqual(self.counts("bvs"), {
            a: (sum(1 for u in units if second[u] == a),
                sum(rows[u]["count"] for u in units if second[u] == a))
            for a in set(second.values())})
        self.patch("bvs", two_arms(10))
        other = harness.Server(self.url)
        other.start()
        try:
            for u in units:
                a = self.assign("bvs", u, other)
                self.assertEqual((a["arm"], a["reason"]),
                                 (second[u], "sticky"), u)
        finally:
            other.stop()


if __name__ == "__main__":
    harness.main()
