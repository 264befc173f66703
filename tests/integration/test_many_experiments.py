"""test_many_experiments.py -- admin writes cost what they change, and do
not stall assignment (issue 14, item 5).

Thousands of experiments are created and started through the API while a
separate process keeps assigning a unit of one hot experiment over a
keep-alive connection. Checked:

  * every experiment is created, started and in this instance's snapshot
  * the cost of a write does not grow with the number of experiments:
    the median create+start of the last tenth is within 4x (+20 ms) of
    the first tenth's (a full reload per write made it grow linearly:
    80 ms at 500 experiments, 458 ms at 1,500; 23x from the first to the
    last tenth at 1,000 in this test on the old code). The margin is for
    the shared machine, whose load drifts during the run
  * assignment p99 while the experiments are created stays within
    3x the p99 of an idle run in the same test, measured the same way just
    before, plus 20 ms, plus one write (the p99 of a single create or start
    request among the first tenth, before any growth): an assignment whose connection shares an HTTP worker with
    a writer's connection waits for the write that worker is serving (the
    workers are shared between admin and assignment requests, issue 14
    item 6, a separate change); what must not happen is the stall of a
    whole-snapshot reload per write (back-to-back writes used to push the
    p99 to 531 ms; 938 ms at 1,000 experiments in this test on the old code)

N is 2,000 by default so that the sanitized CI build stays within about
a minute on 2 cores; ARBITER_TEST_MANY_EXPERIMENTS=5000 runs the issue's
number (recorded in bench/results/assign.md).
"""
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import harness  # noqa: E402

ADMIN, CLIENT = harness.ADMIN, harness.CLIENT
N = int(os.environ.get("ARBITER_TEST_MANY_EXPERIMENTS", "2000"))
WRITERS = 2

# The assignment sampler: its own process (no GIL shared with the writers),
# one keep-alive connection, about 400 requests/s, until the stop file
# appears or the time limit passes; prints the latencies in seconds.
SAMPLER = r"""
import http.client, json, os, sys, time
port, token, stop, limit = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
hdrs = {"Authorization": "Bearer " + token}
lat, bad, end = [], 0, time.time() + limit
i = 0
while time.time() < end and not os.path.exists(stop):
    t0 = time.perf_counter()
    c.request("GET", "/v1/assign?experiment=hot&unit=u-%d" % (i % 1000),
              headers=hdrs)
    r = c.getresponse()
    r.read()
    lat.append(time.perf_counter() - t0)
    if r.status != 200:
        bad += 1
    i += 1
    time.sleep(0.0025)
print(json.dumps({"lat": lat, "bad": bad}))
"""


def p(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


class ManyExperiments(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = harness.fresh_database("it_many")
        # The rollout decision job evaluates every running experiment with
        # a few queries per tick (service/rollout_job.c): with thousands of
        # them a tick takes seconds and competes with this measurement, and
        # a tick in progress delays shutdown. It is not what this test is
        # about, so it ticks once an hour here.
        cls.srv = harness.Server(cls.url, env={
            "ARBITER_LOG_LEVEL": "warn",
            "ARBITER_DECISION_TICK_MS": "3600000"})
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop(timeout=120)

    def sample(self, seconds, during=None):
        """Assignment latencies for 'seconds', or while during() runs."""
        stop = tempfile.mktemp(prefix="arbiter-sampler-stop-")
        proc = subprocess.Popen(
            [sys.executable, "-c", SAMPLER, str(self.srv.port), CLIENT, stop,
             str(seconds)], stdout=subprocess.PIPE)
        try:
            if during is not None:
                time.sleep(0.5)  # the sampler is connected and running
                during()
                with open(stop, "w"):
                    pass
            out, _ = proc.communicate(timeout=seconds + 60)
        finally:
            if proc.poll() is None:
                proc.kill()
            if os.path.exists(stop):
                os.unlink(stop)
        got = json.loads(out)
        self.assertEqual(got["bad"], 0)
        self.assertGreater(len(got["lat"]), 200)
        return got["lat"]

    def create_all(self, times):
        errors = []

        def writer(w):
            c = http.client.HTTPConnection("127.0.0.1", self.srv.port,
                                           timeout=60)
            hdrs = {"Authorization": "Bearer " + ADMIN,
                    "Content-Type": "application/json"}
            for i in range(w, N, WRITERS):
                key = "many-%05d" % i
                body = json.dumps({"key": key, "arms": [
                    {"name": "control", "weight": 50, "control": True},
                    {"name": "treat", "weight": 50}]})
                t0 = time.perf_counter()
                c.request("POST", "/v1/experiments", body, hdrs)
                r1 = c.getresponse()
                r1.read()
                t1 = time.perf_counter()
                c.request("POST", "/v1/experiments/%s/start" % key, "",
                          hdrs)
                r2 = c.getresponse()
                r2.read()
                t2 = time.perf_counter()
                times[i] = (t2 - t0, max(t1 - t0, t2 - t1))
                if r1.status != 201 or r2.status != 200:
                    errors.append((key, r1.status, r2.status))
                    break
            c.close()

        threads = [threading.Thread(target=writer, args=(w,))
                   for w in range(WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])

    def test_thousands_of_writes_neither_slow_down_nor_stall_assignment(self):
        r = self.srv.req("POST", "/v1/experiments", {"key": "hot", "arms": [
            {"name": "control", "weight": 50, "control": True},
            {"name": "treat", "weight": 50}]})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.srv.req("POST",
                                      "/v1/experiments/hot/start").status, 200)
        idle = self.sample(5)
        times = [None] * N
        t0 = time.time()
        busy = self.sample(600, during=lambda: self.create_all(times))
        took = time.time() - t0
        # every experiment is in this instance's snapshot
        body = self.srv.req("GET", "/metrics").body
        line = [ln for ln in body.splitlines()
                if ln.startswith("arbiter_snapshot_experiments ")]
        self.assertEqual(line, ["arbiter_snapshot_experiments %d" % (N + 1)])
        tenth = max(N // 10, 1)
        first = statistics.median(t[0] for t in times[:tenth])
        last = statistics.median(t[0] for t in times[-tenth:])
        # the slowest of one write (a create or a start) among the first
        # tenth: what an assignment sharing the worker may wait for
        one_write = p([t[1] for t in times[:tenth]], 0.99)
        print("\n%d experiments created and started in %.1f s; create+start "
              "median first tenth %.1f ms, last tenth %.1f ms; one write p99 "
              "(first tenth) %.1f ms\n"
              "assignment idle: p50 %.2f p99 %.2f ms (%d requests); during "
              "the writes: p50 %.2f p99 %.2f max %.2f ms (%d requests)" % (
                  N, took, first * 1e3, last * 1e3, one_write * 1e3,
                  p(idle, 0.5) * 1e3,
                  p(idle, 0.99) * 1e3, len(idle), p(busy, 0.5) * 1e3,
                  p(busy, 0.99) * 1e3, max(busy) * 1e3, len(busy)),
              file=sys.stderr)
        self.assertLessEqual(last, 4 * first + 0.020)
        self.assertLessEqual(p(busy, 0.99),
                             3 * p(idle, 0.99) + 0.020 + one_write)


if __name__ == "__main__":
    unittest.main(verbosity=2)
