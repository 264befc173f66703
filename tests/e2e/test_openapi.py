"""test_openapi.py -- docs/openapi.json matches what the server does.

Every route of api/routes.c is in the document with its method and the
document has no route the server lacks; every operation's security matches
the route's token scope; and, over HTTP, an operation documented as needing
a token answers 401 without one (routes without a token answer anything
but 401).
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402

ROOT = harness.ROOT


def server_routes():
    text = open(os.path.join(ROOT, "api", "routes.c")).read()
    rows = re.findall(r'\{ "(\w+)",\s*"([^"]+)",\s*\w+,\s*[^,]+,\s*'
                      r'(API_SCOPE_\w+)', text)
    return {(m, re.sub(r":(\w+)", r"{\1}", p)): s for m, p, s in rows}


class OpenApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(os.path.join(ROOT, "docs", "openapi.json")) as f:
            cls.doc = json.load(f)
        cls.routes = server_routes()

    def documented(self):
        out = {}
        for path, ops in self.doc["paths"].items():
            for method, op in ops.items():
                out[(method.upper(), path)] = op
        return out

    def test_same_routes(self):
        self.assertGreater(len(self.routes), 15)
        self.assertEqual(set(self.routes), set(self.documented()))

    def test_security_matches_scope(self):
        want = {"API_SCOPE_NONE": [], "API_SCOPE_CLIENT": [{"client": []}],
                "API_SCOPE_ADMIN": [{"admin": []}],
                "API_SCOPE_READ": [{"readonly": []}]}
        for route, op in self.documented().items():
            self.assertEqual(op["security"], want[self.routes[route]], route)

    def test_unauthenticated_calls_answer_as_documented(self):
        db = harness.fresh_database("e2e_openapi")
        with harness.Server(db) as s:
            for (method, path), op in self.documented().items():
                url = path.replace("{key}", "nokey")
                r = harness.request(s.base, method, url,
                                    body="{}" if method != "GET" else None)
                if op["security"]:
                    self.assertEqual(r.status, 401, (method, path, r))
                    self.assertEqual(set(r.json()), {"error"})
                else:
                    self.assertNotEqual(r.status, 401, (method, path))

    def test_operation_ids(self):
        ids = [op.get("operationId") for op in self.documented().values()]
        self.assertNotIn(None, ids)
        self.assertEqual(len(ids), len(set(ids)))

    def test_document_is_valid_openapi(self):
        """A real validator (@apidevtools/swagger-parser, pinned in
        tests/node/package-lock.json): the document against the OpenAPI 3.1
        schema, every $ref resolved."""
        node = harness.node_tools()
        r = subprocess.run(["node", "validate-openapi.mjs",
                            os.path.join(ROOT, "docs", "openapi.json")],
                           cwd=node, capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("openapi: valid 3.1.0", r.stdout)

    def test_validator_catches_a_broken_document(self):
        doc = json.loads(json.dumps(self.doc))
        doc["paths"]["/healthz"]["get"]["responses"]["200"]["content"][
            "application/json"]["schema"] = {"$ref": "#/components/schemas/Missing"}
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            json.dump(doc, f)
            f.flush()
            r = subprocess.run(["node", "validate-openapi.mjs", f.name],
                               cwd=harness.node_tools(), capture_output=True,
                               text=True, timeout=120)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("INVALID", r.stderr)

    def test_response_check_refuses_undocumented_answers(self):
        """The hook every e2e suite's requests go through."""
        ok = '{"status":"ok"}'
        harness.check_response("GET", "/healthz", 200,
                               {"Content-Type": "application/json"}, ok)
        with self.assertRaises(AssertionError):  # status not documented
            harness.check_response("GET", "/healthz", 418,
                                   {"Content-Type": "application/json"}, ok)
        with self.assertRaises(AssertionError):  # body not as documented
            harness.check_response("GET", "/healthz", 200,
                                   {"Content-Type": "application/json"},
                                   '{"status":"ok","extra":1}')
        with self.assertRaises(AssertionError):  # a field of the wrong type
            harness.check_response("GET", "/v1/assign", 200,
                                   {"Content-Type": "application/json"},
                                   '{"experiment":"x","arm":7}')

    def test_experiment_answer_validates(self):
        """The answer that the 3.0 document's allOf + additionalProperties
        refused, with min_test_units."""
        db = harness.fresh_database("e2e_openapi_exp")
        with harness.Server(db) as s:
            r = s.req("POST", "/v1/experiments", {
                "key": "oa", "strategy": "canary",
                "arms": [{"name": "a", "weight": 100, "control": True},
                         {"name": "b", "weight": 0}],
                "metrics": [{"name": "lat", "kind": "mean",
                             "direction": "decrease", "role": "guardrail"}],
                "rollout": {"steps": [10, 100], "min_test_units": 50,
                            "alpha": 0.05}})
            self.assertEqual(r.status, 201, r)  # validated by the hook
            self.assertEqual(r.json()["rollout"]["min_test_units"], 50)
            self.assertEqual(r.json()["rollout"]["alpha"], 0.05)
            self.assertIn('"alpha":0.05,', r.body)  # as typed


if __name__ == "__main__":
    harness.main()
