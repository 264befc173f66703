"""test_readme.py -- the README's runnable shell blocks, pasted as a new
user would, on a fresh clone.

A block marked `<!-- runnable: NAME -->` in README.md is extracted verbatim.
The repository (HEAD) is cloned into a private directory (mode 700, so as
root the postgres user cannot enter it), then in a fresh network namespace
(so localhost:8080 is ours whatever else runs on the machine):

1. the first-session block runs against `make run` (started by the block);
   the answers are checked (created, started, assigned, 2 events accepted,
   results with both metrics), then the rollout block;
2. SIGHUP goes to the block's process group (a closed terminal): arbiter
   shuts down gracefully ("shutting down", signal SIGHUP), the private
   cluster stops, and no process of the run is left;
3. `make run` again starts cleanly on the same data (the experiment is
   still there); then its shell and arbiter are killed with SIGKILL,
   leaving PostgreSQL behind;
4. `make run` once more detects that stale cluster, says so, stops it and
   starts; SIGTERM stops everything; nothing is left running.
"""
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import harness  # noqa: E402

ROOT = harness.ROOT
CLONE_NEWNET = 0x40000000


def readme_blocks():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    blocks = {}
    for m in re.finditer(r"<!-- runnable: ([\w-]+) -->\n```sh\n(.*?)```", text, re.S):
        blocks[m.group(1)] = m.group(2)
    return blocks


def json_docs(text):
    """The JSON documents printed one after another by silent curls (the
    lines make prints while building are not JSON and are left out)."""
    text = "\n".join(line for line in text.split("\n")
                     if not re.match(r"\s+(CC|LINK)\s|make(\[\d+\])?: ", line))
    dec, docs, i = json.JSONDecoder(), [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        doc, i = dec.raw_decode(text, i)
        docs.append(doc)
    return docs


def processes_with(marker):
    found = []
    needle = marker.encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                env = f.read().split(b"\0")
            with open("/proc/%s/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in env:
            found.append((int(pid), cmd.strip()))
    return found


def get(url, timeout=2):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except Exception:
        return None


class ReadmeFirstSession(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.blocks = readme_blocks()
        cls.root = os.geteuid() == 0
        # localhost:8080 of our own: a new network namespace (root only)
        if cls.root:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        elif get("http://127.0.0.1:8080/healthz") is not None:
            raise unittest.SkipTest("port 8080 is taken and only root can get a private one")
        cls.tmp = tempfile.mkdtemp(prefix="arbiter-readme-")  # mode 700
        cls.clone = os.path.join(cls.tmp, "arbiter")
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
        subprocess.run(["git", "clone", "-q", "--no-checkout", ROOT, cls.clone], check=True)
        subprocess.run(["git", "-C", cls.clone, "checkout", "-q", head], check=True)
        cls.marker = "ARBITER_README_RUN=" + uuid.uuid4().hex
        cls.env = dict(os.environ)
        for k in list(cls.env):  # a new user's shell (the leftovers marker stays)
            if k.startswith("ARBITER_") and k != "ARBITER_TEST_RUN":
                del cls.env[k]
        cls.env["ARBITER_README_RUN"] = cls.marker.split("=", 1)[1]
        cls.env["MAKEFLAGS"] = "-j2"
        cls.env.pop("MAKELEVEL", None)
        cls.env.pop("MFLAGS", None)
        cls.pgdir = None

    @classmethod
    def tearDownClass(cls):
        for pid, _ in processes_with(cls.marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if cls.pgdir and os.path.isdir(cls.pgdir):
            subprocess.run([os.path.join(ROOT, "tests", "harness", "pg.sh"), "stop",
                            cls.pgdir], capture_output=True)
            shutil.rmtree(cls.pgdir, ignore_errors=True)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def assert_nothing_left(self, timeout=20):
        deadline = time.time() + timeout
        left = processes_with(self.marker)
        while left and time.time() < deadline:
            time.sleep(0.2)
            left = processes_with(self.marker)
        self.assertEqual(left, [], "processes left running")
        self.assertIsNone(get("http://127.0.0.1:8080/healthz"))

    def start_make_run(self, log):
        return subprocess.Popen(["make", "run"], cwd=self.clone, env=self.env,
                                stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def wait_ready(self, logpath, proc, timeout=600):
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = open(logpath, encoding="utf-8", errors="replace").read()
            if "run: ready" in text:
                return text
            if proc.poll() is not None:
                self.fail("make run ended (%s):\n%s" % (proc.returncode, text[-3000:]))
            time.sleep(0.2)
        self.fail("make run never ready:\n" + text[-3000:])

    def test_first_session_sighup_and_restarts(self):
        self.assertIn("first-session", self.blocks)
        self.assertIn("rollout", self.blocks)
        first = self.blocks["first-session"]
        self.assertIn("readyz", first)  # the block waits for readiness
        if self.root:  # the clone is private: postgres cannot enter it
            r = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", self.clone])
            self.assertNotEqual(r.returncode, 0)

        # 1. the first session, then the rollout block, in one shell (the
        # variables of the first carry over, as in a terminal)
        log1 = os.path.join(self.tmp, "session.log")
        script = first + "\necho '=== rollout'\n" + self.blocks["rollout"]
        out1 = os.path.join(self.tmp, "session.out")
        # files, not pipes: `make run &` keeps its output open after the block
        with open(log1, "w") as errlog, open(out1, "w") as outf:
            sh = subprocess.Popen(["bash", "-c", script], cwd=self.clone, env=self.env,
                                  stdout=outf, stderr=errlog, start_new_session=True)
            sh.wait(timeout=900)
        pgid = sh.pid  # the session's process group; make run lives on in it
        errs = open(log1, encoding="utf-8", errors="replace").read()
        out = open(out1, encoding="utf-8", errors="replace").read()
        self.assertEqual(sh.returncode, 0, errs[-3000:])
        session, rollout = out.split("=== rollout")
        docs = json_docs(session)
        self.assertEqual(len(docs), 5, session)
        created, started, assigned, events, results = docs
        self.assertEqual(created["key"], "ranker-v2", created)
        self.assertEqual(created["state"], "draft")
        self.assertEqual(started["state"], "running", started)
        self.assertIn(assigned["arm"], ("control", "v2"))
        self.assertTrue(assigned["in_experiment"])
        self.assertEqual(assigned["reason"], "hashed")
        self.assertEqual(events["accepted"], 2, events)
        self.assertEqual(events["rejected"], [])
        names = sorted(m["metric"] if "metric" in m else m.get("name")
                       for m in results["metrics"])
        self.assertEqual(names, ["click", "latency_ms"], results)
        rdocs = json_docs(rollout)
        self.assertEqual(len(rdocs), 3, rollout)
        self.assertEqual(rdocs[0]["key"], "ranker-v3-canary", rdocs[0])
        self.assertEqual(rdocs[1]["state"], "running", rdocs[1])
        self.assertIn("rollout", rdocs[2])
        if self.root:
            m = re.search(r"the postgres user cannot enter .*? so the private PostgreSQL "
                          r"lives in (/var/tmp/arbiter-pg-[0-9a-f]+)", errs)
            self.assertIsNotNone(m, errs[-3000:])
            type(self).pgdir = m.group(1)
        self.assertIn("run: ready", errs)

        # 2. the terminal closes
        os.killpg(pgid, signal.SIGHUP)
        self.assert_nothing_left()
        errs = open(log1, encoding="utf-8", errors="replace").read()
        self.assertIn('"msg":"shutting down","signal":"SIGHUP"', errs)
        self.assertIn('"msg":"stopped"', errs)
        self.assertIn("run: private PostgreSQL stopped", errs)

        # 3. the next make run starts cleanly on the same data
        log2 = os.path.join(self.tmp, "run2.log")
        with open(log2, "w") as f:
            p2 = self.start_make_run(f)
        self.wait_ready(log2, p2)
        token = open(os.path.join(self.clone, "var", "admin.token")).read().strip()
        req = urllib.request.Request("http://127.0.0.1:8080/v1/experiments/ranker-v2",
                                     headers={"Authorization": "Bearer " + token})
        with urllib.request.urlopen(req, timeout=5) as r:
            self.assertEqual(json.load(r)["state"], "running")
        # ... and dies without its shell's cleanup: PostgreSQL survives
        for pid, cmd in processes_with(self.marker):
            if "postgres" not in cmd and "postmaster" not in cmd:
                os.kill(pid, signal.SIGKILL)
        p2.wait(timeout=30)
        time.sleep(0.5)
        left = processes_with(self.marker)
        self.assertTrue(left and all("postgres" in c for _, c in left), left)

        # 4. make run again: the stale cluster is detected, stopped, restarted
        log3 = os.path.join(self.tmp, "run3.log")
        with open(log3, "w") as f:
            p3 = self.start_make_run(f)
        text = self.wait_ready(log3, p3)
        self.assertRegex(text, r"a PostgreSQL of an earlier run is still running in \S+ "
                               r"\(pid \d+\); stopping it and starting again")
        self.assertEqual(get("http://127.0.0.1:8080/readyz"), 200)
        os.killpg(p3.pid, signal.SIGTERM)
        p3.wait(timeout=60)  # make itself ends by the signal
        self.assert_nothing_left()
        text = open(log3, encoding="utf-8", errors="replace").read()
        self.assertIn('"msg":"stopped"', text)
        self.assertIn("run: private PostgreSQL stopped", text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
