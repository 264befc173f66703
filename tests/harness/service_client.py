"""service_client.py -- the create/drive helpers of the rollout suites.

One keep-alive client, the synthetic-traffic driver and the few reads the
rollout, decision, watch, quantile-rollout, shadow and exact-results suites
share (before, test_watch and test_quantile_rollout copied or imported them
from test_rollouts.py and test_decisions.py):

  FAST                  a decision tick of 200 ms and a tick of 100 ms
  Client(port)          keep-alive HTTP with the harness's response checks
  ServiceCase           a unittest base: one fresh database (DB) and one
                        server (env ENV) for the class, self.c its client,
                        self.create(doc) = POST + start, both asserted
  drive(...)            assign units through /v1/assign, post their outcomes
  post_events(c, evs)   POST /v1/events in chunks, nothing rejected
  state, decisions      GET the experiment / its decision log
  run_until(...)        step until done(experiment) or the rounds run out
"""
import http.client
import json
import time
import unittest

import harness

ADMIN, CLIENT = harness.ADMIN, harness.CLIENT
FAST = {"ARBITER_DECISION_TICK_MS": "200", "ARBITER_TICK_MS": "100"}


class Client:
    """A keep-alive HTTP client (urllib opens a connection per request)."""

    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method, path, body=None, token=CLIENT):
        data = json.dumps(body) if body is not None else None
        hdrs = {"Authorization": "Bearer " + token}
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                r = self.conn.getresponse()
                text = r.read().decode()
                harness.check_response(method, path, r.status,
                                       dict(r.getheaders()), text)
                return r.status, (json.loads(text) if text else None)
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                       timeout=30)
                if attempt == 1:
                    raise

    def close(self):
        self.conn.close()


class ServiceCase(unittest.TestCase):
    """One fresh database named DB and one server with environment ENV for
    the whole class; self.c is a Client to it."""
    DB = None
    ENV = FAST

    @classmethod
    def setUpClass(cls):
        cls.db = harness.fresh_database(cls.DB)
        cls.server = harness.Server(cls.db, env=cls.ENV).start()
        cls.c = Client(cls.server.port)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        cls.server.stop()

    def create(self, doc):
        """POST the definition (201) and start it (200); the start's answer."""
        st, ans = self.c.call("POST", "/v1/experiments", doc, token=ADMIN)
        self.assertEqual(st, 201, ans)
        st, ans = self.c.call("POST", "/v1/experiments/%s/start" % doc["key"],
                              token=ADMIN)
        self.assertEqual(st, 200, ans)
        return ans


def post_events(client, events, chunk=2000):
    """POST events in chunks of `chunk`; each 202 with nothing rejected."""
    for k in range(0, len(events), chunk):
        st, ans = client.call("POST", "/v1/events", events[k:k + chunk])
        assert st == 202, ans
        assert not ans["rejected"], ans["rejected"][:3]


def assign_units(client, key, units):
    """POST /v1/assign of experiment key for each unit; {unit: arm}."""
    out = {}
    for u in units:
        st, a = client.call("POST", "/v1/assign",
                            {"unit": u, "experiments": [key]})
        assert st == 200, a
        out[u] = a["assignments"][0]["arm"]
    return out


def drive(client, key, n_units, outcome, prefix, rng, chunk=2000):
    """Assign n_units new units of experiment key and post their outcomes.
    outcome(assignment, rng) -> list of (metric, value, explicit_arm or
    None), in the order the events are posted."""
    events = []
    for i in range(n_units):
        unit = "%s-%d" % (prefix, i)
        st, ans = client.call("POST", "/v1/assign",
                              {"unit": unit, "experiments": [key]})
        assert st == 200, ans
        a = ans["assignments"][0]
        for metric, value, arm in outcome(a, rng):
            ev = {"experiment": key, "unit": unit, "metric": metric,
                  "value": value}
            if arm is not None:
                ev["arm"] = arm
            events.append(ev)
    post_events(client, events, chunk)


def state(client, key):
    st, doc = client.call("GET", "/v1/experiments/" + key, token=ADMIN)
    assert st == 200, doc
    return doc


def decisions(client, key):
    st, doc = client.call("GET", "/v1/experiments/%s/decisions" % key,
                          token=ADMIN)
    assert st == 200, doc
    return doc["decisions"]


def run_until(client, key, step, done, rounds=60, pause=0.25):
    """Call step(round) until done(experiment doc) or rounds run out."""
    doc = state(client, key)
    for r in range(rounds):
        if done(doc):
            return doc
        step(r)
        time.sleep(pause)
        doc = state(client, key)
    return doc
