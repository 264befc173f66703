"""test_api.py -- every endpoint of the service foundation over HTTP.

Against the real binary and a real PostgreSQL: health, readiness and
Prometheus metrics (checked with `promtool check metrics`), experiments
CRUD and life cycle with its audit trail, and assignment (GET and POST,
attributes, targeting, forced units, coverage, layers, the states that
give control).

Arms are checked against an independent implementation of hash v1 written
here from its published description (docs/hashing.md, core/assign.h) on
top of python3-xxhash, not against the server's own answers.
"""
import json
import os
import struct
import subprocess
import sys
import threading
import unittest
import urllib.parse

import xxhash

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402

ADMIN, CLIENT = harness.ADMIN, harness.CLIENT
ANSWER_FIELDS = {"experiment", "arm", "model", "in_experiment", "reason",
                 "bucket", "hash_version", "bucket_version",
                 "weights_version", "propensity"}
SCALE = 1000000


# ---- the published hash v1, independently --------------------------------

def seed(purpose, salt, version):
    s = salt.encode()
    return xxhash.xxh3_64_intdigest(b"arbiter.v1" + purpose.encode() +
                                    struct.pack("<I", len(s)) + s +
                                    struct.pack("<I", version))


def position(purpose, salt, version, unit):
    h = xxhash.xxh3_64_intdigest(unit.encode(),
                                 seed=seed(purpose, salt, version))
    return ((h >> 32) * SCALE) >> 32


def oracle_arm(arms, bucket):
    """arms: [(name, percent, control)]; control is laid out last."""
    end = 0
    for name, pct, control in arms:
        if control:
            continue
        end += round(pct * 10000)
        if bucket < end:
            return name
    return [a[0] for a in arms if a[2]][0]


def definition(key, arms=None, **extra):
    d = {"key": key,
         "arms": arms or [{"name": "control", "weight": 50, "control": True,
                           "model": "ranker@1.0.0"},
                          {"name": "treat", "weight": 50,
                           "model": "ranker@2.0.0"}]}
    d.update(extra)
    return d


def arm_tuples(d):
    return [(a["name"], a["weight"], a.get("control", False))
            for a in d["arms"]]


class Api(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = harness.fresh_database("e2e_api")
        cls.srv = harness.Server(cls.url)
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def req(self, method, path, body=None, token=ADMIN, **kw):
        return self.srv.req(method, path, body, token=token, **kw)

    def create(self, d, start=True):
        r = self.req("POST", "/v1/experiments", d)
        self.assertEqual(r.status, 201, r)
        if start:
            r = self.req("POST", "/v1/experiments/%s/start" % d["key"])
            self.assertEqual(r.status, 200, r)
        return r.json()

    def assign(self, key, unit, **attrs):
        q = {"experiment": key, "unit": unit}
        q.update(attrs)
        r = self.req("GET", "/v1/assign?" + urllib.parse.urlencode(q),
                     token=CLIENT)
        self.assertEqual(r.status, 200, r)
        a = r.json()
        self.assertEqual(set(a), ANSWER_FIELDS, a)
        return a

    def assign_post(self, unit, attributes=None, experiments=None):
        body = {"unit": unit}
        if attributes is not None:
            body["attributes"] = attributes
        if experiments is not None:
            body["experiments"] = experiments
        r = self.req("POST", "/v1/assign", body, token=CLIENT)
        self.assertEqual(r.status, 200, r)
        doc = r.json()
        self.assertEqual(set(doc), {"unit", "assignments"})
        self.assertEqual(doc["unit"], unit)
        for a in doc["assignments"]:
            self.assertEqual(set(a), ANSWER_FIELDS, a)
        return doc["assignments"]

    # ---- health, readiness, metrics ---------------------------------------

    def test_healthz(self):
        r = self.req("GET", "/healthz", token=None)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"status": "ok"})
        self.assertTrue(r.headers["Content-Type"].startswith(
            "application/json"))

    def test_readyz(self):
        r = self.req("GET", "/readyz", token=None)
        self.assertEqual(r.status, 200, r)
        doc = r.json()
        self.assertEqual(set(doc), {"status", "snapshot_loaded", "database",
                                    "snapshot_version"})
        self.assertEqual(doc["status"], "ready")
        self.assertIs(doc["snapshot_loaded"], True)
        self.assertIs(doc["database"], True)
        self.assertGreaterEqual(doc["snapshot_version"], 1)

    def test_metrics_pass_promtool_and_count(self):
        d = self.create(definition("met", arms=[
            {"name": "control", "weight": 100, "control": True},
            {"name": "off", "weight": 0}]))
        self.assertEqual(d["state"], "running")
        for i in range(7):
            self.assertEqual(self.assign("met", "m%d" % i)["arm"], "control")
        self.req("GET", "/no/such/route", token=None)
        r = self.req("GET", "/metrics", token=None)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["Content-Type"],
                         "text/plain; version=0.0.4; charset=utf-8")
        p = subprocess.run(["promtool", "check", "metrics"], input=r.body,
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        lines = r.body.splitlines()
        samples = {}
        for ln in lines:
            if ln and not ln.startswith("#"):
                name, value = ln.rsplit(" ", 1)
                samples[name] = float(value)
        self.assertEqual(samples['arbiter_assignments_total{experiment="met"'
                                 ',arm="control"}'], 7)
        self.assertEqual(samples['arbiter_assignments_total{experiment="met"'
                                 ',arm="off"}'], 0)
        self.assertGreaterEqual(samples[
            'arbiter_http_requests_total{route="/v1/assign",method="GET",'
            'status="200"}'], 7)
        self.assertGreaterEqual(samples[
            'arbiter_http_requests_total{route="unmatched",method="any",'
            'status="404"}'], 1)
        self.assertEqual(samples["arbiter_db_up"], 1)
        self.assertGreaterEqual(samples["arbiter_snapshot_experiments"], 1)
        for name in ("arbiter_snapshot_version",
                     "arbiter_snapshot_reloads_total",
                     "arbiter_exposure_queue_depth",
                     "arbiter_exposures_written_total",
                     "arbiter_exposures_dropped_total",
                     "arbiter_sticky_lookups_total"):
            self.assertIn(name, samples)
        self.assertIn("# TYPE arbiter_http_request_duration_seconds "
                      "histogram", lines)
        inf = samples['arbiter_http_request_duration_seconds_bucket{route='
                      '"/v1/assign",method="GET",status="200",le="+Inf"}']
        cnt = samples['arbiter_http_request_duration_seconds_count{route='
                      '"/v1/assign",method="GET",status="200"}']
        self.assertEqual(inf, cnt)

    # ---- experiments: CRUD -------------------------------------------------

    def test_create_get_list_returns_canonical_definition(self):
        d = definition("crud-1", description="first",
                       targeting=[{"attribute": "country", "op": "in",
                                   "values": ["NZ", "AU"]}],
                       forced={"qa-1": "treat"}, coverage=0.5,
                       metrics=[{"name": "click", "kind": "binary",
                                 "role": "primary"}])
        r = self.req("POST", "/v1/experiments", d)
        self.assertEqual(r.status, 201, r)
        got = r.json()
        want = {
            "key": "crud-1", "description": "first", "strategy": "ab",
            "unit_type": "user",
            "arms": [{"name": "control", "weight": 50, "model":
                      "ranker@1.0.0", "control": True},
                     {"name": "treat", "weight": 50, "model":
                      "ranker@2.0.0", "control": False}],
            "coverage": 0.5,
            "targeting": [{"attribute": "country", "op": "in",
                           "values": ["NZ", "AU"]}],
            "forced": {"qa-1": "treat"}, "layer": None, "salt": "crud-1",
            "bucket_version": 1, "min_bucket_version": 1, "sticky": False,
            "metrics": [{"name": "click", "kind": "binary",
                         "direction": "increase", "role": "primary",
                         "covariate": None}],
            # the rollout settings in force, defaults written out (issue 10)
            "rollout": {
                "alpha": 0.05, "tuning": 5000, "margin": 0,
                "auto_promote": True, "max_duration_s": 0, "max_units": 0,
                "steps": [1, 5, 10, 25, 50, 100], "step_min_s": 60,
                "step_min_units": 100, "step_max_s": 0,
                "require_evidence": False, "manual_approval": False,
                "adaptive": False, "error_metric": None, "smoke_s": 60,
                "rollback_window_s": 600, "shadow_min_s": 60,
                "shadow_min_units": 100, "then": "canary",
                "no_traffic_s": 0, "min_test_units": 100,
                "rollback_alpha": 0.02, "plan_power": 0.99,
                "plan_error_ratio": 2, "plan_regression": 0.1,
                "paired": {"max_disagreement": 0.02,
                           "max_latency_increase": 0.05,
                           "max_error_increase": 0, "max_accuracy_drop": 0,
                           "min_pairs": 100, "score_tolerance": 0}},
            "state": "draft", "version": 1, "weights_version": 1}
        for k, v in want.items():
            self.assertEqual(got[k], v, k)
        self.assertEqual(set(got), set(want) | {"created_at", "updated_at"})
        self.assertRegex(got["created_at"],
                         r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        one = self.req("GET", "/v1/experiments/crud-1")
        self.assertEqual(one.status, 200)
        self.assertEqual(one.json(), got)
        lst = self.req("GET", "/v1/experiments")
        self.assertEqual(lst.status, 200)
        keys = [e["key"] for e in lst.json()["experiments"]]
        self.assertIn("crud-1", keys)
        self.assertEqual(keys, sorted(keys))
        self.assertEqual([e for e in lst.json()["experiments"]
                          if e["key"] == "crud-1"], [got])
        # stored as the canonical definition, in the table and the view
        stored = json.loads(harness.psql(
            self.url, "SELECT definition FROM arbiter.experiments_v "
            "WHERE key = 'crud-1'"))
        self.assertEqual(stored["coverage"], 0.5)
        self.assertEqual(stored["forced"], {"qa-1": "treat"})

    def test_list_filters_by_state(self):
        self.create(definition("flt-draft"), start=False)
        self.create(definition("flt-run"))
        run = self.req("GET", "/v1/experiments?state=running").json()
        keys = [e["key"] for e in run["experiments"]]
        self.assertIn("flt-run", keys)
        self.assertNotIn("flt-draft", keys)
        self.assertTrue(all(e["state"] == "running"
                            for e in run["experiments"]))
        drafts = self.req("GET", "/v1/experiments?state=draft").json()
        self.assertIn("flt-draft", [e["key"] for e in drafts["experiments"]])
        self.assertTrue(all(e["state"] == "draft"
                            for e in drafts["experiments"]))
        r = self.req("GET", "/v1/experiments?state=nonsense")
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json(), {"error": {
            "code": "invalid",
            "message": "state: must be one of draft running paused "
                       "stopped"}})

    def test_concurrent_patches_are_serialized(self):
        """Optimistic concurrency: each PATCH either applies (200) on the
        version it read or answers 409; nothing is lost or doubled."""
        self.create(definition("conc"), start=False)
        results = []

        def patch(i):
            r = self.req("PATCH", "/v1/experiments/conc",
                         {"arms": [{"name": "control", "weight": 10 + i,
                                    "control": True},
                                   {"name": "treat", "weight": 90 - i}]})
            results.append(r)

        threads = [threading.Thread(target=patch, args=(i,))
                   for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ok = [r for r in results if r.status == 200]
        for r in results:
            self.assertIn(r.status, (200, 409), r)
            if r.status == 409:
                self.assertEqual(r.json()["error"]["code"], "conflict")
        self.assertGreaterEqual(len(ok), 1)
        final = self.req("GET", "/v1/experiments/conc").json()
        self.assertEqual(final["version"], 1 + len(ok))
        self.assertEqual(final["weights_version"], 1 + len(ok))
        self.assertEqual(sorted(r.json()["version"] for r in ok),
                         list(range(2, 2 + len(ok))))
        self.assertEqual(harness.psql(
            self.url, "SELECT count(*) FROM arbiter.decisions WHERE "
            "experiment = 'conc' AND action = 'patch'"), str(len(ok)))
        self.assertEqual(harness.psql(
            self.url, "SELECT count(*) || '/' || max(h.weights_version) "
            "FROM arbiter.weights_history h JOIN arbiter.experiments e ON "
            "e.id = h.experiment_id WHERE e.key = 'conc'"),
            "%d/%d" % (1 + len(ok), 1 + len(ok)))

    def test_concurrent_creates_of_one_key(self):
        results = []

        def create():
            results.append(self.req("POST", "/v1/experiments",
                                    definition("race-key")))

        threads = [threading.Thread(target=create) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(sorted(r.status for r in results),
                         [201] + [409] * 5)
        self.assertEqual(harness.psql(
            self.url, "SELECT count(*) FROM arbiter.decisions WHERE "
            "experiment = 'race-key'"), "1")

    def test_patch_merges_and_versions(self):
        self.create(definition("pat", description="before"), start=False)
        r = self.req("PATCH", "/v1/experiments/pat",
                     {"description": "after", "coverage": 0.25})
        self.assertEqual(r.status, 200, r)
        doc = r.json()
        self.assertEqual(doc["description"], "after")
        self.assertEqual(doc["coverage"], 0.25)
        self.assertEqual(doc["version"], 2)
        self.assertEqual(doc["weights_version"], 1)  # weights unchanged
        self.assertEqual(doc["arms"][1]["model"], "ranker@2.0.0")
        # RFC 7386: null removes a member, which then takes its default
        r = self.req("PATCH", "/v1/experiments/pat", {"coverage": None})
        self.assertEqual(r.json()["coverage"], 1)
        self.assertEqual(r.json()["version"], 3)
        # a change of weights raises weights_version and is recorded
        arms = [{"name": "control", "weight": 80, "control": True},
                {"name": "treat", "weight": 20}]
        r = self.req("PATCH", "/v1/experiments/pat", {"arms": arms})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["weights_version"], 2)
        self.assertEqual(r.json()["version"], 4)
        self.assertEqual(r.json()["arms"][1]["model"], "")
        hist = harness.psql(
            self.url, "SELECT json_agg(json_build_array(h.weights_version, "
            "h.weights, h.source) ORDER BY h.weights_version) "
            "FROM arbiter.weights_history h JOIN arbiter.experiments e "
            "ON e.id = h.experiment_id WHERE e.key = 'pat'")
        self.assertEqual(json.loads(hist),
                         [[1, {"treat": 50, "control": 50}, "create"],
                          [2, {"treat": 20, "control": 80}, "patch"]])
        # the same weights again: no new weights version
        r = self.req("PATCH", "/v1/experiments/pat", {"arms": arms})
        self.assertEqual(r.json()["weights_version"], 2)
        self.assertEqual(r.json()["version"], 5)
        self.assertEqual(self.req("GET", "/v1/experiments/pat").json(),
                         r.json())

    # ---- life cycle and decisions -----------------------------------------

    def test_life_cycle_matrix(self):
        legal = {("draft", "start"): "running", ("draft", "stop"): "stopped",
                 ("running", "pause"): "paused",
                 ("running", "stop"): "stopped",
                 ("paused", "resume"): "running",
                 ("paused", "stop"): "stopped"}
        paths = {"draft": [], "running": ["start"],
                 "paused": ["start", "pause"], "stopped": ["stop"]}
        n = 0
        for state, steps in paths.items():
            for action in ("start", "pause", "resume", "stop"):
                n += 1
                key = "lc-%d" % n
                self.create(definition(key), start=False)
                for s in steps:
                    self.assertEqual(self.req(
                        "POST", "/v1/experiments/%s/%s" % (key, s)).status,
                        200)
                r = self.req("POST", "/v1/experiments/%s/%s" % (key, action),
                             {"reason": "matrix"})
                with self.subTest(state=state, action=action):
                    if (state, action) in legal:
                        self.assertEqual(r.status, 200, r)
                        self.assertEqual(r.json()["state"],
                                         legal[(state, action)])
                        self.assertEqual(r.json()["version"],
                                         len(steps) + 2)
                    else:
                        self.assertEqual(r.status, 409, r)
                        self.assertEqual(r.json()["error"]["code"],
                                         "illegal_transition")
                        self.assertEqual(self.req(
                            "GET", "/v1/experiments/" + key).json()["state"],
                            state)

    def test_decisions_audit_every_action_with_reason(self):
        self.create(definition("aud"), start=False)
        steps = [("start", "ramp up"), ("pause", "incident 42"),
                 ("resume", ""), ("stop", "done")]
        self.req("PATCH", "/v1/experiments/aud", {"description": "d2"})
        for action, reason in steps:
            body = {"reason": reason} if reason else None
            r = self.req("POST", "/v1/experiments/aud/" + action, body)
            self.assertEqual(r.status, 200, r)
        self.req("POST", "/v1/experiments/aud/start", {"reason": "no"})
        r = self.req("GET", "/v1/experiments/aud/decisions")
        self.assertEqual(r.status, 200, r)
        doc = r.json()
        self.assertEqual(doc["experiment"], "aud")
        got = [(d["action"], d["from_state"], d["to_state"], d["actor"],
                d["reason"]) for d in doc["decisions"]]
        self.assertEqual(got, [
            ("create", None, "draft", "admin", ""),
            ("patch", "draft", "draft", "admin", ""),
            ("start", "draft", "running", "admin", "ramp up"),
            ("pause", "running", "paused", "admin", "incident 42"),
            ("resume", "paused", "running", "admin", ""),
            ("stop", "running", "stopped", "admin", "done")])
        self.assertEqual(doc["decisions"][1]["details"],
                         {"patch": {"description": "d2"}})
        for d in doc["decisions"]:
            self.assertEqual(set(d), {"id", "at", "action", "from_state",
                                      "to_state", "actor", "reason",
                                      "details"})
        ids = [d["id"] for d in doc["decisions"]]
        self.assertEqual(ids, sorted(ids))
        # the analysts' view holds the same rows
        view = harness.psql(self.url, "SELECT string_agg(action || ':' || "
                            "reason, ',' ORDER BY id) FROM arbiter.decisions"
                            " WHERE experiment = 'aud'")
        self.assertEqual(view, "create:,patch:,start:ramp up,"
                               "pause:incident 42,resume:,stop:done")

    # ---- assignment ----------------------------------------------------------

    def test_assign_matches_published_hash(self):
        d = definition("hash-ab", arms=[
            {"name": "a", "weight": 30, "model": "m@a"},
            {"name": "control", "weight": 50, "control": True,
             "model": "m@c"},
            {"name": "b", "weight": 20, "model": "m@b"}])
        self.create(d)
        seen = {}
        units = ["user-%d" % i for i in range(200)] + \
            ["Zoë", "用户-7", "emoji-\U0001F600", "a b&c=d"]
        for u in units:
            a = self.assign("hash-ab", u)
            bucket = position("A", "hash-ab", 1, u)
            arm = oracle_arm(arm_tuples(d), bucket)
            self.assertEqual(a["bucket"], bucket, u)
            self.assertEqual(a["arm"], arm, u)
            self.assertEqual(a["model"], "m@" + arm[0])
            self.assertEqual(a["experiment"], "hash-ab")
            self.assertIs(a["in_experiment"], True)
            self.assertEqual(a["reason"], "hashed")
            self.assertEqual(a["hash_version"], 1)
            self.assertEqual(a["bucket_version"], 1)
            self.assertEqual(a["weights_version"], 1)
            self.assertEqual(a["propensity"],
                             {"a": 0.3, "b": 0.2, "control": 0.5}[arm])
            seen[arm] = seen.get(arm, 0) + 1
        self.assertEqual(set(seen), {"a", "b", "control"})
        # the same unit always gets the same answer
        self.assertEqual(self.assign("hash-ab", "user-5"),
                         self.assign("hash-ab", "user-5"))

    def test_assign_post_answers_running_experiments(self):
        self.create(definition("multi-1"))
        self.create(definition("multi-2", salt="other-salt"))
        self.create(definition("multi-draft"), start=False)
        got = self.assign_post("unit-42")
        by_key = {a["experiment"]: a for a in got}
        self.assertIn("multi-1", by_key)
        self.assertIn("multi-2", by_key)
        self.assertNotIn("multi-draft", by_key)
        self.assertTrue(all(a["in_experiment"] or a["reason"] == "forced"
                            for a in got))
        self.assertEqual(by_key["multi-2"]["bucket"],
                         position("A", "other-salt", 1, "unit-42"))
        for k in ("multi-1", "multi-2"):
            self.assertEqual(by_key[k], self.assign(k, "unit-42"))
        # an explicit list answers exactly those, in order, drafts included
        got = self.assign_post("unit-42", experiments=["multi-draft",
                                                       "multi-1"])
        self.assertEqual([a["experiment"] for a in got],
                         ["multi-draft", "multi-1"])
        self.assertEqual(got[0]["reason"], "draft")
        self.assertEqual(got[0]["arm"], "control")
        self.assertEqual(self.assign_post("unit-42", experiments=[]), [])

    def test_states_that_give_control(self):
        d = definition("st", arms=[{"name": "control", "weight": 0,
                                    "control": True, "model": "c"},
                                   {"name": "treat", "weight": 100,
                                    "model": "t"}])
        self.create(d, start=False)
        a = self.assign("st", "u1")
        self.assertEqual((a["arm"], a["in_experiment"], a["reason"],
                          a["propensity"], a["model"]),
                         ("control", False, "draft", 1, "c"))
        self.req("POST", "/v1/experiments/st/start")
        a = self.assign("st", "u1")
        self.assertEqual((a["arm"], a["in_experiment"], a["reason"],
                          a["propensity"]), ("treat", True, "hashed", 1))
        self.req("POST", "/v1/experiments/st/pause")
        a = self.assign("st", "u1")
        self.assertEqual((a["arm"], a["in_experiment"], a["reason"]),
                         ("control", False, "paused"))
        self.req("POST", "/v1/experiments/st/resume")
        self.assertEqual(self.assign("st", "u1")["arm"], "treat")
        self.req("POST", "/v1/experiments/st/stop")
        a = self.assign("st", "u1")
        self.assertEqual((a["arm"], a["in_experiment"], a["reason"]),
                         ("control", False, "stopped"))
        self.assertEqual(a["bucket"], position("A", "st", 1, "u1"))

    def test_targeting_from_query_and_json(self):
        d = definition("tgt", arms=[
            {"name": "control", "weight": 0, "control": True},
            {"name": "treat", "weight": 100}],
            targeting=[{"attribute": "country", "op": "in",
                        "values": ["NZ", "AU"]},
                       {"attribute": "plan", "op": "eq", "value": "pro"},
                       {"attribute": "age", "op": "ge", "value": 18},
                       {"attribute": "app", "op": "semver_ge",
                        "value": "2.1.0"}])
        self.create(d)
        ok = {"country": "NZ", "plan": "pro", "age": "18", "app": "2.1.0"}
        cases = [(ok, True),
                 (dict(ok, country="AU"), True),
                 (dict(ok, country="US"), False),
                 (dict(ok, plan="free"), False),
                 (dict(ok, age="17.5"), False),
                 (dict(ok, age="70"), True),
                 (dict(ok, age="old"), False),
                 (dict(ok, app="2.0.9"), False),
                 (dict(ok, app="v2.10"), True),       # 2.10.0 > 2.1.0
                 (dict(ok, app="2.1.0-beta.1"), False),  # pre-release first
                 ({k: v for k, v in ok.items() if k != "plan"}, False)]
        for attrs, inside in cases:
            with self.subTest(attrs=attrs):
                a = self.assign("tgt", "t-unit", **attrs)
                want = ("treat", True, "hashed") if inside else \
                    ("control", False, "targeting")
                self.assertEqual((a["arm"], a["in_experiment"],
                                  a["reason"]), want)
                # the same attributes as JSON, numbers as numbers
                jattrs = dict(attrs)
                if "age" in jattrs:
                    try:
                        jattrs["age"] = json.loads(jattrs["age"])
                    except ValueError:
                        pass
                b = self.assign_post("t-unit", jattrs, ["tgt"])[0]
                self.assertEqual(b, a)
        b = self.assign_post("t-unit", dict(ok, age=18.0), ["tgt"])[0]
        self.assertEqual(b["reason"], "hashed")
        b = self.assign_post("t-unit", dict(ok, plan=True), ["tgt"])[0]
        self.assertEqual(b["reason"], "targeting")

    def test_forced_units(self):
        d = definition("frc", arms=[
            {"name": "control", "weight": 100, "control": True},
            {"name": "treat", "weight": 0, "model": "qa-model"}],
            forced={"qa-7": "treat", "Zoë": "treat"},
            targeting=[{"attribute": "x", "op": "exists"}])
        self.create(d)
        for u in ("qa-7", "Zoë"):
            a = self.assign("frc", u)  # forced wins over targeting
            self.assertEqual((a["arm"], a["in_experiment"], a["reason"],
                              a["propensity"], a["model"]),
                             ("treat", False, "forced", 1, "qa-model"))
        a = self.assign("frc", "qa-8", x="1")
        self.assertEqual((a["arm"], a["reason"]), ("control", "hashed"))
        # without an explicit list, forced answers are included
        got = self.assign_post("qa-7")
        self.assertIn("frc", [g["experiment"] for g in got])

    def test_coverage(self):
        d = definition("cov", coverage=0.3)
        self.create(d)
        inside = 0
        for i in range(300):
            u = "c-%d" % i
            a = self.assign("cov", u)
            included = position("C", "cov", 1, u) < 300000
            if included:
                inside += 1
                self.assertEqual(a["reason"], "hashed")
                self.assertEqual(a["arm"], oracle_arm(
                    arm_tuples(d), position("A", "cov", 1, u)))
            else:
                self.assertEqual((a["arm"], a["in_experiment"], a["reason"],
                                  a["propensity"]),
                                 ("control", False, "coverage", 1))
        self.assertTrue(60 < inside < 120, inside)
        got = self.assign_post("c-0")
        self.assertEqual("cov" in [g["experiment"] for g in got],
                         position("C", "cov", 1, "c-0") < 300000)

    def test_layers_are_mutually_exclusive(self):
        self.create(definition("lx-a", layer={"name": "ranker",
                                              "range": [0, 40]}))
        self.create(definition("lx-b", layer={"name": "ranker",
                                              "range": [40, 100]}))
        n_a = n_b = 0
        for i in range(200):
            u = "l-%d" % i
            lp = position("L", "ranker", 0, u)
            a = self.assign("lx-a", u)
            b = self.assign("lx-b", u)
            self.assertNotEqual(a["in_experiment"], b["in_experiment"], u)
            if lp < 400000:
                n_a += 1
                self.assertEqual(a["reason"], "hashed")
                self.assertEqual((b["arm"], b["reason"]),
                                 ("control", "layer"))
            else:
                n_b += 1
                self.assertEqual(b["reason"], "hashed")
                self.assertEqual((a["arm"], a["reason"]),
                                 ("control", "layer"))
            got = [g["experiment"] for g in self.assign_post(u)
                   if g["experiment"].startswith("lx-")]
            self.assertEqual(got, ["lx-a"] if lp < 400000 else ["lx-b"])
        self.assertTrue(n_a > 40 and n_b > 80, (n_a, n_b))

    def test_unit_with_special_characters_round_trips(self):
        self.create(definition("spc"))
        for u in ('quote"back\\slash', "tab\tnew\nline", "ünï"):
            a = self.assign("spc", u)
            self.assertEqual(a["bucket"], position("A", "spc", 1, u))
            doc = self.assign_post(u, experiments=["spc"])
            self.assertEqual(doc[0], a)

    def test_zz_log_is_json_lines_without_tokens(self):
        text = self.srv.logs()
        lines = [ln for ln in text.splitlines() if ln.strip()]
        self.assertTrue(lines)
        for ln in lines:
            doc = json.loads(ln)
            self.assertEqual(set(doc) >= {"ts", "level", "msg"}, True, ln)
        self.assertIn('"msg":"listening"', text)
        self.assertNotIn(ADMIN, text)
        self.assertNotIn(CLIENT, text)


if __name__ == "__main__":
    harness.main()
