"""test_hardening.py -- issue 14: what an attack run found, reproduced.

  * validation equals storability: a value whose square underflows in
    PostgreSQL (1e-200) is refused with value_out_of_range and never sinks
    the 100 valid events of its batch; a property test sends the
    validator's boundary values (and values just past them) through the
    real database: every event answered as accepted is stored exactly once
    with its exact value, every refused one is absent, and no batch is
    quarantined or refused by the database;
  * strict HTTP: Transfer-Encoding with Content-Length, two different
    Content-Lengths, %00 inside a query value and a NUL byte inside an
    Authorization or X-API-Key line ("Bearer <token>\\0junk") are each
    refused with 400 (and the framing cases close the connection);
  * authentication before the body: 40 unauthenticated connections each
    declaring an 8 MiB body get 401 at once, before sending it, and the
    server's RSS stays flat;
  * per-address limit and deadlines: a flood of slow-header connections
    from 127.0.0.2 (more than its per-address limit) leaves a well-behaved
    client on 127.0.0.1 served, and the reaper closes a connection that
    dribbles its headers past the header deadline;
  * GET /metrics behind ARBITER_METRICS_TOKEN; 503s counted by reason;
  * SIGTERM finishes in-flight requests: slow requests in progress when the
    signal arrives all get their answers.
"""
import json
import os
import random
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402
import ingest_load as il  # noqa: E402

METRICS = [{"name": "click", "kind": "binary"},
           {"name": "rev", "kind": "sum"},
           {"name": "lat", "kind": "ratio"}]

# accepted: 0, and 1e-100 <= |v| <= 1e15 (README "Event values")
INSIDE = [0.0, 1e-100, -1e-100, 1.0000000000000002e-100, 1e15, -1e15,
          999999999999999.9, 1e-99, 3.5, -2.25, 1e-50, 1e7]
OUTSIDE = [1e-200, -1e-200, 5e-324, 2.2250738585072014e-308, 1.5e-162,
           9.999999999999999e-101, -9.999999999999999e-101,
           1.0000000000000002e15, -1e16, 1e300]


def raw_http(port, data, read=True, timeout=5, src=None):
    """Send raw bytes; returns the answer bytes (until close or timeout)."""
    s = socket.socket()
    if src:
        s.bind((src, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    s.sendall(data)
    out = b""
    if read:
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
    s.close()
    return out


def status_of(answer):
    line = answer.split(b"\r\n", 1)[0]
    parts = line.split()
    return int(parts[1]) if len(parts) > 1 else None


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


class Hardening(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = harness.fresh_database("hardening")
        cls.srv = harness.Server(cls.url, env={
            "ARBITER_MAX_CONNS_PER_IP": "40",
            "ARBITER_HEADER_TIMEOUT_MS": "2000",
            "ARBITER_METRICS_TOKEN": "metrics-token-0123"}).start()
        il.create_experiment(cls.srv, "hx", METRICS)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    # ---- validation equals storability -----------------------------------

    def test_underflow_value_never_sinks_its_batch(self):
        evs = [{"experiment": "hx", "unit": "u%d" % i, "metric": "rev",
                "value": 1.5, "id": "uf-%d" % i} for i in range(100)]
        evs.insert(37, {"experiment": "hx", "unit": "tiny", "metric": "rev",
                        "value": 1e-200, "id": "uf-tiny"})
        st, _, text = il.post_events(self.srv.base, evs)
        self.assertEqual(st, 202, text)
        doc = json.loads(text)
        self.assertEqual(doc["accepted"], 100)
        self.assertEqual([(r["index"], r["code"]) for r in doc["rejected"]],
                         [(37, "value_out_of_range")])
        got = harness.psql(self.url, "SELECT count(*), count(DISTINCT "
                           "event_id) FROM arbiter.events WHERE event_id "
                           "LIKE 'uf-%'")
        self.assertEqual(got, "100|100")

    def test_boundary_values_through_the_database(self):
        rng = random.Random(14)
        sent = {}      # id -> value, of those answered as accepted
        refused = set()
        for b in range(20):
            evs = []
            for i in range(150):
                pool = INSIDE if rng.random() < 0.6 else OUTSIDE
                evs.append({"experiment": "hx",
                            "unit": "b%d" % rng.randrange(7),
                            "metric": rng.choice(("rev", "lat")),
                            "value": rng.choice(pool),
                            "id": "bd-%d-%d" % (b, i)})
            st, _, text = il.post_events(self.srv.base, evs)
            self.assertEqual(st, 202, text)
            doc = json.loads(text)
            bad = {r["index"] for r in doc["rejected"]}
            for i, e in enumerate(evs):
                self.assertEqual(i in bad, e["value"] in OUTSIDE, e)
                if i in bad:
                    refused.add(e["id"])
                else:
                    sent[e["id"]] = e["value"]
            self.assertEqual(doc["accepted"], len(evs) - len(bad))
        rows = harness.psql(self.url, "SELECT event_id, value::text, "
                            "count(*) OVER (PARTITION BY event_id) FROM "
                            "arbiter.events WHERE event_id LIKE 'bd-%'")
        stored = {}
        for ln in rows.splitlines():
            eid, val, n = ln.split("|")
            self.assertEqual(n, "1", eid)
            stored[eid] = float(val)
        self.assertEqual(set(stored), set(sent))
        for eid, v in sent.items():
            self.assertEqual(stored[eid], float(v), eid)
        self.assertFalse(set(stored) & refused)
        m = harness.request(self.srv.base, "GET", "/metrics",
                            token=harness.ADMIN).body
        self.assertIn("\narbiter_spool_quarantined_batches_total 0\n", m)
        # (a failed group commit would be spooled and replayed; what must
        # never happen is a batch refused for good after its 2xx)

    # ---- strict HTTP -------------------------------------------------------

    def head(self, extra, body=b"", path="/v1/events"):
        return ("POST %s HTTP/1.1\r\nHost: x\r\n"
                "Authorization: Bearer %s\r\nContent-Type: application/json"
                "\r\n%s\r\n" % (path, harness.CLIENT, extra)).encode() + body

    def test_te_and_content_length_refused(self):
        body = b"5\r\n[]\r\n\r\n0\r\n\r\n"
        a = raw_http(self.srv.port, self.head(
            "Transfer-Encoding: chunked\r\nContent-Length: 2\r\n", body))
        self.assertEqual(status_of(a), 400, a)
        self.assertIn(b"Transfer-Encoding", a)
        self.assertIn(b"Connection: close", a)

    def test_conflicting_content_length_refused(self):
        a = raw_http(self.srv.port, self.head(
            "Content-Length: 2\r\nContent-Length: 5\r\n", b"[]"))
        self.assertEqual(status_of(a), 400, a)
        self.assertIn(b"conflicting Content-Length", a)

    def test_nul_in_query_value_refused(self):
        r = self.srv.req("GET", "/v1/assign?experiment=hx&unit=a%00b", token=harness.CLIENT)
        self.assertEqual(r.status, 400, r)
        self.assertIn("NUL", r.json()["error"]["message"])

    def test_nul_in_token_header_refused(self):
        """"Bearer <token>\\0junk" must not authenticate as <token>:
        libmicrohttpd 0.9.75 cuts the value at the NUL (value_size ==
        strlen), so the server reads the header block in place (see
        token_lines_clean() in api/server.c) and refuses with 400."""
        path = "/v1/assign?experiment=hx&unit=nul1"
        tok = harness.CLIENT.encode()

        def get(headers, eol=b"\r\n"):
            req = (b"GET " + path.encode() + b" HTTP/1.1" + eol +
                   eol.join(headers) + eol + b"Connection: close" + eol +
                   eol)
            return raw_http(self.srv.port, req)
        host = b"Host: x"
        cases = {
            "auth last, junk": [host, b"Authorization: Bearer " + tok +
                                b"\0junk"],
            "auth first, junk": [b"Authorization: Bearer " + tok +
                                 b"\0junk", host],
            "auth, NUL only": [host, b"Authorization: Bearer " + tok +
                               b"\0"],
            "auth first, NUL only": [b"Authorization: Bearer " + tok +
                                     b"\0", host],
            "auth, NULs": [host, b"Authorization: Bearer " + tok +
                           b"\0\0\0"],
            "x-api-key, junk": [host, b"X-API-Key: " + tok + b"\0junk"],
            "x-api-key first, junk": [b"X-API-Key: " + tok + b"\0x", host],
        }
        for name, hs in cases.items():
            for eol in (b"\r\n", b"\n"):
                if "NUL only" in name and eol == b"\n":
                    # one NUL right before a bare LF reads like CR LF after
                    # libmicrohttpd's rewrite (both become two NULs); it can
                    # only authenticate the token before it (no junk can
                    # follow): the residual, in api/server.c
                    continue
                a = get(hs, eol)
                self.assertEqual(status_of(a), 400, (name, eol, a))
                self.assertIn(b"NUL byte", a, name)
        # the same requests without the NUL are served (both line ends,
        # token header first, last, or between others)
        fine = {
            "auth last": [host, b"Authorization: Bearer " + tok],
            "auth first": [b"Authorization: Bearer " + tok, host],
            "auth middle": [host, b"Authorization: Bearer " + tok,
                            b"Accept: */*"],
            "x-api-key": [host, b"X-API-Key: " + tok],
        }
        for name, hs in fine.items():
            for eol in (b"\r\n", b"\n"):
                a = get(hs, eol)
                self.assertEqual(status_of(a), 200, (name, eol, a))
        # and a wrong token stays 401, not 400
        a = get([host, b"Authorization: Bearer nope"])
        self.assertEqual(status_of(a), 401, a)

    # ---- authentication before the body -----------------------------------

    def test_unauthenticated_big_bodies_refused_before_reading(self):
        pid = self.srv.proc.pid
        before = rss_kb(pid)
        socks = []
        t0 = time.time()
        for i in range(40):
            s = socket.create_connection(("127.0.0.1", self.srv.port),
                                         timeout=5)
            s.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/json\r\n"
                      b"Content-Length: 8388607\r\n\r\n" + b"[" * 65536)
            socks.append(s)
        statuses = []
        for s in socks:
            try:
                statuses.append(status_of(s.recv(4096)))
            except OSError:
                statuses.append(None)
            s.close()
        self.assertEqual(statuses, [401] * 40)
        self.assertLess(time.time() - t0, 10)
        grew = rss_kb(pid) - before
        # 40 x 8 MiB would be 320 MiB; what was read is at most 40 x 64 KiB
        self.assertLess(grew, 32 * 1024, "RSS grew by %d KiB" % grew)

    # ---- per-address limit, deadlines --------------------------------------

    def test_slow_header_flood_leaves_others_served(self):
        flood = []
        try:
            for i in range(120):   # 3x the per-address limit of 40
                s = socket.socket()
                s.bind(("127.0.0.2", 0))
                s.settimeout(2)
                try:
                    s.connect(("127.0.0.1", self.srv.port))
                    s.sendall(b"GET /v1/assign?unit=x HTTP/1.1\r\nHost: ")
                except OSError:
                    pass
                flood.append(s)
            served = 0
            for i in range(29):
                r = self.srv.req("GET", "/v1/assign?experiment=hx&unit=good%d" % i,
                                 token=harness.CLIENT, timeout=2)
                served += r.status == 200
            self.assertEqual(served, 29)
            # the flood's connections are closed at the header deadline
            # (2 s here) however often they send a byte
            time.sleep(1.0)
            for s in flood[:40]:
                try:
                    s.sendall(b"x")
                except OSError:
                    pass
            time.sleep(2.5)
            closed = 0
            for s in flood[:40]:
                try:
                    s.settimeout(0.5)
                    closed += s.recv(100) == b""
                except OSError:
                    closed += 1
            self.assertEqual(closed, 40)
        finally:
            for s in flood:
                s.close()

    # ---- salt changes ------------------------------------------------------

    def test_salt_change_of_started_experiment_needs_bucket_version(self):
        il.create_experiment(self.srv, "salty", METRICS, sticky=True,
                             salt="s1")
        before = {}
        for i in range(200):
            r = self.srv.req("GET", "/v1/assign?experiment=salty&unit=v%d" % i,
                             token=harness.CLIENT)
            before[i] = r.json()["arm"]
        r = self.srv.req("PATCH", "/v1/experiments/salty", {"salt": "s2"})
        self.assertEqual(r.status, 409, r)
        self.assertEqual(r.json()["error"]["code"], "conflict")
        self.assertIn("salt", r.json()["error"]["message"])
        self.assertIn("bucket_version", r.json()["error"]["message"])
        after = {i: self.srv.req("GET", "/v1/assign?experiment=salty&unit=v%d"
                                 % i, token=harness.CLIENT).json()["arm"]
                 for i in range(200)}
        self.assertEqual(after, before)
        # on purpose: with a bucket_version bump
        r = self.srv.req("PATCH", "/v1/experiments/salty",
                         {"salt": "s2", "bucket_version": 2})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["salt"], "s2")
        # a draft's salt may change freely
        r = self.srv.req("POST", "/v1/experiments", {
            "key": "drafty", "salt": "a", "metrics": METRICS,
            "arms": [{"name": "c", "weight": 50, "control": True},
                     {"name": "t", "weight": 50}]})
        self.assertEqual(r.status, 201, r)
        r = self.srv.req("PATCH", "/v1/experiments/drafty", {"salt": "b"})
        self.assertEqual(r.status, 200, r)

    # ---- metrics -----------------------------------------------------------

    def test_metrics_token(self):
        r = harness.request(self.srv.base, "GET", "/metrics")
        self.assertEqual(r.status, 401)
        r = harness.request(self.srv.base, "GET", "/metrics",
                            token="metrics-token-0123")
        self.assertEqual(r.status, 200)
        self.assertIn('arbiter_http_unavailable_total{reason="busy"}', r.body)
        r = harness.request(self.srv.base, "GET", "/metrics",
                            token=harness.ADMIN)
        self.assertEqual(r.status, 200)
        r = harness.request(self.srv.base, "GET", "/metrics",
                            token=harness.CLIENT)
        self.assertEqual(r.status, 401)


class LabelLimit(unittest.TestCase):
    """/metrics label-set limit (ARBITER_METRICS_MAX_LABEL_SETS): past it
    the series naming experiments are folded into experiment="other" and
    arbiter_metrics_label_sets_dropped_total moves; every assignment is
    still counted, under its own labels or under "other"."""

    def test_label_sets_past_the_limit_fold_into_other(self):
        url = harness.fresh_database("hardening_labels")
        # 7 label sets: ex0 and its 2 arms, ex1 and its 2 arms, then ex2
        srv = harness.Server(url, env={
            "ARBITER_METRICS_MAX_LABEL_SETS": "7"}).start()
        try:
            for k in range(5):
                il.create_experiment(srv, "ex%d" % k, METRICS)
            n = {}
            for k in range(5):
                for u in range(40):
                    r = srv.req("GET", "/v1/assign?experiment=ex%d&unit=u%d"
                                % (k, u), token=harness.CLIENT)
                    self.assertEqual(r.status, 200, r)
                    n[k] = n.get(k, 0) + 1
            text, samples = il.scrape(srv.base)
            own = {k: v for k, v in samples.items()
                   if k.startswith("arbiter_assignments_total{")}
            for k in (0, 1):
                total = sum(v for name, v in own.items()
                            if 'experiment="ex%d"' % k in name)
                self.assertEqual(total, 40, own)
            for k in (3, 4):
                self.assertNotIn('experiment="ex%d"' % k, text)
            # ex2 took the 7th label set: its rollout series, no arm's
            self.assertNotIn('assignments_total{experiment="ex2"', text)
            self.assertIn('arbiter_rollout_verdict{experiment="ex2"', text)
            self.assertEqual(own['arbiter_assignments_total{experiment='
                                 '"other",arm="other"}'], 3 * 40)
            self.assertEqual(samples["arbiter_metrics_label_sets"], 7)
            self.assertEqual(samples["arbiter_metrics_label_sets_limit"], 7)
            # ex2's arms (ex2 itself took the 7th set), ex3 and ex4 whole
            self.assertEqual(
                samples["arbiter_metrics_label_sets_dropped_total"], 8)
            self.assertEqual(samples['arbiter_experiment_state{experiment='
                                     '"other",state="running"}'], 2)
            self.assertEqual(samples['arbiter_experiment_state{experiment='
                                     '"ex2",state="running"}'], 1)
            # a new experiment moves the counter again; nothing else does
            il.create_experiment(srv, "ex5", METRICS)
            time.sleep(0.5)
            _, samples = il.scrape(srv.base)
            self.assertEqual(
                samples["arbiter_metrics_label_sets_dropped_total"], 11)
            self.assertEqual(samples["arbiter_metrics_label_sets"], 7)
        finally:
            srv.stop()


class Unavailable(unittest.TestCase):
    """A 503 is counted by its reason; SIGTERM lets in-flight requests
    finish."""

    def test_503_counted_by_reason_and_sigterm_drains(self):
        url = harness.fresh_database("hardening_drain")
        srv = harness.Server(url, env={"ARBITER_SLOW_THREADS": "1",
                                       "ARBITER_SLOW_QUEUE": "4"}).start()
        try:
            il.create_experiment(srv, "dx", METRICS)
            # hold the one slow thread: a lock the experiment list waits on
            locker = threading.Thread(target=lambda: harness.psql(
                url, "BEGIN; LOCK TABLE arbiter.experiments IN ACCESS "
                "EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT"))
            locker.start()
            time.sleep(0.5)
            results = []

            def one():
                r = srv.req("GET", "/v1/experiments", timeout=30)
                results.append(r.status)
            ths = [threading.Thread(target=one) for _ in range(8)]
            for t in ths:
                t.start()
                time.sleep(0.05)
            time.sleep(0.5)
            # assignment is not behind them
            t0 = time.time()
            r = srv.req("GET", "/v1/assign?experiment=dx&unit=u",
                        token=harness.CLIENT)
            self.assertEqual(r.status, 200)
            self.assertLess(time.time() - t0, 0.5)
            m = harness.request(srv.base, "GET", "/metrics").body
            busy = [ln for ln in m.splitlines() if ln.startswith(
                'arbiter_http_unavailable_total{reason="busy"}')]
            self.assertEqual(len(busy), 1)
            n_busy = int(busy[0].split()[-1])
            self.assertGreaterEqual(n_busy, 1)
            # SIGTERM now: every queued slow request still gets its answer
            srv.proc.send_signal(15)
            for t in ths:
                t.join(30)
            locker.join(30)
            self.assertEqual(len(results), 8)
            self.assertEqual(results.count(503), n_busy, results)
            self.assertEqual(results.count(200), 8 - n_busy, results)
        finally:
            self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    harness.main()
