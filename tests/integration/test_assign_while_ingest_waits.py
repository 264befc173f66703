"""test_assign_while_ingest_waits.py -- event posts waiting on a slow
database never hold the HTTP workers that assignment needs.

An event post's answer waits for the group commit; the connection is
suspended meanwhile (API_DEFERRED), so with 2 workers and 8 posts blocked
behind a table lock, GET /v1/assign still answers at once, over new and
keep-alive connections, and every post gets its 202 when the lock goes.
"""
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402


class AssignWhileIngestWaits(unittest.TestCase):
    def test_blocked_event_posts_do_not_stall_assignment(self):
        db = harness.fresh_database("it_assign_ingest_waits")
        # the writer's commit deadline (which would spool the posts after
        # 2 s: test_commit_deadline.py) is set past the 5 s lock: here the
        # posts wait for the database itself
        with harness.Server(db, env={"ARBITER_THREADS": "2",
                                     "ARBITER_COMMIT_TIMEOUT_MS": "60000"}) as s:
            r = s.req("POST", "/v1/experiments", {
                "key": "w", "arms": [{"name": "a", "weight": 50,
                                      "control": True},
                                     {"name": "b", "weight": 50}],
                "metrics": [{"name": "m", "kind": "sum"}]})
            self.assertEqual(r.status, 201, r)
            self.assertEqual(s.req("POST", "/v1/experiments/w/start").status,
                             200)
            lock = subprocess.Popen(
                ["psql", db, "-qAtX", "-c",
                 "BEGIN; LOCK TABLE arbiter.ingest_batches IN ACCESS "
                 "EXCLUSIVE MODE; SELECT pg_sleep(6); COMMIT;"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            answers = []

            def post(i):
                c = http.client.HTTPConnection("127.0.0.1", s.port,
                                               timeout=60)
                body = json.dumps([{"id": "e%d-%d" % (i, k),
                                    "experiment": "w", "unit": "u%d" % k,
                                    "metric": "m", "value": k}
                                   for k in range(50)])
                c.request("POST", "/v1/events", body=body, headers={
                    "Authorization": "Bearer " + harness.CLIENT})
                r = c.getresponse()
                answers.append((r.status, json.loads(r.read())))
                c.close()

            posts = [threading.Thread(target=post, args=(i,))
                     for i in range(8)]
            t0 = time.time()
            for t in posts:
                t.start()
            time.sleep(0.5)
            # the posts wait for the lock; assignment does not
            keep = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)
            slowest = 0
            for i in range(30):
                a = time.time()
                if i % 2:
                    keep.request("GET", "/v1/assign?experiment=w&unit=x%d" % i,
                                 headers={"Authorization":
                                          "Bearer " + harness.CLIENT})
                    r = keep.getresponse()
                    status = r.status
                    r.read()
                else:
                    status = s.req("GET", "/v1/assign?experiment=w&unit=y%d"
                                   % i, token=harness.CLIENT,
                                   timeout=5).status
                slowest = max(slowest, time.time() - a)
                self.assertEqual(status, 200)
            keep.close()
            self.assertEqual(len(answers), 0, "posts should still wait")
            self.assertLess(slowest, 1.0)
            for t in posts:
                t.join(60)
            lock.wait(30)
            self.assertGreater(time.time() - t0, 4)
            self.assertEqual(len(answers), 8)
            for status, doc in answers:
                self.assertEqual(status, 202, doc)
                self.assertEqual(doc["accepted"] + doc["duplicates"], 50)
            n = harness.psql(db, "SELECT count(*) FROM arbiter.events")
            self.assertEqual(int(n), 8 * 50)


if __name__ == "__main__":
    harness.main()
