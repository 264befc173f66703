"""test_ofrep.py -- the OpenFeature Remote Evaluation Protocol on the wire
(issue 12), scoped tokens and the auth matrix over every route.

OFREP: open-feature/protocol service/openapi.yaml. Checked here with raw
HTTP: evaluation shape, reason mapping, values, OFREP error shapes, bulk
ETag / 304, CORS preflight, exposures (single counted, bulk not), the
provisional tracking route, 429 + Retry-After where arbiter says 503.
The stock SDKs are driven in test_ofrep_sdk.py.
"""
import json
import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import harness  # noqa: E402

ADMIN, CLIENT = harness.ADMIN, harness.CLIENT
ADMIN2 = "second-admin-token-abcdef"
CLIENT2 = "second-client-token-abcdef"
READ1 = "read-only-token-one-123456"
READ2 = "read-only-token-two-654321"
READ3 = "read-only-token-from-file-777"


def req(server, method, path, body=None, token=None, headers=None):
    return harness.request(server.base, method, path, body, token,
                           headers=headers)


def wait_exposures(server, key, want, timeout=10):
    """Units exposed in key, once the asynchronous writer has caught up."""
    deadline = time.time() + timeout
    total = None
    while time.time() < deadline:
        r = req(server, "GET", "/v1/experiments/%s/exposures" % key,
                token=ADMIN)
        assert r.status == 200, r
        doc = r.json()
        total = sum(a["units"] for a in doc["arms"])
        if want is not None and total >= want:
            return total
        time.sleep(0.2)
    return total


class Ofrep(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = harness.fresh_database("e2e_ofrep")
        fd, cls.token_file = tempfile.mkstemp(prefix="arbiter-ro-")
        with os.fdopen(fd, "w") as f:
            f.write("# read-only tokens, one per line\n%s\n\n%s\n"
                    % (READ1, READ2))
        cls.server = harness.Server(
            cls.db, admin=ADMIN + "," + ADMIN2, client=CLIENT + " " + CLIENT2,
            args=["--readonly-token-file", cls.token_file]).start()
        cls.create({
            "key": "ranker", "strategy": "ab",
            "arms": [{"name": "control", "weight": 50, "control": True,
                      "model": "ranker@1",
                      "value": {"model": "ranker@1", "depth": 3}},
                     {"name": "deep", "weight": 50, "model": "ranker@2",
                      "value": {"model": "ranker@2", "depth": 5}}],
            "forced": {"qa-1": "deep"},
            "metrics": [{"name": "click", "kind": "binary"}]})
        cls.create({
            "key": "flag-plain", "strategy": "ab",
            "arms": [{"name": "off", "weight": 50, "control": True,
                      "value": False},
                     {"name": "on", "weight": 50, "value": True}],
            "coverage": 0.5,
            "metrics": [{"name": "click", "kind": "binary"}]})
        cls.create({
            "key": "named", "strategy": "ab",
            "arms": [{"name": "a", "weight": 50, "control": True},
                     {"name": "b", "weight": 50, "model": "m@2"}],
            "targeting": [{"attribute": "country", "op": "eq",
                           "value": "fr"}],
            "metrics": [{"name": "click", "kind": "binary"}]})
        cls.create({
            "key": "paused-exp", "strategy": "ab",
            "arms": [{"name": "a", "weight": 50, "control": True},
                     {"name": "b", "weight": 50}],
            "metrics": [{"name": "click", "kind": "binary"}]})
        r = req(cls.server, "POST", "/v1/experiments/paused-exp/pause",
                token=ADMIN)
        assert r.status == 200, r

    @classmethod
    def create(cls, doc):
        r = req(cls.server, "POST", "/v1/experiments", doc, token=ADMIN)
        assert r.status == 201, r
        r = req(cls.server, "POST", "/v1/experiments/%s/start" % doc["key"],
                token=ADMIN)
        assert r.status == 200, r

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        os.unlink(cls.token_file)

    def evaluate(self, key, context, token=CLIENT, headers=None):
        body = {"context": context} if context is not None else None
        return req(self.server, "POST", "/ofrep/v1/evaluate/flags/" + key,
                   body, token, headers)

    # ---- single evaluation -------------------------------------------------

    def test_evaluation_matches_assign_with_value_reason_metadata(self):
        for i in range(50):
            unit = "u-%d" % i
            r = self.evaluate("ranker", {"targetingKey": unit, "plan": "pro",
                                         "age": 31, "beta": True,
                                         "nested": {"x": 1}})
            self.assertEqual(r.status, 200, r)
            doc = r.json()
            a = req(self.server, "GET", "/v1/assign?experiment=ranker&unit="
                    + unit, token=CLIENT).json()
            self.assertEqual(doc["key"], "ranker")
            self.assertEqual(doc["variant"], a["arm"])
            want = {"control": {"model": "ranker@1", "depth": 3},
                    "deep": {"model": "ranker@2", "depth": 5}}[a["arm"]]
            self.assertEqual(doc["value"], want)
            self.assertEqual(doc["reason"], "SPLIT")
            md = doc["metadata"]
            self.assertEqual(md, {
                "experiment": "ranker", "in_experiment": True,
                "arbiter_reason": "hashed", "bucket": a["bucket"],
                "hash_version": 1, "bucket_version": a["bucket_version"],
                "weights_version": a["weights_version"],
                "propensity": a["propensity"], "model": a["model"]})
            for v in md.values():  # OFREP: flat metadata
                self.assertIsInstance(v, (str, int, float, bool))

    def test_reasons_and_values(self):
        # forced unit: TARGETING_MATCH
        doc = self.evaluate("ranker", {"targetingKey": "qa-1"}).json()
        self.assertEqual((doc["variant"], doc["reason"]),
                         ("deep", "TARGETING_MATCH"))
        self.assertEqual(doc["metadata"]["arbiter_reason"], "forced")
        # value falls back to the model, then to the arm name
        seen = {}
        for i in range(40):
            d = self.evaluate("named", {"targetingKey": "n%d" % i,
                                        "country": "fr"}).json()
            seen[d["variant"]] = d["value"]
        self.assertEqual(seen, {"a": "a", "b": "m@2"})
        # targeting excludes the unit: DEFAULT, no value (the SDK keeps
        # its default)
        d = self.evaluate("named", {"targetingKey": "n1",
                                    "country": "de"}).json()
        self.assertEqual(d["reason"], "DEFAULT")
        self.assertNotIn("value", d)
        self.assertEqual(d["metadata"]["arbiter_reason"], "targeting")
        self.assertFalse(d["metadata"]["in_experiment"])
        # coverage 50 %: some units are out, with no value
        reasons = {}
        for i in range(60):
            d = self.evaluate("flag-plain", {"targetingKey": "c%d" % i}).json()
            reasons.setdefault(d["reason"], set()).add(
                json.dumps(d.get("value")))
        self.assertEqual(reasons["DEFAULT"], {"null"})
        self.assertEqual(reasons["SPLIT"], {"true", "false"})
        # paused: DISABLED, the control arm's value
        d = self.evaluate("paused-exp", {"targetingKey": "p1"}).json()
        self.assertEqual((d["reason"], d["variant"], d["value"]),
                         ("DISABLED", "a", "a"))

    def test_errors_in_ofrep_shapes(self):
        r = self.evaluate("no-such-flag", {"targetingKey": "u"})
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json()["errorCode"], "FLAG_NOT_FOUND")
        self.assertEqual(r.json()["key"], "no-such-flag")
        for ctx in ({}, {"targetingKey": ""}, None, {"targetingKey": None}):
            r = self.evaluate("ranker", ctx)
            self.assertEqual(r.status, 400, (ctx, r))
            self.assertEqual(r.json()["errorCode"], "TARGETING_KEY_MISSING")
            self.assertEqual(r.json()["key"], "ranker")
        for ctx in ({"targetingKey": 42}, {"targetingKey": "x" * 257},
                    {"targetingKey": "u", "s": "y" * 300}):
            r = self.evaluate("ranker", ctx)
            self.assertEqual(r.status, 400, (ctx, r))
            self.assertEqual(r.json()["errorCode"], "INVALID_CONTEXT")
        r = req(self.server, "POST", "/ofrep/v1/evaluate/flags/ranker",
                "{not json", CLIENT)
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["errorCode"], "PARSE_ERROR")
        r = req(self.server, "POST", "/ofrep/v1/evaluate/flags/ranker",
                "[1]", CLIENT)
        self.assertEqual(r.json()["errorCode"], "PARSE_ERROR")
        r = req(self.server, "POST", "/ofrep/v1/evaluate/flags/ranker",
                {"context": "nope"}, CLIENT)
        self.assertEqual(r.json()["errorCode"], "INVALID_CONTEXT")
        r = req(self.server, "POST", "/ofrep/v1/evaluate/flags/ranker",
                {"context": {"targetingKey": "u"}})
        self.assertEqual(r.status, 401)
        r = self.evaluate("ranker", {"targetingKey": "u"}, token=READ1)
        self.assertEqual(r.status, 403)

    def test_x_api_key_and_every_client_token(self):
        for tok in (CLIENT, CLIENT2, ADMIN, ADMIN2):
            r = self.evaluate("ranker", {"targetingKey": "k"}, token=None,
                              headers={"X-API-Key": tok})
            self.assertEqual(r.status, 200, tok)
        r = self.evaluate("ranker", {"targetingKey": "k"}, token=None,
                          headers={"X-API-Key": "wrong"})
        self.assertEqual(r.status, 401)

    # ---- bulk ----------------------------------------------------------------

    def bulk(self, context, headers=None, token=CLIENT):
        return req(self.server, "POST", "/ofrep/v1/evaluate/flags",
                   {"context": context}, token, headers)

    def test_bulk_etag_304_and_cors(self):
        r = self.bulk({"targetingKey": "b1", "country": "fr"})
        self.assertEqual(r.status, 200, r)
        etag = r.headers["ETag"]
        self.assertRegex(etag, r'^"[0-9a-f]{16}"$')
        self.assertEqual(r.headers["Access-Control-Allow-Origin"], "*")
        self.assertIn("ETag", r.headers["Access-Control-Expose-Headers"])
        flags = {f["key"]: f for f in r.json()["flags"]}
        self.assertEqual(set(flags), {"ranker", "flag-plain", "named",
                                      "paused-exp"})
        a = req(self.server, "GET", "/v1/assign?experiment=ranker&unit=b1",
                token=CLIENT).json()
        self.assertEqual(flags["ranker"]["variant"], a["arm"])
        # the same context, keys in another order: the same tag; 304
        r2 = req(self.server, "POST", "/ofrep/v1/evaluate/flags",
                 '{"context":{"country":"fr","targetingKey":"b1"}}', CLIENT,
                 headers={"If-None-Match": etag,
                          "Content-Type": "application/json"})
        self.assertEqual(r2.status, 304)
        self.assertEqual(r2.body, "")
        self.assertEqual(r2.headers["ETag"], etag)
        # another context: another tag, 200
        r3 = self.bulk({"targetingKey": "b2"}, {"If-None-Match": etag})
        self.assertEqual(r3.status, 200)
        self.assertNotEqual(r3.headers["ETag"], etag)
        # a change of any experiment changes the tag
        r = req(self.server, "POST", "/v1/experiments/paused-exp/resume",
                token=ADMIN)
        self.assertEqual(r.status, 200, r)
        try:
            r4 = self.bulk({"targetingKey": "b1", "country": "fr"},
                           {"If-None-Match": etag})
            self.assertEqual(r4.status, 200)
            self.assertNotEqual(r4.headers["ETag"], etag)
        finally:
            req(self.server, "POST", "/v1/experiments/paused-exp/pause",
                token=ADMIN)
        # whole-request failures in bulkEvaluationFailure's shape
        r = self.bulk({})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json(), {
            "errorCode": "TARGETING_KEY_MISSING",
            "errorDetails": "context.targetingKey is required: it is the "
                            "unit"})
        # errors too carry CORS (a browser must see the 401, not a
        # network error)
        r = self.bulk({"targetingKey": "b1"}, token="wrong")
        self.assertEqual(r.status, 401)
        self.assertEqual(r.headers["Access-Control-Allow-Origin"], "*")
        r = req(self.server, "POST", "/ofrep/v1/evaluate/flags/nope",
                {"context": {"targetingKey": "u"}}, CLIENT)
        self.assertEqual(r.status, 404)
        self.assertEqual(r.headers["Access-Control-Allow-Origin"], "*")
        # preflight: no credentials needed
        r = req(self.server, "OPTIONS", "/ofrep/v1/evaluate/flags",
                headers={"Origin": "https://app.example",
                         "Access-Control-Request-Method": "POST"})
        self.assertEqual(r.status, 204)
        self.assertEqual(r.headers["Access-Control-Allow-Origin"], "*")
        allow = [h.strip().lower() for h in
                 r.headers["Access-Control-Allow-Headers"].split(",")]
        for h in ("content-type", "authorization", "x-api-key",
                  "if-none-match"):
            self.assertIn(h, allow)
        self.assertIn("POST", r.headers["Access-Control-Allow-Methods"])

    def test_configuration(self):
        r = req(self.server, "GET", "/ofrep/v1/configuration", token=CLIENT)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["name"], "arbiter")

    # ---- exposures -----------------------------------------------------------

    def test_single_evaluations_expose_bulk_do_not(self):
        self.create({
            "key": "expo", "strategy": "ab",
            "arms": [{"name": "a", "weight": 50, "control": True},
                     {"name": "b", "weight": 50}],
            "metrics": [{"name": "click", "kind": "binary"}]})
        for i in range(30):
            r = self.bulk({"targetingKey": "bulk-%d" % i})
            self.assertEqual(r.status, 200)
        for i in range(20):
            r = self.evaluate("expo", {"targetingKey": "single-%d" % i})
            self.assertEqual(r.status, 200)
        self.assertEqual(wait_exposures(self.server, "expo", 20), 20)
        time.sleep(1.0)  # nothing more arrives late
        self.assertEqual(wait_exposures(self.server, "expo", None, 0.1), 20)

    # ---- tracking ------------------------------------------------------------

    def test_track_attributes_to_every_running_experiment_that_exposed(self):
        for k in ("trk-a", "trk-b", "trk-c"):
            self.create({
                "key": k, "strategy": "ab",
                "arms": [{"name": "x", "weight": 50, "control": True},
                         {"name": "y", "weight": 50}],
                "metrics": [{"name": "buy", "kind": "sum"}]})
        # exposed in a and b (not c); ts of the event comes after
        for k in ("trk-a", "trk-b"):
            r = self.evaluate(k, {"targetingKey": "shopper"})
            self.assertEqual(r.status, 200)
        wait_exposures(self.server, "trk-a", 1)
        wait_exposures(self.server, "trk-b", 1)
        r = req(self.server, "POST", "/v1/track",
                [{"unit": "shopper", "metric": "buy", "value": 12.5,
                  "id": "t-1"},
                 {"unit": "nobody", "metric": "buy", "value": 3}], CLIENT)
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.json(), {"events": 2, "attributed": 2,
                                    "unattributed": 1, "duplicates": 0})
        rows = harness.psql(
            self.db, "SELECT experiment || ':' || value::text FROM "
            "arbiter.events WHERE unit = 'shopper' ORDER BY 1")
        self.assertEqual(rows.split("\n"), ["trk-a:12.5", "trk-b:12.5"])
        # the same id again: a duplicate in each experiment
        r = req(self.server, "POST", "/v1/track",
                {"unit": "shopper", "metric": "buy", "value": 12.5,
                 "id": "t-1"}, CLIENT)
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.json()["duplicates"], 2)
        # an event before the exposure is not attributed
        r = req(self.server, "POST", "/v1/track",
                {"unit": "shopper", "metric": "buy",
                 "ts": int(time.time() * 1000) - 3600 * 1000}, CLIENT)
        self.assertEqual(r.json()["unattributed"], 1)
        # bad input: 400 in arbiter's shape
        for bad in ({"unit": "u"}, {"unit": "", "metric": "buy"},
                    {"unit": "u", "metric": "buy", "value": "x"},
                    {"unit": "u", "metric": "buy", "extra": 1}, []):
            r = req(self.server, "POST", "/v1/track", bad, CLIENT)
            self.assertEqual(r.status, 400, (bad, r))
            self.assertIn("error", r.json())
        r = req(self.server, "POST", "/v1/track",
                {"unit": "u", "metric": "buy"}, READ1)
        self.assertEqual(r.status, 403)


    # ---- the auth matrix ---------------------------------------------------

    def test_auth_matrix_over_every_route(self):
        """Every route of api/routes.c with every kind of token: no token,
        an unknown one, both admin tokens, both client tokens, both
        read-only tokens (several per scope). Allowed: anything but 401 /
        403 (the handler's own answer); refused: 401 without a known
        token, 403 with a token of another scope."""
        matrix = {
            ("GET", "/healthz"): "none", ("GET", "/readyz"): "none",
            ("GET", "/metrics"): "none",
            ("GET", "/v1/assign"): "client", ("POST", "/v1/assign"): "client",
            ("POST", "/v1/events"): "client",
            ("POST", "/v1/analyze"): "client",
            ("POST", "/v1/experiments"): "admin",
            ("GET", "/v1/experiments"): "read",
            ("GET", "/v1/experiments/:key"): "read",
            ("PATCH", "/v1/experiments/:key"): "admin",
            ("GET", "/v1/experiments/:key/decisions"): "read",
            ("GET", "/v1/experiments/:key/results"): "read",
            ("GET", "/v1/experiments/:key/exposures"): "read",
            ("GET", "/v1/experiments/:key/bandit"): "read",
            ("GET", "/v1/experiments/:key/verdict"): "read",
            ("POST", "/v1/flagger/rollout"): "read",
            ("POST", "/v1/flagger/confirm-promotion"): "read",
            ("POST", "/v1/flagger/rollback"): "read",
            ("POST", "/v1/flagger/event"): "client",
            ("POST", "/ofrep/v1/evaluate/flags/:key"): "client",
            ("OPTIONS", "/ofrep/v1/evaluate/flags/:key"): "none",
            ("POST", "/ofrep/v1/evaluate/flags"): "client",
            ("OPTIONS", "/ofrep/v1/evaluate/flags"): "none",
            ("GET", "/ofrep/v1/configuration"): "client",
            ("POST", "/v1/track"): "client",
            # the model registry (issue 15)
            ("POST", "/v1/models"): "admin",
            ("GET", "/v1/models"): "admin",
            ("GET", "/v1/models/:model"): "admin",
            ("GET", "/v1/models/:model/history"): "admin",
            ("GET", "/v1/models/:model/production"): "client",
            ("GET", "/v1/models/:model/versions/:version"): "admin",
            ("POST", "/v1/models/:model/versions/:version/stage"): "admin",
            ("POST", "/v1/models/:model/versions/:version/checkpoints"):
                "client",
            ("GET", "/v1/experiments/:key/report"): "admin",
            # paired shadow analysis (issue 16)
            ("POST", "/v1/experiments/:key/shadow/pairs"): "client",
            ("POST", "/v1/experiments/:key/shadow/labels"): "client",
            ("GET", "/v1/experiments/:key/shadow"): "read",
        }
        for act in ("start", "pause", "resume", "stop", "promote",
                    "rollback", "approve"):
            matrix[("POST", "/v1/experiments/:key/" + act)] = "admin"
        import re
        with open(os.path.join(harness.ROOT, "api", "routes.c")) as f:
            table = set(re.findall(r'\{ "([A-Z]+)",\s+"([^"]+)"', f.read()))
        self.assertEqual(table, set(matrix), "the matrix must cover every "
                         "route of api/routes.c")
        tokens = {None: "none", "unknown-token": "none", ADMIN: "admin",
                  ADMIN2: "admin", CLIENT: "client", CLIENT2: "client",
                  READ1: "read", READ2: "read"}
        bodies = {"POST": {"unit": "u"}, "PATCH": {"description": "x"}}
        checked = 0
        for (method, pattern), scope in sorted(matrix.items()):
            # a key that does not exist: allowed calls change nothing
            path = (pattern.replace(":key", "ghost")
                    .replace(":model", "ghost").replace(":version", "1"))
            if path == "/v1/assign" and method == "GET":
                path += "?experiment=ghost&unit=u"
            for tok, has in tokens.items():
                r = req(self.server, method, path, bodies.get(method), tok)
                if scope == "none" or has == "admin" or has == scope:
                    self.assertNotIn(r.status, (401, 403),
                                     (method, path, has, r))
                elif has == "none":
                    self.assertEqual(r.status, 401, (method, path, tok, r))
                else:
                    self.assertEqual(r.status, 403, (method, path, has, r))
                checked += 1
        self.assertEqual(checked, len(matrix) * len(tokens))

    def test_flagger_token_in_query_or_metadata(self):
        hook = "/v1/flagger/rollout"
        body = {"name": "ranker", "namespace": "x",
                "metadata": {"experiment": "ranker"}}
        self.assertEqual(req(self.server, "POST", hook, body).status, 401)
        r = req(self.server, "POST", hook + "?token=" + READ2, body)
        self.assertEqual(r.status, 200, r)
        body["metadata"]["token"] = READ1
        self.assertEqual(req(self.server, "POST", hook, body).status, 200)
        body["metadata"]["token"] = "wrong"
        self.assertEqual(req(self.server, "POST", hook, body).status, 401)
        body["metadata"]["token"] = CLIENT
        self.assertEqual(req(self.server, "POST", hook, body).status, 403)
        r = req(self.server, "POST", hook + "?token=" + CLIENT2, body)
        self.assertEqual(r.status, 403)


class TokensFromEnvironment(unittest.TestCase):
    def test_several_tokens_per_scope_in_the_environment(self):
        db = harness.fresh_database("e2e_ofrep_env")
        with harness.Server(db, admin=ADMIN, client=CLIENT,
                            env={"ARBITER_READONLY_TOKEN":
                                 READ1 + ", " + READ3}) as s:
            for tok in (READ1, READ3):
                r = req(s, "GET", "/v1/experiments", token=tok)
                self.assertEqual(r.status, 200, r)
                r = req(s, "POST", "/v1/experiments", {}, token=tok)
                self.assertEqual(r.status, 403, r)
            self.assertEqual(req(s, "GET", "/v1/experiments",
                                 token=READ2).status, 401)
            # a client token is not a read-only one
            self.assertEqual(req(s, "GET", "/v1/experiments",
                                 token=CLIENT).status, 403)



class OfrepBytes(unittest.TestCase):
    """The single-flag route writes its answer without a json_t tree
    (api/h_ofrep.c evaluation_text, issue 17); the bulk route still builds
    the tree and prints it with ab_json_text. Each single evaluation must
    be, byte for byte, the bulk answer's entry for that flag: strings that
    need escapes (quotes, backslashes, control bytes, non-ASCII, which
    JSON_ENSURE_ASCII writes as \\u escapes and surrogate pairs), reals
    of every shape in values and propensities, every reason."""

    @classmethod
    def setUpClass(cls):
        cls.db = harness.fresh_database("e2e_ofrep_bytes")
        cls.server = harness.Server(cls.db).start()
        exps = [
            {"key": "bytes-ab", "strategy": "ab",
             "arms": [{"name": "control", "weight": 34, "control": True,
                       "model": "m\u00e8le \"q\" \\ \t \U0001F600",
                       "value": {"z": 0.1, "a": [1e-7, 3.0517578125e-05, 1.0,
                                                 -2.5e10, 12345678901234],
                                 "s": "caf\u00e9 \u2603 \U0001F680 /x"}},
                      {"name": "wide", "weight": 33, "model": "mod\u00e8le@1",
                       "value": 0.30000000000000004},
                      {"name": "deep", "weight": 33}],
             "forced": {"qa-1": "wide"}},
            {"key": "bytes-canary", "strategy": "canary",
             "arms": [{"name": "stable", "weight": 95, "control": True,
                       "model": "fraud@1"},
                      {"name": "canary", "weight": 5, "model": "fraud@2",
                       "value": "x\ny"}]},
            {"key": "bytes-target", "strategy": "ab",
             "arms": [{"name": "a", "weight": 50, "control": True,
                       "value": False},
                      {"name": "b", "weight": 50, "value": None}],
             "targeting": [{"attribute": "country", "op": "eq",
                            "value": "fr"}]},
            {"key": "bytes-shadow", "strategy": "shadow",
             "arms": [{"name": "control", "weight": 50, "control": True,
                       "model": "live@1"},
                      {"name": "shadow", "weight": 50, "model": "next@1"}]},
            {"key": "bytes-paused", "strategy": "ab",
             "arms": [{"name": "a", "weight": 50, "control": True},
                      {"name": "b", "weight": 50}]},
        ]
        for doc in exps:
            doc.setdefault("metrics", [{"name": "click", "kind": "binary"}])
            r = req(cls.server, "POST", "/v1/experiments", doc, token=ADMIN)
            assert r.status == 201, r
            r = req(cls.server, "POST",
                    "/v1/experiments/%s/start" % doc["key"], token=ADMIN)
            assert r.status == 200, r
        r = req(cls.server, "POST", "/v1/experiments/bytes-paused/pause",
                token=ADMIN)
        assert r.status == 200, r
        cls.keys = [d["key"] for d in exps]

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_single_answers_are_the_bulk_entries_byte_for_byte(self):
        reasons = set()
        units = ["u-%d" % i for i in range(40)] + ["qa-1", "\u00fcnit-\U0001F600"]
        for unit in units:
            for country in ("fr", "de"):
                ctx = {"context": {"targetingKey": unit, "country": country}}
                bulk = req(self.server, "POST", "/ofrep/v1/evaluate/flags",
                           ctx, token=CLIENT)
                self.assertEqual(bulk.status, 200, bulk)
                for key in self.keys:
                    one = req(self.server, "POST",
                              "/ofrep/v1/evaluate/flags/" + key, ctx,
                              token=CLIENT)
                    self.assertEqual(one.status, 200, one)
                    self.assertIn(one.body, bulk.body, (unit, key))
                    doc = json.loads(one.body)
                    self.assertEqual(doc["key"], key)
                    reasons.add(doc["reason"])
        # every path of the writer was taken
        self.assertEqual(reasons, {"SPLIT", "TARGETING_MATCH", "DEFAULT",
                                   "DISABLED"})

if __name__ == "__main__":
    harness.main()
