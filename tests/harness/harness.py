"""harness.py -- shared helpers for integration, end-to-end and oracle suites.

Every suite is a plain `unittest` file run by /usr/bin/python3 from
tests/harness/run.sh, which exports:

  ARBITER_BIN               the binary under test (ASan+UBSan build)
  ARBITER_BUILD             the build directory (helper binaries live there)
  ARBITER_TEST_DATABASE_URL a private PostgreSQL (database "arbiter")
  ARBITER_TEST_PGDIR        that cluster's directory, for tests/harness/pg.sh

Suites never share a database: `fresh_database(name)` creates an empty one.
`Server` runs the real binary on a free loopback port and fails the test if
the sanitizers reported anything when it stops.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("ARBITER_BIN", os.path.join(ROOT, "bin", "arbiter"))
BUILD = os.environ.get("ARBITER_BUILD", os.path.join(ROOT, "build"))
DB_URL = os.environ.get("ARBITER_TEST_DATABASE_URL", "")
PGDIR = os.environ.get("ARBITER_TEST_PGDIR", "")
ADMIN = "test-admin-token-0123456789"
CLIENT = "test-client-token-9876543210"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def psql(url, sql, *args):
    """Run SQL with psql; returns stdout (unaligned, tuples only)."""
    cmd = ["psql", url, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def db_url_for(name):
    u = urllib.parse.urlparse(DB_URL)
    return urllib.parse.urlunparse(u._replace(path="/" + name))


def fresh_database(name):
    """Drop and create database `name` in the test cluster; return its URL."""
    name = name.lower()
    psql(DB_URL, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
    psql(DB_URL, 'CREATE DATABASE "%s"' % name)
    return db_url_for(name)


def pg_ctl(action):
    """stop | start | kill the test cluster (outage tests)."""
    subprocess.run([os.path.join(ROOT, "tests", "harness", "pg.sh"), action, PGDIR],
                   check=True, capture_output=True)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<%d %r>" % (self.status, self.body[:300])


def request(base, method, path, body=None, token=None, headers=None,
            timeout=10):
    """One HTTP request; never raises for HTTP error statuses."""
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        if isinstance(body, (bytes, bytearray)):
            data = bytes(body)
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
    if token:
        hdrs["Authorization"] = "Bearer " + token
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            resp = Response(r.status, dict(r.headers), r.read().decode())
    except urllib.error.HTTPError as e:
        resp = Response(e.code, dict(e.headers), e.read().decode())
    check_response(method, path, resp.status, resp.headers, resp.body)
    return resp


_running = set()  # servers started and not yet stopped


def _stop_leftover_servers():
    """At exit, whatever failed: no server of this suite outlives it."""
    for proc in list(_running):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    _running.clear()


import atexit  # noqa: E402
atexit.register(_stop_leftover_servers)


class Server:
    """The real arbiter binary on a free loopback port."""

    def __init__(self, db_url, port=None, env=None, args=(), admin=ADMIN,
                 client=CLIENT):
        self.port = port or free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.db_url = db_url
        self.env = dict(os.environ)
        self.env.update({
            "ARBITER_LISTEN": "127.0.0.1:%d" % self.port,
            "ARBITER_DATABASE_URL": db_url,
            "ARBITER_ADMIN_TOKEN": admin,
            "ARBITER_CLIENT_TOKEN": client,
            "ARBITER_LOG_LEVEL": "info",
        })
        self.env.update(env or {})
        # every server gets its own spool directory (one process per spool)
        # unless the suite chose one
        if "ARBITER_SPOOL_DIR" not in (env or {}):
            self.env["ARBITER_SPOOL_DIR"] = tempfile.mkdtemp(
                prefix="arbiter-spool-")
        self.args = list(args)
        self.proc = None
        self.log = tempfile.NamedTemporaryFile(prefix="arbiter-log-",
                                               suffix=".jsonl", delete=False)

    def start(self, wait_ready=True, timeout=20):
        self.proc = subprocess.Popen([BIN, "serve"] + self.args, env=self.env,
                                     stdout=subprocess.DEVNULL,
                                     stderr=self.log)
        _running.add(self.proc)
        deadline = time.time() + timeout
        path = "/readyz" if wait_ready else "/healthz"
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("arbiter exited %d:\n%s" %
                                   (self.proc.returncode, self.logs()))
            try:
                if request(self.base, "GET", path, timeout=1).status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("arbiter not ready:\n" + self.logs())

    def logs(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def req(self, method, path, body=None, token=ADMIN, **kw):
        return request(self.base, method, path, body, token, **kw)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stop; returns the exit code. Raises if sanitizers complained."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError("arbiter did not stop:\n" + self.logs())
        rc = self.proc.returncode
        _running.discard(self.proc)
        self.proc = None
        text = self.logs()
        if "Sanitizer" in text or "runtime error:" in text:
            raise AssertionError("sanitizer report:\n" + text)
        return rc

    def kill9(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            _running.discard(self.proc)
            self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        os.unlink(self.log.name)


NODE_DIR = os.path.join(ROOT, "tests", "node")


def node_tools():
    """tests/node/node_modules, installed from its package-lock.json (npm ci)
    the first time; returns the directory."""
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"],
                       cwd=NODE_DIR, check=True, timeout=600)
    return NODE_DIR


def run_cli(args, stdin=None, env=None, timeout=120):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([BIN] + list(args), input=stdin, env=e,
                          capture_output=True, text=True, timeout=timeout)


def main():
    unittest.main(verbosity=2)


# ---- every response checked against docs/openapi.json --------------------
# request() (and the suites' own keep-alive clients, through check_response)
# validate each answer against the OpenAPI document: the operation is found
# by method and path, the status must be documented for it, and a JSON body
# must validate against that response's schema (python3-jsonschema, Draft
# 2020-12 as OpenAPI 3.1 uses). A response the document does not describe
# fails the test. ARBITER_OPENAPI_CHECK=0 turns it off, =report prints each
# mismatch on stderr and goes on (to list them all while fixing the document).
_openapi = None


def _openapi_doc():
    global _openapi
    if _openapi is None:
        with open(os.path.join(ROOT, "docs", "openapi.json")) as f:
            doc = json.load(f)
        ops = []
        for path, item in doc["paths"].items():
            rx = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")
            for method, op in item.items():
                if method in ("get", "post", "put", "patch", "delete"):
                    ops.append((method.upper(), rx, path, op))
        _openapi = (doc, ops)
    return _openapi


def _resolve(doc, obj):
    while isinstance(obj, dict) and "$ref" in obj:
        node = doc
        for part in obj["$ref"].lstrip("#/").split("/"):
            node = node[part]
        obj = node
    return obj


def check_response(method, path, status, headers, body):
    """Raise AssertionError unless docs/openapi.json describes this answer."""
    mode = os.environ.get("ARBITER_OPENAPI_CHECK", "1")
    if mode == "0":
        return
    try:
        _check_response(method, path, status, headers, body)
    except AssertionError as e:
        if mode != "report":
            raise
        print("OPENAPI-MISMATCH " + str(e).split("\n")[0], file=sys.stderr)


def _check_response(method, path, status, headers, body):
    import jsonschema
    doc, ops = _openapi_doc()
    bare = path.split("?", 1)[0]
    match = [o for o in ops if o[0] == method.upper() and o[1].match(bare)]
    if not match:
        if not any(o[1].match(bare) for o in ops):
            return  # unknown routes: the 404/405 shape is checked below
        return
    _, _, tpl, op = match[0]
    responses = op.get("responses", {})
    resp = responses.get(str(status)) or responses.get("%dXX" % (status // 100)) \
        or responses.get("default")
    if resp is None:
        raise AssertionError("openapi: %s %s answered %d, not documented (documented: %s)\n%s"
                             % (method, tpl, status, sorted(responses), body[:500]))
    resp = _resolve(doc, resp)
    content = resp.get("content") or {}
    ctype = ""
    for k, v in (headers or {}).items():
        if k.lower() == "content-type":
            ctype = v.split(";")[0].strip()
    if not body:
        return
    media = content.get(ctype)
    if media is None:
        raise AssertionError("openapi: %s %s %d: content type %r not documented (%s)"
                             % (method, tpl, status, ctype, sorted(content)))
    schema = media.get("schema")
    if schema is None or ctype != "application/json":
        return
    wrapper = dict(schema)
    wrapper["components"] = doc["components"]
    wrapper["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    try:
        jsonschema.validate(json.loads(body), wrapper,
                            cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError as e:
        raise AssertionError("openapi: %s %s %d: body does not match the document: %s at %s\n%s"
                             % (method, tpl, status, e.message,
                                "/".join(str(p) for p in e.absolute_path), body[:800]))
