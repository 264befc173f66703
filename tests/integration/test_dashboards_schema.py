"""test_dashboards_schema.py -- the Grafana dashboards against Grafana's
published dashboard schema (the types generated from its CUE schema in the
npm package @grafana/schema, pinned in tests/node/package-lock.json), checked
by the TypeScript compiler (tests/node/check-dashboards.mjs): unknown
fields, wrong types and values outside the schema's enumerations fail.
Also: the check does fail on a dashboard that breaks the schema, and the
import envelope (__inputs, __requires) is what Grafana's import expects.
"""
import copy
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import harness  # noqa: E402

DASH = os.path.join(harness.ROOT, "dashboards")
FILES = ["arbiter-experiments.json", "arbiter-service.json"]


def check(paths):
    return subprocess.run(["node", "check-dashboards.mjs"] + paths, cwd=harness.node_tools(),
                          capture_output=True, text=True, timeout=300)


class DashboardSchema(unittest.TestCase):
    def test_dashboards_match_grafana_schema(self):
        r = check([os.path.join(DASH, f) for f in FILES])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("dashboards: 2 match the Grafana dashboard schema", r.stdout)

    def test_the_check_refuses_what_the_schema_refuses(self):
        with open(os.path.join(DASH, FILES[1])) as f:
            good = json.load(f)
        cases = {
            "wrong type": lambda d: d["panels"][0]["gridPos"].update(w="wide"),
            "unknown panel field": lambda d: d["panels"][1].update(bogus=1),
            "value outside an enumeration": lambda d: d["panels"][2]["fieldConfig"][
                "defaults"].update(thresholds={"mode": "weird", "steps": []}),
            "query without refId": lambda d: d["panels"][3]["targets"][0].pop("refId"),
        }
        for name, breakit in cases.items():
            with self.subTest(name), tempfile.NamedTemporaryFile(
                    "w", suffix=".json") as f:
                d = copy.deepcopy(good)
                breakit(d)
                json.dump(d, f)
                f.flush()
                r = check([f.name])
                self.assertEqual(r.returncode, 1, r.stdout)
                self.assertIn("SCHEMA MISMATCH", r.stderr)

    def test_import_envelope(self):
        for name in FILES:
            with open(os.path.join(DASH, name)) as f:
                d = json.load(f)
            (inp,) = d["__inputs"]
            self.assertEqual(inp["type"], "datasource")
            var = [v for v in d["templating"]["list"] if v["type"] == "datasource"][0]
            # the import UI replaces ${DS_...} with the data source chosen
            self.assertEqual(var["current"]["value"], "${%s}" % inp["name"])
            self.assertEqual(var["query"], inp["pluginId"])
            self.assertIn({"type": "grafana", "id": "grafana", "name": "Grafana",
                           "version": "11.0.0"}, d["__requires"])


if __name__ == "__main__":
    harness.main()
