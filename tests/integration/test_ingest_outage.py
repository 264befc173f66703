"""test_ingest_outage.py -- outcome ingestion through PostgreSQL outages
(this suite stops the shared test cluster; it always starts it again).

Under a sustained load of clients that resend every batch whose answer was
lost (same event ids):

  * PostgreSQL restarted (fast stop + start) in the middle of the load;
  * PostgreSQL killed (immediate shutdown, crash recovery) and started;
  * PostgreSQL down for 30 seconds: events keep being acknowledged from
    the fsync'd spool, assignment keeps answering, /metrics shows the
    spool (and passes promtool); then the server is killed with -9 while
    the spool is full, PostgreSQL comes back, the server is restarted with
    the SAME spool dir and replays it;
  * SIGTERM while the database is down: a clean exit, the spool is kept
    and replayed by the next start;
  * a stopped database with a tiny ARBITER_SPOOL_MAX_BYTES and a small
    ARBITER_INGEST_QUEUE: requests that do not fit answer 503 with
    Retry-After and nothing of them is stored; one that fits is spooled
    and stored once the database is back.

Each case ends with arbiter_spool_bytes at 0 and asserts, by counting rows
of arbiter.events per event_id, that every acknowledged event is stored
exactly once (tests/tools/ingest_load.py, check_exactly_once), and that the
incremental statistics still equal the from-scratch recomputation.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402
import ingest_load as il  # noqa: E402

METRICS = [{"name": "click", "kind": "binary"},
           {"name": "rev", "kind": "sum"},
           {"name": "lat", "kind": "ratio"}]


def event_maker(key, units=400):
    def make(rng):
        m = rng.choice(("click", "rev", "lat"))
        return {"experiment": key, "unit": "u%d" % rng.randrange(units),
                "metric": m,
                "value": 1 if m == "click" else round(rng.uniform(0, 50), 3)}
    return make


def pg_up():
    try:
        harness.psql(harness.DB_URL, "SELECT 1")
        return True
    except subprocess.CalledProcessError:
        return False


def ensure_pg_up():
    if not pg_up():
        harness.pg_ctl("start")
    deadline = time.time() + 60
    while not pg_up():
        if time.time() > deadline:
            raise RuntimeError("the test cluster does not come back")
        time.sleep(0.2)


class Outage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = harness.fresh_database("ingest_outage")
        cls.tmp = tempfile.mkdtemp(prefix="arbiter-outage-")
        cls.srv = harness.Server(cls.url, port=harness.free_port(), env={
            "ARBITER_SPOOL_DIR": os.path.join(cls.tmp, "spool")})
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        ensure_pg_up()
        cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def tearDown(self):
        ensure_pg_up()
        if self.srv.proc is None:
            self.srv.start(timeout=60)

    def experiment(self, key):
        il.create_experiment(self.srv, key, METRICS)
        return key

    def finish(self, key, load):
        il.wait_spool_empty(self.srv.base, timeout=90)
        s = il.check_exactly_once(self, self.url, key, load)
        il.assert_stats_close(self, il.arm_stats(self.url, key),
                              il.arm_stats_recompute(self.url, key),
                              what="arm_stats vs recompute")
        return s

    def restart_under_load(self, key, action):
        load = il.Load(lambda: self.srv.base, key, event_maker(key),
                       threads=4, batch=100, tag=key).start()
        try:
            load.wait_acked(10)
            harness.pg_ctl(action)
            time.sleep(1.0)
            harness.pg_ctl("start")
            n = load.count(lambda b: b.acked)
            load.wait_acked(n + 20, timeout=90)
        finally:
            load.stop()
        return load

    def test_restart_under_load(self):
        key = self.experiment("restart")
        load = self.restart_under_load(key, "stop")
        s = self.finish(key, load)
        self.assertGreater(s["spooled"], 0, s)
        print("\n  restart: %r" % s, file=sys.stderr)

    def test_immediate_kill_under_load(self):
        key = self.experiment("pgkill")
        load = self.restart_under_load(key, "kill")
        s = self.finish(key, load)
        self.assertGreater(s["spooled"], 0, s)
        print("\n  immediate shutdown: %r" % s, file=sys.stderr)

    def test_down_30s_under_load_then_kill9_and_replay(self):
        key = self.experiment("down30")
        load = il.Load(lambda: self.srv.base, key, event_maker(key),
                       threads=4, batch=100, tag=key, pause=0.05).start()
        try:
            load.wait_acked(10)
            before = load.count(lambda b: b.acked)
            harness.pg_ctl("stop")
            t0 = time.time()
            peak, db_up = 0, 1
            while time.time() - t0 < 30:
                text, m = il.scrape(self.srv.base)
                self.assertEqual(il.promtool_check(text), "")
                db_up = min(db_up, m["arbiter_db_up"])
                peak = max(peak, m["arbiter_spool_bytes"])
                # assignment answers from the snapshot meanwhile
                q = urllib.parse.urlencode({"experiment": key,
                                            "unit": "a%d" % int(time.time())})
                r = self.srv.req("GET", "/v1/assign?" + q,
                                 token=harness.CLIENT)
                self.assertEqual(r.status, 200, r)
                self.assertIn(r.json()["arm"], ("control", "treat"))
                time.sleep(1.0)
            during = load.count(lambda b: b.acked) - before
            self.assertGreater(during, 30, load.summary())
            self.assertGreater(peak, 0)
            self.assertEqual(db_up, 0)
            # the acknowledged batches are in the spool when the process dies
            _, m = il.scrape(self.srv.base)
            self.assertGreater(m["arbiter_spool_bytes"], 0)
            self.srv.kill9()
            harness.pg_ctl("start")
            self.srv.start(timeout=60)    # same port, same spool dir
            n = load.count(lambda b: b.acked)
            load.wait_acked(n + 10, timeout=90)
        finally:
            load.stop()
        m = il.wait_spool_empty(self.srv.base, timeout=90)
        self.assertGreater(m["arbiter_spool_replayed_batches_total"], 0)
        s = self.finish(key, load)
        self.assertEqual(s["refused_503"], 0, s)
        self.assertGreater(s["spooled"], 30, s)
        print("\n  30 s outage + kill -9: %r, spool peak %d bytes"
              % (s, peak), file=sys.stderr)

    def test_sigterm_while_database_down_keeps_the_spool(self):
        """SIGTERM during an outage: a clean exit within the drain timeout,
        the acknowledged batches stay in the spool and the next start
        replays them."""
        key = self.experiment("termdown")
        load = il.Load(lambda: self.srv.base, key, event_maker(key),
                       threads=3, batch=100, tag=key).start()
        try:
            load.wait_acked(5)
            harness.pg_ctl("stop")
            deadline = time.time() + 60
            while load.count(lambda b: b.acked and b.acked["spooled"]) < 10:
                self.assertLess(time.time(), deadline, load.summary())
                time.sleep(0.1)
            t0 = time.time()
            self.assertEqual(self.srv.stop(), 0)
            took = time.time() - t0
            self.assertLess(took, 25)
            self.assertIn("spool not fully replayed at shutdown",
                          self.srv.logs())
        finally:
            load.stop(giveup=1)
            harness.pg_ctl("start")
        self.srv.start(timeout=60)        # same spool dir: replay
        il.wait_spool_empty(self.srv.base, timeout=90)
        s = il.check_exactly_once(self, self.url, key, load,
                                  all_acked=False)
        self.assertGreaterEqual(s["spooled"], 10, s)
        print("\n  SIGTERM during an outage: exit in %.1f s, %r"
              % (took, s), file=sys.stderr)

    def test_stopped_database_tiny_spool_answers_503(self):
        key = self.experiment("tiny")
        with harness.Server(self.url, env={
                "ARBITER_SPOOL_DIR": os.path.join(self.tmp, "tiny"),
                "ARBITER_SPOOL_MAX_BYTES": "4096",
                "ARBITER_INGEST_QUEUE": "10000"}) as srv:
            harness.pg_ctl("stop")
            try:
                small = [{"id": "fits", "experiment": key, "unit": "s1",
                          "metric": "rev", "value": 2.5}]
                st, _, text = il.post_events(srv.base, small)
                self.assertEqual(st, 202, text)
                self.assertEqual(json.loads(text)["spooled"], True)
                answers = []

                def big(tag):
                    evs = [{"id": "%s-%d" % (tag, i), "experiment": key,
                            "unit": "b%d" % i, "metric": "rev", "value": i}
                           for i in range(200)]
                    answers.append(il.post_events(srv.base, evs))

                ths = [threading.Thread(target=big, args=("big%d" % k,))
                       for k in range(4)]
                for th in ths:
                    th.start()
                for th in ths:
                    th.join(60)
                self.assertEqual(len(answers), 4)
                for st, hdrs, text in answers:
                    self.assertEqual(st, 503, text)
                    self.assertEqual(hdrs.get("retry-after"), "1")
                    self.assertEqual(json.loads(text)["error"]["code"],
                                     "overloaded")
                _, m = il.scrape(srv.base)
                self.assertGreaterEqual(
                    m["arbiter_ingest_rejected_busy_total"], 4)
                self.assertGreater(m["arbiter_spool_bytes"], 0)
                self.assertLessEqual(m["arbiter_spool_bytes"], 4096)
            finally:
                harness.pg_ctl("start")
            il.wait_spool_empty(srv.base, timeout=60)
            stored = il.stored_ids(self.url, key)
            self.assertEqual(stored, {"fits": 1})


if __name__ == "__main__":
    harness.main()
