"""test_ingest_isolation.py -- a request PostgreSQL refuses for its own
content never takes other callers' events down with it (issue 14, item 1,
on the ingest path of issue 11).

Eight clients post 40 valid requests each while a ninth posts requests
that the database refuses for one of their events (a trigger installed by
the test raises for units named 'p...': an event PostgreSQL cannot store,
whatever the reason -- validation is meant to make this never happen). The
writer groups whatever is queued into one transaction; when the database
refuses the group, the writer commits its requests one at a time. Then:

  * every valid request was answered 202 and each of its events is stored
    exactly once;
  * every refused request was answered without a 2xx, and none of its
    events is stored (no acknowledgement, so no broken promise);
  * arbiter_ingest_durability_failures_total stays 0 and
    arbiter_ingest_refused_batches_total counts the refused requests;
  * the fold still folds everything: arm_stats == arm_stats_recompute.
"""
import json
import os
import re
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402
import ingest_load as il  # noqa: E402

KEY = "iso"
METRICS = [{"name": "rev", "kind": "sum", "role": "primary"}]


def metric(text, name):
    m = re.search(r"^%s (\S+)$" % name, text, re.M)
    return float(m.group(1)) if m else None


class Isolation(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = harness.fresh_database("ingest_isolation")
        cls.srv = harness.Server(cls.url)
        cls.srv.start()
        il.create_experiment(cls.srv, KEY, METRICS)
        harness.psql(cls.url, """
            CREATE FUNCTION public.poison() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.unit LIKE 'p%' AND NEW.event_id LIKE '%-2' THEN
                    RAISE EXCEPTION 'poisoned event %', NEW.event_id;
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER poison BEFORE INSERT ON arbiter.events_raw
                FOR EACH ROW EXECUTE FUNCTION public.poison()""")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def test_one_bad_request_does_not_take_the_group_down(self):
        good, bad, lock = [], [], threading.Lock()

        def client(c):
            for k in range(40):
                evs = [{"id": "g-%d-%d-%d" % (c, k, j), "experiment": KEY,
                        "unit": "u%d" % ((c * 40 + k + j) % 97),
                        "metric": "rev", "value": 1.5} for j in range(5)]
                st, _, text = il.post_events(self.srv.base, evs, timeout=60)
                with lock:
                    good.append((st, text, evs))

        def poison():
            for k in range(20):
                evs = [{"id": "p-%d-%d" % (k, j), "experiment": KEY,
                        "unit": "p%d" % k, "metric": "rev",
                        "value": 2.0}
                       for j in range(4)]
                st, _, text = il.post_events(self.srv.base, evs, timeout=60)
                with lock:
                    bad.append((st, text))

        ts = [threading.Thread(target=client, args=(c,)) for c in range(8)]
        ts.append(threading.Thread(target=poison))
        for t in ts:
            t.start()
        for t in ts:
            t.join()

        for st, text, evs in good:
            self.assertEqual(st, 202, text)
            self.assertEqual(json.loads(text)["accepted"], 5, text)
        stored = int(harness.psql(self.url, "SELECT count(*) FROM "
                                  "arbiter.events WHERE event_id LIKE 'g-%'"))
        dups = int(harness.psql(self.url, "SELECT count(*) - count(DISTINCT "
                                "event_id) FROM arbiter.events"))
        self.assertEqual(stored, 8 * 40 * 5)
        self.assertEqual(dups, 0)

        for st, text in bad:
            if st == 202:
                # the edge may drop the bad event alone ("rejected")
                doc = json.loads(text)
                self.assertEqual(len(doc["rejected"]), 1, text)
            else:
                self.assertGreaterEqual(st, 400, text)
        # an event of a refused request is never stored; of an accepted
        # one (bad value rejected at the edge), all three others are
        n_bad_ok = sum(1 for st, _ in bad if st == 202)
        poison_rows = int(harness.psql(self.url, "SELECT count(*) FROM "
                                       "arbiter.events WHERE event_id "
                                       "LIKE 'p-%'"))
        self.assertEqual(poison_rows, 3 * n_bad_ok)

        m = self.srv.req("GET", "/metrics").body
        m = m if isinstance(m, str) else m.decode()
        self.assertEqual(metric(m, "arbiter_ingest_durability_failures_total"),
                         0)
        self.assertEqual(metric(m, "arbiter_ingest_refused_batches_total"),
                         len(bad) - n_bad_ok)
        self.assertEqual(metric(m, "arbiter_spooled_batches_total"), 0)

        inc = il.arm_stats(self.url, KEY)
        rec = il.arm_stats_recompute(self.url, KEY)
        self.assertEqual(set(inc), set(rec))
        for k in rec:
            for c, v in rec[k].items():
                self.assertAlmostEqual(inc[k][c], v,
                                       delta=1e-9 * max(1.0, abs(v)))


if __name__ == "__main__":
    harness.main()
