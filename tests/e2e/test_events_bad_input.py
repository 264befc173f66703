"""test_events_bad_input.py -- POST /v1/events against a catalogue of
malformed bodies and bad events, checked in the database.

The contract (api/h_events.c):
  * a body that is not a JSON array of events (or NDJSON with an NDJSON
    Content-Type) -- malformed JSON, NaN / Infinity literals, numbers that
    overflow a double or an integer, invalid UTF-8, \u0000 or a lone
    surrogate in a string, duplicate keys, an empty body, a non-array, an
    NDJSON line that does not parse, nesting deeper than 32 -- is answered
    400 and nothing of it is stored;
  * more than 10,000 events: 413 too_many_events; a body over 8 MiB: 413
    too_big (declared Content-Length and chunked); nothing stored;
  * otherwise each bad event is listed in "rejected" with its index, a
    stable code and a message, and the good events of the same request are
    stored (and only they).

Every request carries good events with ids next to the defect, and the
suite ends by checking that the database holds exactly the events that
were answered as accepted: nothing partially stored.
"""
import datetime
import http.client
import json
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402
import ingest_load as il  # noqa: E402

KEY = "bad"
METRICS = [{"name": "click", "kind": "binary"},
           {"name": "rev", "kind": "sum", "covariate": "pre_rev"},
           {"name": "lat", "kind": "ratio"}]
MIB = 1024 * 1024


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class BadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = harness.fresh_database("events_bad_input")
        cls.srv = harness.Server(cls.url)
        cls.srv.start()
        il.create_experiment(cls.srv, KEY, METRICS)
        # a draft: known, but not started
        r = cls.srv.req("POST", "/v1/experiments", {
            "key": "draft", "metrics": METRICS,
            "arms": [{"name": "control", "weight": 50, "control": True},
                     {"name": "treat", "weight": 50}]})
        assert r.status == 201, r
        cls.expected = set()    # ids the server said it stored
        cls.refused = set()     # ids sent in requests answered 4xx
        cls.seq = 0

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    # ---- helpers -----------------------------------------------------------

    def good(self, n=2):
        out = []
        for _ in range(n):
            type(self).seq += 1
            out.append({"id": "ok-%d" % self.seq, "experiment": KEY,
                        "unit": "u%d" % (self.seq % 50), "metric": "rev",
                        "value": self.seq})
        return out

    def post_body(self, body, ctype="application/json"):
        st, hdrs, text = il.post_raw(self.srv.base, body, content_type=ctype,
                                     timeout=60)
        return st, hdrs, text

    def assert_body_refused(self, body, status, code, ids=(),
                            ctype="application/json"):
        st, _, text = self.post_body(body, ctype)
        self.assertEqual(st, status, text)
        doc = json.loads(text)
        self.assertEqual(set(doc), {"error"}, doc)
        self.assertEqual(doc["error"]["code"], code, doc)
        self.assertTrue(doc["error"]["message"])
        type(self).refused |= set(ids)
        return doc

    def post_events(self, events):
        """POST a list of events; returns the 202 answer."""
        st, _, text = il.post_events(self.srv.base, events, timeout=60)
        self.assertEqual(st, 202, text)
        doc = json.loads(text)
        self.assertEqual(set(doc), {"accepted", "duplicates", "spooled",
                                    "rejected"})
        return doc

    def assert_rejected(self, bad, code):
        """One bad event between good ones: it alone is rejected, with its
        index and the code; the good ones are stored."""
        before, after = self.good(2), self.good(1)
        doc = self.post_events(before + [bad] + after)
        self.assertEqual(doc["accepted"], 3, doc)
        self.assertEqual(doc["duplicates"], 0, doc)
        self.assertEqual(len(doc["rejected"]), 1, doc)
        rj = doc["rejected"][0]
        self.assertEqual(set(rj), {"index", "code", "message"})
        self.assertEqual(rj["index"], 2)
        self.assertEqual(rj["code"], code, rj)
        self.assertTrue(rj["message"] and len(rj["message"]) < 300, rj)
        # (the database is checked once for all cases: test_zz_...)
        type(self).expected |= {e["id"] for e in before + after}
        if isinstance(bad, dict) and isinstance(bad.get("id"), str):
            type(self).refused.add(bad["id"])
        return rj

    def bad(self, **kw):
        type(self).seq += 1
        e = {"id": "bad-%d" % self.seq, "experiment": KEY, "unit": "x1",
             "metric": "rev", "value": 1}
        for k, v in kw.items():
            if v is DROP:
                e.pop(k, None)
            else:
                e[k] = v
        return e

    # ---- malformed bodies: 400, nothing stored -----------------------------

    def test_malformed_bodies_are_400_and_store_nothing(self):
        g = self.good(3)
        ids = [e["id"] for e in g]
        arr = json.dumps(g)
        one = json.dumps(g[0])
        cases = [
            ("empty body", b"", "invalid_json"),
            ("whitespace only", b"  \n ", "invalid_json"),
            ("not JSON", b"hello", "invalid_json"),
            ("truncated array", arr[:-5].encode(), "invalid_json"),
            ("trailing garbage", (arr + " x").encode(), "invalid_json"),
            ("two documents", (arr + arr).encode(), "invalid_json"),
            ("object, not array", one.encode(), "invalid_json"),
            ("number body", b"42", "invalid_json"),
            ("string body", b'"events"', "invalid_json"),
            ("null body", b"null", "invalid_json"),
            ("literal NaN", arr.replace('"value": %d' % g[1]["value"],
                                        '"value": NaN').encode(),
             "invalid_json"),
            ("literal Infinity", arr.replace('"value": %d' % g[1]["value"],
                                             '"value": Infinity').encode(),
             "invalid_json"),
            ("literal -Infinity", arr.replace(
                '"value": %d' % g[1]["value"],
                '"value": -Infinity').encode(), "invalid_json"),
            ("1e400 overflows a double", arr.replace(
                '"value": %d' % g[1]["value"], '"value": 1e400').encode(),
             "invalid_json"),
            ("integer beyond 64 bits", arr.replace(
                '"value": %d' % g[1]["value"],
                '"value": 123456789012345678901234567890').encode(),
             "invalid_json"),
            ("duplicate key in an event", arr.replace(
                '"metric": "rev"', '"metric": "rev", "metric": "lat"',
                1).encode(), "invalid_json"),
            ("single quotes", arr.replace('"', "'").encode(),
             "invalid_json"),
            ("lone surrogate escape", arr.replace(
                '"unit": "%s"' % g[2]["unit"],
                '"unit": "\\ud800"').encode(), "invalid_json"),
            # jansson refuses \u0000 in strings: NUL cannot sneak into a
            # name compared as a C string
            ("NUL in a unit", arr.replace(
                '"unit": "%s"' % g[2]["unit"],
                '"unit": "a\\u0000b"').encode(), "invalid_json"),
            ("NUL in an experiment key", arr.replace(
                '"experiment": "%s"' % KEY,
                '"experiment": "%s\\u0000x"' % KEY, 1).encode(),
             "invalid_json"),
            ("too deep", ("[" + "[" * 40 + "]" * 40 + "]").encode(),
             "too_deep"),
            ("deep attributes", arr.replace(
                '"value": %d' % g[1]["value"],
                '"value": 1, "attributes": ' + '{"a":' * 40 + "1" +
                "}" * 40).encode(), "too_deep"),
        ]
        for name, body, code in cases:
            with self.subTest(name):
                self.assert_body_refused(body, 400, code, ids)

    def test_invalid_utf8_is_400(self):
        g = self.good(2)
        for name, raw in (("bare continuation byte", b"\x80"),
                          ("overlong slash", b"\xc0\xaf"),
                          ("truncated sequence", b"\xe2\x82"),
                          ("UTF-16 surrogate in UTF-8", b"\xed\xa0\x80"),
                          ("beyond U+10FFFF", b"\xf4\x90\x80\x80"),
                          ("latin-1 e acute", b"\xe9")):
            with self.subTest(name):
                body = json.dumps(g).encode().replace(
                    b'"u', b'"' + raw + b'u', 1)
                self.assert_body_refused(body, 400, "invalid_utf8",
                                         [e["id"] for e in g])
        # valid UTF-8 beyond ASCII is fine
        e = dict(self.good(1)[0], unit="café-ü-日本-😀")
        doc = self.post_events([e])
        self.assertEqual(doc["accepted"], 1)
        type(self).expected.add(e["id"])
        self.assertEqual(harness.psql(self.url, "SELECT unit FROM "
                                      "arbiter.events WHERE event_id = '%s'"
                                      % e["id"]), "café-ü-日本-😀")

    def test_ndjson(self):
        g = self.good(3)
        lines = [json.dumps(e) for e in g]
        # a good NDJSON body (blank lines and CRLF are tolerated)
        body = ("\r\n".join(lines[:2]) + "\n\n" + lines[2] + "\n").encode()
        st, _, text = self.post_body(body, "application/x-ndjson")
        self.assertEqual(st, 202, text)
        self.assertEqual(json.loads(text)["accepted"], 3)
        type(self).expected |= {e["id"] for e in g}
        # one bad line sinks the body (400), and names the line
        g2 = self.good(3)
        lines = [json.dumps(e) for e in g2]
        for name, bad in (("broken object", '{"id": "nd-x", "unit": '),
                          ("NaN", lines[1].replace(
                              '"value": %d' % g2[1]["value"],
                              '"value": NaN')),
                          ("two objects on one line",
                           lines[0] + " " + lines[1])):
            with self.subTest(name):
                body = "\n".join([lines[0], bad, lines[2]]).encode()
                for ctype in ("application/x-ndjson",
                              "application/jsonl"):
                    doc = self.assert_body_refused(
                        body, 400, "invalid_json",
                        [e["id"] for e in g2], ctype=ctype)
                    self.assertIn("line 2", doc["error"]["message"])
        # NDJSON sent as application/json is malformed JSON
        self.assert_body_refused("\n".join(lines).encode(), 400,
                                 "invalid_json", [e["id"] for e in g2])
        # a line that is valid JSON but not an event is a rejected event
        g3 = self.good(2)
        body = "\n".join([json.dumps(g3[0]), "[1, 2]",
                          json.dumps(g3[1])]).encode()
        st, _, text = self.post_body(body, "application/x-ndjson")
        self.assertEqual(st, 202, text)
        doc = json.loads(text)
        self.assertEqual(doc["accepted"], 2)
        self.assertEqual([(r["index"], r["code"]) for r in doc["rejected"]],
                         [(1, "invalid_event")])
        type(self).expected |= {e["id"] for e in g3}

    # ---- limits: 413 ------------------------------------------------------

    def test_more_than_10000_events_is_413(self):
        evs = [{"id": "many-%d" % i, "experiment": KEY, "unit": "m%d" % i,
                "metric": "click"} for i in range(10001)]
        self.assert_body_refused(json.dumps(evs).encode(), 413,
                                 "too_many_events",
                                 [e["id"] for e in evs])
        nd = "\n".join(json.dumps(e) for e in evs).encode()
        self.assert_body_refused(nd, 413, "too_many_events",
                                 ctype="application/x-ndjson")
        self.assertEqual(harness.psql(self.url, "SELECT count(*) FROM "
                                      "arbiter.events_raw WHERE event_id "
                                      "LIKE 'many-%'"), "0")
        # exactly 10,000 is allowed
        doc = self.post_events(evs[:10000])
        self.assertEqual(doc["accepted"], 10000)
        self.assertEqual(doc["rejected"], [])
        type(self).expected |= {e["id"] for e in evs[:10000]}
        type(self).refused -= {e["id"] for e in evs[:10000]}

    def test_body_over_8_mib_is_413(self):
        pad = "p" * 4000
        evs = []
        size = 2
        i = 0
        while size <= 8 * MIB:
            e = {"id": "big-%d" % i, "experiment": KEY, "unit": "b%d" % i,
                 "metric": "rev", "value": 1, "attributes": {"pad": pad}}
            evs.append(e)
            size += len(json.dumps(e)) + 2
            i += 1
        body = json.dumps(evs).encode()
        self.assertGreater(len(body), 8 * MIB)
        self.assertLess(len(evs), 10000)
        # declared Content-Length: answered before the body is read
        r = declared_length_request(self.srv.port, len(body), body[:65536])
        self.assertEqual(r[0], 413, r)
        self.assertEqual(json.loads(r[1])["error"]["code"], "too_big")
        # chunked, no length: read, dropped, 413 at the end
        conn = http.client.HTTPConnection("127.0.0.1", self.srv.port,
                                          timeout=60)
        conn.request("POST", "/v1/events",
                     body=(body[k:k + MIB] for k in range(0, len(body), MIB)),
                     headers={"Authorization": "Bearer " + harness.CLIENT,
                              "Content-Type": "application/json"},
                     encode_chunked=True)
        resp = conn.getresponse()
        text = resp.read().decode()
        conn.close()
        harness.check_response("POST", "/v1/events", resp.status,
                               dict(resp.getheaders()), text)
        self.assertEqual(resp.status, 413, text)
        self.assertEqual(json.loads(text)["error"]["code"], "too_big")
        self.assertEqual(harness.psql(self.url, "SELECT count(*) FROM "
                                      "arbiter.events_raw WHERE event_id "
                                      "LIKE 'big-%'"), "0")
        type(self).refused |= {e["id"] for e in evs}
        # just under the limit is accepted
        while len(json.dumps(evs).encode()) > 8 * MIB:
            evs.pop()
        doc = self.post_events(evs)
        self.assertEqual(doc["accepted"], len(evs))
        type(self).refused -= {e["id"] for e in evs}
        type(self).expected |= {e["id"] for e in evs}

    # ---- bad events: listed, the others stored -----------------------------

    def test_bad_events_catalogue(self):
        now = datetime.datetime.now(datetime.timezone.utc)
        now_ms = int(now.timestamp() * 1000)
        cases = [
            # not an object
            ("number", 17, "invalid_event"),
            ("string", "click", "invalid_event"),
            ("null", None, "invalid_event"),
            ("array", [KEY, "u1", "rev", 1], "invalid_event"),
            ("bool", True, "invalid_event"),
            # unknown fields
            ("unknown field", self.bad(colour="red"), "unknown_field"),
            ("misspelt field", self.bad(metrc="rev"), "unknown_field"),
            ("long unknown field", self.bad(**{"x" * 1000: 1}),
             "unknown_field"),
            # missing fields
            ("no experiment", self.bad(experiment=DROP), "missing_field"),
            ("no unit", self.bad(unit=DROP), "missing_field"),
            ("no metric", self.bad(metric=DROP), "missing_field"),
            # wrong types
            ("experiment number", self.bad(experiment=1), "invalid_type"),
            ("unit number", self.bad(unit=12345), "invalid_type"),
            ("unit null", self.bad(unit=None), "invalid_type"),
            ("metric array", self.bad(metric=["rev"]), "invalid_type"),
            ("value string", self.bad(value="12"), "invalid_type"),
            ("value 'NaN' string", self.bad(value="NaN"), "invalid_type"),
            ("value 'Infinity' string", self.bad(value="Infinity"),
             "invalid_type"),
            ("value bool", self.bad(value=True), "invalid_type"),
            ("value object", self.bad(value={"v": 1}), "invalid_type"),
            ("id number", self.bad(id=42), "invalid_type"),
            ("arm number", self.bad(arm=1), "invalid_type"),
            ("attributes array", self.bad(attributes=[1, 2]),
             "invalid_type"),
            ("attributes string", self.bad(attributes="a=b"),
             "invalid_type"),
            # out of range
            ("value 1e300", self.bad(value=1e300), "value_out_of_range"),
            ("value -1e16", self.bad(value=-1e16), "value_out_of_range"),
            ("value 2^63-1", self.bad(value=9223372036854775807),
             "value_out_of_range"),
            ("value -2^63", self.bad(value=-9223372036854775808),
             "value_out_of_range"),
            # issue 14: squares that underflow in PostgreSQL float8
            ("value 5e-324", self.bad(value=5e-324), "value_out_of_range"),
            ("value -1e-200", self.bad(value=-1e-200), "value_out_of_range"),
            ("value 9.99e-101", self.bad(value=9.99e-101),
             "value_out_of_range"),
            # too long / invalid strings
            ("empty unit", self.bad(unit=""), "invalid_unit"),
            ("unit 257 bytes", self.bad(unit="u" * 257), "invalid_unit"),
            ("unit 129 x 2-byte chars", self.bad(unit="é" * 129),
             "invalid_unit"),
            ("empty id", self.bad(id=""), "invalid_id"),
            ("id 129 bytes", self.bad(id="i" * 129), "invalid_id"),
            ("attributes over 4096 bytes",
             self.bad(attributes={"a": "z" * 5000}), "too_long"),
            ("experiment key 10 KB", self.bad(experiment="k" * 10000),
             "unknown_experiment"),
            ("metric 10 KB", self.bad(metric="m" * 10000), "unknown_metric"),
            # unknown names
            ("unknown experiment", self.bad(experiment="nope"),
             "unknown_experiment"),
            ("draft experiment", self.bad(experiment="draft"),
             "experiment_not_started"),
            ("unknown metric", self.bad(metric="revenue"), "unknown_metric"),
            ("metric of another case", self.bad(metric="REV"),
             "unknown_metric"),
            ("unknown arm", self.bad(arm="treatment"), "unknown_arm"),
            ("arm of another case", self.bad(arm="Control"), "unknown_arm"),
            # timestamps
            ("ts six minutes ahead", self.bad(ts=iso(
                now + datetime.timedelta(minutes=6))), "future_timestamp"),
            ("ts next year, epoch ms", self.bad(
                ts=now_ms + 366 * 86400000), "future_timestamp"),
            ("ts far future 9e18", self.bad(ts=9000000000000000000),
             "future_timestamp"),
            ("ts 91 days ago", self.bad(ts=iso(
                now - datetime.timedelta(days=91))), "ancient_timestamp"),
            ("ts 1970", self.bad(ts=0), "ancient_timestamp"),
            ("ts negative", self.bad(ts=-1), "ancient_timestamp"),
            ("ts 1999", self.bad(ts="1999-12-31T23:59:59Z"),
             "ancient_timestamp"),
            ("ts not a date", self.bad(ts="yesterday"), "invalid_timestamp"),
            ("ts without zone", self.bad(ts=iso(now)[:-1]),
             "invalid_timestamp"),
            ("ts 30 February", self.bad(ts="2026-02-30T10:00:00Z"),
             "invalid_timestamp"),
            ("ts 25 hours", self.bad(ts="2026-11-01T25:00:00Z"),
             "invalid_timestamp"),
            ("ts float seconds", self.bad(ts=now.timestamp()),
             "invalid_timestamp"),
            ("ts bool", self.bad(ts=True), "invalid_timestamp"),
            ("ts trailing junk", self.bad(ts=iso(now) + "x"),
             "invalid_timestamp"),
            ("ts offset with a space", self.bad(
                ts=iso(now)[:-1] + "+ 1:00"), "invalid_timestamp"),
            ("ts offset with a sign inside", self.bad(
                ts=iso(now)[:-1] + "+-1:00"), "invalid_timestamp"),
            ("ts offset without colon", self.bad(
                ts=iso(now)[:-1] + "+0100"), "invalid_timestamp"),
            ("ts date with a space", self.bad(
                ts="2026-11- 2T10:00:00Z"), "invalid_timestamp"),
        ]
        for name, ev, code in cases:
            with self.subTest(name):
                self.assert_rejected(ev, code)

    def test_all_defects_in_one_request(self):
        """Many bad events mixed with good ones: each listed once, in
        order, with its own code; the good ones stored."""
        bads = [(self.bad(value="x"), "invalid_type"),
                (self.bad(metric="nope"), "unknown_metric"),
                (self.bad(unit=""), "invalid_unit"),
                (self.bad(colour=1), "unknown_field"),
                (self.bad(ts=0), "ancient_timestamp"),
                (self.bad(arm="zzz"), "unknown_arm")]
        body, want = [], []
        for ev, code in bads:
            g = self.good(1)[0]
            body += [g, ev]
            want.append((len(body) - 1, code))
        body += self.good(1)
        doc = self.post_events(body)
        self.assertEqual([(r["index"], r["code"]) for r in doc["rejected"]],
                         want)
        self.assertEqual(doc["accepted"], len(bads) + 1)
        type(self).expected |= {e["id"] for e in body
                                if e["id"].startswith("ok-")}
        type(self).refused |= {e["id"] for e, _ in bads}

    def test_good_edge_values_are_accepted(self):
        now = datetime.datetime.now(datetime.timezone.utc)
        evs = [dict(self.good(1)[0], value=1e15),
               dict(self.good(1)[0], value=-1e15),
               dict(self.good(1)[0], value=0),
               dict(self.good(1)[0], value=-1e-100),  # smallest nonzero
               dict(self.good(1)[0], unit="u" * 256),
               dict(self.good(1)[0], id="i" * 128),
               dict(self.good(1)[0], value=None),      # default 1
               dict(self.good(1)[0], arm=None, ts=None, attributes=None),
               dict(self.good(1)[0], arm="treat"),
               dict(self.good(1)[0], metric="pre_rev"),  # a covariate
               dict(self.good(1)[0], ts=iso(
                   now + datetime.timedelta(minutes=4))),
               dict(self.good(1)[0], ts=iso(
                   now - datetime.timedelta(days=89))),
               dict(self.good(1)[0], ts="2026-11-22T10:00:00+13:00"),
               dict(self.good(1)[0], ts=int(now.timestamp() * 1000)),
               dict(self.good(1)[0], attributes={"k": "v" * 4000}),
               dict(self.good(1)[0], unit="quote\"back\\slash{,}")]
        doc = self.post_events(evs)
        self.assertEqual(doc["rejected"], [])
        self.assertEqual(doc["accepted"], len(evs))
        type(self).expected |= {e["id"] for e in evs}
        got = harness.psql(self.url, "SELECT value FROM arbiter.events "
                           "WHERE event_id = '%s'" % evs[6]["id"])
        self.assertEqual(got, "1")
        got = harness.psql(self.url, "SELECT unit FROM arbiter.events "
                           "WHERE event_id = '%s'" % evs[15]["id"])
        self.assertEqual(got, 'quote"back\\slash{,}')
        got = harness.psql(self.url, "SELECT arm FROM arbiter.events "
                           "WHERE event_id = '%s'" % evs[8]["id"])
        self.assertEqual(got, "treat")
        # +13:00 is 21:00 UTC the day before
        got = harness.psql(self.url, "SELECT extract(epoch FROM ts) FROM "
                           "arbiter.events WHERE event_id = '%s'"
                           % evs[12]["id"])
        self.assertEqual(float(got), datetime.datetime(
            2026, 11, 21, 21, 0, tzinfo=datetime.timezone.utc).timestamp())

    def test_empty_array_stores_nothing(self):
        doc = self.post_events([])
        self.assertEqual(doc, {"accepted": 0, "duplicates": 0,
                               "spooled": False, "rejected": []})

    def test_zz_database_holds_exactly_the_accepted_events(self):
        """Runs last (name order): nothing partially stored, anywhere."""
        stored = set(harness.psql(self.url, "SELECT event_id FROM "
                                  "arbiter.events_raw").splitlines())
        self.assertEqual(stored - type(self).expected, set())
        self.assertEqual(type(self).expected - stored, set())
        self.assertEqual(stored & type(self).refused, set())
        n = int(harness.psql(self.url, "SELECT count(*) FROM "
                             "arbiter.events_raw"))
        self.assertEqual(n, len(stored))
        # and the aggregates agree with the raw events
        il.assert_stats_close(self, il.arm_stats(self.url, KEY),
                              il.arm_stats_recompute(self.url, KEY),
                              what="arm_stats vs recompute")


class _Drop:
    pass


DROP = _Drop()


def declared_length_request(port, length, head_of_body):
    """POST with a Content-Length over the limit; send only the start of
    the body and read the answer (the server answers before reading)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(("POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: "
               "Bearer %s\r\nContent-Type: application/json\r\n"
               "Content-Length: %d\r\n\r\n" % (harness.CLIENT, length))
              .encode())
    try:
        s.sendall(head_of_body)
    except OSError:
        pass
    data = b""
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
        if b"\r\n\r\n" in data:
            head, _, rest = data.partition(b"\r\n\r\n")
            for ln in head.split(b"\r\n"):
                if ln.lower().startswith(b"content-length:"):
                    if len(rest) >= int(ln.split(b":")[1]):
                        s.close()
                        return int(head.split()[1]), rest.decode()
    s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    return (int(head.split()[1]) if head else 0), rest.decode()


if __name__ == "__main__":
    harness.main()
