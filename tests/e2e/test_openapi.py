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
import sys
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


if __name__ == "__main__":
    harness.main()
