"""test_ops.py -- day-two operations of `arbiter serve`:

* secrets never reach the logs: the server is started with the database
  password in every syntax libpq accepts (URL user:password, URL query
  parameter, key=value with spaces around '=', single-quoted with spaces
  and an escaped quote, PGPASSWORD, a passfile) and its whole log is
  searched for the password; host, port, database and user are logged;
* log lines are typed JSON (numbers are numbers) and valid UTF-8;
* the listener: `[::]:PORT` answers on IPv6 and IPv4, a host name works,
  and a port in use fails with exit 1 and the reason in the log;
* SIGHUP stops the server gracefully like SIGTERM;
* `arbiter analyze --help` shows the request format with an example that
  `arbiter analyze` answers.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import harness  # noqa: E402

SECRET = "hunter 2's secret"  # spaces and a quote: the hard case


def lines(text):
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))  # every line is JSON ...
            line.encode("utf-8")          # ... and valid UTF-8
    return out


class Ops(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = harness.fresh_database("it_ops")
        u = urllib.parse.urlparse(cls.url)
        cls.host, cls.port, cls.db, cls.user = u.hostname, u.port, u.path[1:], u.username

    def serve_with(self, url, env=None):
        """Start with this connection string (trust authentication ignores
        the password), stop, return the log."""
        s = harness.Server(url, env=env or {})
        s.start()
        self.assertEqual(s.stop(), 0)
        text = s.logs()
        os.unlink(s.log.name)
        return text

    def assert_redacted(self, text):
        self.assertNotIn("hunter", text)
        self.assertNotIn("secret", text)
        (mig,) = [x for x in lines(text) if x["msg"] == "migrations applied"]
        self.assertEqual(mig["database"], "host=%s port=%d dbname=%s user=%s"
                         % (self.host, self.port, self.db, self.user))

    def test_password_never_logged_in_any_libpq_syntax(self):
        q = urllib.parse.quote(SECRET, safe="")
        esc = SECRET.replace("\\", "\\\\").replace("'", "\\'")
        base = "host=%s port=%d dbname=%s user=%s" % (self.host, self.port, self.db, self.user)
        cases = {
            "url user:password": "postgresql://%s:%s@%s:%d/%s" % (
                self.user, q, self.host, self.port, self.db),
            "url query parameter": "postgresql://%s@%s:%d/%s?password=%s" % (
                self.user, self.host, self.port, self.db, q),
            "key = value, spaces around =": base + " password = hunter2secret",
            "key='quoted value'": "password='%s' %s" % (esc, base),
            "key=value first": "password=hunter2secret " + base,
        }
        for name, url in cases.items():
            with self.subTest(name):
                self.assert_redacted(self.serve_with(url))
        with self.subTest("PGPASSWORD"):
            self.assert_redacted(self.serve_with(self.url, {"PGPASSWORD": SECRET}))
        with self.subTest("passfile"), tempfile.NamedTemporaryFile("w") as f:
            f.write("*:*:*:*:%s\n" % SECRET.replace("\\", "\\\\").replace(":", "\\:"))
            f.flush()
            os.chmod(f.name, 0o600)
            self.assert_redacted(self.serve_with(self.url, {"PGPASSFILE": f.name}))

    def test_log_values_are_typed(self):
        text = self.serve_with(self.url)
        ls = lines(text)
        (listening,) = [x for x in ls if x["msg"] == "listening"]
        self.assertIsInstance(listening["port"], int)
        self.assertIsInstance(listening["threads"], int)
        (mig,) = [x for x in ls if x["msg"] == "migrations applied"]
        self.assertIsInstance(mig["schema_version"], int)
        for x in ls:
            self.assertEqual(list(x)[:3], ["ts", "level", "msg"])

    def test_sighup_stops_gracefully(self):
        s = harness.Server(self.url).start()
        rc = s.stop(sig=signal.SIGHUP)
        self.assertEqual(rc, 0)
        ls = lines(s.logs())
        self.assertIn({"signal": "SIGHUP"},
                      [{"signal": x.get("signal")} for x in ls if x["msg"] == "shutting down"])
        self.assertEqual(ls[-1]["msg"], "stopped")

    def test_listen_ipv6_and_ipv4(self):
        port = harness.free_port()
        s = harness.Server(self.url, port=port, env={"ARBITER_LISTEN": "[::]:%d" % port})
        s.start()  # readiness over 127.0.0.1
        try:
            c = socket.create_connection(("::1", port), timeout=5)
            c.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            self.assertIn(b"200", c.recv(100))
            c.close()
        finally:
            s.stop()
        port = harness.free_port()
        with harness.Server(self.url, port=port,
                            env={"ARBITER_LISTEN": "localhost:%d" % port}) as s:
            self.assertEqual(s.req("GET", "/healthz").status, 200)

    def test_failed_listen_says_why(self):
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        try:
            env = dict(os.environ, ARBITER_DATABASE_URL=self.url,
                       ARBITER_LISTEN="127.0.0.1:%d" % port,
                       ARBITER_SPOOL_DIR=tempfile.mkdtemp(prefix="arbiter-spool-"))
            r = subprocess.run([harness.BIN, "serve"], env=env, capture_output=True,
                               text=True, timeout=60)
        finally:
            blocker.close()
        self.assertEqual(r.returncode, 1, r.stderr)
        (err,) = [x for x in lines(r.stderr) if x["msg"] == "cannot listen"]
        self.assertEqual((err["host"], err["port"]), ("127.0.0.1", port))
        self.assertIn("address already in use", err["reason"])
        r = subprocess.run([harness.BIN, "serve"], capture_output=True, text=True,
                           timeout=60, env=dict(env, ARBITER_LISTEN="no-such-host.invalid:8080"))
        self.assertEqual(r.returncode, 1)
        (err,) = [x for x in lines(r.stderr) if x["msg"] == "cannot listen"]
        self.assertTrue(err["reason"])

    def test_analyze_help_shows_a_working_example(self):
        r = harness.run_cli(["analyze", "--help"])
        self.assertEqual(r.returncode, 0)
        for word in ("metric", "arms", "method", "alpha", "sided", "correction",
                     "Example", "Answer", "comparisons"):
            self.assertIn(word, r.stdout)
        m = re.search(r"echo '(.*?)' \|", r.stdout, re.S)
        self.assertIsNotNone(m, r.stdout)
        req = json.loads(m.group(1))
        a = harness.run_cli(["analyze"], stdin=json.dumps(req))
        self.assertEqual(a.returncode, 0, a.stderr)
        ans = json.loads(a.stdout)
        self.assertEqual(ans["comparisons"][0]["arm"], "v2")
        self.assertAlmostEqual(ans["comparisons"][0]["effect"], 0.03, places=12)


if __name__ == "__main__":
    harness.main()
