"""test_valgrind.py -- no leaks and no memory errors on the long-lived
paths, under valgrind (memcheck).

`make test` builds an unsanitized binary (build/vg/bin/arbiter, -O1 -g) for
this suite. The server runs under valgrind --leak-check=full while a short
load exercises the long-lived paths: snapshot reloads through NOTIFY,
assignment with exposures and the sticky store, event ingestion with group
commit, results, the decision leader with a canary and a bandit, metrics.
It is stopped with SIGTERM; valgrind's exit code 99 means an error or a
definite / indirect leak.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402

VG_BIN = os.path.join(harness.ROOT, "build", "vg", "bin", "arbiter")


@unittest.skipUnless(os.path.exists(VG_BIN), "build/vg/bin/arbiter not built")
class Valgrind(unittest.TestCase):
    def test_long_lived_paths_do_not_leak(self):
        db = harness.fresh_database("it_valgrind")
        port = harness.free_port()
        spool = tempfile.mkdtemp(prefix="arbiter-vg-spool-")
        env = dict(os.environ)
        env.update({
            "ARBITER_LISTEN": "127.0.0.1:%d" % port,
            "ARBITER_DATABASE_URL": db,
            "ARBITER_ADMIN_TOKEN": harness.ADMIN,
            "ARBITER_CLIENT_TOKEN": harness.CLIENT,
            "ARBITER_SPOOL_DIR": spool,
            "ARBITER_DECISION_TICK_MS": "300",
            "ARBITER_TICK_MS": "200",
            "ARBITER_THREADS": "2",
        })
        log = tempfile.NamedTemporaryFile(prefix="arbiter-vg-", suffix=".log",
                                          delete=False)
        proc = subprocess.Popen(
            ["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect",
             "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99",
             "--track-origins=no", "--num-callers=30", VG_BIN, "serve"],
            env=env, stdout=subprocess.DEVNULL, stderr=log)
        base = "http://127.0.0.1:%d" % port
        try:
            deadline = time.time() + 120
            while time.time() < deadline:
                try:
                    if harness.request(base, "GET", "/readyz",
                                       timeout=2).status == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.5)
            else:
                self.fail("server under valgrind not ready")
            req = lambda *a, **k: harness.request(base, *a, timeout=60, **k)
            A = harness.ADMIN
            r = req("POST", "/v1/experiments", {
                "key": "vg", "strategy": "canary",
                "arms": [{"name": "c", "weight": 100, "control": True},
                         {"name": "t", "weight": 0}],
                "metrics": [{"name": "lat", "kind": "ratio",
                             "direction": "decrease", "role": "guardrail"},
                            {"name": "ok", "kind": "binary",
                             "role": "primary"}],
                "rollout": {"steps": [50, 100], "step_min_s": 1,
                            "step_min_units": 5, "min_test_units": 5}},
                token=A)
            self.assertEqual(r.status, 201, r)
            r = req("POST", "/v1/experiments", {
                "key": "vgb", "strategy": "bandit",
                "arms": [{"name": "a", "weight": 50, "control": True},
                         {"name": "b", "weight": 50}],
                "metrics": [{"name": "ok", "kind": "binary",
                             "role": "primary"}],
                "bandit": {"interval_s": 1, "burn_in": 10, "min_units": 2}},
                token=A)
            self.assertEqual(r.status, 201, r)
            for k in ("vg", "vgb"):
                self.assertEqual(req("POST", "/v1/experiments/%s/start" % k,
                                     token=A).status, 200)
            for rnd in range(4):
                events = []
                for i in range(25):
                    u = "u%d-%d" % (rnd, i)
                    r = req("POST", "/v1/assign", {"unit": u},
                            token=harness.CLIENT)
                    self.assertEqual(r.status, 200, r)
                    events += [{"id": "%s-l" % u, "experiment": "vg",
                                "unit": u, "metric": "lat", "value": 10 + i},
                               {"id": "%s-o" % u, "experiment": "vgb",
                                "unit": u, "metric": "ok"}]
                r = req("POST", "/v1/events", events, token=harness.CLIENT)
                self.assertEqual(r.status, 202, r)
                r = req("GET", "/v1/assign?experiment=vg&unit=x%d" % rnd,
                        token=harness.CLIENT)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(req("GET", "/v1/experiments/vg/results",
                                     token=A).status, 200)
                self.assertEqual(req("GET", "/metrics").status, 200)
                # the leader may reweight in between: 409 asks to retry
                for attempt in range(10):
                    st = req("PATCH", "/v1/experiments/vgb",
                             {"description": "round %d" % rnd},
                             token=A).status
                    if st != 409:
                        break
                self.assertEqual(st, 200)
                time.sleep(1.5)
            self.assertEqual(req("POST", "/v1/analyze", {
                "metric": {"kind": "mean"}, "method": "welch",
                "arms": [{"name": "a", "n": 10, "sum": 10, "sum_sq": 20},
                         {"name": "b", "n": 10, "sum": 12, "sum_sq": 25}]},
                token=harness.CLIENT).status, 200)
            # bad input on the long-lived paths too
            self.assertEqual(req("POST", "/v1/events", b"[{",
                                 token=harness.CLIENT).status, 400)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(180)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
        with open(log.name, errors="replace") as f:
            text = f.read()
        os.unlink(log.name)
        self.assertEqual(rc, 0, text[-6000:])
        self.assertIn("ERROR SUMMARY: 0 errors", text, text[-6000:])


if __name__ == "__main__":
    harness.main()
