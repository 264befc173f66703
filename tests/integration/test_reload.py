"""test_reload.py -- configuration changes reach every instance.

Two arbiter processes share one PostgreSQL. A change made through A
(create, start, PATCH, pause, stop) reaches B's assignment answers through
LISTEN/NOTIFY within one second; and while B answers a steady loop of
assignments during many snapshot swaps, no request fails, every answer is
consistent with one whole snapshot (the arm is the one the hash gives
under the weights of the answer's weights_version), and a client never
sees weights_version go backwards.
"""
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


def arms(control_pct):
    return [{"name": "control", "weight": control_pct, "control": True},
            {"name": "treat", "weight": 100 - control_pct}]


def oracle(control_pct, bucket):
    return "treat" if bucket < (100 - control_pct) * 10000 else "control"


class Reload(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = harness.fresh_database("it_reload")
        cls.a = harness.Server(cls.url).start()
        cls.b = harness.Server(cls.url).start()

    @classmethod
    def tearDownClass(cls):
        for s in (cls.a, cls.b):
            s.stop()

    def assign_b(self, key, unit):
        q = urllib.parse.urlencode({"experiment": key, "unit": unit})
        return self.b.req("GET", "/v1/assign?" + q, token=CLIENT)

    def until_b(self, key, unit, pred, limit=1.0):
        """Seconds until B's answer satisfies pred; fails past limit."""
        t0 = time.monotonic()
        last = None
        while time.monotonic() - t0 < limit + 2:
            last = self.assign_b(key, unit)
            if pred(last):
                took = time.monotonic() - t0
                self.assertLessEqual(took, limit, (key, last))
                return took
            time.sleep(0.01)
        self.fail("B never saw the change of %s: %r" % (key, last))

    def test_changes_through_a_reach_b_within_a_second(self):
        key, unit = "rl-1", "unit-7"
        self.assertEqual(self.assign_b(key, unit).status, 404)
        d = {"key": key, "arms": arms(100)}
        self.assertEqual(self.a.req("POST", "/v1/experiments", d).status, 201)
        took = [self.until_b(key, unit, lambda r: r.status == 200 and
                             r.json()["reason"] == "draft")]
        self.assertEqual(self.a.req(
            "POST", "/v1/experiments/%s/start" % key).status, 200)
        took.append(self.until_b(key, unit, lambda r: r.status == 200 and
                                 r.json()["reason"] == "hashed"))
        self.assertEqual(self.assign_b(key, unit).json()["arm"], "control")
        r = self.a.req("PATCH", "/v1/experiments/" + key, {"arms": arms(0)})
        self.assertEqual(r.status, 200, r)
        took.append(self.until_b(key, unit, lambda r: r.json()
                                 ["weights_version"] == 2))
        a = self.assign_b(key, unit).json()
        self.assertEqual((a["arm"], a["propensity"]), ("treat", 1))
        self.assertEqual(self.a.req(
            "POST", "/v1/experiments/%s/pause" % key).status, 200)
        took.append(self.until_b(key, unit, lambda r: r.json()["reason"] ==
                                 "paused"))
        self.assertEqual(self.a.req(
            "POST", "/v1/experiments/%s/stop" % key).status, 200)
        took.append(self.until_b(key, unit, lambda r: r.json()["reason"] ==
                                 "stopped"))
        # the same through B's admin API, seen by A
        self.assertEqual(self.b.req("POST", "/v1/experiments",
                                    {"key": "rl-2", "arms": arms(50)}
                                    ).status, 201)
        t0 = time.monotonic()
        while self.a.req("GET", "/v1/assign?experiment=rl-2&unit=u",
                         token=CLIENT).status != 200:
            self.assertLess(time.monotonic() - t0, 1.0)
            time.sleep(0.01)
        print("\nNOTIFY propagation A->B (s):",
              " ".join("%.3f" % t for t in took), file=sys.stderr)
        # B's readiness reports a newer snapshot than at its start
        self.assertGreater(self.b.req("GET", "/readyz").json()
                           ["snapshot_version"], 1)

    def test_backstop_reload_without_notify(self):
        """A change written straight into the table (no NOTIFY) still
        reaches every instance by the periodic reload (every 10 s)."""
        key = "rl-quiet"
        r = self.a.req("POST", "/v1/experiments",
                       {"key": key, "arms": arms(50)})
        self.assertEqual(r.status, 201, r)
        self.until_b(key, "u", lambda r: r.status == 200)
        harness.psql(self.url, "UPDATE arbiter.experiments SET state = "
                     "'running' WHERE key = '%s'" % key)
        took = self.until_b(key, "u", lambda r: r.json()["reason"] ==
                            "hashed", limit=12)
        self.assertGreater(took, 0.3)  # it was not a notification
        print("\nbackstop reload after %.1f s" % took, file=sys.stderr)

    def test_no_request_fails_during_many_swaps(self):
        key = "rl-swap"
        r = self.a.req("POST", "/v1/experiments",
                       {"key": key, "arms": arms(50)})
        self.assertEqual(r.status, 201, r)
        self.a.req("POST", "/v1/experiments/%s/start" % key)
        self.until_b(key, "u", lambda r: r.status == 200 and
                     r.json()["reason"] == "hashed")
        # weights_version v serves control weight weights[v]
        weights = {1: 50}
        stop = threading.Event()
        results = [[] for _ in range(3)]
        errors = []

        def loop(idx):
            n = 0
            while not stop.is_set():
                unit = "w%d-%d" % (idx, n % 500)
                n += 1
                try:
                    if n % 2:
                        r = self.assign_b(key, unit)
                        ans = r.json() if r.status == 200 else None
                    else:
                        r = self.b.req("POST", "/v1/assign",
                                       {"unit": unit}, token=CLIENT)
                        ans = [x for x in r.json()["assignments"]
                               if x["experiment"] == key][0] \
                            if r.status == 200 else None
                except Exception as e:  # noqa: BLE001
                    errors.append(repr(e))
                    continue
                if ans is None:
                    errors.append(repr(r))
                    continue
                results[idx].append((unit, ans["weights_version"],
                                     ans["arm"], ans["bucket"]))

        threads = [threading.Thread(target=loop, args=(i,))
                   for i in range(3)]
        for t in threads:
            t.start()
        try:
            for i in range(40):
                pct = (10, 90, 30, 70)[i % 4]
                r = self.a.req("PATCH", "/v1/experiments/" + key,
                               {"arms": arms(pct)})
                self.assertEqual(r.status, 200, r)
                weights[r.json()["weights_version"]] = pct
                time.sleep(0.05)
            time.sleep(1.0)
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(weights), 41)
        total = sum(len(x) for x in results)
        self.assertGreater(total, 200)
        seen = set()
        for res in results:
            last = 0
            for unit, wv, arm, bucket in res:
                self.assertGreaterEqual(wv, last)  # never backwards
                last = wv
                seen.add(wv)
                self.assertEqual(bucket, position("A", key, 1, unit))
                self.assertEqual(arm, oracle(weights[wv], bucket),
                                 (unit, wv))
            self.assertEqual(last, 41)  # every client ends on the last
        self.assertGreater(len(seen), 10)
        print("\n%d assignments on B across %d weights versions, 0 "
              "failed" % (total, len(seen)), file=sys.stderr)


if __name__ == "__main__":
    harness.main()
