"""test_ofrep_sdk.py -- arbiter through the real OpenFeature JavaScript
SDKs and OFREP providers from npm (issue 12, "Must show").

tests/e2e/ofrep_node/ pins @openfeature/server-sdk, @openfeature/ofrep-
provider, @openfeature/web-sdk and @openfeature/ofrep-web-provider in
package.json / package-lock.json; setUpClass runs `npm ci --prefer-offline`
there (node_modules is git-ignored), and evaluate.js drives the SDKs.
  - server SDK: for 1,000 units the variant equals /v1/assign's arm, with
    the value, reason and metadata specified; FLAG_NOT_FOUND and
    TARGETING_KEY_MISSING surface as the SDK's error codes with the
    default value; 1,000 exposures counted;
  - web SDK (it runs under node 18+: fetch is global): bulk evaluation,
    then polling with If-None-Match answered 304; no exposures.
"""
import json
import os
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import harness  # noqa: E402

ADMIN, CLIENT = harness.ADMIN, harness.CLIENT
NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "ofrep_node")
N_UNITS = 1000


def node(*args, timeout=300):
    out = subprocess.run(["node", os.path.join(NODE_DIR, "evaluate.js")]
                         + list(args), capture_output=True, text=True,
                         timeout=timeout)
    if out.returncode != 0:
        raise AssertionError("evaluate.js failed:\n" + out.stderr)
    return json.loads(out.stdout)


def exposed_units(server, key):
    r = harness.request(server.base, "GET",
                        "/v1/experiments/%s/exposures" % key, token=ADMIN)
    assert r.status == 200, r
    return sum(a["units"] for a in r.json()["arms"])


class OfrepSdk(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if shutil.which("node") is None or shutil.which("npm") is None:
            raise unittest.SkipTest("node and npm are required "
                                    "(scripts/deps.sh installs them)")
        subprocess.run(["npm", "ci", "--prefer-offline", "--no-audit",
                        "--no-fund"], cwd=NODE_DIR, check=True,
                       capture_output=True, timeout=600)
        cls.db = harness.fresh_database("e2e_ofrep_sdk")
        cls.server = harness.Server(cls.db).start()
        for key, arms in (
                ("sdk-models", [
                    {"name": "control", "weight": 40, "control": True,
                     "model": "ranker@1", "value": "ranker-v1"},
                    {"name": "fast", "weight": 30, "model": "ranker@2",
                     "value": "ranker-v2-fast"},
                    {"name": "deep", "weight": 30, "model": "ranker@3"}]),
                ("sdk-web", [
                    {"name": "off", "weight": 50, "control": True,
                     "value": "off"},
                    {"name": "on", "weight": 50, "value": "on"}])):
            doc = {"key": key, "strategy": "ab", "arms": arms,
                   "targeting": [{"attribute": "country", "op": "in",
                                  "values": ["fr", "de"]}]
                   if key == "sdk-models" else [],
                   "metrics": [{"name": "click", "kind": "binary"}]}
            r = cls.server.req("POST", "/v1/experiments", doc)
            assert r.status == 201, r
            r = cls.server.req("POST", "/v1/experiments/%s/start" % key)
            assert r.status == 200, r

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_server_sdk_agrees_with_assign_for_1000_units(self):
        out = node("server", self.server.base, CLIENT, "sdk-models",
                   str(N_UNITS))
        units = out["units"]
        self.assertEqual(len(units), N_UNITS)
        values = {"control": "ranker-v1", "fast": "ranker-v2-fast",
                  "deep": "ranker@3"}  # no value: the model
        arms = {}
        for u in units:
            r = harness.request(self.server.base, "GET",
                                "/v1/assign?experiment=sdk-models&unit=%s"
                                "&country=fr" % u["unit"], token=CLIENT)
            a = r.json()
            self.assertEqual(u["variant"], a["arm"], u)
            self.assertEqual(u["value"], values[a["arm"]], u)
            self.assertEqual(u["reason"], "SPLIT")
            self.assertIsNone(u["errorCode"])
            self.assertEqual(u["flagMetadata"], {
                "experiment": "sdk-models", "in_experiment": True,
                "arbiter_reason": "hashed", "bucket": a["bucket"],
                "hash_version": 1, "bucket_version": a["bucket_version"],
                "weights_version": a["weights_version"],
                "propensity": a["propensity"], "model": a["model"]})
            arms[a["arm"]] = arms.get(a["arm"], 0) + 1
        self.assertEqual(set(arms), {"control", "fast", "deep"})
        # the SDK's error codes, with the code default
        self.assertEqual(out["notFound"]["errorCode"], "FLAG_NOT_FOUND")
        self.assertEqual(out["notFound"]["value"], "code-default")
        self.assertEqual(out["noKey"]["errorCode"], "TARGETING_KEY_MISSING")
        self.assertEqual(out["noKey"]["value"], "code-default")
        # a boolean asked of a string flag: the provider's type check fails
        # (ofrep-provider 0.1.3 throws server-sdk's TypeMismatchError, which
        # this SDK version reports as GENERAL) and the default stands
        self.assertIn(out["boolWrongType"]["errorCode"],
                      ("TYPE_MISMATCH", "GENERAL"))
        self.assertEqual(out["boolWrongType"]["value"], True)
        # every single evaluation of a unit in the experiment is an
        # exposure: the 1,000 units (the type-mismatch call's unit has no
        # country, so targeting leaves it out; the errors expose nothing)
        deadline = time.time() + 15
        while time.time() < deadline and \
                exposed_units(self.server, "sdk-models") < N_UNITS:
            time.sleep(0.2)
        time.sleep(0.5)
        self.assertEqual(exposed_units(self.server, "sdk-models"), N_UNITS)

    def test_web_sdk_bulk_etag_round_trip_without_exposures(self):
        out = node("web", self.server.base, CLIENT, "sdk-web", "web-user-7")
        a = harness.request(self.server.base, "GET",
                            "/v1/assign?experiment=sdk-web&unit=web-user-7",
                            token=CLIENT)
        arm = a.json()["arm"]
        self.assertEqual(out["first"]["variant"], arm)
        self.assertEqual(out["first"]["value"], arm)
        self.assertEqual(out["first"]["reason"], "SPLIT")
        self.assertEqual(out["after"]["variant"], arm)
        bulk = [q for q in out["requests"]
                if q["url"].endswith("/ofrep/v1/evaluate/flags")]
        self.assertGreaterEqual(len(bulk), 3, out["requests"])
        self.assertEqual(bulk[0]["status"], 200)
        self.assertIsNone(bulk[0]["ifNoneMatch"])
        etag = bulk[0]["etag"]
        self.assertRegex(etag, r'^"[0-9a-f]{16}"$')
        for q in bulk[1:]:  # polling: If-None-Match, 304
            self.assertEqual((q["ifNoneMatch"], q["status"]), (etag, 304), q)
        # bulk evaluations are not exposures (the /v1/assign call above
        # is the only one)
        time.sleep(1.0)
        self.assertEqual(exposed_units(self.server, "sdk-web"), 1)


if __name__ == "__main__":
    harness.main()
