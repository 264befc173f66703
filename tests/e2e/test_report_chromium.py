"""test_report_chromium.py -- the deployment report renders in Debian's
headless Chromium (issue 15, "Must show").

A canary with registered models runs on the real service until the engine
promotes it; its report is fetched live (while running) and final, checked
for self-containment (no script, style sheet, font or image from anywhere),
written to build/test-artifacts/, and opened from there in headless
Chromium driven through chromedriver's WebDriver protocol (plain HTTP, no
client library). The browser must log no console error, every chart must
be laid out with data, and a screenshot is saved beside the page:

  build/test-artifacts/report-canary.html, report-canary.png
"""
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from test_models import (CLIENT, FAST, Client, canary, drive, good,  # noqa
                         register, sha)

ARTIFACTS = os.path.join(harness.ROOT, "build", "test-artifacts")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--no-first-run",
         "--disable-component-update", "--disable-sync",
         "--window-size=1100,4200"]


class WebDriver:
    """The few WebDriver calls this test needs, over plain HTTP."""

    def __init__(self):
        self.port = harness.free_port()
        self.profile = tempfile.mkdtemp(prefix="arbiter-chromium-")
        self.proc = subprocess.Popen(
            [shutil.which("chromedriver"), "--port=%d" % self.port],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = "http://127.0.0.1:%d" % self.port
        deadline = time.time() + 20
        while True:
            try:
                self.call("GET", "/status")
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        caps = {"browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": shutil.which("chromium"),
                    "args": FLAGS + ["--user-data-dir=" + self.profile]},
                "goog:loggingPrefs": {"browser": "ALL"}}
        ans = self.call("POST", "/session",
                        {"capabilities": {"alwaysMatch": caps}})
        self.session = "/session/" + ans["value"]["sessionId"]

    def call(self, method, path, body=None, timeout=60):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.base + path, data=data, method=method,
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read().decode())

    def go(self, url):
        self.call("POST", self.session + "/url", {"url": url})

    def run(self, script):
        return self.call("POST", self.session + "/execute/sync",
                         {"script": script, "args": []})["value"]

    def console(self):
        return self.call("POST", self.session + "/se/log",
                         {"type": "browser"})["value"]

    def screenshot(self, path):
        png = self.call("GET", self.session + "/screenshot")["value"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(png))

    def close(self):
        try:
            self.call("DELETE", self.session)
        finally:
            self.proc.terminate()
            self.proc.wait(10)
            shutil.rmtree(self.profile, ignore_errors=True)


CHARTS_JS = """
return Array.from(document.querySelectorAll('svg.chart')).map(function (s) {
  var r = s.getBoundingClientRect();
  var pts = 0;
  s.querySelectorAll('polyline').forEach(function (p) {
    if (p.classList.contains('line')) pts += p.points.numberOfItems; });
  return {name: s.dataset.chart, points: +s.dataset.points,
          drawn: pts, bands: s.querySelectorAll('polygon.band').length +
                             s.querySelectorAll('polyline.bound').length,
          width: r.width, height: r.height};
});
"""


class ReportInChromium(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.makedirs(ARTIFACTS, exist_ok=True)
        cls.db = harness.fresh_database("e2e_report")
        cls.server = harness.Server(cls.db, env=FAST).start()
        cls.c = Client(cls.server.port)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        cls.server.stop()

    def report(self, key):
        r = harness.request(self.server.base, "GET",
                            "/v1/experiments/%s/report" % key,
                            token=harness.ADMIN, timeout=30)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["Content-Type"],
                         "text/html; charset=utf-8")
        return r.body

    def assert_self_contained(self, html):
        low = html.lower()
        for banned in ["<script", "<link", "<img", "<iframe", "@import",
                       "url(", " src=", " href=", "@font-face"]:
            self.assertNotIn(banned, low)
        # the only URL is the SVG namespace name, which is never fetched
        self.assertEqual(set(re.findall(r"https?://[^\"' <]+", html)),
                         {"http://www.w3.org/2000/svg"})

    def test_report_renders_in_headless_chromium(self):
        for v in ["1.0", "2.0"]:
            register(self.c, "reco", v)
        st, doc = self.c.call("POST", "/v1/models/reco/versions/1.0/stage",
                              {"stage": "production"})
        self.assertEqual(st, 200, doc)
        st, doc = self.c.call("POST", "/v1/experiments",
                              canary("canary", "reco@1.0", "reco@2.0"))
        self.assertEqual(st, 201, doc)
        st, doc = self.c.call("POST", "/v1/experiments/canary/start")
        self.assertEqual(st, 200, doc)
        import random
        rng = random.Random(5)
        live_checked = False
        for r in range(80):
            st, doc = self.c.call("GET", "/v1/experiments/canary")
            if doc["state"] != "running":
                break
            drive(self.c, "canary", 150, good, "u%d" % r, rng)
            time.sleep(0.25)
            if r == 3:
                live = self.report("canary")
                self.assertIn("Live report", live)
                self.assert_self_contained(live)
                live_checked = True
        self.assertTrue(live_checked)
        self.assertEqual(doc["state"], "promoted")
        html = self.report("canary")
        self.assertNotIn("Live report", html)
        self.assert_self_contained(html)
        for text in ["reco@2.0", "promote", "Traffic share",
                     "Results per metric", "confidence sequence"]:
            self.assertIn(text, html)
        # the report is kept once the rollout has ended (written within a
        # few seconds, off the decision's transaction), and stays whole
        # when event retention has removed the raw events behind it
        q = ("SELECT count(*) FROM arbiter.experiment_reports r JOIN "
             "arbiter.experiments e ON e.id = r.experiment_id WHERE "
             "e.key = 'canary' AND r.decision_id = (SELECT max(id) FROM "
             "arbiter.decision_log WHERE experiment_id = e.id)")
        deadline = time.time() + 15
        while harness.psql(self.db, q) != "1" and time.time() < deadline:
            time.sleep(0.2)
        self.assertEqual(harness.psql(self.db, q), "1")
        harness.psql(self.db, "DELETE FROM arbiter.events_raw WHERE "
                     "experiment_id = (SELECT id FROM arbiter.experiments "
                     "WHERE key = 'canary')")
        kept = self.report("canary")
        self.assertEqual(kept.count("data-chart="), html.count("data-chart="))
        self.assertEqual(re.findall(r'data-chart="metric_[^"]*" '
                                    r'data-points="(\d+)"', kept),
                         re.findall(r'data-chart="metric_[^"]*" '
                                    r'data-points="(\d+)"', html))
        html = kept
        st, missing = self.c.call("GET", "/v1/experiments/nosuch/report")
        self.assertEqual(st, 404)

        page = os.path.join(ARTIFACTS, "report-canary.html")
        with open(page, "w") as f:
            f.write(html)
        wd = WebDriver()
        try:
            # the console check catches errors (proved on a page with one)
            wd.go("data:text/html,<p>x</p><script>console.error("
                  "'probe-error')</script>")
            probe = wd.console()
            self.assertTrue(any("probe-error" in m["message"]
                                for m in probe), probe)
            wd.go("file://" + page)
            charts = wd.run(CHARTS_JS)
            errors = [m for m in wd.console() if m["level"] == "SEVERE"]
            self.assertEqual(errors, [])
            wd.screenshot(os.path.join(ARTIFACTS, "report-canary.png"))
        finally:
            wd.close()
        names = [c["name"] for c in charts]
        self.assertIn("traffic", names)
        self.assertIn("metric_errors", names)
        self.assertIn("metric_latency", names)
        effects = [n for n in names if n.startswith("effect_")]
        self.assertEqual(sorted(effects),
                         ["effect_errors__next__guardrails_",
                          "effect_latency__next__guardrails_"], names)
        for c in charts:
            self.assertGreater(c["points"], 0, c)
            self.assertGreater(c["drawn"], 0, c)
            self.assertGreater(c["width"], 300, c)
            self.assertGreater(c["height"], 100, c)
        for c in charts:
            if c["name"].startswith("effect_"):
                self.assertGreaterEqual(c["bands"], 1, c)
        self.assertTrue(os.path.getsize(
            os.path.join(ARTIFACTS, "report-canary.png")) > 10000)


if __name__ == "__main__":
    harness.main()
