"""soak.py -- `make soak`: the service under mixed load for SOAK_SECONDS
(default 600) through every fault it must survive, on a private
PostgreSQL (tests/harness/pg.sh) and the optimised binary.

Load: 2 assignment clients (a new connection per request), 2 event
posters (unique ids, resent until acknowledged: tests/tools/ingest_load.py),
1 admin client (reads and PATCHes of a sticky experiment, one in 20 a
weights change so sticky lookups reach the store).

Faults, in a cycle of 120 s (scaled down for short runs):
  t+20  restart without downtime (SIGUSR2: a successor takes the socket)
  t+45  PostgreSQL stopped for 15 s (pg.sh stop / start)
  t+80  PostgreSQL SIGSTOPped for 10 s
Reported at the end (and printed as one JSON line): failed requests
(assignment answers other than 200, lost connections), events
acknowledged / stored / lost / duplicated, assignment p50/p99/max, RSS and
open-descriptor samples of each serving process (a restart starts a new
one) with their least-squares slope per hour (after its first 20 s), and the load
average. Exit status 1 when a request failed or an event was lost.
"""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))
import harness  # noqa: E402
import ingest_load as il  # noqa: E402

SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
CYCLE = min(120, max(40, SECONDS // 3))


def segments(samples, skip=20.0):
    """Per serving process (restarts change it): [pid, first, last, slope
    per hour over its samples after its first `skip` seconds]."""
    out, by = [], {}
    for t, v, pid in samples:
        by.setdefault(pid, []).append((t, v))
    for pid, pts in by.items():
        t0 = pts[0][0]
        out.append([pid, pts[0][1], pts[-1][1],
                    round(slope_per_hour([(t - t0, v) for t, v in pts],
                                         skip), 1)])
    return out


def slope_per_hour(samples, skip=60.0):
    pts = [(t, v) for t, v in samples if t >= skip]
    if len(pts) < 3:
        return 0.0
    n = len(pts)
    mt = sum(t for t, _ in pts) / n
    mv = sum(v for _, v in pts) / n
    den = sum((t - mt) ** 2 for t, _ in pts)
    return 3600.0 * sum((t - mt) * (v - mv) for t, v in pts) / den if den else 0.0


def proc_stats(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            rss = next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS"))
        fds = len(os.listdir("/proc/%d/fd" % pid))
        return rss, fds
    except (OSError, StopIteration):
        return None


def main():
    pgdir = tempfile.mkdtemp(prefix="arbiter-soak-pg-")
    pg = os.path.join(ROOT, "tests", "harness", "pg.sh")
    url = subprocess.run([pg, "start", pgdir], check=True,
                         capture_output=True, text=True).stdout.strip()
    harness.DB_URL = url
    harness.PGDIR = pgdir
    harness.BIN = os.environ.get("ARBITER_BIN", os.path.join(ROOT, "bin",
                                                             "arbiter"))
    db = harness.fresh_database("soak")
    srv = harness.Server(db).start()
    pid = srv.proc.pid
    stop = threading.Event()
    lock = threading.Lock()
    lat, failures = [], []
    try:
        il.create_experiment(srv, "soak", [{"name": "rev", "kind": "sum"}],
                             sticky=True)

        def assigner(k):
            i = 0
            while not stop.is_set():
                c = http.client.HTTPConnection("127.0.0.1", srv.port,
                                               timeout=10)
                t0 = time.time()
                try:
                    c.request("GET", "/v1/assign?experiment=soak&unit=a%d-%d"
                              % (k, i), headers={"Authorization": "Bearer "
                                                 + harness.CLIENT})
                    r = c.getresponse()
                    r.read()
                    with lock:
                        lat.append(time.time() - t0)
                        if r.status != 200:
                            failures.append(("assign", r.status))
                except (OSError, http.client.HTTPException) as e:
                    with lock:
                        failures.append(("assign", repr(e)))
                finally:
                    c.close()
                i += 1

        def admin():
            i = 0
            while not stop.is_set():
                w = 50 + (i // 20) % 2 * 10
                if i % 20 == 19:
                    body = {"arms": [{"name": "control", "weight": w,
                                      "control": True},
                                     {"name": "treat", "weight": 100 - w}]}
                    r = srv.req("PATCH", "/v1/experiments/soak", body,
                                timeout=60)
                else:
                    r = srv.req("GET", "/v1/experiments/soak", timeout=60)
                # the database may be down: 503 with Retry-After is the
                # documented answer for admin routes, not a failure
                if r.status not in (200, 503):
                    with lock:
                        failures.append(("admin", r.status, r.body[:200]))
                i += 1
                time.sleep(0.2)

        def rev(rng):
            return {"unit": "e%d" % rng.randrange(5000), "metric": "rev",
                    "value": round(rng.uniform(0, 9), 2)}
        load = il.Load(srv.base, "soak", rev, threads=2, batch=50,
                       timeout=60.0, pause=0.05).start()
        ths = [threading.Thread(target=assigner, args=(k,), daemon=True)
               for k in range(2)]
        ths.append(threading.Thread(target=admin, daemon=True))
        for t in ths:
            t.start()

        t_start = time.time()
        samples_rss, samples_fd = [], []
        faults = []
        done = set()
        while time.time() - t_start < SECONDS:
            el = time.time() - t_start
            st = proc_stats(pid)
            if st:
                samples_rss.append((el, st[0], pid))
                samples_fd.append((el, st[1], pid))
            cyc, at = int(el // CYCLE), el % CYCLE
            f = CYCLE / 120.0
            if at >= 20 * f and (cyc, "restart") not in done:
                done.add((cyc, "restart"))
                os.kill(pid, signal.SIGUSR2)
                old = pid
                deadline = time.time() + 90
                while time.time() < deadline:
                    pids = [int(p) for p in re.findall(
                        r'"msg":"listening".*?"pid":"(\d+)"', srv.logs())]
                    if pids and pids[-1] != old and proc_stats(old) is None:
                        pid = pids[-1]
                        break
                    if srv.proc is not None and srv.proc.pid == old:
                        srv.proc.poll()
                    time.sleep(0.1)
                faults.append((round(el), "restart", pid))
            if at >= 45 * f and (cyc, "outage") not in done:
                done.add((cyc, "outage"))
                subprocess.run([pg, "stop", pgdir], capture_output=True)
                time.sleep(15 * f)
                subprocess.run([pg, "start", pgdir], capture_output=True)
                faults.append((round(el), "outage"))
            if at >= 80 * f and (cyc, "sigstop") not in done:
                done.add((cyc, "sigstop"))
                with open(os.path.join(pgdir, "data", "postmaster.pid")) as fp:
                    master = int(fp.readline())
                kids = [master] + [int(d) for d in os.listdir("/proc")
                                   if d.isdigit() and _ppid(d) == master]
                for k in kids:
                    _kill(k, signal.SIGSTOP)
                time.sleep(10 * f)
                for k in kids:
                    _kill(k, signal.SIGCONT)
                faults.append((round(el), "sigstop"))
            time.sleep(1)

        stop.set()
        load.stop(giveup=120)
        for t in ths:
            t.join(60)
        il.wait_spool_empty(srv.base, timeout=180)
        stored = il.stored_ids(db, "soak")
        acked = load.acked_ids()
        lat.sort()
        res = {
            "seconds": SECONDS,
            "faults": faults,
            "assignments": len(lat),
            "assign_p50_ms": round(1e3 * lat[len(lat) // 2], 2) if lat else None,
            "assign_p99_ms": round(1e3 * lat[int(0.99 * len(lat))], 2) if lat else None,
            "assign_max_ms": round(1e3 * lat[-1], 2) if lat else None,
            "failed_requests": len(failures) + len(load.errors),
            "failure_examples": failures[:5],
            "events_acked": len(acked),
            "events_stored": len(stored),
            "events_lost": len(acked - set(stored)),
            "events_duplicated": sum(1 for v in stored.values() if v != 1),
            # [pid, first, last, slope per hour] of each serving process
            "rss_kb_by_process": segments(samples_rss),
            "fds_by_process": segments(samples_fd),
            "loadavg": os.getloadavg(),
        }
        print(json.dumps(res))
        ok = res["failed_requests"] == 0 and res["events_lost"] == 0 and \
            res["events_duplicated"] == 0
        os.kill(pid, signal.SIGTERM)
        deadline = time.time() + 60
        while proc_stats(pid) is not None and time.time() < deadline:
            time.sleep(0.1)
        return 0 if ok else 1
    finally:
        stop.set()
        if proc_stats(pid) is not None:
            os.kill(pid, signal.SIGKILL)
        if srv.proc is not None and srv.proc.poll() is None:
            srv.proc.kill()
        subprocess.run([pg, "stop", pgdir], capture_output=True)


def _ppid(d):
    try:
        with open("/proc/%s/stat" % d) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


def _kill(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    sys.exit(main())
