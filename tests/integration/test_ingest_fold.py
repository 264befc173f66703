"""test_ingest_fold.py -- the asynchronous fold (sql/migrations/006_fold.sql)
is exactly once under concurrent writers that commit out of order, and
survives a kill -9 of the leader in the middle of a fold.

  * out of order: writer A takes its transaction id first and commits
    last; writer B commits in between and a fold runs. A naive watermark
    (the highest id folded so far) would then step over A's events for
    ever; the xid watermark folds nothing of either until A ends, then both.
  * concurrent: eight psql sessions write through the acknowledging
    function (staging table + arbiter.ingest_raw) with random pauses
    before COMMIT and random rollbacks, while a ninth folds in small
    batches (max_events 40) as fast as it can. Afterwards: every committed
    event folded once (fold_state.events_total == committed raw events),
    none of the rolled-back ones, and arm_stats == arm_stats_recompute,
    every column, relative 1e-9.
  * kill -9: a leader folding 60,000 events is killed (and its backend
    terminated, so that the fold transaction dies mid-way, as it would
    when PostgreSQL notices the lost client); a second server takes over
    and folds; the totals equal the recomputation and every event is
    folded once.
  * crash between checkpoints (012_fold_checkpoint.sql): the leader folds
    with its per-unit values in memory and no checkpoint; aggregates exact,
    unit_metrics behind; kill -9; a new leader refolds the raw events after
    the checkpoint into unit_metrics, folds the rest, checkpoints: per-unit
    values equal the raw events, aggregates the recomputation.
  * stale statistics: an open writing transaction holds the fold back; the
    rollout engine and the bandit job wait (log, counters) and resume.
"""
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402
import ingest_load as il  # noqa: E402

KEY = "fold"
METRICS = [{"name": "conv", "kind": "binary", "role": "primary"},
           {"name": "rev", "kind": "sum", "covariate": "pre_rev"},
           {"name": "time", "kind": "mean", "covariate": "pre_rev"},
           {"name": "lat", "kind": "ratio", "direction": "decrease",
            "role": "guardrail"}]
NAMES = ["conv", "rev", "time", "lat", "pre_rev"]


class Session:
    """One psql session kept open (a transaction can span calls)."""

    def __init__(self, url):
        self.p = subprocess.Popen(["psql", url, "-qAtX", "-v",
                                   "ON_ERROR_STOP=0"],
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True,
                                  bufsize=1)
        self.n = 0

    def run(self, sql):
        """Run sql; return its output lines (up to a marker)."""
        self.n += 1
        mark = "--done-%d--" % self.n
        self.p.stdin.write(sql.rstrip().rstrip(";") + ";\n\\echo " + mark
                           + "\n")
        self.p.stdin.flush()
        out = []
        for ln in self.p.stdout:
            ln = ln.rstrip("\n")
            if ln == mark:
                return out
            out.append(ln)
        raise AssertionError("psql ended: %r" % out)

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=30)


def stage_sql(exp_id, batch_id, rows):
    """Statements that stage rows (unit, arm, metric, value) and call the
    acknowledging function, inside an open transaction."""
    now = int(time.time() * 1000)  # (old timestamps fall to retention)
    vals = ",".join("(%d,1,%d,NULL,'%s','%s','%s','%s',%r,%d,NULL)"
                    % (i + 1, exp_id, u, a, a, m, v, now + i)
                    for i, (u, a, m, v) in enumerate(rows))
    return ("SELECT arbiter.ingest_stage_prepare();"
            "INSERT INTO pg_temp.ingest_stage VALUES %s;"
            "SELECT accepted FROM arbiter.ingest_raw(ARRAY['%s'])"
            % (vals, batch_id))


def random_rows(rng, n, units=60):
    rows = []
    for _ in range(n):
        u = "u%d" % rng.randrange(units)
        arm = "control" if int(u[1:]) % 2 else "treat"
        m = rng.choice(NAMES)
        v = 1.0 if m == "conv" else round(rng.uniform(0, 10), 3)
        rows.append((u, arm, m, v))
    return rows


class Fold(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = harness.fresh_database("ingest_fold")
        cls.tmp = tempfile.mkdtemp(prefix="arbiter-fold-")
        # the leader's fold would race with the manual folds below: that
        # is allowed (folds serialize), but the out-of-order case wants
        # to see its own fold's answer; a long tick keeps it out
        cls.srv = harness.Server(cls.url, env={
            "ARBITER_SPOOL_DIR": os.path.join(cls.tmp, "a"),
            "ARBITER_TICK_MS": "60000"})
        cls.srv.start()
        il.create_experiment(cls.srv, KEY, METRICS)
        cls.exp_id = int(harness.psql(cls.url, "SELECT id FROM "
                                      "arbiter.experiments WHERE key = '%s'"
                                      % KEY))

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def fold(self, max_events=500000):
        out = harness.psql(self.url, "SELECT folded, watermark, pending "
                           "FROM arbiter.fold(%d)" % max_events)
        return [int(x) for x in out.split("|")]

    def fold_all(self):
        while True:
            folded, _, pending = self.fold()
            if pending == 0:
                return

    def assert_exact(self, fold=True):
        if fold:  # (the SQL fold; fold=False checks the leader's own)
            self.fold_all()
        inc = il.arm_stats(self.url, KEY)
        rec = il.arm_stats_recompute(self.url, KEY)
        self.assertEqual(set(inc), set(rec))
        for k in rec:
            for c, v in rec[k].items():
                self.assertAlmostEqual(inc[k][c], v,
                                       delta=1e-9 * max(1.0, abs(v)),
                                       msg="%s %s" % (k, c))
        folded = int(harness.psql(self.url, "SELECT events_total FROM "
                                  "arbiter.fold_state"))
        raw = int(harness.psql(self.url, "SELECT count(*) FROM "
                               "arbiter.events_raw WHERE txid IS NOT NULL"))
        self.assertEqual(folded, raw, "every committed event folded once")

    def test_1_out_of_order_commit(self):
        self.fold_all()
        a, b = Session(self.url), Session(self.url)
        try:
            a.run("BEGIN")
            xa = int(a.run("SELECT pg_current_xact_id()")[0])
            a.run(stage_sql(self.exp_id, "ooo-a",
                            [("ua", "control", "rev", 5.0)] * 3))
            b.run("BEGIN")
            xb = int(b.run("SELECT pg_current_xact_id()")[0])
            b.run(stage_sql(self.exp_id, "ooo-b",
                            [("ub", "treat", "rev", 7.0)] * 2))
            b.run("COMMIT")
            self.assertLess(xa, xb)  # A's id is lower, B commits first
            visible = harness.psql(self.url, "SELECT unit FROM "
                                   "arbiter.events_raw WHERE unit IN "
                                   "('ua', 'ub') GROUP BY 1")
            self.assertEqual(visible, "ub")
            # a naive watermark would fold B now and move past A's id;
            # the xid watermark stops below A (still running)
            folded, wm, pending = self.fold()
            self.assertEqual(folded, 0)
            self.assertLessEqual(wm, xa)
            self.assertEqual(pending, 2)
            st = harness.psql(self.url, "SELECT pending_events, "
                              "lag_seconds >= 0 FROM arbiter.fold_status()")
            self.assertEqual(st, "2|t")
            a.run("COMMIT")
            folded, wm, pending = self.fold()
            self.assertEqual(folded, 5)
            self.assertGreater(wm, xb)
            self.assertEqual(pending, 0)
            self.assertEqual(self.fold()[0], 0)  # nothing twice
        finally:
            a.close()
            b.close()
        um = harness.psql(self.url, "SELECT unit, events, value_sum FROM "
                          "arbiter.unit_values WHERE unit IN ('ua', 'ub') "
                          "ORDER BY 1")
        self.assertEqual(um, "ua|3|15\nub|2|14")
        several = "SELECT coalesce(sum(units), 0) FROM " \
            "arbiter.units_in_several_arms WHERE experiment = 'fold'"
        self.assertEqual(harness.psql(self.url, several), "0")
        # an explicit arm other than the unit's exposure: counted
        harness.psql(self.url, "BEGIN;" + stage_sql(
            self.exp_id, "ooo-c", [("ua", "treat", "rev", 1.0)]) + ";COMMIT")
        self.fold_all()
        self.assertEqual(harness.psql(self.url, several), "1")
        self.assert_exact()

    def test_2_concurrent_writers_and_folder(self):
        stop = threading.Event()
        errors = []
        committed = [0]
        rolled_back = [0]
        lock = threading.Lock()

        def writer(t):
            rng = random.Random(77 + t)
            s = Session(self.url)
            try:
                for k in range(25):
                    rows = random_rows(rng, rng.randrange(1, 30))
                    s.run("BEGIN")
                    out = s.run(stage_sql(self.exp_id, "w%d-%d" % (t, k),
                                          rows))
                    if out[-1:] != [str(len(rows))]:
                        errors.append(out)
                    s.run("SELECT pg_sleep(%f)" % rng.uniform(0, 0.05))
                    if rng.random() < 0.15:
                        s.run("ROLLBACK")
                        with lock:
                            rolled_back[0] += len(rows)
                    else:
                        s.run("COMMIT")
                        with lock:
                            committed[0] += len(rows)
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
            finally:
                s.close()

        def folder():
            s = Session(self.url)
            try:
                while not stop.is_set():
                    s.run("SELECT * FROM arbiter.fold(40)")
            finally:
                s.close()

        before = int(harness.psql(self.url, "SELECT count(*) FROM "
                                  "arbiter.events_raw"))
        f = threading.Thread(target=folder)
        f.start()
        ws = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
        for w in ws:
            w.start()
        for w in ws:
            w.join()
        stop.set()
        f.join()
        self.assertEqual(errors, [])
        after = int(harness.psql(self.url, "SELECT count(*) FROM "
                                 "arbiter.events_raw"))
        self.assertEqual(after - before, committed[0])
        self.assertGreater(rolled_back[0], 0)
        self.assert_exact()

    def test_3_kill9_leader_mid_fold(self):
        self.fold_all()
        self.srv.stop()
        # 60,000 committed events waiting for a fold
        harness.psql(self.url, """
            BEGIN;
            SELECT arbiter.ingest_stage_prepare();
            INSERT INTO pg_temp.ingest_stage
            SELECT g, 1, %d, NULL, 'k' || (g %% 20000),
                   CASE WHEN g %% 2 = 0 THEN 'control' ELSE 'treat' END,
                   'control', (ARRAY['conv','rev','time','lat','pre_rev'])
                   [1 + g %% 5], (g %% 7)::float8,
                   (extract(epoch FROM now()) * 1000)::bigint + g, NULL
              FROM generate_series(1, 60000) g;
            SELECT count(*) FROM arbiter.ingest_raw(ARRAY['bulk']);
            COMMIT;""" % self.exp_id)
        srv = harness.Server(self.url, env={
            "ARBITER_SPOOL_DIR": os.path.join(self.tmp, "k"),
            "ARBITER_TICK_MS": "200"})
        srv.start()
        pid = None
        deadline = time.time() + 30
        while time.time() < deadline and pid is None:
            out = harness.psql(self.url, "SELECT pid FROM pg_stat_activity "
                               "WHERE query LIKE '%arbiter.fold%(%' AND "
                               "state = 'active' AND pid <> "
                               "pg_backend_pid()")
            pid = int(out.splitlines()[0]) if out else None
        self.assertIsNotNone(pid, "the leader never started folding")
        srv.kill9()
        harness.psql(self.url, "SELECT pg_terminate_backend(%d)" % pid)
        folded = int(harness.psql(self.url, "SELECT events_total FROM "
                                  "arbiter.fold_state"))
        raw = int(harness.psql(self.url, "SELECT count(*) FROM "
                               "arbiter.events_raw WHERE txid IS NOT NULL"))
        # the fold is one transaction: all of it or none of it (it may
        # have committed just before its backend was terminated)
        self.assertIn(raw - folded, (0, 60000), "no partial fold")
        # a new leader takes over and folds it all, once
        srv2 = harness.Server(self.url, env={
            "ARBITER_SPOOL_DIR": os.path.join(self.tmp, "k2"),
            "ARBITER_TICK_MS": "200"})
        srv2.start()
        try:
            il.fold_wait(self.url, timeout=120)
            r = srv2.req("GET", "/metrics")
            self.assertIn("arbiter_fold_events_total", r.body if isinstance(r.body, str) else r.body.decode())
            # the new leader's own fold (per-unit values in memory) is
            # exact before any SQL fold runs
            _, m = il.scrape(srv2.base)
            self.assertEqual(m["arbiter_fold_errors_total"], 0)
            self.assert_exact(fold=False)
        finally:
            srv2.stop()
        self.assert_exact()
        self.srv.start()

    def units_match_raw(self):
        """Rows of unit_metrics of the experiment that differ from the
        raw events (count and sum per metric, unit, arm), either way."""
        return int(harness.psql(self.url, """
            SELECT count(*) FROM
              (SELECT metric, unit, arm, count(*) AS n, sum(value) AS s
                 FROM arbiter.events_raw WHERE experiment_id = %d
                GROUP BY 1, 2, 3) r
              FULL JOIN (SELECT * FROM arbiter.unit_metrics
                          WHERE experiment_id = %d) u
                ON (u.metric, u.unit, u.arm) = (r.metric, r.unit, r.arm)
             WHERE u.n IS DISTINCT FROM r.n
                OR abs(u.value_sum - r.s) > 1e-9 * greatest(1, abs(r.s))
            """ % (self.exp_id, self.exp_id)))

    def commit_bulk(self, tag, n, units, seed):
        harness.psql(self.url, """
            BEGIN;
            SELECT arbiter.ingest_stage_prepare();
            INSERT INTO pg_temp.ingest_stage
            SELECT g, 1, %d, NULL, 'c' || ((g * %d) %% %d),
                   CASE WHEN ((g * %d) %% %d) %% 2 = 0 THEN 'control'
                        ELSE 'treat' END,
                   'control', (ARRAY['conv','rev','time','lat','pre_rev'])
                   [1 + g %% 5], CASE WHEN g %% 5 = 0 THEN (g %% 2)::float8
                                      ELSE ((g * 7) %% 13) / 3.0 END,
                   (extract(epoch FROM now()) * 1000)::bigint + g, NULL
              FROM generate_series(1, %d) g;
            SELECT count(*) FROM arbiter.ingest_raw(ARRAY['%s']);
            COMMIT;""" % (self.exp_id, seed, units, seed, units, n, tag))

    def test_4_crash_between_checkpoints(self):
        """The leader folds with its per-unit values in memory and no
        checkpoint (ARBITER_FOLD_CHECKPOINT_MS 1 h): the aggregates are
        exact while unit_metrics lags; kill -9; events arrive with no
        leader; a new leader reloads the checkpoint, refolds the raw
        events after it, folds the rest and checkpoints: per-unit values
        equal the raw events, aggregates equal the recomputation, every
        event folded once."""
        self.fold_all()
        self.srv.stop()
        a = harness.Server(self.url, env={
            "ARBITER_SPOOL_DIR": os.path.join(self.tmp, "c1"),
            "ARBITER_TICK_MS": "100",
            "ARBITER_FOLD_CHECKPOINT_MS": "3600000"})
        a.start()
        try:
            # three commits, units repeating across them (and so across
            # the leader's batches)
            for k, seed in enumerate((1, 3, 7)):
                self.commit_bulk("ckpt-a%d" % k, 4000, 1500, seed)
                il.fold_wait(self.url, timeout=60)
            wm, uwm = [int(x) for x in harness.psql(
                self.url, "SELECT watermark, unit_watermark FROM "
                "arbiter.fold_state").split("|")]
            self.assertLess(uwm, wm, "no checkpoint: values in memory only")
            self.assertGreater(self.units_match_raw(), 0,
                               "unit_metrics lags the aggregates")
            _, m = il.scrape(a.base)
            self.assertEqual(m["arbiter_fold_errors_total"], 0)
            self.assertGreater(m["arbiter_fold_units_dirty"], 0)
            self.assert_exact(fold=False)  # the aggregates do not lag
        finally:
            a.kill9()
        self.commit_bulk("ckpt-b", 3000, 1500, 11)  # no leader now
        b = harness.Server(self.url, env={
            "ARBITER_SPOOL_DIR": os.path.join(self.tmp, "c2"),
            "ARBITER_TICK_MS": "100",
            "ARBITER_FOLD_CHECKPOINT_MS": "200"})
        b.start()
        try:
            il.fold_wait(self.url, timeout=60)
            deadline = time.time() + 30
            while True:
                wm, uwm = [int(x) for x in harness.psql(
                    self.url, "SELECT watermark, unit_watermark FROM "
                    "arbiter.fold_state").split("|")]
                if wm == uwm or time.time() > deadline:
                    break
                time.sleep(0.1)
            self.assertEqual(uwm, wm, "the new leader checkpointed")
            self.assertEqual(self.units_match_raw(), 0)
            _, m = il.scrape(b.base)
            self.assertEqual(m["arbiter_fold_errors_total"], 0)
            self.assertEqual(m["arbiter_fold_checkpoint_errors_total"], 0)
            self.assert_exact(fold=False)
            self.assertIn("unit values restarted from the checkpoint",
                          b.logs())
        finally:
            b.stop()
        self.assert_exact()
        self.srv.start()


    def test_5_decisions_wait_on_stale_statistics(self):
        """A writing transaction left open holds the fold back (its xid
        bounds the watermark); committed events behind it age past
        ARBITER_FOLD_MAX_AGE_MS: the rollout engine and the bandit job
        stop deciding and say so (log, counters, the age gauge); once it
        ends the fold catches up and they resume."""
        self.fold_all()
        self.srv.stop()
        srv = harness.Server(self.url, env={
            "ARBITER_SPOOL_DIR": os.path.join(self.tmp, "s"),
            "ARBITER_TICK_MS": "100", "ARBITER_DECISION_TICK_MS": "100",
            "ARBITER_FOLD_MAX_AGE_MS": "1000"})
        srv.start()
        blocker = Session(self.url)
        try:
            time.sleep(1.0)
            _, m = il.scrape(srv.base)
            self.assertEqual(m["arbiter_rollout_stale_waits_total"], 0)
            self.assertEqual(m["arbiter_bandit_stale_waits_total"], 0)
            blocker.run("BEGIN")
            blocker.run("SELECT pg_current_xact_id()")
            harness.psql(self.url, "BEGIN;" + stage_sql(
                self.exp_id, "stale-1", [("s1", "treat", "rev", 2.0)] * 5
                + [("s2", "control", "rev", 3.0)] * 2)
                + ";COMMIT")
            deadline = time.time() + 30
            while float(harness.psql(self.url, "SELECT lag_seconds FROM "
                                     "arbiter.fold_status()")) < 1.5:
                self.assertLess(time.time(), deadline)
                time.sleep(0.1)
            time.sleep(0.5)
            _, m = il.scrape(srv.base)
            self.assertGreater(m["arbiter_rollout_stale_waits_total"], 0)
            self.assertGreater(m["arbiter_bandit_stale_waits_total"], 0)
            self.assertGreaterEqual(
                m["arbiter_rollout_statistics_age_seconds"], 1.0)
            self.assertIn("decisions wait: folded statistics are older",
                          srv.logs())
            blocker.run("ROLLBACK")
            il.fold_wait(self.url, timeout=30)
            time.sleep(1.0)
            _, m1 = il.scrape(srv.base)
            time.sleep(1.0)
            _, m2 = il.scrape(srv.base)
            for job in ("rollout", "bandit"):
                name = "arbiter_%s_stale_waits_total" % job
                self.assertEqual(m1[name], m2[name], "%s resumed" % job)
            self.assertIn("decisions resume", srv.logs())
        finally:
            blocker.close()
            srv.stop()
        self.assert_exact()
        self.srv.start()


if __name__ == "__main__":
    harness.main()
