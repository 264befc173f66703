"""test_restart.py -- restart without downtime (issue 14).

Under a steady load of assignments (a new connection per request, as a
load balancer's health-checked pool would send) and event posts, the
server is restarted twice with SIGUSR2: each time a successor process
takes over the listening socket and the old one finishes its in-flight
requests and exits 0 (cli/cmd_serve.c, "restart without downtime").
Asserted: 0 failed requests (no connection refused or reset, no 5xx), every
acknowledged event stored exactly once, and the process that answers
after each restart is a new one. Then SIGTERM stops the last successor
with exit 0 and no sanitizer report.
"""
import http.client
import json
import os
import re
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402
import ingest_load as il  # noqa: E402

METRICS = [{"name": "rev", "kind": "sum"}]


def listening_pids(log_text):
    return [int(m) for m in re.findall(
        r'"msg": ?"listening".*?"pid": ?"?(\d+)', log_text)]


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Assigner(threading.Thread):
    def __init__(self, port, stop):
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.ok = 0
        self.failures = []

    def run(self):
        i = 0
        while not self.stop.is_set():
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                c.request("GET", "/v1/assign?experiment=rx&unit=r%d" % i,
                          headers={"Authorization": "Bearer " +
                                   harness.CLIENT})
                r = c.getresponse()
                body = r.read()
                if r.status == 200:
                    self.ok += 1
                else:
                    self.failures.append((r.status, body[:200]))
            except (OSError, http.client.HTTPException) as e:
                self.failures.append(repr(e))
            finally:
                c.close()
            i += 1


class Restart(unittest.TestCase):
    def test_sigusr2_restart_under_load_loses_nothing(self):
        url = harness.fresh_database("restart")
        srv = harness.Server(url).start()
        last_pid = None
        try:
            il.create_experiment(srv, "rx", METRICS)
            stop = threading.Event()
            ass = [Assigner(srv.port, stop) for _ in range(3)]
            for a in ass:
                a.start()

            def rev(rng):
                return {"unit": "e%d" % rng.randrange(300), "metric": "rev",
                        "value": round(rng.uniform(0, 9), 2)}
            load = il.Load(srv.base, "rx", rev, threads=2, batch=50,
                           timeout=30.0, pause=0.02).start()
            load.wait_acked(5)
            time.sleep(1)
            pid = srv.proc.pid
            seen = [pid]
            for restart in range(2):
                before = sum(a.ok for a in ass)
                os.kill(pid, signal.SIGUSR2)
                deadline = time.time() + 90
                while alive(pid) and time.time() < deadline:
                    if srv.proc is not None and pid == srv.proc.pid:
                        srv.proc.poll()
                    time.sleep(0.05)
                self.assertFalse(alive(pid), "old process still running")
                if restart == 0:
                    self.assertEqual(srv.proc.wait(5), 0)
                pids = listening_pids(srv.logs())
                self.assertEqual(len(pids), restart + 2, pids)
                pid = pids[-1]
                self.assertNotIn(pid, seen)
                seen.append(pid)
                last_pid = pid
                time.sleep(2)
                self.assertGreater(sum(a.ok for a in ass), before + 20)
            stop.set()
            load.stop(giveup=60)
            for a in ass:
                a.join(30)
            fails = [f for a in ass for f in a.failures]
            self.assertEqual(fails, [], "failed assignments")
            s = il.check_exactly_once(self, url, "rx", load)
            self.assertEqual(s["lost_answers"], 0, s)
            self.assertEqual(s["refused_503"], 0, s)
            print("restart: %d assignments, %s, load %s" % (
                sum(a.ok for a in ass), json.dumps(s), os.getloadavg()),
                file=sys.stderr)
            # SIGTERM stops the successor cleanly
            os.kill(last_pid, signal.SIGTERM)
            deadline = time.time() + 30
            while alive(last_pid) and time.time() < deadline:
                time.sleep(0.05)
            self.assertFalse(alive(last_pid))
            self.assertIn('"msg":"stopped"', srv.logs().rsplit(
                '"msg":"listening"', 1)[1])
            last_pid = None
        finally:
            # every process that logged "listening" (the successors are
            # not the harness's children): none may outlive the test
            for p in set(listening_pids(srv.logs())) | {last_pid} - {None}:
                if alive(p):
                    os.kill(p, signal.SIGKILL)
            srv.stop()


if __name__ == "__main__":
    harness.main()
