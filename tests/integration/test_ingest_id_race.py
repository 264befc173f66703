"""test_ingest_id_race.py -- the idempotency insert of 016_ingest_ack.sql
(a plain insert behind an anti-join instead of ON CONFLICT DO NOTHING)
when another transaction holds the same new event id uncommitted.

The writer's insert waits on the unique index; when the other transaction
commits, it fails with 23505. sql/db_events.c retries the whole group at
once on the same connection: the retry sees the committed id and counts
the event as a duplicate. The client gets its 202 with exactly that count,
nothing is spooled, and the raw events hold each event once.
"""
import os
import shutil
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import ingest_load as il  # noqa: E402
from test_ingest_fold import Session  # noqa: E402

KEY = "race"


class IdRace(unittest.TestCase):
    def test_unique_race_is_a_duplicate_not_a_spool(self):
        url = harness.fresh_database("ingest_id_race")
        tmp = tempfile.mkdtemp(prefix="arbiter-race-")
        srv = harness.Server(url, env={
            "ARBITER_SPOOL_DIR": os.path.join(tmp, "s")})
        srv.start()
        s = Session(url)
        try:
            il.create_experiment(srv, KEY, [{"name": "conv",
                                             "kind": "binary"}])
            exp = int(harness.psql(url, "SELECT id FROM arbiter.experiments"
                                   " WHERE key = '%s'" % KEY))
            s.run("BEGIN")
            s.run("INSERT INTO arbiter.event_ids (experiment_id, event_id)"
                  " VALUES (%d, 'race-1')" % exp)
            out = {}

            def post():
                out["r"] = il.post_events(srv.base, [
                    {"id": "race-1", "experiment": KEY, "unit": "u1",
                     "metric": "conv", "value": 1},
                    {"id": "race-2", "experiment": KEY, "unit": "u2",
                     "metric": "conv", "value": 1}], timeout=30)

            t = threading.Thread(target=post)
            t.start()
            # the writer is now waiting on the index for race-1
            deadline = time.time() + 10
            while time.time() < deadline:
                if harness.psql(url, "SELECT count(*) FROM pg_stat_activity"
                                " WHERE wait_event_type = 'Lock' AND query"
                                " LIKE '%ingest_raw%'") != "0":
                    break
                time.sleep(0.05)
            else:
                self.fail("the writer never waited on the held id")
            s.run("COMMIT")
            t.join(30)
            st, _, body = out["r"]
            self.assertEqual(st, 202, body)
            self.assertIn('"accepted":1', body.replace(" ", ""))
            self.assertIn('"duplicates":1', body.replace(" ", ""))
            _, m = il.scrape(srv.base)
            self.assertEqual(m["arbiter_spooled_batches_total"], 0)
            rows = harness.psql(url, "SELECT event_id FROM "
                                "arbiter.events_raw ORDER BY 1")
            self.assertEqual(rows.split(), ["race-2"])
            self.assertIn("duplicate key", srv.logs())  # it met the race
        finally:
            s.close()
            srv.stop()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    harness.main()
