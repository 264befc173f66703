"""test_retention.py -- monthly partitions of the raw events and retention.

The server creates the partitions that accepted timestamps can fall in at
start-up (and hourly); raw events land in their month's partition;
arbiter.apply_retention(cutoff) drops whole months that end before the
cutoff and the default partition's older rows, with the idempotency keys,
and leaves the aggregates alone (they already hold those events);
ensure_event_partitions() moves rows that waited in the default partition
into a month created later.
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402
import ingest_load as il  # noqa: E402


def partitions(db):
    out = harness.psql(db, """
        SELECT string_agg(c.relname, ',' ORDER BY c.relname)
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'arbiter.events_raw'::regclass""")
    return set(out.split(",")) if out else set()


class Retention(unittest.TestCase):
    def test_partitions_and_retention(self):
        db = harness.fresh_database("it_retention")
        with harness.Server(db) as s:
            r = s.req("POST", "/v1/experiments", {
                "key": "ret", "arms": [{"name": "a", "weight": 50,
                                        "control": True},
                                       {"name": "b", "weight": 50}],
                "metrics": [{"name": "m", "kind": "sum"}]})
            self.assertEqual(r.status, 201, r)
            self.assertEqual(s.req("POST", "/v1/experiments/ret/start").status,
                             200)
            month = harness.psql(db, "SELECT to_char(now() AT TIME ZONE "
                                     "'UTC', 'YYYYMM')")
            deadline = time.time() + 20
            while time.time() < deadline and \
                    "events_raw_" + month not in partitions(db):
                time.sleep(0.2)
            parts = partitions(db)
            self.assertIn("events_raw_" + month, parts)
            self.assertIn("events_raw_default", parts)
            # 90 days back and two months ahead are covered
            self.assertGreaterEqual(len(parts), 6, parts)
            r = s.req("POST", "/v1/events", [
                {"id": "e%d" % i, "experiment": "ret", "unit": "u%d" % i,
                 "metric": "m", "value": i} for i in range(10)],
                token=harness.CLIENT)
            self.assertEqual((r.status, r.json()["accepted"]), (202, 10), r)
            where = harness.psql(db, "SELECT string_agg(DISTINCT "
                                     "tableoid::regclass::text, ',') FROM "
                                     "arbiter.events_raw")
            self.assertEqual(where.split(".")[-1], "events_raw_" + month)
            il.fold_wait(db)  # the aggregates are folded asynchronously
            stats_before = harness.psql(
                db, "SELECT sum, n FROM arbiter.arm_stats WHERE "
                    "experiment = 'ret' ORDER BY arm")

        # an old month: rows written before its partition existed wait in
        # the default partition and move when it is created
        old = harness.psql(db, "SELECT to_char((now() - interval '200 days')"
                               " AT TIME ZONE 'UTC', 'YYYYMM')")
        exp_id = harness.psql(db, "SELECT id FROM arbiter.experiments "
                                  "WHERE key = 'ret'")
        harness.psql(db, "INSERT INTO arbiter.events_raw (experiment_id, "
                         "event_id, unit, arm, metric, value, ts) VALUES "
                         "(%s, 'old', 'u-old', 'a', 'm', 5, now() - "
                         "interval '200 days')" % exp_id)
        self.assertEqual(harness.psql(db, "SELECT count(*) FROM "
                                          "arbiter.events_raw_default"), "1")
        harness.psql(db, "SELECT arbiter.ensure_event_partitions(now() - "
                         "interval '200 days', now() - interval '200 days')")
        self.assertIn("events_raw_" + old, partitions(db))
        self.assertEqual(harness.psql(db, "SELECT count(*) FROM "
                                          "arbiter.events_raw_default"), "0")
        self.assertEqual(harness.psql(
            db, "SELECT count(*) FROM arbiter.events_raw_%s" % old), "1")
        harness.psql(db, "INSERT INTO arbiter.event_ids (experiment_id, "
                         "event_id, received_at) VALUES (%s, 'old', now() - "
                         "interval '200 days')" % exp_id)

        # retention at 90 days drops the old month and its keys only
        dropped = harness.psql(db, "SELECT arbiter.apply_retention(now() - "
                                   "interval '90 days')")
        self.assertGreaterEqual(int(dropped), 1)
        self.assertNotIn("events_raw_" + old, partitions(db))
        self.assertIn("events_raw_" + month, partitions(db))
        self.assertEqual(harness.psql(db, "SELECT count(*) FROM "
                                          "arbiter.events_raw"), "10")
        self.assertEqual(harness.psql(
            db, "SELECT count(*) FROM arbiter.event_ids WHERE event_id = "
                "'old'"), "0")
        self.assertEqual(harness.psql(db, "SELECT count(*) FROM "
                                          "arbiter.event_ids"), "10")
        # the aggregates keep what they hold
        self.assertEqual(harness.psql(
            db, "SELECT sum, n FROM arbiter.arm_stats WHERE experiment = "
                "'ret' ORDER BY arm"), stats_before)


if __name__ == "__main__":
    harness.main()
