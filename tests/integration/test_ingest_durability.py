"""test_ingest_durability.py -- acknowledged events survive, exactly once,
without stopping the shared PostgreSQL cluster (the cluster-stopping cases
are in test_ingest_outage.py).

  * kill -9 of the server in the middle of a sustained load, twice: once
    with the database up, once while this database refuses connections
    (ALTER DATABASE ... ALLOW_CONNECTIONS false + terminated backends), so
    the spool holds acknowledged batches when the process dies; the server
    is restarted with the SAME spool dir and replays it;
  * a spool as a crash leaves it: replay from events.offset, a batch
    already committed (or repeated) is skipped by its id, an unreadable
    record is skipped, a torn tail is cut; a record PostgreSQL refuses
    for good goes to events.poison instead of blocking the spool;
  * lost answers: a first attempt that times out on the client, or whose
    connection the client drops, is resent with the same event ids;
  * idempotency: a resent batch stores nothing and says how many were
    duplicates; the window is the retention period (event ids are purged
    with the raw events);
  * SIGTERM drains the queue: what was acknowledged before it is stored;
  * /metrics (spool bytes, queue depth, replay progress) passes
    `promtool check metrics` under load and tracks a spool and its replay;
  * a slow database (a table lock) with a small ARBITER_INGEST_QUEUE:
    overload answers 503 + Retry-After, and nothing of those requests is
    stored.

Every case counts rows of arbiter.events by event_id (see
tests/tools/ingest_load.py, check_exactly_once).
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402
import ingest_load as il  # noqa: E402

DBNAME = "ingest_durability"
METRICS = [{"name": "click", "kind": "binary"},
           {"name": "rev", "kind": "sum"}]


def event_maker(key, units=500):
    def make(rng):
        m = rng.choice(("click", "rev"))
        return {"experiment": key, "unit": "u%d" % rng.randrange(units),
                "metric": m,
                "value": 1 if m == "click" else round(rng.uniform(0, 20), 2)}
    return make


class Durability(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = harness.fresh_database(DBNAME)
        cls.tmp = tempfile.mkdtemp(prefix="arbiter-dur-")
        cls.port = harness.free_port()
        cls.spool = os.path.join(cls.tmp, "spool")
        cls.srv = harness.Server(cls.url, port=cls.port,
                                 env={"ARBITER_SPOOL_DIR": cls.spool})
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        allow_connections(True)
        cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def experiment(self, key):
        il.create_experiment(self.srv, key, METRICS)
        return key

    def restart(self):
        """Start the server again on the same port and spool dir."""
        self.srv.start()

    # ---- kill -9 -----------------------------------------------------------

    def test_kill9_under_load_database_up(self):
        key = self.experiment("kill9-up")
        load = il.Load(lambda: self.srv.base, key, event_maker(key),
                       threads=4, batch=100, tag="k9u").start()
        try:
            for round_ in range(2):
                load.wait_acked(15 * (round_ + 1))
                self.srv.kill9()
                time.sleep(0.3)       # clients see refused connections
                self.restart()
            load.wait_acked(45)
        finally:
            load.stop()
        il.wait_spool_empty(self.srv.base)
        s = il.check_exactly_once(self, self.url, key, load)
        self.assertGreater(s["lost_answers"], 0, s)
        print("\n  kill -9 (database up): %r" % s, file=sys.stderr)

    def test_kill9_with_spooled_batches_replays_the_spool(self):
        key = self.experiment("kill9-spool")
        load = il.Load(lambda: self.srv.base, key, event_maker(key),
                       threads=4, batch=100, tag="k9s").start()
        try:
            load.wait_acked(10)
            allow_connections(False)  # this database refuses everyone
            deadline = time.time() + 60
            while load.count(lambda b: b.acked and b.acked["spooled"]) < 10:
                self.assertLess(time.time(), deadline, load.summary())
                time.sleep(0.1)
            _, m = il.scrape(self.srv.base)
            self.assertGreater(m["arbiter_spool_bytes"], 0)
            self.srv.kill9()          # acknowledged batches are in the spool
            spooled = os.path.getsize(os.path.join(self.spool,
                                                   "events.spool"))
            self.assertGreater(spooled, 0)
            allow_connections(True)
            self.restart()            # same port, same spool dir: replay
            load.wait_acked(load.count(lambda b: b.acked) + 10)
        finally:
            allow_connections(True)
            load.stop()
        m = il.wait_spool_empty(self.srv.base)
        self.assertGreater(m["arbiter_spool_replayed_batches_total"], 0)
        self.assertGreater(m["arbiter_spool_replayed_bytes_total"], 0)
        s = il.check_exactly_once(self, self.url, key, load)
        self.assertGreater(s["spooled"], 0, s)
        print("\n  kill -9 with a spool: %r" % s, file=sys.stderr)

    # ---- lost answers --------------------------------------------------------

    def test_lost_answers_are_retried_with_the_same_ids(self):
        key = self.experiment("lost")
        # the first attempt of every batch gives up after 5 ms: the server
        # usually commits it anyway, and the resend finds duplicates
        load = il.Load(lambda: self.srv.base, key, event_maker(key),
                       threads=3, batch=200, first_timeout=0.005,
                       tag="lost").start()
        try:
            load.wait_acked(30)
        finally:
            load.stop()
        # and some whose answer the client never reads (reset by the client)
        dropped = []
        for k in range(10):
            evs = [dict(event_maker(key)(random.Random(k)),
                        id="drop-%d-%d" % (k, i)) for i in range(50)]
            il.post_and_drop(self.srv.base, json.dumps(evs).encode())
            dropped.append(evs)
        time.sleep(1.0)
        for evs in dropped:
            b = il.Batch(evs)
            load.batches.append(b)
            load.send(b)
        il.wait_spool_empty(self.srv.base)
        s = il.check_exactly_once(self, self.url, key, load)
        self.assertGreater(s["lost_answers"], 20, s)
        # a resend whose first attempt was committed says so
        dup = [b for b in load.acked() if b.lost and
               b.acked["duplicates"] == len(b.events)]
        self.assertGreater(len(dup), 0)
        for b in load.acked():
            self.assertEqual(b.acked["accepted"] + b.acked["duplicates"],
                             len(b.events), b.acked)
        print("\n  lost answers: %r, %d resends were whole duplicates"
              % (s, len(dup)), file=sys.stderr)

    # ---- a spool written by a crash --------------------------------------

    def test_spool_replay_offset_torn_tail_and_unreadable_record(self):
        """A spool as a crash leaves it (format: service/spool.h): replay
        starts at events.offset, a batch already committed is skipped
        whole (its id), an unreadable record is skipped, a torn tail is cut
        (it was never acknowledged), and the file is emptied."""
        import struct
        import xxhash
        key = self.experiment("torn")
        exp_id = int(harness.psql(self.url, "SELECT id FROM "
                                  "arbiter.experiments WHERE key = 'torn'"))
        now_ms = int(time.time() * 1000)

        def record(payload):
            return (b"ARBS" + struct.pack("<III", len(payload),
                                          xxhash.xxh32_intdigest(payload, 0),
                                          0) + payload)

        def batch(bid, ids):
            return record(json.dumps({"id": bid, "events": [
                [exp_id, i, "u-" + i, None, "control", "rev", 2.5, now_ms,
                 None] for i in ids]}).encode())

        done = batch("torn-batch-1", ["t1", "t2"])    # replayed before
        r2 = batch("torn-batch-2", ["t3", "t4", "t5"])
        junk = record(b'{"id": "x", "events": 7')      # checksum fine
        r4 = batch("torn-batch-3", ["t6"])
        torn = batch("torn-batch-4", ["t99"])[:30]     # cut by the crash
        d = os.path.join(self.tmp, "torn-spool")
        os.makedirs(d)
        with open(os.path.join(d, "events.spool"), "wb") as f:
            f.write(done + r2 + r2 + junk + r4 + torn)
        with open(os.path.join(d, "events.offset"), "w") as f:
            f.write("%d\n" % len(done))
        with harness.Server(self.url, env={"ARBITER_SPOOL_DIR": d}) as srv:
            try:
                m = il.wait_spool_empty(srv.base, timeout=60)
            except AssertionError:
                print(srv.logs(), file=sys.stderr)
                raise
            self.assertEqual(m["arbiter_spool_replayed_batches_total"], 3)
            self.assertEqual(m["arbiter_spool_replayed_bytes_total"],
                             2 * len(r2) + len(junk) + len(r4))
            self.assertIn("unreadable spool record skipped", srv.logs())
        self.assertEqual(il.stored_ids(self.url, key),
                         {"t3": 1, "t4": 1, "t5": 1, "t6": 1})
        self.assertEqual(os.path.getsize(os.path.join(d, "events.spool")),
                         0)
        self.assertEqual(harness.psql(self.url, "SELECT events || ' ' || "
                                      "accepted FROM arbiter.ingest_batches"
                                      " WHERE batch_id LIKE 'torn-batch-%' "
                                      "ORDER BY batch_id"), "3 3\n1 1")

    def test_a_record_the_database_refuses_is_quarantined(self):
        """A spooled batch PostgreSQL refuses for good (here a timestamp
        out of its range) must not block the spool and every later event:
        it goes to events.poison, the others are replayed."""
        import struct
        import xxhash
        key = self.experiment("poison")
        exp_id = int(harness.psql(self.url, "SELECT id FROM "
                                  "arbiter.experiments WHERE key = "
                                  "'poison'"))
        now_ms = int(time.time() * 1000)

        def record(bid, ids, ts=now_ms):
            payload = json.dumps({"id": bid, "events": [
                [exp_id, i, "u-" + i, None, "control", "rev", 1.5, ts, None]
                for i in ids]}).encode()
            return payload, (b"ARBS" + struct.pack(
                "<III", len(payload), xxhash.xxh32_intdigest(payload, 0),
                0) + payload)

        _, r1 = record("poison-batch-1", ["p1", "p2"])
        bad_payload, bad = record("poison-batch-2", ["p-bad"],
                                  ts=9000000000000000000)
        _, r3 = record("poison-batch-3", ["p3"])
        d = os.path.join(self.tmp, "poison-spool")
        os.makedirs(d)
        with open(os.path.join(d, "events.spool"), "wb") as f:
            f.write(r1 + bad + r3)
        with harness.Server(self.url, env={"ARBITER_SPOOL_DIR": d}) as srv:
            m = il.wait_spool_empty(srv.base, timeout=60)
            self.assertEqual(m["arbiter_spool_quarantined_batches_total"], 1)
            self.assertEqual(m["arbiter_spool_replayed_batches_total"], 2)
            self.assertIn("moved to events.poison", srv.logs())
            # the live path works again: straight into the database
            st, _, text = il.post_events(srv.base, [{
                "id": "p4", "experiment": key, "unit": "u-p4",
                "metric": "rev", "value": 1}])
            self.assertEqual(st, 202, text)
            self.assertIs(json.loads(text)["spooled"], False)
        self.assertEqual(il.stored_ids(self.url, key),
                         {"p1": 1, "p2": 1, "p3": 1, "p4": 1})
        with open(os.path.join(d, "events.poison"), "rb") as f:
            self.assertEqual(f.read(), bad_payload + b"\n")

    # ---- idempotency -----------------------------------------------------------

    def test_idempotency_and_its_window(self):
        key = self.experiment("idem")
        other = self.experiment("idem-other")

        def ev(i, exp=key, **kw):
            e = {"id": "i-%d" % i, "experiment": exp, "unit": "u%d" % i,
                 "metric": "rev", "value": i}
            e.update(kw)
            return e

        def post(evs):
            st, _, text = il.post_events(self.srv.base, evs)
            self.assertEqual(st, 202, text)
            return json.loads(text)

        first = [ev(i) for i in range(100)]
        self.assertEqual(post(first), {"accepted": 100, "duplicates": 0,
                                       "spooled": False, "rejected": []})
        self.assertEqual(post(first), {"accepted": 0, "duplicates": 100,
                                       "spooled": False, "rejected": []})
        # half old, half new; a repeat inside the batch; a changed value
        # under an old id is still that event (the first one wins)
        mixed = [ev(i) for i in range(50, 150)] + [ev(120)] + \
            [ev(3, value=999)]
        self.assertEqual(post(mixed), {"accepted": 50, "duplicates": 52,
                                       "spooled": False, "rejected": []})
        # the same id in another experiment is another event
        self.assertEqual(post([ev(1, exp=other)])["accepted"], 1)
        # events without an id are never deduplicated
        anon = [{"experiment": key, "unit": "anon", "metric": "rev",
                 "value": 1}]
        self.assertEqual(post(anon + anon)["accepted"], 2)
        stored = il.stored_ids(self.url, key)
        self.assertEqual(stored, dict({"i-%d" % i: 1 for i in range(150)},
                                      **{"": 2}))
        self.assertEqual(harness.psql(self.url, "SELECT value FROM "
                                      "arbiter.events WHERE experiment = "
                                      "'idem' AND event_id = 'i-3'"), "3")
        # the window is the retention period: apply_retention purges event
        # ids received before the cutoff, with the raw events
        harness.psql(self.url, "UPDATE arbiter.event_ids SET received_at = "
                     "now() - interval '100 days' WHERE event_id IN "
                     "('i-0', 'i-1')")
        harness.psql(self.url, "SELECT arbiter.apply_retention(now() - "
                     "interval '90 days')")
        self.assertEqual(post([ev(0), ev(1), ev(2)]),
                         {"accepted": 2, "duplicates": 1, "spooled": False,
                          "rejected": []})

    # ---- SIGTERM -----------------------------------------------------------

    def test_sigterm_drains_and_flushes(self):
        key = self.experiment("term")
        load = il.Load(lambda: self.srv.base, key, event_maker(key),
                       threads=4, batch=300, tag="term").start()
        try:
            load.wait_acked(12)
            rc = self.srv.stop()      # SIGTERM in the middle of the load
            self.assertEqual(rc, 0)
            stopped_at = time.time()
            self.assertIn('"msg":"stopped"', self.srv.logs())
        finally:
            load.stop(giveup=1)
            if self.srv.proc is None:
                self.restart()
        acked_before = [b for b in load.acked()]
        self.assertGreaterEqual(len(acked_before), 12)
        # nothing acknowledged is missing, nothing is stored twice; batches
        # that were cut off may be stored or not (their answer was lost)
        s = il.check_exactly_once(self, self.url, key, load, all_acked=False)
        print("\n  SIGTERM: %r (stopped %.1f s ago)"
              % (s, time.time() - stopped_at), file=sys.stderr)
        self.restart()

    # ---- /metrics ----------------------------------------------------------

    def test_metrics_under_load_pass_promtool_and_track_the_spool(self):
        """Also: the spool drains while the load goes on (replay groups
        records; one record per transaction never caught up)."""
        key = self.experiment("metrics")
        load = il.Load(lambda: self.srv.base, key, event_maker(key),
                       threads=4, batch=100, tag="met").start()
        names = ("arbiter_spool_bytes", "arbiter_ingest_queue_events",
                 "arbiter_spool_replayed_bytes_total",
                 "arbiter_spool_replayed_batches_total",
                 "arbiter_spooled_batches_total",
                 "arbiter_events_accepted_total")
        history = []

        def sample():
            text, m = il.scrape(self.srv.base)
            self.assertEqual(il.promtool_check(text), "")
            for name in names:
                self.assertIn(name, m)
            lines = text.splitlines()
            self.assertIn("# TYPE arbiter_spool_bytes gauge", lines)
            self.assertIn("# TYPE arbiter_ingest_queue_events gauge", lines)
            self.assertIn("# TYPE arbiter_spool_replayed_batches_total "
                          "counter", lines)
            history.append(m)
            return m

        try:
            load.wait_acked(5)
            for _ in range(3):
                self.assertEqual(sample()["arbiter_spool_bytes"], 0)
                time.sleep(0.3)
            allow_connections(False)
            deadline = time.time() + 30
            while sample()["arbiter_spool_bytes"] < 200000:
                self.assertLess(time.time(), deadline)
                time.sleep(0.3)
            allow_connections(True)
            deadline = time.time() + 45
            while sample()["arbiter_spool_bytes"] > 0:
                self.assertLess(time.time(), deadline,
                                "the spool does not drain under load")
                self.assertTrue(load.threads[0].is_alive())
                time.sleep(0.3)
            drained = load.count(lambda b: True)
            load.wait_acked(drained + 8)   # the live path again
        finally:
            allow_connections(True)
            load.stop()
        m = il.wait_spool_empty(self.srv.base)
        peak = max(h["arbiter_spool_bytes"] for h in history)
        self.assertGreater(m["arbiter_spool_replayed_bytes_total"], peak)
        self.assertGreater(m["arbiter_spool_replayed_batches_total"], 0)
        self.assertGreater(m["arbiter_spooled_batches_total"], 0)
        # counters never go back
        for name in names[2:]:
            vals = [h[name] for h in history]
            self.assertEqual(vals, sorted(vals), name)
        sample()
        s = il.check_exactly_once(self, self.url, key, load)
        print("\n  metrics: %d scrapes, spool peak %d bytes, %r"
              % (len(history), peak, s), file=sys.stderr)

    # ---- bounded queue -----------------------------------------------------

    def test_slow_database_and_small_queue_answer_503(self):
        key = "slow"
        tmp = os.path.join(self.tmp, "slow-spool")
        with harness.Server(self.url, env={
                "ARBITER_SPOOL_DIR": tmp, "ARBITER_INGEST_QUEUE": "10000",
                "ARBITER_SPOOL_MAX_BYTES": "4096",
                # the writer waits for the slow database (its client-side
                # commit deadline, which would spool a, is longer than the
                # lock: test_commit_deadline.py covers the deadline)
                "ARBITER_COMMIT_TIMEOUT_MS": "600000",
                # spare HTTP workers: a and b hold two while they wait
                "ARBITER_THREADS": "6"}) as srv:
            il.create_experiment(srv, key, METRICS)

            def batch(tag, n=10000):
                return [{"id": "%s-%d" % (tag, i), "experiment": key,
                         "unit": "u%d" % (i % 300), "metric": "rev",
                         "value": 1} for i in range(n)]

            # a transaction holding an exclusive lock on the raw events
            # makes every ingest transaction wait (a slow database)
            locker = subprocess.Popen(
                ["psql", self.url, "-qAtX", "-v", "ON_ERROR_STOP=1"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, text=True)
            locker.stdin.write("BEGIN;\nLOCK TABLE arbiter.events_raw IN "
                               "EXCLUSIVE MODE;\nSELECT 1;\n")
            locker.stdin.flush()
            answers = {}
            try:
                self.wait_for_lock()
                # a: taken by the writer, blocked in the database;
                # b: fills the 10000-event queue; c, d: no room -> 503
                threads = []
                for tag in ("a", "b"):
                    th = threading.Thread(target=lambda t=tag: answers.
                                          __setitem__(t, il.post_events(
                                              srv.base, batch(t),
                                              timeout=120)))
                    th.start()
                    threads.append(th)
                    self.wait_queue(srv, tag)
                for tag in ("c", "d"):
                    answers[tag] = il.post_events(srv.base, batch(tag),
                                                  timeout=30)
                _, m = il.scrape(srv.base)
                self.assertEqual(m["arbiter_ingest_queue_events"], 10000)
            finally:
                locker.stdin.write("COMMIT;\n")
                locker.stdin.close()
                locker.wait(30)
            for th in threads:
                th.join(120)
            for tag in ("c", "d"):
                st, hdrs, text = answers[tag]
                self.assertEqual(st, 503, text)
                self.assertEqual(hdrs.get("retry-after"), "1")
                self.assertEqual(json.loads(text)["error"]["code"],
                                 "overloaded")
            for tag in ("a", "b"):
                st, _, text = answers[tag]
                self.assertEqual(st, 202, text)
                self.assertEqual(json.loads(text)["accepted"], 10000)
            stored = il.stored_ids(self.url, key)
            self.assertEqual(len(stored), 20000)
            self.assertEqual({k.split("-")[0] for k in stored}, {"a", "b"})
            _, m = il.scrape(srv.base)
            self.assertGreaterEqual(
                m["arbiter_ingest_rejected_busy_total"], 2)

    def wait_for_lock(self):
        deadline = time.time() + 20
        while time.time() < deadline:
            n = harness.psql(self.url, "SELECT count(*) FROM pg_locks l "
                             "JOIN pg_class c ON c.oid = l.relation WHERE "
                             "c.relname = 'events_raw' AND l.mode = "
                             "'ExclusiveLock' AND l.granted")
            if n == "1":
                return
            time.sleep(0.05)
        self.fail("the table lock was not taken")

    def wait_queue(self, srv, tag):
        """a: the writer is blocked on the lock; b: queued."""
        deadline = time.time() + 30
        while time.time() < deadline:
            if tag == "a":
                n = harness.psql(self.url, "SELECT count(*) FROM "
                                 "pg_stat_activity WHERE wait_event_type "
                                 "= 'Lock' AND datname = '%s'" % DBNAME)
                if n != "0":
                    return
            else:
                _, m = il.scrape(srv.base)
                if m["arbiter_ingest_queue_events"] == 10000:
                    return
            time.sleep(0.05)
        self.fail("batch %s did not reach its place" % tag)


def allow_connections(on):
    """Make this suite's database refuse (or accept) every connection,
    and cut the existing ones: a database outage that leaves the shared
    cluster running."""
    harness.psql(harness.DB_URL, 'ALTER DATABASE "%s" WITH ALLOW_CONNECTIONS '
                 '%s' % (DBNAME, "true" if on else "false"))
    if not on:
        harness.psql(harness.DB_URL, "SELECT count(pg_terminate_backend(pid))"
                     " FROM pg_stat_activity WHERE datname = '%s' AND pid <> "
                     "pg_backend_pid()" % DBNAME)


if __name__ == "__main__":
    harness.main()
