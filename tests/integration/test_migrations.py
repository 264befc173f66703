"""test_migrations.py -- schema migrations against a real PostgreSQL.

`arbiter migrate` alone creates the schema; every file of sql/migrations is
applied once, in order, and recorded in arbiter.schema_migrations; a second
run (and a concurrent one) applies nothing; the analysts' views exist; and
both `migrate` and `serve` refuse, with a non-zero exit and a clear log
line, a database whose schema is newer than the binary knows.
"""
import glob
import json
import os
import re
import subprocess
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402

MIGRATIONS = sorted(glob.glob(os.path.join(harness.ROOT, "sql",
                                           "migrations", "*.sql")))


def known_versions():
    out = []
    for path in MIGRATIONS:
        m = re.match(r"(\d+)_", os.path.basename(path))
        out.append(int(m.group(1)))
    return out


def migrate(url, extra_env=None):
    env = {"ARBITER_DATABASE_URL": url, "ARBITER_LOG_LEVEL": "info"}
    env.update(extra_env or {})
    return harness.run_cli(["migrate"], env=env, timeout=120)


def log_lines(text):
    return [json.loads(ln) for ln in text.splitlines() if ln.startswith("{")]


class Migrations(unittest.TestCase):
    def test_migrate_alone_applies_every_file_in_order(self):
        url = harness.fresh_database("mig_alone")
        p = migrate(url)
        self.assertEqual(p.returncode, 0, p.stderr)
        versions = known_versions()
        self.assertTrue(versions and versions == sorted(versions))
        self.assertEqual(len(set(versions)), len(versions))
        rows = harness.psql(url, "SELECT version || ' ' || name FROM "
                            "arbiter.schema_migrations ORDER BY applied_at, "
                            "version").splitlines()
        self.assertEqual([int(r.split()[0]) for r in rows], versions)
        for r in rows:
            self.assertTrue(r.split(" ", 1)[1].strip())
        logs = log_lines(p.stderr)
        done = [x for x in logs if x["msg"] == "migrations applied"]
        self.assertEqual(len(done), 1, p.stderr)
        self.assertEqual(done[0]["applied"], len(versions))  # typed
        self.assertEqual(done[0]["schema_version"], versions[-1])
        # the tables and the stable views
        rels = set(harness.psql(url, "SELECT table_name FROM "
                                "information_schema.tables WHERE "
                                "table_schema = 'arbiter'").split())
        for name in ("experiments", "weights_history", "exposure_units",
                     "exposure_arm_totals", "decision_log",
                     "schema_migrations", "experiments_v", "exposures",
                     "exposure_counts", "decisions"):
            self.assertIn(name, rels)
        views = set(harness.psql(url, "SELECT table_name FROM "
                                 "information_schema.views WHERE "
                                 "table_schema = 'arbiter'").split())
        self.assertTrue({"experiments_v", "exposures", "exposure_counts",
                         "decisions"} <= views, views)
        # the server is not needed: nothing listens, nothing left running
        self.assertEqual(harness.psql(url, "SELECT count(*) FROM "
                                      "arbiter.experiments"), "0")

    def test_second_run_is_idempotent(self):
        url = harness.fresh_database("mig_twice")
        self.assertEqual(migrate(url).returncode, 0)
        before = harness.psql(url, "SELECT json_agg(m ORDER BY version) "
                              "FROM arbiter.schema_migrations m")
        p = migrate(url)
        self.assertEqual(p.returncode, 0, p.stderr)
        done = [x for x in log_lines(p.stderr)
                if x["msg"] == "migrations applied"]
        self.assertEqual(done[0]["applied"], 0)
        self.assertEqual(done[0]["schema_version"], known_versions()[-1])
        after = harness.psql(url, "SELECT json_agg(m ORDER BY version) "
                             "FROM arbiter.schema_migrations m")
        self.assertEqual(before, after)  # applied_at unchanged too

    def test_concurrent_migrators_apply_once(self):
        url = harness.fresh_database("mig_race")
        env = dict(os.environ, ARBITER_DATABASE_URL=url)
        procs = [subprocess.Popen([harness.BIN, "migrate"], env=env,
                                  stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]
        applied = []
        for p in procs:
            _, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0, err)
            applied += [int(x["applied"]) for x in log_lines(err)
                        if x["msg"] == "migrations applied"]
        self.assertEqual(sorted(applied),
                         [0, 0, 0, len(known_versions())])
        self.assertEqual(harness.psql(
            url, "SELECT count(*) FROM arbiter.schema_migrations"),
            str(len(known_versions())))

    def test_serve_migrates_an_empty_database(self):
        url = harness.fresh_database("mig_serve")
        with harness.Server(url) as srv:
            self.assertEqual(srv.req("GET", "/readyz").status, 200)
        self.assertEqual(harness.psql(
            url, "SELECT max(version) FROM arbiter.schema_migrations"),
            str(known_versions()[-1]))

    def test_newer_schema_is_refused(self):
        url = harness.fresh_database("mig_newer")
        self.assertEqual(migrate(url).returncode, 0)
        harness.psql(url, "INSERT INTO arbiter.schema_migrations "
                     "(version, name) VALUES (999, '999_from_the_future')")
        p = migrate(url)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(p.returncode, 1)
        errs = [x for x in log_lines(p.stderr) if x["level"] == "error"]
        self.assertEqual(len(errs), 1, p.stderr)
        self.assertIn("schema is newer", errs[0]["msg"])
        self.assertIn("refusing", errs[0]["msg"])
        self.assertEqual(errs[0]["schema_version"], 999)
        # serve refuses too, and never listens
        srv = harness.Server(url)
        with self.assertRaises(RuntimeError) as cm:
            srv.start(timeout=60)
        self.assertIn("exited 1", str(cm.exception))
        self.assertIn("schema is newer", srv.logs())
        self.assertNotIn('"msg":"listening"', srv.logs())
        srv.stop()
        # nothing was touched
        self.assertEqual(harness.psql(
            url, "SELECT string_agg(version::text, ',' ORDER BY version) "
            "FROM arbiter.schema_migrations"),
            ",".join(str(v) for v in known_versions() + [999]))

    def test_migrate_without_a_database_is_a_usage_error(self):
        e = dict(os.environ)
        e.pop("ARBITER_DATABASE_URL", None)
        p = subprocess.run([harness.BIN, "migrate"], env=e,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("ARBITER_DATABASE_URL", p.stderr)

    def test_migrate_with_a_flag(self):
        url = harness.fresh_database("mig_flag")
        e = dict(os.environ)
        e.pop("ARBITER_DATABASE_URL", None)
        p = subprocess.run([harness.BIN, "migrate", "--database-url", url],
                           env=e, capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(harness.psql(
            url, "SELECT count(*) FROM arbiter.schema_migrations"),
            str(len(known_versions())))

    def test_database_password_is_never_logged(self):
        url = harness.fresh_database("mig_secret")
        u = urllib.parse.urlparse(url)
        secret = "pw-s3cret-8841"
        with_pw = urllib.parse.urlunparse(u._replace(
            netloc="arbiter:%s@%s:%d" % (secret, u.hostname, u.port)))
        p = migrate(with_pw)  # trust authentication ignores the password
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn(secret, p.stderr)
        # only host, port, database and user are logged (sql/conninfo.h)
        self.assertIn('"database":"host=%s port=%d dbname=mig_secret '
                      'user=arbiter"' % (u.hostname, u.port), p.stderr)
        # an unreachable server: the error path does not log it either
        dead = "postgresql://arbiter:%s@127.0.0.1:1/x?connect_timeout=1" % \
            secret
        p = harness.run_cli(["migrate"], env={"ARBITER_DATABASE_URL": dead},
                            timeout=120)
        self.assertEqual(p.returncode, 1)
        self.assertNotIn(secret, p.stderr)
        self.assertIn("cannot connect", p.stderr)

    def test_version_reports_the_schema_version(self):
        p = harness.run_cli(["version"])
        self.assertEqual(p.returncode, 0)
        self.assertIn("schema version %d" % known_versions()[-1], p.stdout)


if __name__ == "__main__":
    harness.main()
