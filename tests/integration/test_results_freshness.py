"""test_results_freshness.py -- GET /results reads its writes by waiting for
the leader's fold, not by folding itself (service/fold_read.h, issue 11).

  * the configured bound: freshness.max_age_ms is ARBITER_FOLD_MAX_AGE_MS,
    not the compile-time default (5000), and "stale" compares against it.
  * read your writes: with a leader tick of 60 s, events posted just before
    a GET /results are in its numbers; the request woke the leader (it
    waited far less than a tick), the leader folded ("folded_by":
    "leader"), and the leader never dropped its in-memory unit values (the
    SQL fold the handler used to run made it resync every time).
  * another process: a second server that is not the leader wakes the
    leader by NOTIFY; the same guarantees.
  * bounded: a transaction holding an xid keeps the watermark below the
    horizon; /results answers 200 after about the bound with
    "caught_up": false and says how much is not folded; the next reader,
    the watermark still where that wait timed out, waits only 300 ms;
    after the transaction ends it catches up.
  * no leader: when no session holds the leader lock, the request folds
    with the SQL fold itself ("folded_by": "request") and its events are
    in the numbers.
"""
import os
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import ingest_load as il  # noqa: E402
from test_ingest_fold import Session  # noqa: E402

KEY = "fresh"
METRICS = [{"name": "conv", "kind": "binary", "role": "primary"},
           {"name": "rev", "kind": "sum"}]
BOUND_MS = 1500
LEADER_KEY = 7243520  # service/leader.h


def wait_leader(srv, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        _, m = il.scrape(srv.base)
        if m.get("arbiter_leader") == 1:
            return
        time.sleep(0.05)
    raise AssertionError("never became the leader")


class ResultsFreshness(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = harness.fresh_database("results_freshness")
        cls.tmp = tempfile.mkdtemp(prefix="arbiter-fresh-")
        cls.srv = harness.Server(cls.url, env={
            "ARBITER_SPOOL_DIR": os.path.join(cls.tmp, "a"),
            "ARBITER_TICK_MS": "60000",
            "ARBITER_FOLD_MAX_AGE_MS": str(BOUND_MS)})
        cls.srv.start()
        wait_leader(cls.srv)
        il.create_experiment(cls.srv, KEY, METRICS)
        cls.sent = 0  # conv events sent, one unit each

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def post(self, base, n, tag):
        evs = [{"id": "%s-%d" % (tag, i), "experiment": KEY,
                "unit": "%s-u%d" % (tag, i), "metric": "conv", "value": 1}
               for i in range(n)]
        st, _, body = il.post_events(base, evs)
        self.assertEqual(st, 202, body)
        type(self).sent += n

    def results(self, srv):
        t0 = time.time()
        r = srv.req("GET", "/v1/experiments/%s/results" % KEY)
        self.assertEqual(r.status, 200, r)
        return r.json(), time.time() - t0

    def folded_units(self):
        return int(harness.psql(
            self.url, "SELECT coalesce(sum(units), 0) FROM "
            "arbiter.arm_metric_totals t JOIN arbiter.experiments e "
            "ON e.id = t.experiment_id WHERE e.key = '%s' AND "
            "t.metric = 'conv'" % KEY))

    def test_1_configured_bound(self):
        res, _ = self.results(self.srv)
        f = res["freshness"]
        self.assertEqual(f["max_age_ms"], BOUND_MS, f)
        self.assertIn(f["stale"], (True, False))
        self.assertEqual(f["stale"], f["lag_seconds"] * 1000 > BOUND_MS, f)

    def test_2_read_your_writes_wakes_the_leader(self):
        for k in range(4):
            self.post(self.srv.base, 50, "ryw%d" % k)
            res, secs = self.results(self.srv)
            f = res["freshness"]
            self.assertTrue(f["caught_up"], f)
            self.assertEqual(f["folded_by"], "leader", f)
            self.assertGreaterEqual(f["watermark"], f["horizon"], f)
            self.assertLess(f["waited_ms"], BOUND_MS, f)
            self.assertLess(secs, 10)  # the tick is 60 s
            self.assertEqual(f["lag_events"], 0, f)
            self.assertEqual(self.folded_units(), self.sent)
        logs = self.srv.logs()
        # one sync at startup, never a resync caused by a reader's fold
        self.assertNotIn("another process folded; memory dropped", logs)
        self.assertEqual(logs.count("unit values restarted from the "
                                    "checkpoint"), 1, logs[-3000:])

    def test_3_another_process_nudges_the_leader(self):
        b = harness.Server(self.url, env={
            "ARBITER_SPOOL_DIR": os.path.join(self.tmp, "b"),
            "ARBITER_TICK_MS": "60000",
            "ARBITER_FOLD_MAX_AGE_MS": str(BOUND_MS)})
        b.start()
        try:
            _, m = il.scrape(b.base)
            self.assertEqual(m.get("arbiter_leader"), 0)
            for k in range(2):
                self.post(b.base, 40, "nudge%d" % k)
                res, secs = self.results(b)
                f = res["freshness"]
                self.assertTrue(f["caught_up"], f)
                self.assertEqual(f["folded_by"], "leader", f)
                self.assertLess(f["waited_ms"], BOUND_MS, f)
                self.assertEqual(self.folded_units(), self.sent)
        finally:
            b.stop()
        self.assertNotIn("another process folded; memory dropped",
                         self.srv.logs())

    def test_4_bounded_wait_answers_what_it_has(self):
        s = Session(self.url)
        try:
            s.run("BEGIN")
            s.run("SELECT pg_current_xact_id()")  # holds an xid
            before = self.folded_units()
            self.post(self.srv.base, 30, "held")
            res, secs = self.results(self.srv)
            f = res["freshness"]
            self.assertFalse(f["caught_up"], f)
            self.assertLess(f["watermark"], f["horizon"], f)
            self.assertGreaterEqual(f["waited_ms"], BOUND_MS - 50, f)
            self.assertLess(secs, BOUND_MS / 1000.0 + 5)
            self.assertGreaterEqual(f["lag_events"], 30, f)
            self.assertEqual(self.folded_units(), before)
            # still stalled at the same watermark: the next reader does
            # not hold a worker for the bound again
            res, secs = self.results(self.srv)
            f2 = res["freshness"]
            self.assertFalse(f2["caught_up"], f2)
            self.assertEqual(f2["watermark"], f["watermark"], f2)
            self.assertLess(f2["waited_ms"], 1000, f2)
            self.assertGreaterEqual(f2["waited_ms"], 250, f2)
        finally:
            s.run("ROLLBACK")
            s.close()
        res, _ = self.results(self.srv)
        self.assertTrue(res["freshness"]["caught_up"], res["freshness"])
        self.assertEqual(self.folded_units(), self.sent)


class NoLeader(unittest.TestCase):
    def test_request_folds_when_no_session_leads(self):
        url = harness.fresh_database("results_noleader")
        tmp = tempfile.mkdtemp(prefix="arbiter-nolead-")
        s = Session(url)
        s.run("SELECT pg_advisory_lock(%d)" % LEADER_KEY)
        srv = harness.Server(url, env={
            "ARBITER_SPOOL_DIR": os.path.join(tmp, "c"),
            "ARBITER_TICK_MS": "60000"})
        srv.start()
        try:
            time.sleep(0.5)  # its first tick found the lock taken
            _, m = il.scrape(srv.base)
            self.assertEqual(m.get("arbiter_leader"), 0)
            il.create_experiment(srv, KEY, METRICS)
            s.run("SELECT pg_advisory_unlock(%d)" % LEADER_KEY)
            evs = [{"id": "nl-%d" % i, "experiment": KEY,
                    "unit": "nl-u%d" % i, "metric": "conv", "value": 1}
                   for i in range(25)]
            st, _, body = il.post_events(srv.base, evs)
            self.assertEqual(st, 202, body)
            r = srv.req("GET", "/v1/experiments/%s/results" % KEY)
            self.assertEqual(r.status, 200, r)
            f = r.json()["freshness"]
            self.assertTrue(f["caught_up"], f)
            self.assertEqual(f["folded_by"], "request", f)
            self.assertEqual(f["max_age_ms"], 5000, f)  # the default
            units = int(harness.psql(
                url, "SELECT coalesce(sum(units), 0) FROM "
                "arbiter.arm_metric_totals WHERE metric = 'conv'"))
            self.assertEqual(units, 25)
        finally:
            srv.stop()
            s.close()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    harness.main()
