"""test_startup.py -- `arbiter serve` configuration, start-up and shutdown.

Flags and environment (usage errors exit 2 and name the problem), token
files (read, used, never logged), a busy port (exit 1 with a clear JSON
log line), no admin token (admin routes answer 401 to everyone), and a
SIGTERM / SIGINT shutdown that exits 0 after flushing exposures.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402

ADMIN, CLIENT = harness.ADMIN, harness.CLIENT


def serve_once(url, args=(), env=None, timeout=60):
    """Run `serve` expecting it to exit by itself; (code, stderr)."""
    e = dict(os.environ, ARBITER_DATABASE_URL=url,
             ARBITER_LISTEN="127.0.0.1:%d" % harness.free_port())
    e.update(env or {})
    p = subprocess.run([harness.BIN, "serve"] + list(args), env=e,
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stderr


class Startup(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = harness.fresh_database("it_startup")

    def test_usage_errors_exit_2_and_say_why(self):
        cases = [(["--listen", "nowhere"], {}, "HOST:PORT"),
                 (["--listen", "127.0.0.1:70000"], {}, "HOST:PORT"),
                 (["--threads", "0"], {}, "threads"),
                 ([], {"ARBITER_THREADS": "many"}, "threads"),
                 (["--log-level", "loud"], {}, "log level"),
                 (["--exposure-queue", "-1"], {}, "exposure queue"),
                 (["--sticky-timeout-ms", "x"], {}, "sticky timeout"),
                 (["--conn-memory", "10"], {}, "connection memory"),
                 (["--admin-token-file", "/nonexistent/token"], {},
                  "admin token file"),
                 (["extra"], {}, "unexpected argument"),
                 (["--no-such-flag"], {}, "usage")]
        for args, env, want in cases:
            with self.subTest(args=args, env=env):
                code, err = serve_once(self.url, args, env)
                self.assertEqual(code, 2, err)
                self.assertIn(want, err)
        e = dict(os.environ)
        e.pop("ARBITER_DATABASE_URL", None)
        p = subprocess.run([harness.BIN, "serve"], env=e,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("ARBITER_DATABASE_URL", p.stderr)

    def test_help_exits_0(self):
        p = harness.run_cli(["serve", "--help"])
        self.assertEqual(p.returncode, 0)
        self.assertIn("--listen HOST:PORT", p.stdout)
        p = harness.run_cli([])
        self.assertEqual(p.returncode, 2)
        p = harness.run_cli(["frobnicate"])
        self.assertEqual(p.returncode, 2)
        self.assertIn('unknown command "frobnicate"', p.stderr)

    def test_busy_port_exits_1_with_a_json_log_line(self):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        try:
            code, err = serve_once(self.url, env={
                "ARBITER_LISTEN": "127.0.0.1:%d" % port})
        finally:
            busy.close()
        self.assertEqual(code, 1, err)
        lines = [json.loads(ln) for ln in err.splitlines()]
        errs = [x for x in lines if x["level"] == "error"]
        self.assertEqual(len(errs), 1, err)
        # typed: the port is a number; and the reason is said
        self.assertEqual((errs[0]["msg"], errs[0]["port"]),
                         ("cannot listen", port))
        self.assertIn("address already in use", errs[0]["reason"])

    def test_token_files_are_read_and_never_logged(self):
        d = tempfile.mkdtemp()
        admin, client = "file-admin-7731a", "file-client-7731c"
        for name, tok in (("admin", admin), ("client", client)):
            with open(os.path.join(d, name), "w") as f:
                f.write(tok + "\n")  # the first line, without its newline
        srv = harness.Server(self.url, admin=None, client=None, args=[
            "--admin-token-file", os.path.join(d, "admin"),
            "--client-token-file", os.path.join(d, "client")],
            env={"ARBITER_LOG_LEVEL": "debug"})
        srv.env.pop("ARBITER_ADMIN_TOKEN", None)
        srv.env.pop("ARBITER_CLIENT_TOKEN", None)
        with srv:
            self.assertEqual(srv.req("GET", "/v1/experiments",
                                     token=admin).status, 200)
            self.assertEqual(srv.req("GET", "/v1/experiments",
                                     token=client).status, 403)
            self.assertEqual(srv.req("GET", "/v1/experiments",
                                     token=ADMIN).status, 401)
            self.assertEqual(srv.req("GET", "/v1/assign?experiment=x&unit=u",
                                     token=client).status, 404)
            text = srv.logs()
        self.assertNotIn(admin, text)
        self.assertNotIn(client, text)

    def test_without_an_admin_token_admin_routes_answer_401(self):
        srv = harness.Server(self.url)
        srv.env.pop("ARBITER_ADMIN_TOKEN")
        with srv:
            for tok in (None, "", CLIENT, ADMIN):
                r = srv.req("GET", "/v1/experiments", token=tok)
                self.assertEqual(r.status, 401 if tok != CLIENT else 403,
                                 (tok, r))
            # the client token still assigns
            self.assertEqual(srv.req("GET", "/v1/assign?experiment=x&unit=u",
                                     token=CLIENT).status, 404)

    def test_sigterm_and_sigint_exit_0_after_flushing(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            key = "sig-%d" % sig
            srv = harness.Server(self.url).start()
            try:
                d = {"key": key, "arms": [
                    {"name": "control", "weight": 50, "control": True},
                    {"name": "t", "weight": 50}]}
                self.assertEqual(srv.req("POST", "/v1/experiments",
                                         d).status, 201)
                srv.req("POST", "/v1/experiments/%s/start" % key)
                for i in range(30):
                    self.assertEqual(srv.req(
                        "GET", "/v1/assign?experiment=%s&unit=u%d"
                        % (key, i), token=CLIENT).status, 200)
                t0 = time.time()
                code = srv.stop(sig=sig)
            finally:
                srv.stop()
            with self.subTest(signal=sig):
                self.assertEqual(code, 0)
                self.assertLess(time.time() - t0, 10)
                msgs = [json.loads(ln)["msg"]
                        for ln in srv.logs().splitlines()]
                self.assertEqual(msgs[-1], "stopped")
                self.assertIn("shutting down", msgs)
                # no wait: the exposures were written before the exit
                self.assertEqual(harness.psql(
                    self.url, "SELECT count(*) FROM arbiter.exposures "
                    "WHERE experiment = '%s'" % key), "30")


if __name__ == "__main__":
    harness.main()
