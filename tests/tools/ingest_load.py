"""ingest_load.py -- load generator and checks shared by the ingestion suites
(tests/integration/test_ingest_*.py, tests/e2e/test_events*.py).

A `Load` runs client threads that POST /v1/events batches with unique event
ids, as a careful client does: a batch whose answer is lost (client
timeout, connection reset or refused, server killed) is resent unchanged,
with the same event ids, until it gets a 2xx; a 503 is retried after a
pause. Every batch records the answers it got, so a suite can assert, after
any fault, that every acknowledged event is stored exactly once:

    load = Load(lambda: srv.base, "exp", make_event, threads=4, batch=100)
    load.start(); ...fault...; load.stop()
    check_exactly_once(test, url, "exp", load)

`hash_arm` is an independent implementation of assignment hash v1 (from
docs/hashing.md, on python3-xxhash) used to predict the arm of a unit that
sends no explicit arm.
"""
import http.client
import json
import random
import socket
import struct
import subprocess
import threading
import time
import urllib.parse

import harness

CLIENT = harness.CLIENT


# ---- HTTP ------------------------------------------------------------------

class Lost(Exception):
    """The answer to a request never arrived (timeout, reset, refused)."""


def post_raw(base, body, timeout=10.0, content_type="application/json",
             token=CLIENT, path="/v1/events"):
    """POST bytes; returns (status, headers dict, text). Raises Lost."""
    u = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        hdrs = {"Content-Type": content_type}
        if token:
            hdrs["Authorization"] = "Bearer " + token
        conn.request("POST", path, body=body, headers=hdrs)
        r = conn.getresponse()
        text = r.read().decode("utf-8", "replace")
        return r.status, {k.lower(): v for k, v in r.getheaders()}, text
    except (OSError, http.client.HTTPException) as e:
        raise Lost(repr(e)) from None
    finally:
        conn.close()


def post_events(base, events, timeout=10.0, token=CLIENT):
    return post_raw(base, json.dumps(events).encode(), timeout=timeout,
                    token=token)


def post_and_drop(base, body, token=CLIENT):
    """Send a whole request and close the socket without reading: the
    client loses the answer on purpose (a connection reset from its side).
    """
    u = urllib.parse.urlparse(base)
    s = socket.create_connection((u.hostname, u.port), timeout=5)
    head = ("POST /v1/events HTTP/1.1\r\nHost: %s\r\n"
            "Content-Type: application/json\r\n"
            "Authorization: Bearer %s\r\nContent-Length: %d\r\n"
            "Connection: close\r\n\r\n" % (u.netloc, token, len(body)))
    s.sendall(head.encode() + body)
    s.shutdown(socket.SHUT_WR)
    s.close()


# ---- experiments -----------------------------------------------------------

def create_experiment(srv, key, metrics, arms=None, **extra):
    d = {"key": key,
         "arms": arms or [{"name": "control", "weight": 50, "control": True},
                          {"name": "treat", "weight": 50}],
         "metrics": metrics}
    d.update(extra)
    r = srv.req("POST", "/v1/experiments", d)
    if r.status != 201:
        raise AssertionError("create %s: %r" % (key, r))
    r = srv.req("POST", "/v1/experiments/%s/start" % key)
    if r.status != 200:
        raise AssertionError("start %s: %r" % (key, r))
    return d


# ---- assignment hash v1, independently (docs/hashing.md) --------------------

def _position(purpose, salt, version, unit):
    import xxhash
    s = salt.encode()
    seed = xxhash.xxh3_64_intdigest(b"arbiter.v1" + purpose.encode() +
                                    struct.pack("<I", len(s)) + s +
                                    struct.pack("<I", version))
    h = xxhash.xxh3_64_intdigest(unit.encode(), seed=seed)
    return ((h >> 32) * 1000000) >> 32


def hash_arm(arms, unit, salt, version=1):
    """arms: the definition's list of {name, weight, control}; coverage 1,
    no layer, no targeting, no forced units."""
    bucket = _position("A", salt, version, unit)
    end = 0
    for a in arms:
        if a.get("control"):
            continue
        end += round(a["weight"] * 10000)
        if bucket < end:
            return a["name"]
    return [a["name"] for a in arms if a.get("control")][0]


# ---- metrics ---------------------------------------------------------------

def scrape(base):
    """GET /metrics; returns (text, {sample name with labels: value})."""
    r = harness.request(base, "GET", "/metrics", timeout=10)
    if r.status != 200:
        raise AssertionError("/metrics: %r" % r)
    samples = {}
    for ln in r.body.splitlines():
        if ln and not ln.startswith("#"):
            name, value = ln.rsplit(" ", 1)
            samples[name] = float(value)
    return r.body, samples


def promtool_check(text):
    """'' when `promtool check metrics` accepts the text, else its output."""
    p = subprocess.run(["promtool", "check", "metrics"], input=text,
                       capture_output=True, text=True)
    return "" if p.returncode == 0 else p.stdout + p.stderr


def wait_spool_empty(base, timeout=120):
    """Wait until arbiter_spool_bytes is 0 and no batch is queued; returns
    the last samples. Raises AssertionError on timeout."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            _, last = scrape(base)
        except OSError:
            last = None
        if last and last.get("arbiter_spool_bytes") == 0 and \
                last.get("arbiter_ingest_queue_events") == 0:
            return last
        time.sleep(0.2)
    raise AssertionError("spool not replayed within %d s: %r" %
                         (timeout, last and {k: v for k, v in last.items()
                                             if "spool" in k}))


# ---- the load --------------------------------------------------------------

class Batch:
    def __init__(self, events):
        self.events = events
        self.body = json.dumps(events).encode()
        self.answers = []   # (status, json or text) of every answer
        self.lost = 0       # answers that never arrived
        self.refused = 0    # 503 answers
        self.acked = None   # the 2xx answer (dict), None until then

    @property
    def ids(self):
        return [e["id"] for e in self.events]


class Load:
    """Client threads posting batches until stop(); every batch is resent
    until acknowledged (or until the give-up deadline of stop())."""

    def __init__(self, base, experiment, make_event, threads=4, batch=100,
                 timeout=10.0, first_timeout=None, pause=0.0, tag="L",
                 seed=1):
        self.base = base if callable(base) else (lambda: base)
        self.experiment = experiment
        self.make_event = make_event
        self.n_threads = threads
        self.batch = batch
        self.timeout = timeout
        self.first_timeout = first_timeout  # shorter: lose answers on purpose
        self.pause = pause
        self.tag = tag
        self.seed = seed
        self.batches = []
        self.errors = []       # unexpected answers (4xx, 5xx but 503)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.giveup_at = None
        self.threads = []
        self.sent_ok = threading.Event()  # at least one batch acknowledged
        self.posts = []        # (start time, seconds, status or None: lost)

    def start(self):
        for t in range(self.n_threads):
            th = threading.Thread(target=self._run, args=(t,), daemon=True)
            th.start()
            self.threads.append(th)
        return self

    def stop(self, giveup=120):
        self.giveup_at = time.time() + giveup
        self.stopping.set()
        for th in self.threads:
            th.join(giveup + 30)

    def wait_acked(self, n, timeout=60):
        """Wait until at least n batches are acknowledged."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.count(lambda b: b.acked is not None) >= n:
                return
            time.sleep(0.05)
        raise AssertionError("fewer than %d batches acknowledged in %d s; "
                             "errors %r" % (n, timeout, self.errors[:3]))

    def count(self, pred):
        with self.lock:
            return sum(1 for b in self.batches if pred(b))

    def _run(self, t):
        rng = random.Random(self.seed * 1000 + t)
        seq = 0
        while not self.stopping.is_set():
            evs = []
            for i in range(self.batch):
                e = self.make_event(rng)
                e["id"] = "%s-%d-%d-%d" % (self.tag, t, seq, i)
                e.setdefault("experiment", self.experiment)
                evs.append(e)
            seq += 1
            b = Batch(evs)
            with self.lock:
                self.batches.append(b)
            self.send(b)
            if self.pause:
                time.sleep(self.pause)

    def send(self, b):
        """Resend b until a 2xx (or the give-up deadline after stop())."""
        while True:
            if self.giveup_at is not None and time.time() > self.giveup_at:
                return
            first = not b.answers and b.lost == 0
            timeout = self.first_timeout if (first and self.first_timeout) \
                else self.timeout
            t0 = time.time()
            try:
                status, hdrs, text = post_raw(self.base(), b.body,
                                              timeout=timeout)
            except Lost:
                self.posts.append((t0, time.time() - t0, None))
                b.lost += 1
                time.sleep(0.05)
                continue
            try:
                doc = json.loads(text)
            except ValueError:
                doc = text
            self.posts.append((t0, time.time() - t0, status))
            b.answers.append((status, doc))
            if 200 <= status < 300:
                b.acked = doc
                self.sent_ok.set()
                return
            if status == 503 and "retry-after" in hdrs:
                b.refused += 1
                time.sleep(0.2)
                continue
            with self.lock:
                self.errors.append((status, hdrs, text))
            time.sleep(0.2)

    # summaries
    def acked(self):
        with self.lock:
            return [b for b in self.batches if b.acked is not None]

    def acked_ids(self):
        return {i for b in self.acked() for i in b.ids}

    def summary(self):
        with self.lock:
            bs = list(self.batches)
        return {"batches": len(bs),
                "acked": sum(1 for b in bs if b.acked is not None),
                "events_acked": sum(len(b.events) for b in bs
                                    if b.acked is not None),
                "lost_answers": sum(b.lost for b in bs),
                "retried_batches": sum(1 for b in bs
                                       if b.lost or b.refused),
                "refused_503": sum(b.refused for b in bs),
                "spooled": sum(1 for b in bs if b.acked
                               and b.acked.get("spooled")),
                "errors": len(self.errors)}


# ---- database checks -------------------------------------------------------

def stored_ids(url, experiment):
    """{event_id: number of rows} in arbiter.events for one experiment."""
    out = harness.psql(url, "SELECT event_id, count(*) FROM arbiter.events "
                       "WHERE experiment = '%s' GROUP BY event_id"
                       % experiment)
    res = {}
    for ln in out.splitlines():
        eid, n = ln.rsplit("|", 1)
        res[eid] = int(n)
    return res


def check_exactly_once(test, url, experiment, load, all_acked=True):
    """Every acknowledged event is stored exactly once; nothing is stored
    twice; with all_acked, every batch was acknowledged in the end, so the
    stored set equals the sent set. Returns the load summary."""
    s = load.summary()
    test.assertEqual(load.errors, [], "unexpected answers")
    stored = stored_ids(url, experiment)
    twice = {k: v for k, v in stored.items() if v != 1}
    test.assertEqual(twice, {}, "events stored more than once")
    acked = load.acked_ids()
    missing = acked - set(stored)
    test.assertEqual(len(missing), 0, "acknowledged events missing: %r"
                     % sorted(missing)[:10])
    sent = {i for b in load.batches for i in b.ids}
    test.assertLessEqual(set(stored), sent, "events nobody sent")
    if all_acked:
        test.assertEqual(s["acked"], s["batches"], s)
        test.assertEqual(len(stored), len(sent))
    # the stored values are the acknowledged ones (not only the ids)
    want = sum(e["value"] for b in load.acked() for e in b.events)
    got = float(harness.psql(url, "SELECT coalesce(sum(value), 0) FROM "
                             "arbiter.events WHERE experiment = '%s'"
                             % experiment))
    if all_acked:
        test.assertAlmostEqual(got, want, delta=1e-9 * max(1.0, abs(want)))
    return s


STAT_COLS = ("n", "units_with_events", "sum", "sum_sq", "den_sum",
             "den_sum_sq", "cross_sum", "pre_sum", "pre_sum_sq",
             "pre_cross_sum")


def fold_wait(url, timeout=60.0):
    """Wait until the leader's fold has taken every committed event
    (arbiter.fold_status(): pending_events = 0); returns the status row
    [watermark, pending, lag_seconds]. The aggregates are folded
    asynchronously (sql/migrations/006_fold.sql): a test reads them only
    after this."""
    deadline = time.time() + timeout
    while True:
        out = harness.psql(url, "SELECT watermark, pending_events, lag_seconds"
                           " FROM arbiter.fold_status()").strip()
        row = out.split("|")
        if int(row[1]) == 0:
            return row
        if time.time() > deadline:
            raise AssertionError("fold did not catch up: %s" % out)
        time.sleep(0.1)


def arm_stats(url, experiment):
    """{(metric, arm): {col: value}} from the folded view (after the fold
    caught up with every committed event)."""
    fold_wait(url)
    out = harness.psql(url, "SELECT metric, arm, %s FROM arbiter.arm_stats "
                       "WHERE experiment = '%s'"
                       % (", ".join(STAT_COLS), experiment))
    return _rows(out)


def arm_stats_recompute(url, experiment):
    out = harness.psql(url, "SELECT metric, arm, %s FROM "
                       "arbiter.arm_stats_recompute('%s')"
                       % (", ".join(STAT_COLS), experiment))
    return _rows(out)


def _rows(out):
    res = {}
    for ln in out.splitlines():
        f = ln.split("|")
        res[(f[0], f[1])] = {c: float(v) for c, v in zip(STAT_COLS, f[2:])}
    return res


def assert_stats_close(test, got, want, rel=1e-9, what=""):
    """Same keys; every column equal up to a relative 1e-9 (absolute 1e-9
    near zero)."""
    test.assertEqual(sorted(got), sorted(want), what)
    bad = []
    for k in sorted(want):
        for c in STAT_COLS:
            g, w = got[k][c], want[k][c]
            if abs(g - w) > rel * max(1.0, abs(w)):
                bad.append((k, c, g, w))
    test.assertEqual(bad, [], "%s: (key, column, got, want)" % what)
