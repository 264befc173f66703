"""test_errors.py -- every error the HTTP API gives a caller, end to end.

Against the real binary (ASan+UBSan build) and a real PostgreSQL:

  401 missing / unknown / malformed bearer token
  403 client token on every admin route
  404 unknown experiment (every :key route, both assign forms), unknown route
  405 wrong method, with an Allow header naming the methods of that path
  413 body over the route's limit (declared Content-Length and chunked)
  400 malformed JSON, empty body, invalid UTF-8 (body and query, %ff),
      nesting deeper than 32, duplicate keys, wrong types, unknown fields,
      bad parameters
  409 duplicate key, illegal life-cycle change, change of a stopped one

Every error body is exactly {"error":{"code":"...","message":"..."}} with
application/json; no caller mistake ever gets a 5xx; and a refused request
leaves nothing behind (the tables are compared before and after).
"""
import http.client
import json
import os
import socket
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402

ADMIN, CLIENT = harness.ADMIN, harness.CLIENT
WRONG = "wrong-token-not-configured-5550123"

ADMIN_ROUTES = [
    ("POST", "/v1/experiments"),
    ("GET", "/v1/experiments"),
    ("GET", "/v1/experiments/e1"),
    ("PATCH", "/v1/experiments/e1"),
    ("POST", "/v1/experiments/e1/start"),
    ("POST", "/v1/experiments/e1/pause"),
    ("POST", "/v1/experiments/e1/resume"),
    ("POST", "/v1/experiments/e1/stop"),
    ("GET", "/v1/experiments/e1/decisions"),
    ("GET", "/v1/experiments/e1/exposures"),
]
CLIENT_ROUTES = [
    ("GET", "/v1/assign?experiment=e1&unit=u1"),
    ("POST", "/v1/assign"),
]


def definition(key, **extra):
    d = {"key": key,
         "arms": [{"name": "control", "weight": 50, "control": True,
                   "model": "ranker@1"},
                  {"name": "treat", "weight": 50, "model": "ranker@2"}]}
    d.update(extra)
    return d


def raw_request(port, method, path, headers, chunks):
    """A hand-made request (chunked bodies, raw bytes in the path)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest(method, path, skip_accept_encoding=True)
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.endheaders()
    for c in chunks:
        conn.send(b"%x\r\n%s\r\n" % (len(c), c))
    if chunks is not None and headers.get("Transfer-Encoding") == "chunked":
        conn.send(b"0\r\n\r\n")
    r = conn.getresponse()
    body = r.read().decode()
    status, hdrs = r.status, dict(r.getheaders())
    conn.close()
    harness.check_response(method, path, status, hdrs, body)
    return harness.Response(status, hdrs, body)


class Errors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = harness.fresh_database("e2e_errors")
        cls.srv = harness.Server(cls.url, env={"ARBITER_LOG_LEVEL": "debug"})
        cls.srv.start()
        r = cls.srv.req("POST", "/v1/experiments", definition("e1"))
        assert r.status == 201, r
        r = cls.srv.req("POST", "/v1/experiments",
                        definition("e-stopped"))
        assert r.status == 201, r
        r = cls.srv.req("POST", "/v1/experiments/e-stopped/stop")
        assert r.status == 200, r

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    # ---- helpers ----------------------------------------------------------

    def req(self, method, path, body=None, token=ADMIN, **kw):
        return self.srv.req(method, path, body, token=token, **kw)

    def assertError(self, r, status, code=None):
        """Exactly the one error shape, the status and (if given) code."""
        self.assertEqual(r.status, status, r)
        self.assertTrue(r.headers.get("Content-Type", "").startswith(
            "application/json"), r.headers)
        doc = json.loads(r.body)
        self.assertEqual(set(doc), {"error"}, r.body)
        self.assertEqual(set(doc["error"]), {"code", "message"}, r.body)
        self.assertIsInstance(doc["error"]["code"], str)
        self.assertIsInstance(doc["error"]["message"], str)
        self.assertRegex(doc["error"]["code"], r"^[a-z][a-z0-9_]*$")
        msg = doc["error"]["message"]
        self.assertTrue(msg, r.body)
        self.assertFalse(msg.endswith("."), msg)
        if code is not None:
            self.assertEqual(doc["error"]["code"], code, r.body)
        return doc["error"]

    def snapshot_tables(self):
        """Everything a refused request could have written."""
        q = ("SELECT (SELECT json_agg(e ORDER BY id) FROM "
             "arbiter.experiments e)::text || '|' || "
             "(SELECT count(*) FROM arbiter.decision_log) || '|' || "
             "(SELECT count(*) FROM arbiter.weights_history) || '|' || "
             "(SELECT count(*) FROM arbiter.exposure_units)")
        return harness.psql(self.url, q)

    # ---- 401 / 403 --------------------------------------------------------

    def test_401_missing_token_on_every_protected_route(self):
        for method, path in ADMIN_ROUTES + CLIENT_ROUTES:
            body = {} if method in ("POST", "PATCH") else None
            with self.subTest(route=(method, path)):
                e = self.assertError(self.req(method, path, body, token=None),
                                     401, "unauthorized")
                self.assertIn("token", e["message"])

    def test_401_unknown_token_on_every_protected_route(self):
        for method, path in ADMIN_ROUTES + CLIENT_ROUTES:
            body = {} if method in ("POST", "PATCH") else None
            with self.subTest(route=(method, path)):
                self.assertError(self.req(method, path, body, token=WRONG),
                                 401, "unauthorized")

    def test_401_malformed_authorization_headers(self):
        for value in ("Basic " + ADMIN, ADMIN, "Bearer", "Bearer ",
                      "Bearer " + ADMIN + "x", "Bearer " + ADMIN[:-1],
                      "Bearer  " + ADMIN):
            with self.subTest(header=value):
                r = harness.request(self.srv.base, "GET", "/v1/experiments",
                                    headers={"Authorization": value})
                self.assertError(r, 401, "unauthorized")

    def test_bearer_scheme_is_case_insensitive(self):
        # RFC 7235 section 2.1: the auth-scheme is case-insensitive
        r = harness.request(self.srv.base, "GET", "/v1/experiments",
                            headers={"Authorization": "bearer " + ADMIN})
        self.assertEqual(r.status, 200, r)

    def test_403_client_token_on_every_admin_route(self):
        before = self.snapshot_tables()
        for method, path in ADMIN_ROUTES:
            body = definition("made-by-client") if method == "POST" else (
                {"description": "x"} if method == "PATCH" else None)
            with self.subTest(route=(method, path)):
                e = self.assertError(self.req(method, path, body,
                                              token=CLIENT), 403, "forbidden")
                self.assertTrue(e["message"])
        self.assertEqual(self.snapshot_tables(), before)

    def test_admin_token_may_assign(self):
        r = self.req("GET", "/v1/assign?experiment=e1&unit=u1", token=ADMIN)
        self.assertEqual(r.status, 200, r)

    def test_health_routes_need_no_token(self):
        for path in ("/healthz", "/readyz", "/metrics"):
            with self.subTest(path=path):
                self.assertEqual(self.req("GET", path, token=None).status, 200)

    # ---- 404 --------------------------------------------------------------

    def test_404_unknown_experiment_on_every_key_route(self):
        routes = [("GET", "/v1/experiments/nope", None),
                  ("PATCH", "/v1/experiments/nope", {"description": "x"}),
                  ("POST", "/v1/experiments/nope/start", None),
                  ("POST", "/v1/experiments/nope/pause", None),
                  ("POST", "/v1/experiments/nope/resume", None),
                  ("POST", "/v1/experiments/nope/stop", None),
                  ("GET", "/v1/experiments/nope/decisions", None),
                  ("GET", "/v1/experiments/nope/exposures", None)]
        before = self.snapshot_tables()
        for method, path, body in routes:
            with self.subTest(route=(method, path)):
                e = self.assertError(self.req(method, path, body), 404,
                                     "not_found")
                self.assertEqual(e["message"], 'no experiment "nope"')
        self.assertEqual(self.snapshot_tables(), before)

    def test_404_impossible_keys_in_the_path(self):
        """Keys no experiment can have, %ff (not UTF-8) included, are a
        404 in the one error shape, never a database error (5xx)."""
        before = self.snapshot_tables()
        for key in ("%ff", "a%ffb", "%c0%af", "a%20b", "k" * 65, "%e2%82",
                    "caf%c3%a9", "-x"):
            for method, suffix, body in (("GET", "", None),
                                         ("PATCH", "", {"description": "x"}),
                                         ("POST", "/start", None),
                                         ("POST", "/stop", None),
                                         ("GET", "/decisions", None),
                                         ("GET", "/exposures", None)):
                with self.subTest(key=key[:10], route=(method, suffix)):
                    r = self.req(method, "/v1/experiments/" + key + suffix,
                                 body)
                    self.assertError(r, 404, "not_found")
        self.assertEqual(self.snapshot_tables(), before)

    def test_404_unknown_experiment_in_assign(self):
        e = self.assertError(self.req("GET", "/v1/assign?experiment=nope&"
                                      "unit=u1", token=CLIENT), 404,
                             "not_found")
        self.assertEqual(e["message"], 'no experiment "nope"')
        e = self.assertError(self.req("POST", "/v1/assign",
                                      {"unit": "u1",
                                       "experiments": ["e1", "nope"]},
                                      token=CLIENT), 404, "not_found")
        self.assertIn('"nope"', e["message"])

    def test_404_unknown_experiment_name_is_escaped(self):
        r = self.req("GET", '/v1/assign?experiment=a%22b%5C&unit=u1',
                     token=CLIENT)
        e = self.assertError(r, 404, "not_found")
        self.assertEqual(e["message"], 'no experiment "a\\"b\\\\"')

    def test_404_unknown_routes(self):
        for path in ("/", "/v1", "/v2/experiments", "/v1/experiments/e1/x",
                     "/v1/experiments/e1/start/now", "/v1/assign/x",
                     "/healthz/", "/v1//assign", "/v1/experiments//start",
                     "/metricsx"):
            for token in (None, CLIENT, ADMIN):
                with self.subTest(path=path, token=token):
                    self.assertError(self.req("GET", path, token=token), 404,
                                     "not_found")

    # ---- 405 --------------------------------------------------------------

    def test_405_with_allow_header(self):
        cases = [("DELETE", "/v1/experiments", {"GET", "POST"}),
                 ("PUT", "/v1/experiments", {"GET", "POST"}),
                 ("DELETE", "/v1/experiments/e1", {"GET", "PATCH"}),
                 ("POST", "/v1/experiments/e1", {"GET", "PATCH"}),
                 ("GET", "/v1/experiments/e1/start", {"POST"}),
                 ("PATCH", "/v1/experiments/e1/stop", {"POST"}),
                 ("POST", "/v1/experiments/e1/decisions", {"GET"}),
                 ("DELETE", "/v1/experiments/e1/exposures", {"GET"}),
                 ("POST", "/healthz", {"GET"}),
                 ("POST", "/readyz", {"GET"}),
                 ("DELETE", "/metrics", {"GET"}),
                 ("PUT", "/v1/assign", {"GET", "POST"})]
        before = self.snapshot_tables()
        for method, path, allow in cases:
            for token in (None, ADMIN):
                with self.subTest(method=method, path=path, token=token):
                    r = self.req(method, path, token=token)
                    self.assertError(r, 405, "method_not_allowed")
                    got = {m.strip() for m in r.headers["Allow"].split(",")}
                    self.assertEqual(got, allow)
        self.assertEqual(self.snapshot_tables(), before)

    # ---- 413 --------------------------------------------------------------

    def test_413_declared_length_over_limit(self):
        before = self.snapshot_tables()
        # /v1/experiments takes 64 KiB; /v1/assign 16 KiB; actions 4 KiB
        big = definition("too-big", description="x" * (64 * 1024))
        cases = [("POST", "/v1/experiments", json.dumps(big), ADMIN),
                 ("PATCH", "/v1/experiments/e1",
                  json.dumps({"description": "y" * (64 * 1024)}), ADMIN),
                 ("POST", "/v1/assign",
                  json.dumps({"unit": "u", "attributes":
                              {"a": "z" * (16 * 1024)}}), CLIENT),
                 ("POST", "/v1/experiments/e1/start",
                  json.dumps({"reason": "r" * 5000}), ADMIN)]
        for method, path, body, token in cases:
            with self.subTest(path=path):
                r = self.req(method, path, body, token=token,
                             headers={"Content-Type": "application/json"})
                self.assertError(r, 413, "too_big")
        self.assertEqual(self.snapshot_tables(), before)
        self.assertEqual(self.req("GET", "/v1/experiments/e1").json()
                         ["state"], "draft")

    def test_body_exactly_at_limit_is_not_413(self):
        limit = 16 * 1024
        head = '{"unit":"u1","attributes":{"pad":"'
        tail = '"}}'
        body = head + "p" * (limit - len(head) - len(tail)) + tail
        self.assertEqual(len(body), limit)
        r = self.req("POST", "/v1/assign", body, token=CLIENT)
        # the value is over the attribute limit: a 400, not a 413
        self.assertError(r, 400, "invalid")

    def test_413_chunked_body_over_limit(self):
        before = self.snapshot_tables()
        chunk = b"x" * 4096
        r = raw_request(self.srv.port, "POST", "/v1/assign",
                        {"Transfer-Encoding": "chunked",
                         "Content-Type": "application/json",
                         "Authorization": "Bearer " + CLIENT},
                        [chunk] * 6)
        self.assertError(r, 413, "too_big")
        self.assertEqual(self.snapshot_tables(), before)

    def test_server_still_serves_after_413(self):
        self.req("POST", "/v1/assign", "x" * 20000, token=CLIENT)
        r = self.req("GET", "/v1/assign?experiment=e1&unit=u1", token=CLIENT)
        self.assertEqual(r.status, 200, r)

    # ---- 400: JSON --------------------------------------------------------

    def test_400_malformed_json(self):
        before = self.snapshot_tables()
        for body in ('{', '{"key": }', '[1,2', 'nul', '{"key":"a",}',
                     "{'key':'a'}", '{"key":"a"} trailing', '"\\x"',
                     '{"key":"\\ud800"}', '{"unit":"a\\u0000b"}', ' '):
            for method, path, token in (("POST", "/v1/experiments", ADMIN),
                                        ("PATCH", "/v1/experiments/e1",
                                         ADMIN),
                                        ("POST", "/v1/assign", CLIENT)):
                with self.subTest(body=body, path=path):
                    r = self.req(method, path, body, token=token,
                                 headers={"Content-Type":
                                          "application/json"})
                    self.assertError(r, 400, "invalid_json")
        self.assertEqual(self.snapshot_tables(), before)

    def test_400_empty_body(self):
        for method, path, token in (("POST", "/v1/experiments", ADMIN),
                                    ("PATCH", "/v1/experiments/e1", ADMIN),
                                    ("POST", "/v1/assign", CLIENT)):
            with self.subTest(path=path):
                r = self.req(method, path, b"", token=token)
                e = self.assertError(r, 400, "invalid_json")
                self.assertIn("required", e["message"])

    def test_400_json_scalar_at_top_level(self):
        # jansson without JSON_DECODE_ANY reads only objects and arrays
        for path, token in (("/v1/assign", CLIENT),
                            ("/v1/experiments", ADMIN)):
            with self.subTest(path=path):
                self.assertError(self.req("POST", path, '"u1"', token=token),
                                 400, "invalid_json")

    def test_400_malformed_action_body(self):
        for body in ('{', '[]', '"stop"', '{"reason": 5}',
                     '{"reason": "a", "reason": "b"}'):
            with self.subTest(body=body):
                r = self.req("POST", "/v1/experiments/e1/start", body)
                self.assertEqual(r.status, 400, r)
                self.assertError(r, 400)
        e = self.assertError(self.req("POST", "/v1/experiments/e1/start",
                                      {"reason": "x", "who": "me"}), 400,
                             "invalid")
        self.assertEqual(e["message"], "who: unknown field")
        self.assertError(self.req("POST", "/v1/experiments/e1/start",
                                  {"reason": "r" * 1024}), 400, "invalid")
        self.assertEqual(self.req("GET", "/v1/experiments/e1").json()
                         ["state"], "draft")

    def test_400_invalid_utf8_in_body(self):
        before = self.snapshot_tables()
        for bad in (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82",
                    b"\xf4\x90\x80\x80"):
            for method, path, token, body in (
                    ("POST", "/v1/experiments", ADMIN,
                     b'{"key":"u8","description":"' + bad + b'","arms":[]}'),
                    ("PATCH", "/v1/experiments/e1", ADMIN,
                     b'{"description":"' + bad + b'"}'),
                    ("POST", "/v1/assign", CLIENT,
                     b'{"unit":"' + bad + b'"}'),
                    ("POST", "/v1/experiments/e1/start", ADMIN,
                     b'{"reason":"' + bad + b'"}')):
                with self.subTest(bad=bad, path=path):
                    r = self.req(method, path, body, token=token,
                                 headers={"Content-Type":
                                          "application/json"})
                    self.assertError(r, 400, "invalid_utf8")
        self.assertEqual(self.snapshot_tables(), before)

    def test_400_invalid_utf8_in_query(self):
        for q in ("experiment=e1&unit=%ff", "experiment=%ff&unit=u1",
                  "experiment=e1&unit=u1&country=%c0%af",
                  "experiment=e1&unit=u1&%ff=x",
                  "experiment=e1&unit=%ed%a0%80"):
            with self.subTest(q=q):
                r = self.req("GET", "/v1/assign?" + q, token=CLIENT)
                self.assertError(r, 400, "invalid_utf8")
        r = self.req("GET", "/v1/experiments?state=%fe")
        self.assertError(r, 400, "invalid_utf8")

    def test_400_nesting_deeper_than_32(self):
        def nest(n):
            return '{"unit":"u1","attributes":' + '{"a":' * (n - 1) + '1' + \
                '}' * (n - 1) + '}'
        # depth 33 (the outer object counts as 1) is refused by the
        # pre-check; depth 32 is parsed and then refused as a wrong type
        e = self.assertError(self.req("POST", "/v1/assign", nest(33),
                                      token=CLIENT), 400, "too_deep")
        self.assertIn("32", e["message"])
        self.assertError(self.req("POST", "/v1/assign", nest(32),
                                  token=CLIENT), 400, "invalid")
        deep = "[" * 10000 + "]" * 10000
        self.assertError(self.req("POST", "/v1/experiments", deep), 400,
                         "too_deep")
        # brackets inside strings do not count
        r = self.req("POST", "/v1/assign",
                     {"unit": "[" * 100, "experiments": ["e1"]},
                     token=CLIENT)
        self.assertEqual(r.status, 200, r)

    def test_400_duplicate_keys(self):
        before = self.snapshot_tables()
        cases = [("POST", "/v1/experiments", ADMIN,
                  '{"key":"dup","key":"dup2","arms":[]}'),
                 ("POST", "/v1/experiments", ADMIN,
                  '{"key":"dup","arms":[{"name":"a","name":"b",'
                  '"weight":100,"control":true}]}'),
                 ("PATCH", "/v1/experiments/e1", ADMIN,
                  '{"description":"a","description":"b"}'),
                 ("POST", "/v1/assign", CLIENT,
                  '{"unit":"u","attributes":{"c":"a","c":"b"}}')]
        for method, path, token, body in cases:
            with self.subTest(body=body):
                e = self.assertError(self.req(method, path, body,
                                              token=token), 400,
                                     "invalid_json")
                self.assertIn("duplicate", e["message"])
        self.assertEqual(self.snapshot_tables(), before)

    # ---- 400: wrong types, unknown fields, bad parameters -----------------

    def test_400_experiment_definition_errors_name_the_field(self):
        arms = definition("x")["arms"]
        cases = [
            ([1, 2], "body must be a JSON object"),
            ({"arms": arms}, "key: required"),
            ({"key": 5, "arms": arms}, "key: must be a string"),
            ({"key": "-bad", "arms": arms}, "key: must be 1 to 64"),
            ({"key": "k" * 65, "arms": arms}, "key: must be 1 to 64"),
            ({"key": "bad key", "arms": arms}, "key: must be 1 to 64"),
            ({"key": "t1"}, "arms: required"),
            ({"key": "t1", "arms": "a"}, "arms: must be an array"),
            ({"key": "t1", "arms": [arms[0]]}, "arms: must have 2 to 64"),
            ({"key": "t1", "arms": [arms[0], 5]}, "arms[1]: must be an "
             "object"),
            ({"key": "t1", "arms": [arms[0], {"name": "t", "weight": "50"}]},
             "arms[1].weight: must be a number"),
            ({"key": "t1", "arms": [arms[0], {"name": "t", "weight": 40}]},
             "arms: weights must sum to 100"),
            ({"key": "t1", "arms": [arms[0], {"name": "t", "weight": 50,
                                              "colour": "red"}]},
             "arms[1].colour: unknown field"),
            ({"key": "t1", "arms": [arms[0], {"name": "t", "weight": 50,
                                              "control": "yes"}]},
             "arms[1].control: must be true or false"),
            ({"key": "t1", "arms": [{"name": "a", "weight": 50},
                                    {"name": "b", "weight": 50}]},
             "arms: no control arm"),
            # jsonb would store 1e20 as an integer jansson cannot read back,
            # which lost the whole definition (201 with an empty body)
            ({"key": "t1", "arms": [arms[0], {"name": "t", "weight": 50,
                                              "value": {"k": [-2.5e300]}}]},
             "arms[1].value: the number -2.5e+300 cannot be stored"),
            ({"key": "t1", "arms": [arms[0], {"name": "t", "weight": 50,
                                              "value": 1e20}]},
             "arms[1].value: the number 1e+20 cannot be stored"),
            ({"key": "t1", "arms": arms, "colour": "red"},
             "colour: unknown field"),
            ({"key": "t1", "arms": arms, "coverage": 1.5}, "coverage:"),
            ({"key": "t1", "arms": arms, "coverage": "all"}, "coverage:"),
            ({"key": "t1", "arms": arms, "strategy": "magic"},
             "strategy: must be one of"),
            ({"key": "t1", "arms": arms, "sticky": 1},
             "sticky: must be true or false"),
            ({"key": "t1", "arms": arms, "bucket_version": 0},
             "bucket_version: must be an integer"),
            ({"key": "t1", "arms": arms, "bucket_version": 1.5},
             "bucket_version: must be an integer"),
            ({"key": "t1", "arms": arms, "targeting": {}},
             "targeting: must be an array"),
            ({"key": "t1", "arms": arms,
              "targeting": [{"attribute": "c", "op": "like", "value": "x"}]},
             "targeting[0].op: must be one of"),
            ({"key": "t1", "arms": arms,
              "targeting": [{"attribute": "v", "op": "semver_ge",
                             "value": "one"}]},
             "targeting[0].value: not a semantic version"),
            ({"key": "t1", "arms": arms,
              "targeting": [{"attribute": "n", "op": "gt", "value": 1e20}]},
             "targeting[0].value: the number 1e+20 cannot be stored"),
            ({"key": "t1", "arms": arms,
              "targeting": [{"attribute": "n", "op": "gt", "value": "x"}]},
             "targeting[0].value: must be a finite number"),
            ({"key": "t1", "arms": arms, "forced": {"qa": "nope"}},
             'forced["qa"]: unknown arm "nope"'),
            ({"key": "t1", "arms": arms, "forced": []},
             "forced: must be an object"),
            ({"key": "t1", "arms": arms, "layer": {"name": "l"}},
             "layer.range: required"),
            ({"key": "t1", "arms": arms,
              "layer": {"name": "l", "range": [50, 10]}},
             "layer.range: must have lo < hi"),
            ({"key": "t1", "arms": arms, "metrics": [{"name": "m"}]},
             "metrics[0].kind: required"),
        ]
        before = self.snapshot_tables()
        for body, want in cases:
            with self.subTest(body=body):
                e = self.assertError(self.req("POST", "/v1/experiments",
                                              body), 400, "invalid")
                self.assertTrue(e["message"].startswith(want),
                                (e["message"], want))
        self.assertEqual(self.snapshot_tables(), before)

    def test_400_message_quoting_a_cut_character_keeps_the_shape(self):
        # the parser quotes at most 64 bytes of a forced unit id: here that
        # cuts the two-byte "\u00e9" in half; the message must still be
        # UTF-8 (a '?' stands for the cut byte) and the body the one shape
        unit = "q" * 63 + "\u00e9"
        e = self.assertError(self.req("POST", "/v1/experiments",
                                      definition("cut", forced={unit:
                                                                "nope"})),
                             400, "invalid")
        self.assertEqual(e["message"], 'forced["' + "q" * 63 +
                         '?"]: unknown arm "nope"')

    def test_400_patch_errors_change_nothing(self):
        before = self.snapshot_tables()
        cases = [([], "body must be a JSON object"),
                 ({"key": "other"}, "key: cannot be changed"),
                 ({"state": "running"}, "state: read-only"),
                 ({"version": 7}, "version: read-only"),
                 ({"weights_version": 7}, "weights_version: read-only"),
                 ({"created_at": "x"}, "created_at: read-only"),
                 ({"arms": [{"name": "control", "weight": 10,
                             "control": True},
                            {"name": "treat", "weight": 10}]},
                  "arms: weights must sum to 100"),
                 ({"coverage": -0.1}, "coverage:"),
                 ({"colour": "red"}, "colour: unknown field"),
                 ({"bucket_version": "2"}, "bucket_version:")]
        for body, want in cases:
            with self.subTest(body=body):
                e = self.assertError(self.req("PATCH", "/v1/experiments/e1",
                                              body), 400, "invalid")
                self.assertTrue(e["message"].startswith(want),
                                (e["message"], want))
        self.assertEqual(self.snapshot_tables(), before)

    def test_400_patch_cannot_lower_bucket_version(self):
        r = self.req("POST", "/v1/experiments",
                     definition("bv", bucket_version=3))
        self.assertEqual(r.status, 201, r)
        before = self.snapshot_tables()
        e = self.assertError(self.req("PATCH", "/v1/experiments/bv",
                                      {"bucket_version": 2}), 400, "invalid")
        self.assertEqual(e["message"],
                         "bucket_version: cannot decrease (was 3)")
        self.assertEqual(self.snapshot_tables(), before)

    def test_400_assign_get_parameters(self):
        cases = [("unit=u1", 'query parameter "experiment" is required'),
                 ("experiment=e1", 'query parameter "unit" is required'),
                 ("experiment=&unit=u1", 'query parameter "experiment" is '
                  'required'),
                 ("experiment=e1&unit=", 'query parameter "unit" is '
                  'required'),
                 ("experiment=e1&unit=" + "u" * 257, "unit: must be 1 to "
                  "256 bytes of UTF-8"),
                 ("experiment=e1&unit=u1&" + "&".join(
                     "a%d=1" % i for i in range(70)),
                  "too many query parameters")]
        for q, want in cases:
            with self.subTest(q=q[:60]):
                e = self.assertError(self.req("GET", "/v1/assign?" + q,
                                              token=CLIENT), 400, "invalid")
                self.assertEqual(e["message"], want)
        r = self.req("GET", "/v1/assign?experiment=e1&unit=" + "u" * 256,
                     token=CLIENT)
        self.assertEqual(r.status, 200, r)

    def test_400_assign_post_types_and_fields(self):
        cases = [([], "body must be a JSON object"),
                 ({}, "unit: must be a string"),
                 ({"unit": 5}, "unit: must be a string"),
                 ({"unit": ""}, "unit: must be 1 to 256 bytes"),
                 ({"unit": "u" * 257}, "unit: must be 1 to 256 bytes"),
                 ({"unit": "u", "colour": 1}, "colour: unknown field"),
                 ({"unit": "u", "attributes": []},
                  "attributes: must be an object"),
                 ({"unit": "u", "attributes": {"a": [1]}},
                  "attributes.a: must be a string"),
                 ({"unit": "u", "attributes": {"a": {"b": 1}}},
                  "attributes.a: must be a string"),
                 ({"unit": "u", "attributes": {"a": None}},
                  "attributes.a: must be a string"),
                 ({"unit": "u", "attributes": {"k%d" % i: 1
                                               for i in range(65)}},
                  "attributes: at most 64"),
                 ({"unit": "u", "experiments": "e1"},
                  "experiments: must be an array"),
                 ({"unit": "u", "experiments": [1]},
                  "experiments[0]: must be a string")]
        for body, want in cases:
            with self.subTest(body=str(body)[:60]):
                e = self.assertError(self.req("POST", "/v1/assign", body,
                                              token=CLIENT), 400, "invalid")
                self.assertTrue(e["message"].startswith(want),
                                (e["message"], want))

    # ---- 409 --------------------------------------------------------------

    def test_409_duplicate_key(self):
        before = self.snapshot_tables()
        e = self.assertError(self.req("POST", "/v1/experiments",
                                      definition("e1")), 409, "conflict")
        self.assertEqual(e["message"], 'experiment "e1" exists')
        self.assertEqual(self.snapshot_tables(), before)

    def test_409_illegal_transitions(self):
        before = self.snapshot_tables()
        for action in ("pause", "resume"):
            with self.subTest(action=action, state="draft"):
                e = self.assertError(self.req(
                    "POST", "/v1/experiments/e1/" + action), 409,
                    "illegal_transition")
                self.assertIn("draft", e["message"])
        for action in ("start", "pause", "resume", "stop"):
            with self.subTest(action=action, state="stopped"):
                e = self.assertError(self.req(
                    "POST", "/v1/experiments/e-stopped/" + action,
                    {"reason": "again"}), 409, "illegal_transition")
                self.assertIn("stopped", e["message"])
        self.assertEqual(self.snapshot_tables(), before)

    def test_409_patch_of_a_stopped_experiment(self):
        before = self.snapshot_tables()
        e = self.assertError(self.req("PATCH", "/v1/experiments/e-stopped",
                                      {"description": "late"}), 409,
                             "conflict")
        self.assertIn("stopped", e["message"])
        self.assertEqual(self.snapshot_tables(), before)

    def test_409_layer_overlap_writes_nothing(self):
        layer = {"name": "search", "range": [0, 60]}
        r = self.req("POST", "/v1/experiments",
                     definition("lay-a", layer=layer))
        self.assertEqual(r.status, 201, r)
        before = self.snapshot_tables()
        e = self.assertError(self.req(
            "POST", "/v1/experiments",
            definition("lay-b", layer={"name": "search",
                                       "range": [50, 100]})), 409,
            "conflict")
        self.assertIn("lay-a", e["message"])
        self.assertEqual(self.snapshot_tables(), before)
        # adjacent slices do not overlap
        r = self.req("POST", "/v1/experiments",
                     definition("lay-c", layer={"name": "search",
                                                "range": [60, 100]}))
        self.assertEqual(r.status, 201, r)
        before = self.snapshot_tables()
        self.assertError(self.req("PATCH", "/v1/experiments/lay-c",
                                  {"layer": {"name": "search",
                                             "range": [59, 100]}}), 409,
                         "conflict")
        self.assertEqual(self.snapshot_tables(), before)

    def test_409_layer_overlap_under_concurrent_writers(self):
        """Two writers racing for overlapping slices of one layer: exactly
        one wins every round (the check and the write are serialized)."""
        def arms():
            return definition("x")["arms"]

        for i in range(12):
            results = {}

            def create(key, rng):
                results[key] = self.req("POST", "/v1/experiments", {
                    "key": key, "arms": arms(),
                    "layer": {"name": "race-%d" % i, "range": rng}}).status

            ts = [threading.Thread(target=create, args=("ra-%d" % i,
                                                        [0, 60])),
                  threading.Thread(target=create, args=("rb-%d" % i,
                                                        [40, 100]))]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            with self.subTest(round=i):
                self.assertEqual(sorted(results.values()), [201, 409])
        # PATCH: two disjoint slices both moved onto the same range
        for i in range(6):
            layer = "prace-%d" % i
            for key, rng in (("pa-%d" % i, [0, 10]), ("pb-%d" % i, [90, 100])):
                r = self.req("POST", "/v1/experiments", {
                    "key": key, "arms": arms(),
                    "layer": {"name": layer, "range": rng}})
                self.assertEqual(r.status, 201, r)
            results = {}

            def patch(key):
                results[key] = self.req("PATCH", "/v1/experiments/" + key, {
                    "layer": {"name": layer, "range": [30, 70]}}).status

            ts = [threading.Thread(target=patch, args=(k % i,))
                  for k in ("pa-%d", "pb-%d")]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            with self.subTest(patch_round=i):
                self.assertEqual(sorted(results.values()), [200, 409])

    # ---- never a 5xx ------------------------------------------------------

    def test_no_5xx_for_garbage_on_any_route(self):
        bodies = [b"", b"{}", b"[]", b"null", b"0", b'"s"', b"{\"a\":1}",
                  b"\x00\x01\x02", b"\xff\xfe", b'{"key":null}',
                  b'{"unit":"u","attributes":{"x":1e999}}',
                  b'{"key":"g","arms":[{"name":"c","weight":1e308,'
                  b'"control":true},{"name":"t","weight":-1e308}]}',
                  b'{"key":"g","arms":[{"name":"c","weight":100,'
                  b'"control":true},{"name":"t","weight":0}],'
                  b'"forced":{"":"c"}}',
                  b'{"description":null,"arms":null}',
                  b"\n" * 100, b"{" + b'"k":' * 10 + b"1}"]
        routes = [(m, p.replace("e1", "g")) for m, p in ADMIN_ROUTES] + \
            CLIENT_ROUTES
        for method, path in routes:
            for body in bodies:
                token = CLIENT if "assign" in path else ADMIN
                r = self.req(method, path, body if method != "GET" else None,
                             token=token)
                with self.subTest(route=(method, path), body=body[:30]):
                    self.assertLess(r.status, 500, r)
                    if r.status >= 400:
                        self.assertError(r, r.status)

    # ---- logs -------------------------------------------------------------

    def test_zz_log_is_json_lines_without_tokens(self):
        """Runs last (name order): every request above, with right, wrong
        and client tokens, at log level debug, has been logged by now."""
        self.req("GET", "/v1/experiments", token=WRONG)
        text = self.srv.logs()
        lines = [ln for ln in text.splitlines() if ln.strip()]
        self.assertGreater(len(lines), 3)
        for ln in lines:
            doc = json.loads(ln)
            self.assertIn(doc["level"], ("debug", "info", "warn", "error"))
            self.assertIsInstance(doc["msg"], str)
            self.assertRegex(doc["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:"
                             r"\d\d\.\d{3}Z$")
        for secret in (ADMIN, CLIENT, WRONG, ADMIN[:12], CLIENT[:12]):
            self.assertNotIn(secret, text)


if __name__ == "__main__":
    harness.main()
