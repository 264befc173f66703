"""test_ingest_aggregates.py -- the incremental sufficient statistics agree
with a from-scratch recomputation and with an independent Python
computation, after randomized concurrent loads from two server processes.

Two `arbiter serve` processes (different spool dirs) share one database.
Six client threads (three per server) post a shuffled pool of events in
batches of random size, with duplicates inside and across batches and
servers, whole batches resent to the other server, events without an id,
explicit arms (both different from and equal to the hashed arm), RFC 3339
and epoch-millisecond timestamps, attributes, units that were assigned
but never send an event, and all four metric kinds with a CUPED covariate
on a sum and a mean metric. Afterwards:

  * arbiter.arm_stats (incremental) == arbiter.arm_stats_recompute(key)
    (from raw events), every column, relative 1e-9;
  * both == the statistics computed here in Python from the pool of events
    that was sent (the definitions of sql/migrations/002_events.sql,
    header, and 006_fold.sql: binary y = [s > 0] -- a 0 is no
    conversion; sum y = s, mean y = s / n, ratio y = s and d = n; binary
    and sum count every exposed unit, mean and ratio the units with
    events; x = the unit's covariate sum);
  * every answer's "accepted" adds up to the number of distinct events,
    and its "duplicates" to the number of resent ones.
"""
import datetime
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402
import ingest_load as il  # noqa: E402

KEY = "agg"
ARMS = [{"name": "control", "weight": 40, "control": True},
        {"name": "a", "weight": 30},
        {"name": "b", "weight": 30}]
METRICS = [{"name": "conv", "kind": "binary", "role": "primary"},
           {"name": "rev", "kind": "sum", "covariate": "pre_rev"},
           {"name": "time", "kind": "mean", "covariate": "pre_rev"},
           {"name": "lat", "kind": "ratio", "direction": "decrease",
            "role": "guardrail"}]
KINDS = {m["name"]: m["kind"] for m in METRICS}
COVARIATE = {m["name"]: m.get("covariate") for m in METRICS}
N_UNITS = 300
EXPLICIT = ["u%d" % i for i in range(50)]          # explicit arm, any arm
PRE_ASSIGNED = ["u%d" % i for i in range(250, 300)]  # assigned, then events
ASSIGNED_ONLY = ["w%d" % i for i in range(40)]     # assigned, no events
N_EVENTS = 12000


def make_pool(seed):
    rng = random.Random(seed)
    explicit_arm = {u: rng.choice(ARMS)["name"] for u in EXPLICIT}
    now = datetime.datetime.now(datetime.timezone.utc)
    pool = []
    for k in range(N_EVENTS):
        unit = "u%d" % rng.randrange(N_UNITS)
        metric = rng.choices(["conv", "rev", "time", "lat", "pre_rev"],
                             [2, 3, 2, 3, 1])[0]
        if metric == "conv":
            # a 0 is an observed non-conversion (issue 10): one in five
            value = 1 if rng.random() < 0.8 else 0
        elif metric == "rev":
            value = round(rng.expovariate(0.1), 2)
        elif metric == "time":
            value = rng.uniform(0.5, 30.0)
        elif metric == "lat":
            value = rng.lognormvariate(3.0, 0.5)
        else:
            value = round(rng.uniform(0, 50), 2)
        e = {"experiment": KEY, "unit": unit, "metric": metric,
             "value": value}
        if rng.random() < 0.95:
            e["id"] = "g-%d" % k
        if unit in explicit_arm:
            e["arm"] = explicit_arm[unit]
        elif rng.random() < 0.3:
            e["arm"] = il.hash_arm(ARMS, unit, KEY)
        r = rng.random()
        if r < 0.2:
            t = now - datetime.timedelta(seconds=rng.uniform(0, 86400))
            e["ts"] = t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        elif r < 0.4:
            e["ts"] = int((now.timestamp() - rng.uniform(0, 86400)) * 1000)
        if rng.random() < 0.1:
            e["attributes"] = {"country": rng.choice(["NZ", "FR", "JP"]),
                               "n": rng.randrange(10)}
        pool.append(e)
    return pool, explicit_arm


def plan_batches(pool, seed, n_threads):
    """[(thread, [events])]: the pool shuffled and cut into batches of
    random size, plus duplicates of random events from anywhere."""
    rng = random.Random(seed + 1)
    order = list(pool)
    rng.shuffle(order)
    with_id = [e for e in pool if "id" in e]
    plans = [[] for _ in range(n_threads)]
    i = 0
    t = 0
    while i < len(order):
        size = rng.randint(1, 150)
        batch = list(order[i:i + size])
        i += size
        if rng.random() < 0.3:
            for _ in range(rng.randint(1, 5)):
                batch.insert(rng.randrange(len(batch) + 1),
                             rng.choice(with_id))
        plans[t % n_threads].append(batch)
        t += 1
    return plans


def expected_stats(pool, explicit_arm, exposed_extra):
    """{(metric, arm): columns} by the definitions of 002_events.sql."""
    arm_of = {}
    per = {}  # (unit, metric) -> [n, s]
    for e in pool:
        u = e["unit"]
        arm_of[u] = explicit_arm.get(u) or il.hash_arm(ARMS, u, KEY)
        c = per.setdefault((u, e["metric"]), [0, 0.0])
        c[0] += 1
        c[1] += float(e["value"])
    for u in exposed_extra:
        arm_of.setdefault(u, il.hash_arm(ARMS, u, KEY))
    out = {}
    for m in METRICS:
        name, kind, cov = m["name"], m["kind"], m.get("covariate")
        for a in ARMS:
            arm = a["name"]
            z = dict.fromkeys(il.STAT_COLS, 0.0)
            units = [u for u, ua in arm_of.items() if ua == arm]
            for u in units:
                n, s = per.get((u, name), (0, 0.0))
                x = per.get((u, cov), (0, 0.0))[1] if cov else 0.0
                if kind in ("mean", "ratio") and n == 0:
                    continue
                if kind == "binary":
                    # converted: the sum of its 0/1 values is > 0
                    y, d = (1.0 if s > 0 else 0.0), 0.0
                elif kind == "sum":
                    y, d = s, 0.0
                elif kind == "mean":
                    y, d = s / n, 0.0
                else:
                    y, d = s, float(n)
                z["units_with_events"] += 1 if n > 0 else 0
                z["sum"] += y
                z["sum_sq"] += y * y
                z["den_sum"] += d
                z["den_sum_sq"] += d * d
                z["cross_sum"] += y * d
                z["pre_sum"] += x
                z["pre_sum_sq"] += x * x
                z["pre_cross_sum"] += x * y
            z["n"] = len(units) if kind in ("binary", "sum") \
                else z["units_with_events"]
            out[(name, arm)] = z
    return out


class Aggregates(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = harness.fresh_database("ingest_aggregates")
        cls.tmp = tempfile.mkdtemp(prefix="arbiter-agg-")
        cls.a = harness.Server(cls.url, env={
            "ARBITER_SPOOL_DIR": os.path.join(cls.tmp, "a")})
        cls.a.start()
        il.create_experiment(cls.a, KEY, METRICS, arms=ARMS)
        cls.b = harness.Server(cls.url, env={
            "ARBITER_SPOOL_DIR": os.path.join(cls.tmp, "b")})
        cls.b.start()

    @classmethod
    def tearDownClass(cls):
        cls.a.stop()
        cls.b.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def assign(self, srv, unit):
        q = urllib.parse.urlencode({"experiment": KEY, "unit": unit})
        r = srv.req("GET", "/v1/assign?" + q, token=harness.CLIENT)
        self.assertEqual(r.status, 200, r)
        a = r.json()
        self.assertEqual(a["arm"], il.hash_arm(ARMS, unit, KEY), a)
        return a

    def test_incremental_equals_recompute_and_python(self):
        # exposures first: units that never send an event count for the
        # binary and sum metrics; pre-assigned units keep their arm
        for i, u in enumerate(ASSIGNED_ONLY + PRE_ASSIGNED):
            self.assign(self.a if i % 2 else self.b, u)
        want_exposed = len(ASSIGNED_ONLY) + len(PRE_ASSIGNED)
        deadline = time.time() + 30
        while time.time() < deadline:
            n = int(harness.psql(self.url, "SELECT count(*) FROM "
                                 "arbiter.exposures WHERE experiment = "
                                 "'%s'" % KEY))
            if n == want_exposed:
                break
            time.sleep(0.1)
        self.assertEqual(n, want_exposed)

        pool, explicit_arm = make_pool(20261123)
        n_threads = 6
        plans = plan_batches(pool, 20261123, n_threads)
        servers = [self.a, self.b]
        answers = []       # (status, doc) of every answer
        sent = [0]
        lock = threading.Lock()
        errors = []

        def post(srv, batch):
            try:
                st, _, text = il.post_events(srv.base, batch, timeout=60)
            except il.Lost as e:
                errors.append(("lost", str(e)))
                return
            doc = None
            try:
                import json
                doc = json.loads(text)
            except ValueError:
                pass
            with lock:
                answers.append((st, doc))
                sent[0] += len(batch)

        def run(t):
            rng = random.Random(1000 + t)
            for batch in plans[t]:
                post(servers[t % 2], batch)
                if rng.random() < 0.05:
                    again = [e for e in batch if "id" in e]
                    if again:
                        post(servers[(t + 1) % 2], again)

        threads = [threading.Thread(target=run, args=(t,))
                   for t in range(n_threads)]
        t0 = time.time()
        for th in threads:
            th.start()
        for th in threads:
            th.join(240)
        elapsed = time.time() - t0
        self.assertEqual(errors, [])
        bad = [a for a in answers if a[0] != 202]
        self.assertEqual(bad, [])
        for _, doc in answers:
            self.assertEqual(doc["rejected"], [], doc)
            self.assertIs(doc["spooled"], False, doc)
        accepted = sum(d["accepted"] for _, d in answers)
        duplicates = sum(d["duplicates"] for _, d in answers)
        self.assertEqual(accepted, len(pool))
        self.assertEqual(duplicates, sent[0] - len(pool))
        self.assertGreater(duplicates, 100)
        print("\n  %d events (%d distinct) in %d requests from two servers "
              "in %.1f s" % (sent[0], len(pool), len(answers), elapsed),
              file=sys.stderr)

        # raw events: each distinct event exactly once
        stored = il.stored_ids(self.url, KEY)
        with_id = {e["id"] for e in pool if "id" in e}
        self.assertEqual(set(k for k in stored if k), with_id)
        self.assertTrue(all(v == 1 for k, v in stored.items() if k))
        self.assertEqual(stored.get("", 0),
                         sum(1 for e in pool if "id" not in e))
        # explicit arms were kept, others follow the unit's exposure
        rows = harness.psql(self.url, "SELECT unit, arm FROM "
                            "arbiter.events WHERE experiment = '%s' "
                            "GROUP BY 1, 2" % KEY).splitlines()
        arm_of = {}
        for ln in rows:
            u, arm = ln.split("|")
            self.assertNotIn(u, arm_of, "unit %s in two arms" % u)
            arm_of[u] = arm
        for u, arm in arm_of.items():
            self.assertEqual(arm, explicit_arm.get(u) or
                             il.hash_arm(ARMS, u, KEY), u)

        incremental = il.arm_stats(self.url, KEY)
        recomputed = il.arm_stats_recompute(self.url, KEY)
        python = expected_stats(pool, explicit_arm,
                                ASSIGNED_ONLY + PRE_ASSIGNED)
        il.assert_stats_close(self, incremental, recomputed,
                              what="arm_stats vs arm_stats_recompute")
        il.assert_stats_close(self, incremental, python,
                              what="arm_stats vs python")
        # a sanity anchor: the populations are not degenerate
        self.assertEqual(sum(python[("conv", a["name"])]["n"]
                             for a in ARMS), N_UNITS + len(ASSIGNED_ONLY))
        self.assertGreater(python[("time", "b")]["pre_sum"], 0)


if __name__ == "__main__":
    harness.main()
