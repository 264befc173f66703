"""test_db_stall.py -- a stalled PostgreSQL (SIGSTOP, 20 s) under mixed load
(issue 14: "a stalled database cannot stop assignment"). This suite stops
every process of the shared test cluster with SIGSTOP and always sends
SIGCONT again.

While PostgreSQL is stopped (a stopped server accepts TCP connections and
never answers, so a server-side statement_timeout cannot fire):

  * assignment of a sticky experiment whose weights changed (every unseen
    unit is a sticky-store lookup) keeps answering with p99 <= 50 ms, in
    every 1-second window of the stall; the store's client-side deadline
    and circuit breaker fall back to the hash (service/sticky.h);
  * /healthz answers at once (it never touches the database);
  * a batch assignment naming 60 sticky experiments whose weights changed
    (60 store lookups) answers within 250 ms: the circuit breaker costs
    at most two waits, not one per experiment;
  * event posts, admin reads and a results read are in flight throughout:
    admin routes wait on the slow pool (or get 503 busy), never on an HTTP
    worker;

  * event posts are answered (202, spooled) within a bound: the writer's
    client-side deadline (ARBITER_COMMIT_TIMEOUT_MS, 500 ms here) abandons
    a commit the stopped server never answers, drops its connection and
    spools the batches; reconnects are bounded the same way and back off
    (service/ingest.c). Event-post p99 during the stall <= 1.0 s and none
    over 2.5 s (before: every post waited for the whole 20 s stall);

and afterwards every acknowledged event is stored exactly once (the
transaction abandoned at the deadline may still commit when PostgreSQL
resumes; the spool replay of the same batch ids is then a no-op).
"""
import http.client
import os
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402
import ingest_load as il  # noqa: E402

STALL_S = 20
COMMIT_TIMEOUT_MS = 500
METRICS = [{"name": "rev", "kind": "sum"}]


def pg_pids():
    with open(os.path.join(harness.PGDIR, "data", "postmaster.pid")) as f:
        master = int(f.readline())
    pids = [master]
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == master:
                pids.append(int(d))
        except (OSError, IndexError, ValueError):
            pass
    return pids


def signal_pg(sig):
    for pid in pg_pids():
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(0.99 * len(xs)))] if xs else 0.0


class Timed(threading.Thread):
    """GET a path over one keep-alive connection in a loop, recording
    (start time, seconds, status)."""

    def __init__(self, port, path_fn, token, stop, timeout=5):
        super().__init__(daemon=True)
        self.timeout = timeout
        self.port, self.path_fn, self.token, self.stop = port, path_fn, \
            token, stop
        self.samples = []
        self.errors = []

    def run(self):
        conn = None
        i = 0
        while not self.stop.is_set():
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                  timeout=self.timeout)
            t0 = time.time()
            try:
                conn.request("GET", self.path_fn(i), headers={
                    "Authorization": "Bearer " + self.token})
                r = conn.getresponse()
                r.read()
                self.samples.append((t0, time.time() - t0, r.status))
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                self.errors.append((t0, repr(e)))
                conn.close()
                conn = None
            i += 1
            time.sleep(0.002)
        if conn is not None:
            conn.close()


class Stall(unittest.TestCase):
    def test_sigstop_postgres_under_load(self):
        url = harness.fresh_database("db_stall")
        srv = harness.Server(url, env={
            "ARBITER_STICKY_TIMEOUT_MS": "50",
            "ARBITER_COMMIT_TIMEOUT_MS": str(COMMIT_TIMEOUT_MS)})
        srv.start()
        stopped = False
        try:
            il.create_experiment(srv, "st", METRICS, sticky=True)
            r = srv.req("PATCH", "/v1/experiments/st", {"arms": [
                {"name": "control", "weight": 60, "control": True},
                {"name": "treat", "weight": 40}]})
            self.assertEqual(r.status, 200, r)
            many = ["sb%02d" % k for k in range(60)]
            for k in many:
                il.create_experiment(srv, k, METRICS, sticky=True)
                r = srv.req("PATCH", "/v1/experiments/" + k, {"arms": [
                    {"name": "control", "weight": 70, "control": True},
                    {"name": "treat", "weight": 30}]})
                self.assertEqual(r.status, 200, r)
            stop = threading.Event()
            pid = os.getpid()
            assign = Timed(srv.port, lambda i: "/v1/assign?experiment=st&"
                           "unit=s%d-%d" % (pid, i), harness.CLIENT, stop)
            health = Timed(srv.port, lambda i: "/healthz", harness.CLIENT,
                           stop)
            admin = Timed(srv.port, lambda i: "/v1/experiments/st",
                          harness.ADMIN, stop, timeout=60)

            def rev(rng):
                return {"unit": "e%d" % rng.randrange(500), "metric": "rev",
                        "value": round(rng.uniform(0, 9), 2)}
            load = il.Load(srv.base, "st", rev, threads=2, batch=50,
                           timeout=60.0, pause=0.05)
            for t in (assign, health, admin):
                t.start()
            load.start()
            load.wait_acked(5)
            time.sleep(2)
            t_stop = time.time()
            signal_pg(signal.SIGSTOP)
            stopped = True
            time.sleep(2)
            batch = []
            for j in range(3):
                t0 = time.time()
                r = srv.req("POST", "/v1/assign", {"unit": "batch%d" % j,
                                                   "experiments": many},
                            token=harness.CLIENT, timeout=30)
                batch.append(time.time() - t0)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(len(r.json()["assignments"]), 60, r)
            time.sleep(STALL_S - 2 - sum(batch))
            signal_pg(signal.SIGCONT)
            stopped = False
            t_cont = time.time()
            time.sleep(3)
            stop.set()
            load.stop(giveup=90)
            for t in (assign, health, admin):
                t.join(30)

            during = [s for s in assign.samples if t_stop <= s[0] < t_cont]
            self.assertEqual(assign.errors, [])
            self.assertGreater(len(during), 20 * STALL_S, "too few answers")
            self.assertEqual({s[2] for s in during}, {200})
            lat = [s[1] for s in during]
            self.assertLessEqual(p99(lat), 0.050, "assignment p99 %.1f ms "
                                 "during the stall" % (p99(lat) * 1e3))
            for w in range(STALL_S):
                win = [s[1] for s in during
                       if t_stop + w <= s[0] < t_stop + w + 1]
                self.assertTrue(win, "no assignment in second %d" % w)
                self.assertLessEqual(p99(win), 0.050, "second %d: p99 %.1f "
                                     "ms" % (w, p99(win) * 1e3))
            self.assertLess(max(batch), 0.25, "batch assign %r" % batch)
            hd = [s for s in health.samples if t_stop <= s[0] < t_cont]
            self.assertEqual(health.errors, [])
            self.assertGreater(len(hd), 20 * STALL_S)
            self.assertLessEqual(max(s[1] for s in hd), 0.5)
            # the admin reads finished (200, or 503 busy while the slow
            # pool was full), none was lost
            self.assertEqual(admin.errors, [])
            self.assertTrue({s[2] for s in admin.samples} <= {200, 503})
            print("assign p99 during stall %.2f ms over %d answers; healthz "
                  "max %.2f ms; 60-experiment batch %s ms; load %s" % (
                      p99(lat) * 1e3, len(during),
                      max(s[1] for s in hd) * 1e3,
                      [round(b * 1e3, 1) for b in batch], os.getloadavg()),
                  file=sys.stderr)
            # event posts during the stall: answered within the bound,
            # acknowledged (spooled), not held for the stall
            posts = [p for p in load.posts if t_stop <= p[0] < t_cont]
            self.assertGreater(len(posts), 2 * STALL_S, "too few posts")
            self.assertNotIn(None, {p[2] for p in posts}, "a post lost")
            plat = [p[1] for p in posts]
            print("event posts during stall: %d, p50 %.1f ms, p99 %.1f ms, "
                  "max %.1f ms; statuses %r" % (
                      len(plat), sorted(plat)[len(plat) // 2] * 1e3,
                      p99(plat) * 1e3, max(plat) * 1e3,
                      sorted({p[2] for p in posts})), file=sys.stderr)
            self.assertLessEqual(p99(plat), 1.0, "event-post p99 %.1f ms "
                                 "during the stall" % (p99(plat) * 1e3))
            self.assertLessEqual(max(plat), 2.5)
            spooled = [b for b in load.acked()
                       if isinstance(b.acked, dict) and b.acked.get("spooled")]
            self.assertGreater(len(spooled), 10, "posts were not spooled")
            samples = il.wait_spool_empty(srv.base)
            self.assertGreaterEqual(
                samples.get("arbiter_ingest_commit_timeouts_total", 0), 1)
            self.assertEqual(
                samples.get("arbiter_ingest_durability_failures_total", 0), 0)
            il.check_exactly_once(self, url, "st", load)
        finally:
            if stopped:
                signal_pg(signal.SIGCONT)
            srv.stop()


if __name__ == "__main__":
    harness.main()
