"""test_outage.py -- the service through a PostgreSQL outage and a restart.

While the test cluster is stopped (harness.pg_ctl("stop")):
  * assignment keeps answering, with exactly the answers given before;
    sticky units keep their cached arm, unknown ones are answered by hash
  * /readyz says 503 (database false) and /metrics arbiter_db_up 0
  * every admin route answers 503 database_unavailable with Retry-After
  * exposures recorded meanwhile are kept and written once the database
    is back (pg_ctl("start")), coalesced with the earlier ones
After a server restart the answers are identical, sticky ones included.

This suite stops and starts the shared test cluster: it always restarts
it (tearDown), and is the only suite that does.
"""
import json
import os
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402

ADMIN, CLIENT = harness.ADMIN, harness.CLIENT


def pg_is_up(url):
    try:
        harness.psql(url, "SELECT 1")
        return True
    except Exception:  # noqa: BLE001
        return False


class Outage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = harness.fresh_database("it_outage")
        cls.srv = harness.Server(cls.url).start()
        d = {"key": "out-ab",
             "arms": [{"name": "control", "weight": 40, "control": True,
                       "model": "m@1"},
                      {"name": "a", "weight": 35, "model": "m@2"},
                      {"name": "b", "weight": 25, "model": "m@3"}]}
        s = {"key": "out-stk", "sticky": True,
             "arms": [{"name": "control", "weight": 50, "control": True},
                      {"name": "treat", "weight": 50}]}
        for doc in (d, s):
            assert cls.srv.req("POST", "/v1/experiments", doc).status == 201
            assert cls.srv.req("POST", "/v1/experiments/%s/start"
                               % doc["key"]).status == 200

    @classmethod
    def tearDownClass(cls):
        if not pg_is_up(cls.url):
            harness.pg_ctl("start")
        cls.srv.stop()

    def tearDown(self):
        if not pg_is_up(self.url):  # never leave the shared cluster down
            harness.pg_ctl("start")

    def assign(self, key, unit, srv=None):
        q = urllib.parse.urlencode({"experiment": key, "unit": unit})
        r = (srv or self.srv).req("GET", "/v1/assign?" + q, token=CLIENT,
                                  timeout=5)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def wait_sql(self, q, want, timeout=20):
        deadline = time.time() + timeout
        got = None
        while time.time() < deadline:
            try:
                got = harness.psql(self.url, q)
            except Exception as e:  # noqa: BLE001
                got = repr(e)
            if got == want:
                return
            time.sleep(0.1)
        self.fail("%s: waited for %r, last %r" % (q, want, got))

    def wait_ready(self, srv, status, timeout=20):
        deadline = time.time() + timeout
        r = None
        while time.time() < deadline:
            r = srv.req("GET", "/readyz", token=None, timeout=5)
            if r.status == status:
                return r
            time.sleep(0.05)
        self.fail("readyz never %d: %r" % (status, r))

    def metric(self, name):
        body = self.srv.req("GET", "/metrics", token=None).body
        for ln in body.splitlines():
            if ln.startswith(name + " "):
                return float(ln.split()[1])
        self.fail("no metric " + name)

    def test_1_outage(self):
        units = ["u-%d" % i for i in range(100)]
        before = {u: self.assign("out-ab", u) for u in units}
        # the sticky experiment's weights change, so its store is consulted
        r = self.srv.req("PATCH", "/v1/experiments/out-stk",
                         {"arms": [{"name": "control", "weight": 20,
                                    "control": True},
                                   {"name": "treat", "weight": 80}]})
        self.assertEqual(r.status, 200, r)
        sticky = {u: self.assign("out-stk", u) for u in units[:50]}
        self.wait_sql("SELECT count(*) FROM arbiter.exposures WHERE "
                      "experiment = 'out-ab'", "100")

        harness.pg_ctl("stop")
        try:
            t0 = time.time()
            r = self.wait_ready(self.srv, 503)
            print("\nreadyz 503 after %.2f s" % (time.time() - t0),
                  file=sys.stderr)
            doc = r.json()
            self.assertEqual(doc["status"], "not_ready")
            self.assertIs(doc["database"], False)
            self.assertIs(doc["snapshot_loaded"], True)
            self.assertEqual(self.metric("arbiter_db_up"), 0)
            self.assertEqual(self.srv.req("GET", "/healthz",
                                          token=None).status, 200)

            # assignment: the same answers, from memory
            for u in units:
                self.assertEqual(self.assign("out-ab", u), before[u], u)
            for u in units[:50]:
                # the first answer was hashed, later ones come from the
                # cache of the sticky store: the arm is what must not move
                a = self.assign("out-stk", u)
                self.assertEqual(a["arm"], sticky[u]["arm"], u)
                self.assertEqual(sticky[u]["reason"], "hashed")
                self.assertEqual(a["reason"], "sticky")
            r = self.srv.req("POST", "/v1/assign", {"unit": "u-3"},
                             token=CLIENT, timeout=5)
            self.assertEqual(r.status, 200, r)
            got = {x["experiment"]: x for x in r.json()["assignments"]}
            self.assertEqual(got["out-ab"], before["u-3"])
            # new units meanwhile: answered (the store is skipped)
            during = ["o-%d" % i for i in range(50)]
            for u in during:
                a = self.assign("out-ab", u)
                self.assertEqual(a["reason"], "hashed")
                self.assertEqual(self.assign("out-stk", "s" + u)["reason"],
                                 "hashed")

            # admin: 503 with Retry-After, fast, in the one error shape
            admin = [("GET", "/v1/experiments", None),
                     ("GET", "/v1/experiments/out-ab", None),
                     ("POST", "/v1/experiments",
                      {"key": "during", "arms": [
                          {"name": "c", "weight": 50, "control": True},
                          {"name": "t", "weight": 50}]}),
                     ("PATCH", "/v1/experiments/out-ab",
                      {"description": "during the outage"}),
                     ("POST", "/v1/experiments/out-ab/pause", None),
                     ("POST", "/v1/experiments/out-ab/stop", None),
                     ("GET", "/v1/experiments/out-ab/decisions", None),
                     ("GET", "/v1/experiments/out-ab/exposures", None)]
            for method, path, body in admin:
                with self.subTest(route=(method, path)):
                    t = time.time()
                    r = self.srv.req(method, path, body, timeout=10)
                    self.assertLess(time.time() - t, 5)
                    self.assertEqual(r.status, 503, r)
                    self.assertEqual(r.headers.get("Retry-After"), "1")
                    self.assertEqual(r.json(), {"error": {
                        "code": "database_unavailable",
                        "message": r.json()["error"]["message"]}})
            # caller mistakes are still 4xx, not 503
            self.assertEqual(self.srv.req("GET", "/v1/experiments",
                                          token=CLIENT).status, 403)
            self.assertEqual(self.srv.req("POST", "/v1/experiments",
                                          "{").status, 400)
        finally:
            harness.pg_ctl("start")

        t0 = time.time()
        self.wait_ready(self.srv, 200, timeout=30)
        print("readyz 200 %.2f s after the restart" % (time.time() - t0),
              file=sys.stderr)
        self.assertEqual(self.metric("arbiter_db_up"), 1)
        # what was assigned meanwhile is written, coalesced with the rest:
        # 100 units before, the same 100 again, u-3 by POST, 50 new ones
        self.wait_sql("SELECT count(*) || '/' || sum(count) FROM "
                      "arbiter.exposures WHERE experiment = 'out-ab'",
                      "150/251")
        rows = json.loads(harness.psql(
            self.url, "SELECT json_object_agg(unit, arm) FROM "
            "arbiter.exposures WHERE experiment = 'out-ab'"))
        for u in units:
            self.assertEqual(rows[u], before[u]["arm"])
        self.wait_sql("SELECT sum(units) || '/' || sum(exposures) FROM "
                      "arbiter.exposure_counts WHERE experiment = 'out-ab'",
                      "150/251")
        self.wait_sql("SELECT count(*) FROM arbiter.exposures WHERE "
                      "experiment = 'out-stk'", "100")
        # nothing was written by the refused admin requests
        self.assertEqual(harness.psql(
            self.url, "SELECT count(*) FROM arbiter.experiments"), "2")
        self.assertEqual(harness.psql(
            self.url, "SELECT string_agg(action, ',' ORDER BY id) FROM "
            "arbiter.decisions WHERE experiment = 'out-ab'"), "create,start")
        # and admin writes work again
        r = self.srv.req("PATCH", "/v1/experiments/out-ab",
                         {"description": "after the outage"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.srv.req(
            "GET", "/v1/experiments/out-ab").json()["description"],
            "after the outage")

    def test_2_identical_answers_after_restart(self):
        units = ["r-%d" % i for i in range(100)]
        before = {u: self.assign("out-ab", u) for u in units}
        stk = {u: self.assign("out-stk", u) for u in units}
        # a weight change: sticky units now depend on the store
        r = self.srv.req("PATCH", "/v1/experiments/out-stk",
                         {"arms": [{"name": "control", "weight": 90,
                                    "control": True},
                                   {"name": "treat", "weight": 10}]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.srv.stop(), 0)  # flushes the exposures
        self.wait_sql("SELECT count(*) FROM arbiter.exposures WHERE "
                      "experiment = 'out-stk' AND unit LIKE 'r-%'", "100",
                      timeout=5)
        self.srv.start()
        for u in units:
            self.assertEqual(self.assign("out-ab", u), before[u], u)
            a = self.assign("out-stk", u)
            self.assertEqual(a["arm"], stk[u]["arm"], u)
            self.assertEqual(a["reason"], "sticky")


if __name__ == "__main__":
    harness.main()
