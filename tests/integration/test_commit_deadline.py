"""test_commit_deadline.py -- the events writer's client-side deadline
(issue 14): an event commit that cannot finish within
ARBITER_COMMIT_TIMEOUT_MS is abandoned, its connection dropped and its
batch spooled, so the post is answered (202, spooled) within about that
bound -- and when the abandoned transaction commits anyway after the
deadline, the spool replay of the same batch id is a no-op: every event is
stored exactly once.

The stall is made deterministic without stopping the server: a deferred
constraint trigger on arbiter.ingest_batches (created by this test in its
own database) sleeps 4 s inside the COMMIT of the first transaction that
reaches it, and records that transaction in public.slept -- in the same
transaction, so a row there proves the abandoned COMMIT completed. The
writer gives up after 1.5 s; the post is answered from the spool; the
replay then runs while the abandoned COMMIT still sleeps (it waits on the
batch's rows, then finds the batch committed: 23505 on the batch id,
retried, skipped) or after it (skipped at once). Either way: once.
"""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402
import ingest_load as il  # noqa: E402

TIMEOUT_MS = 1500
SLEEP_S = 4

TRIGGER = """
CREATE TABLE public.sleep_once (x int);
CREATE TABLE public.slept (txid bigint, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION public.sleep_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE n int;
BEGIN
    WITH d AS (DELETE FROM public.sleep_once RETURNING 1)
    SELECT count(*) INTO n FROM d;
    IF n > 0 THEN
        INSERT INTO public.slept (txid) VALUES (txid_current());
        PERFORM pg_sleep(%d);
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER sleep_at_commit AFTER INSERT ON arbiter.ingest_batches
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION public.sleep_at_commit();
""" % SLEEP_S


class CommitDeadline(unittest.TestCase):
    def test_abandoned_commit_that_completes_is_stored_once(self):
        url = harness.fresh_database("commit_deadline")
        srv = harness.Server(url, env={
            "ARBITER_COMMIT_TIMEOUT_MS": str(TIMEOUT_MS)}).start()
        try:
            il.create_experiment(srv, "cd", [{"name": "rev", "kind": "sum"}])
            warm = [{"experiment": "cd", "unit": "w%d" % i, "metric": "rev",
                     "value": 1.0, "id": "warm-%d" % i} for i in range(5)]
            st, _, text = il.post_raw(srv.base, json.dumps(warm).encode())
            self.assertEqual(st, 202, text)
            harness.psql(url, TRIGGER)
            harness.psql(url, "INSERT INTO public.sleep_once VALUES (1)")

            evs = [{"experiment": "cd", "unit": "u%d" % i, "metric": "rev",
                    "value": 0.5 + i, "id": "late-%d" % i} for i in range(20)]
            t0 = time.time()
            st, _, text = il.post_raw(srv.base, json.dumps(evs).encode(),
                                      timeout=30)
            dt = time.time() - t0
            self.assertEqual(st, 202, text)
            doc = json.loads(text)
            self.assertTrue(doc["spooled"], doc)
            self.assertEqual(doc["accepted"], 20, doc)
            # answered at the deadline, not after the 4 s commit
            self.assertLess(dt, SLEEP_S - 1.0, "post took %.2f s" % dt)
            self.assertGreaterEqual(dt, TIMEOUT_MS / 1000.0 * 0.9)

            samples = il.wait_spool_empty(srv.base, timeout=60)
            deadline = time.time() + 30
            while time.time() < deadline and harness.psql(
                    url, "SELECT count(*) FROM public.slept") != "1":
                time.sleep(0.2)
            # the abandoned transaction committed (its row is in slept) ...
            self.assertEqual(harness.psql(
                url, "SELECT count(*) FROM public.slept"), "1")
            # ... and the replay of its batch stored nothing more
            stored = il.stored_ids(url, "cd")
            want = {e["id"]: 1 for e in warm + evs}
            self.assertEqual(stored, want)
            got = float(harness.psql(
                url, "SELECT sum(value) FROM arbiter.events WHERE "
                "experiment = 'cd' AND event_id LIKE 'late-%'"))
            self.assertAlmostEqual(got, sum(e["value"] for e in evs))
            self.assertGreaterEqual(
                samples["arbiter_ingest_commit_timeouts_total"], 1)
            self.assertGreaterEqual(
                samples["arbiter_spool_replayed_batches_total"], 1)
            self.assertEqual(
                samples["arbiter_ingest_durability_failures_total"], 0)
            self.assertEqual(
                samples["arbiter_spool_quarantined_batches_total"], 0)
            # the writer works normally afterwards
            more = [{"experiment": "cd", "unit": "z", "metric": "rev",
                     "value": 2.0, "id": "after-0"}]
            st, _, text = il.post_raw(srv.base, json.dumps(more).encode())
            self.assertEqual(st, 202, text)
            il.wait_spool_empty(srv.base, timeout=60)
            self.assertEqual(il.stored_ids(url, "cd").get("after-0"), 1)
            logs = srv.logs()
            print("post answered in %.2f s; 23505 retried: %s" % (
                dt, "23505" in logs or "duplicate key" in logs),
                file=sys.stderr)
        finally:
            srv.stop()


if __name__ == "__main__":
    harness.main()
