"""test_models.py -- the model registry on the real service and PostgreSQL
(issue 15, "Must show").

  - registration, reads, validation, immutability of versions;
  - a registered candidate promoted by a canary becomes production and the
    old production version is archived;
  - a second canary is rolled back by the engine: production is restored
    and the decision names the checkpoint to restore; a manual rollback's
    answer names it too;
  - the deployment history and the audit trail (decision log) agree;
  - a stage change that contradicts a running rollout is a 409;
  - checkpoints: a checksum mismatch is refused;
  - strict mode refuses an unregistered version; the default warns in the
    answer;
  - the production route answers from memory (the database stopped);
  - every registry route's token scope (401 without a token, 403 with a
    client token on admin routes).
"""
import hashlib
import http.client
import json
import os
import random
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import harness  # noqa: E402

ADMIN, CLIENT = harness.ADMIN, harness.CLIENT
FAST = {"ARBITER_DECISION_TICK_MS": "200", "ARBITER_TICK_MS": "100"}


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


class Client:
    """A keep-alive HTTP client."""

    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method, path, body=None, token=ADMIN):
        data = json.dumps(body) if body is not None else None
        hdrs = {}
        if token:
            hdrs["Authorization"] = "Bearer " + token
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                r = self.conn.getresponse()
                text = r.read().decode()
                try:
                    doc = json.loads(text) if text else None
                except ValueError:
                    doc = text
                return r.status, doc
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                       timeout=30)
                if attempt == 1:
                    raise

    def close(self):
        self.conn.close()


def drive(c, key, n_units, outcome, prefix, rng):
    events = []
    for i in range(n_units):
        unit = "%s-%d" % (prefix, i)
        st, ans = c.call("POST", "/v1/assign",
                         {"unit": unit, "experiments": [key]}, token=CLIENT)
        assert st == 200, ans
        a = ans["assignments"][0]
        for metric, value in outcome(a["arm"], rng):
            events.append({"experiment": key, "unit": unit, "metric": metric,
                           "value": value})
    for k in range(0, len(events), 2000):
        st, ans = c.call("POST", "/v1/events", events[k:k + 2000],
                         token=CLIENT)
        assert st == 202, ans


def good(arm, rng):
    out = [("latency", rng.gauss(90 if arm == "next" else 100, 10))]
    if rng.random() < 0.02:
        out.append(("errors", 1))
    return out


def bad(arm, rng):
    out = [("latency", rng.gauss(100, 10))]
    if rng.random() < (0.25 if arm == "next" else 0.02):
        out.append(("errors", 1))
    return out


def canary(key, control_model, candidate_model):
    return {"key": key, "strategy": "canary",
            "arms": [{"name": "stable", "weight": 100, "control": True,
                      "model": control_model},
                     {"name": "next", "weight": 0, "model": candidate_model}],
            "metrics": [{"name": "errors", "kind": "binary",
                         "direction": "decrease", "role": "guardrail"},
                        {"name": "latency", "kind": "mean",
                         "direction": "decrease", "role": "guardrail"}],
            "rollout": {"steps": [10, 50, 100], "step_min_s": 1,
                        "step_min_units": 40, "error_metric": "errors",
                        "min_test_units": 30,
                        # these tests are about the registry, not power: plan
                        # the last partial step for a 5x harm at power 0.8
                        # (the defaults, 2x at 0.99, need ~30,000 units)
                        "plan_error_ratio": 5, "plan_power": 0.8}}


def register(c, name, version, /, **extra):
    body = {"name": name, "version": version,
            "artifact_uri": "s3://models/%s/%s/model.onnx" % (name, version),
            "sha256": sha(name + version), "framework": "onnx",
            "training_data": "s3://data/%s/train-2026-11" % name,
            "hyperparameters": {"lr": 0.01, "layers": [64, 32]},
            "metrics": {"auc": 0.81, "logloss": 0.43}}
    body.update(extra)
    return c.call("POST", "/v1/models", body)


class Registry(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = harness.fresh_database("e2e_models")
        cls.server = harness.Server(cls.db, env=FAST).start()
        cls.c = Client(cls.server.port)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        cls.server.stop()

    def stage(self, model, version):
        st, doc = self.c.call("GET", "/v1/models/%s/versions/%s" %
                              (model, version))
        self.assertEqual(st, 200, doc)
        return doc["stage"]

    def production(self, model, want, timeout=5):
        """The production route (client token, from memory) until it
        answers version `want` (None: 404)."""
        deadline = time.time() + timeout
        while True:
            st, doc = self.c.call("GET", "/v1/models/%s/production" % model,
                                  token=CLIENT)
            got = doc["version"] if st == 200 else None
            if got == want or time.time() > deadline:
                self.assertEqual(got, want, doc)
                return doc
            time.sleep(0.05)

    def run_canary(self, key, outcome, seed, want_state, rounds=80):
        rng = random.Random(seed)
        for r in range(rounds):
            st, doc = self.c.call("GET", "/v1/experiments/" + key)
            if doc["state"] != "running":
                break
            drive(self.c, key, 150, outcome, "%s-%d" % (key, r), rng)
            time.sleep(0.25)
        st, doc = self.c.call("GET", "/v1/experiments/" + key)
        self.assertEqual(doc["state"], want_state)

    def decisions(self, key):
        st, doc = self.c.call("GET", "/v1/experiments/%s/decisions" % key)
        self.assertEqual(st, 200, doc)
        return doc["decisions"]

    # ---- registration and reads ---------------------------------------

    def test_register_read_validate(self):
        st, doc = register(self.c, "embedder", "1.0.0")
        self.assertEqual(st, 201, doc)
        self.assertEqual((doc["ref"], doc["stage"], doc["framework"]),
                         ("embedder@1.0.0", "registered", "onnx"))
        self.assertEqual(doc["hyperparameters"], {"lr": 0.01,
                                                  "layers": [64, 32]})
        self.assertEqual(doc["metrics"]["auc"], 0.81)
        self.assertEqual(doc["sha256"], sha("embedder1.0.0"))
        self.assertTrue(doc["created_at"].endswith("Z"))
        # versions are immutable
        st, doc = register(self.c, "embedder", "1.0.0",
                           artifact_uri="s3://elsewhere")
        self.assertEqual((st, doc["error"]["code"]), (409, "conflict"))
        for bad_body, field in [
                ({"sha256": "abc"}, "sha256"),
                ({"sha256": sha("x").upper()}, "sha256"),
                ({"name": "a@b"}, "name"),
                ({"version": ""}, "version"),
                ({"artifact_uri": ""}, "artifact_uri"),
                ({"hyperparameters": [1]}, "hyperparameters"),
                ({"metrics": "x"}, "metrics"),
                ({"owner": "me"}, "owner")]:
            st, doc = register(self.c, "embedder", "9.9.9", **bad_body)
            self.assertEqual(st, 400, (bad_body, doc))
            self.assertTrue(doc["error"]["message"].startswith(field), doc)
        st, doc = self.c.call("POST", "/v1/models", [1, 2])
        self.assertEqual(st, 400)
        st, doc = self.c.call("GET", "/v1/models/embedder")
        self.assertEqual(st, 200, doc)
        self.assertEqual((doc["name"], doc["production"],
                          [v["version"] for v in doc["versions"]]),
                         ("embedder", None, ["1.0.0"]))
        st, doc = self.c.call("GET", "/v1/models")
        self.assertIn("embedder", [m["name"] for m in doc["models"]])
        for path in ["/v1/models/nosuch", "/v1/models/embedder/versions/2",
                     "/v1/models/nosuch/history", "/v1/models/%ff",
                     "/v1/models/embedder/versions/%ff"]:
            st, doc = self.c.call("GET", path)
            self.assertEqual((st, doc["error"]["code"]), (404, "not_found"),
                             path)
        st, doc = self.c.call("GET", "/v1/models/embedder/production",
                              token=CLIENT)
        self.assertEqual(st, 404)
        st, doc = self.c.call("POST", "/v1/models/embedder/versions/1.0.0/"
                              "stage", {"stage": "live"})
        self.assertEqual(st, 400)
        st, doc = self.c.call("POST", "/v1/models/embedder/versions/1.0.0/"
                              "stage", {"stage": "production", "x": "y"})
        self.assertEqual(st, 400)

    def test_checkpoints_refuse_a_checksum_mismatch(self):
        register(self.c, "ctr", "1.0.0")
        path = "/v1/models/ctr/versions/1.0.0/checkpoints"
        body = {"uri": "s3://ckpt/ctr/1.0.0/step-100", "sha256": sha("s100")}
        st, doc = self.c.call("POST", path, body, token=CLIENT)
        self.assertEqual(st, 201, doc)
        self.assertEqual((doc["uri"], doc["sha256"], doc["version"]),
                         (body["uri"], body["sha256"], "1.0.0"))
        st, again = self.c.call("POST", path, body, token=CLIENT)
        self.assertEqual((st, again["created_at"]), (200, doc["created_at"]))
        st, err = self.c.call("POST", path, {"uri": body["uri"],
                                             "sha256": sha("tampered")},
                              token=CLIENT)
        self.assertEqual((st, err["error"]["code"]),
                         (409, "checksum_mismatch"), err)
        self.assertIn(body["sha256"], err["error"]["message"])
        st, err = self.c.call("POST", path, {"uri": "x", "sha256": "12"},
                              token=CLIENT)
        self.assertEqual(st, 400)
        st, err = self.c.call("POST", "/v1/models/ctr/versions/7/checkpoints",
                              body, token=CLIENT)
        self.assertEqual(st, 404)
        st, v = self.c.call("GET", "/v1/models/ctr/versions/1.0.0")
        self.assertEqual([(c["uri"], c["sha256"]) for c in v["checkpoints"]],
                         [(body["uri"], body["sha256"])])

    def test_default_mode_warns_about_unregistered_versions(self):
        register(self.c, "warnm", "1")
        st, doc = self.c.call("POST", "/v1/experiments",
                              canary("warn-exp", "warnm@1", "warnm@2"))
        self.assertEqual(st, 201, doc)
        self.assertEqual(len(doc["warnings"]), 1, doc)
        self.assertIn("arms[1].model: \"warnm@2\" is not a registered",
                      doc["warnings"][0])
        st, doc = self.c.call("PATCH", "/v1/experiments/warn-exp",
                              {"description": "x"})
        self.assertEqual(st, 200, doc)
        self.assertNotIn("warnings", doc)

    # ---- the lifecycle ------------------------------------------------

    def test_lifecycle_promote_rollback_history_and_audit_agree(self):
        for v in ["1.0.0", "2.0.0", "3.0.0", "4.0.0"]:
            st, doc = register(self.c, "ranker", v)
            self.assertEqual(st, 201, doc)
        # the current production version, set by hand (audited)
        st, doc = self.c.call("POST", "/v1/models/ranker/versions/1.0.0/stage",
                              {"stage": "production",
                               "reason": "baseline before the registry"})
        self.assertEqual((st, doc["stage"]), (200, "production"), doc)
        self.production("ranker", "1.0.0")

        # canary 1: 2.0.0 against 1.0.0, promoted by the engine
        st, doc = self.c.call("POST", "/v1/experiments",
                              canary("rk-good", "ranker@1.0.0",
                                     "ranker@2.0.0"))
        self.assertEqual(st, 201, doc)
        self.assertNotIn("warnings", doc)
        st, doc = self.c.call("POST", "/v1/experiments/rk-good/start")
        self.assertEqual(st, 200, doc)
        self.assertEqual(self.stage("ranker", "2.0.0"), "canary")
        # stage changes that contradict the running rollout
        for v, stage in [("2.0.0", "production"), ("1.0.0", "archived"),
                         ("3.0.0", "canary")]:
            st, doc = self.c.call("POST", "/v1/models/ranker/versions/%s/"
                                  "stage" % v, {"stage": stage})
            self.assertEqual((st, doc["error"]["code"]), (409, "conflict"),
                             (v, stage, doc))
            self.assertIn("rk-good", doc["error"]["message"])
        self.run_canary("rk-good", good, 21, "promoted")
        self.assertEqual(self.stage("ranker", "2.0.0"), "production")
        self.assertEqual(self.stage("ranker", "1.0.0"), "archived")
        self.production("ranker", "2.0.0")
        promote = self.decisions("rk-good")[-1]
        self.assertEqual((promote["action"], promote["actor"]),
                         ("promote", "engine"))
        self.assertEqual(sorted((m["version"], m["from"], m["to"])
                                for m in promote["details"]["models"]),
                         [("1.0.0", "production", "archived"),
                          ("2.0.0", "canary", "production")])

        # the serving side registers 2.0.0's state checkpoint at switch time
        ck = {"uri": "s3://ckpt/ranker/2.0.0/online-0001",
              "sha256": sha("state-1")}
        st, doc = self.c.call("POST", "/v1/models/ranker/versions/2.0.0/"
                              "checkpoints", ck, token=CLIENT)
        self.assertEqual(st, 201, doc)
        ck2 = {"uri": "s3://ckpt/ranker/2.0.0/online-0002",
               "sha256": sha("state-2")}
        time.sleep(0.01)
        st, doc = self.c.call("POST", "/v1/models/ranker/versions/2.0.0/"
                              "checkpoints", ck2, token=CLIENT)
        self.assertEqual(st, 201, doc)
        prod = self.production("ranker", "2.0.0")
        deadline = time.time() + 5
        while (prod.get("checkpoint") or {}).get("uri") != ck2["uri"] and \
                time.time() < deadline:
            time.sleep(0.05)
            prod = self.production("ranker", "2.0.0")
        self.assertEqual(prod["checkpoint"]["uri"], ck2["uri"])

        # canary 2: 3.0.0 is worse and rolled back by the engine
        st, doc = self.c.call("POST", "/v1/experiments",
                              canary("rk-bad", "ranker@2.0.0",
                                     "ranker@3.0.0"))
        self.assertEqual(st, 201, doc)
        st, doc = self.c.call("POST", "/v1/experiments/rk-bad/start")
        self.assertEqual(self.stage("ranker", "3.0.0"), "canary")
        self.run_canary("rk-bad", bad, 22, "rolled_back")
        self.assertEqual(self.stage("ranker", "3.0.0"), "rolled_back")
        self.assertEqual(self.stage("ranker", "2.0.0"), "production")
        self.production("ranker", "2.0.0")
        rb = self.decisions("rk-bad")[-1]
        self.assertEqual((rb["action"], rb["actor"]), ("rollback", "engine"))
        restore = rb["details"]["model_restore"]
        self.assertEqual(len(restore), 1)
        self.assertEqual((restore[0]["model"], restore[0]["version"],
                          restore[0]["checkpoint"]["uri"],
                          restore[0]["checkpoint"]["sha256"]),
                         ("ranker", "2.0.0", ck2["uri"], ck2["sha256"]))
        self.assertEqual(restore[0]["artifact_uri"],
                         "s3://models/ranker/2.0.0/model.onnx")

        # canary 3: rolled back by hand; the answer names the checkpoint
        st, doc = self.c.call("POST", "/v1/experiments",
                              canary("rk-manual", "ranker@2.0.0",
                                     "ranker@4.0.0"))
        st, doc = self.c.call("POST", "/v1/experiments/rk-manual/start")
        self.assertEqual(st, 200, doc)
        self.assertEqual(self.stage("ranker", "4.0.0"), "canary")
        st, doc = self.c.call("POST", "/v1/experiments/rk-manual/rollback",
                              {"reason": "pager: p99 latency"})
        self.assertEqual((st, doc["state"]), (200, "rolled_back"), doc)
        self.assertEqual(doc["model_restore"][0]["checkpoint"],
                         {"uri": ck2["uri"], "sha256": ck2["sha256"],
                          "created_at": doc["model_restore"][0]
                          ["checkpoint"]["created_at"]})
        self.assertEqual([(m["version"], m["to"]) for m in doc["models"]],
                         [("4.0.0", "rolled_back")])
        self.assertEqual(self.stage("ranker", "4.0.0"), "rolled_back")
        self.production("ranker", "2.0.0")
        # a stage change no rollout contradicts is fine (by hand, audited)
        st, doc = self.c.call("POST", "/v1/models/ranker/versions/3.0.0/"
                              "stage", {"stage": "archived",
                                        "reason": "superseded"})
        self.assertEqual((st, doc["stage"]), (200, "archived"), doc)

        # the deployment history and the audit trail agree
        st, hist = self.c.call("GET", "/v1/models/ranker/history")
        self.assertEqual(st, 200, hist)
        hist = hist["history"]
        trail = {}
        for key in ["rk-good", "rk-bad", "rk-manual"]:
            for d in self.decisions(key):
                trail[d["id"]] = (key, d)
        from_decisions = set()
        for d_id, (key, d) in trail.items():
            for m in d["details"].get("models", []):
                from_decisions.add((d_id, key, d["action"], m["version"],
                                    m["from"], m["to"]))
        from_history = set((h["decision_id"], h["experiment"], h["action"],
                            h["version"], h["from_stage"], h["to_stage"])
                           for h in hist if h["decision_id"] is not None)
        self.assertEqual(from_history, from_decisions)
        self.assertEqual(sorted((h[1], h[2], h[3], h[5])
                                for h in from_history),
                         [("rk-bad", "rollback", "3.0.0", "rolled_back"),
                          ("rk-bad", "start", "3.0.0", "canary"),
                          ("rk-good", "promote", "1.0.0", "archived"),
                          ("rk-good", "promote", "2.0.0", "production"),
                          ("rk-good", "start", "2.0.0", "canary"),
                          ("rk-manual", "rollback", "4.0.0", "rolled_back"),
                          ("rk-manual", "start", "4.0.0", "canary")])
        # by-hand moves are in the history with their reason, no decision
        manual = [(h["version"], h["to_stage"], h["actor"], h["reason"])
                  for h in hist if h["action"] == "stage"]
        self.assertEqual(manual, [("1.0.0", "production", "admin",
                                   "baseline before the registry"),
                                  ("3.0.0", "archived", "admin",
                                   "superseded")])
        self.assertEqual([h["version"] for h in hist
                          if h["action"] == "register"],
                         ["1.0.0", "2.0.0", "3.0.0", "4.0.0"])
        # the same rows through the SQL view analysts read
        n = harness.psql(self.db, "SELECT count(*) FROM "
                         "arbiter.model_deployments WHERE model = 'ranker'")
        self.assertEqual(int(n), len(hist))

    def test_production_is_answered_from_memory(self):
        register(self.c, "mem", "1")
        st, doc = self.c.call("POST", "/v1/models/mem/versions/1/stage",
                              {"stage": "production"})
        self.assertEqual(st, 200, doc)
        self.production("mem", "1")
        # the registry's tables locked: a database read would wait
        import subprocess
        lock = subprocess.Popen(
            ["psql", self.db, "-qAtX", "-c",
             "BEGIN; LOCK TABLE arbiter.model_versions IN ACCESS EXCLUSIVE "
             "MODE; SELECT pg_sleep(3); COMMIT;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            t0 = time.time()
            for _ in range(50):
                st, doc = self.c.call("GET", "/v1/models/mem/production",
                                      token=CLIENT)
                self.assertEqual((st, doc["version"]), (200, "1"))
            self.assertLess(time.time() - t0, 2.0)
        finally:
            lock.wait()

    # ---- scopes ----------------------------------------------------------

    def test_auth_matrix_of_registry_routes(self):
        register(self.c, "authm", "1")
        routes = [("POST", "/v1/models", "admin"),
                  ("GET", "/v1/models", "admin"),
                  ("GET", "/v1/models/authm", "admin"),
                  ("GET", "/v1/models/authm/history", "admin"),
                  ("GET", "/v1/models/authm/production", "client"),
                  ("GET", "/v1/models/authm/versions/1", "admin"),
                  ("POST", "/v1/models/authm/versions/1/stage", "admin"),
                  ("POST", "/v1/models/authm/versions/1/checkpoints",
                   "client"),
                  ("GET", "/v1/experiments/warn-exp/report", "admin")]
        for method, path, scope in routes:
            body = {} if method == "POST" else None
            st, doc = self.c.call(method, path, body, token=None)
            self.assertEqual(st, 401, (method, path))
            st, doc = self.c.call(method, path, body, token="wrong-token")
            self.assertEqual(st, 401, (method, path))
            st, doc = self.c.call(method, path, body, token=CLIENT)
            if scope == "admin":
                self.assertEqual(st, 403, (method, path, doc))
            else:
                self.assertNotIn(st, (401, 403), (method, path, doc))


class StrictRegistry(unittest.TestCase):
    def test_strict_mode_refuses_an_unregistered_version(self):
        db = harness.fresh_database("e2e_models_strict")
        with harness.Server(db, env={"ARBITER_MODEL_REGISTRY_STRICT":
                                     "1"}) as s:
            c = Client(s.port)
            register(c, "strictm", "1")
            st, doc = c.call("POST", "/v1/experiments",
                             canary("strict-a", "strictm@1", "strictm@2"))
            self.assertEqual((st, doc["error"]["code"]),
                             (400, "unregistered_model"), doc)
            self.assertIn("\"strictm@2\"", doc["error"]["message"])
            st, doc = c.call("GET", "/v1/experiments/strict-a")
            self.assertEqual(st, 404)
            register(c, "strictm", "2")
            st, doc = c.call("POST", "/v1/experiments",
                             canary("strict-a", "strictm@1", "strictm@2"))
            self.assertEqual(st, 201, doc)
            self.assertNotIn("warnings", doc)
            # a patch naming an unregistered version is refused too
            arms = doc["arms"]
            arms[1]["model"] = "strictm@3"
            st, doc = c.call("PATCH", "/v1/experiments/strict-a",
                             {"arms": arms})
            self.assertEqual((st, doc["error"]["code"]),
                             (400, "unregistered_model"), doc)
            c.close()


if __name__ == "__main__":
    harness.main()
