"""test_exact_rollout.py -- the rollout evidence of a canary recomputed from
the raw events (issue 10, "Must show": "... and the rollout evidence
recomputed independently from the raw events ... equal within 1e-9").

A canary (steps 20 -> 50 -> 100, manual approval) with a binary primary
metric, a binary error guardrail that is also the error_metric, a
`decrease` latency guardrail and an `increase` throughput guardrail (both
harmful directions). Units are
assigned through POST /v1/assign at 20 %, their outcomes posted in ONE
request; the step is approved (50 %), the same units and new ones are
assigned again (units move from stable to the candidate: canaries are not
sticky) and their outcomes posted in ONE more request. Each request is one
transaction, so for the error-count test and the mean guardrails the
leader's looks see exactly two states of the data (S1, S2) and the running
quantities (minimum p over looks) are the minimum over those two states
(binary guardrails: at most that, see the test).

Recomputed from SELECTs of arbiter.events_raw, arbiter.exposure_units and
arbiter.weights_history (never from arm_stats), with the attribution rule
of README "Attribution" (an outcome belongs to the arm that served it;
binary population = exposure arm plus every arm with outcome events; mean
= units with events of the metric in that arm):
  - the error-count test (stats/counts.h; Lindon & Malek 2022, Howard et
    al. 2021): errors = events of error_metric with a nonzero value, per
    arm and per period of constant weights (the weights version in force at
    the event's ts, weights_history.created_at <= ts; periods with a share
    strictly between 0 and 1), mixture e-value
      E = int_0^inf prod_k (theta_k/pi_k)^x_tk ((1-theta_k)/(1-pi_k))^x_ck
          2 N(u; 0, 0.5^2) du,  theta_k = e^u pi_k / (e^u pi_k + 1 - pi_k)
    by scipy.integrate.quad; p = min(1, 1/E);
  - each guardrail's harm test: the one-sided mSPRT (half-normal mixture,
    Howard, Ramdas, McAuliffe & Sekhon 2021, Prop. 6; Johari et al. 2017)
    in the harmful direction at alpha_harm = rollback_alpha / (number of
    harm tests), n* = tuning; binary guardrails with the pooled variance
    p (1 - p) in both arms (score test, core/rollout_eval.c);
  - the non-inferiority test (margin 0) at alpha, per-arm variances;
  - numpy (ddof=1) for means and variances.
"""
import math
import os
import random
import sys
import time
import unittest

import numpy as np
from scipy import integrate as si
from scipy import optimize as so
from scipy import stats as sst

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from service_client import ADMIN, FAST, Client, assign_units  # noqa: E402

KEY = "exact-canary"
GUARDRAILS = {"errors": ("binary", "decrease"),
              "latency": ("mean", "decrease"),
              "thru": ("mean", "increase")}
ROLLBACK_ALPHA, ALPHA, TUNING, TAU = 0.02, 0.05, 5000.0, 0.5


def tol(got, want, rel=1e-9):
    return abs(got - want) <= rel * max(1.0, abs(want))


def msprt_one_sided(eff, V, s2, side, alpha):
    """p of one look, half-normal mixture (stats/msprt.h):
    rho2 = (-2 ln a + ln(1 - 2 ln a)) / n*, r = rho2 s2 / V, z' = +-z,
    LR = 2 Phi(z' sqrt(r/(1+r))) (1+r)^(-1/2) exp(z'^2 r / (2 (1+r)))."""
    rho2 = (-2 * math.log(alpha) + math.log(1 - 2 * math.log(alpha))) / TUNING
    r = rho2 * s2 / V
    z = eff / math.sqrt(V)
    zs = z if side == "greater" else -z
    log_lr = (math.log(2 * sst.norm.cdf(zs * math.sqrt(r / (1 + r))))
              - 0.5 * math.log1p(r) + zs * zs * r / (2 * (1 + r)))
    return min(1.0, math.exp(-log_lr))


def counts_p(periods):
    """The error-count test, side GREATER (the candidate errs more):
    log L(u) = x_t u - sum_k (x_tk + x_ck) ln(1 + pi_k (e^u - 1)), mixed
    over 2 N(0, tau^2) on u > 0; p = min(1, 1/E)."""
    xt = sum(p[2] for p in periods)
    if sum(p[1] + p[2] for p in periods) == 0:
        return 1.0

    def log_f(u):
        ll = xt * u - sum((c + t) * math.log1p(pi * math.expm1(u))
                          for pi, c, t in periods)
        return ll + math.log(2) + sst.norm.logpdf(u, 0, TAU)
    # the prior 2 N(0, 0.5^2) is below e^-800 past u = 20: integrate there
    opt = so.minimize_scalar(lambda u: -log_f(u), bounds=(0, 20),
                             method="bounded", options={"xatol": 1e-12})
    mode, peak = opt.x, log_f(opt.x)
    v = 0.0
    for lo, hi in ((0, mode), (mode, 20)):
        if hi > lo:
            v += si.quad(lambda u: math.exp(log_f(u) - peak), lo, hi,
                         epsabs=0, epsrel=1e-13, limit=500)[0]
    log_e = peak + math.log(v)
    return min(1.0, math.exp(-log_e))


class CanaryEvidenceExact(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = harness.fresh_database("e2e_exact_rollout")
        cls.server = harness.Server(cls.url, env=FAST).start()
        cls.c = Client(cls.server.port)
        doc = {"key": KEY, "strategy": "canary",
               "arms": [{"name": "stable", "weight": 100, "control": True},
                        {"name": "next", "weight": 0}],
               "metrics": [{"name": n, "kind": k, "direction": d,
                            "role": "guardrail"}
                           for n, (k, d) in GUARDRAILS.items()] +
               [{"name": "conv", "kind": "binary", "direction": "increase",
                 "role": "primary"}],
               "rollout": {"steps": [20, 50, 100], "step_min_s": 1,
                           "step_min_units": 10, "manual_approval": True,
                           "error_metric": "errors"}}
        st, ans = cls.c.call("POST", "/v1/experiments", doc, token=ADMIN)
        assert st == 201, ans
        st, ans = cls.c.call("POST", "/v1/experiments/%s/start" % KEY,
                             token=ADMIN)
        assert st == 200, ans
        cls.rng = random.Random(77)
        cls.states = []          # the raw events after each phase
        units = ["c%d" % i for i in range(1200)]
        served = cls.assign(units)
        cls.first = dict(served)
        cls.post([e for u in units for e in cls.outcomes(u, served[u])])
        cls.states.append(cls.wait_for_look())
        # the next step, once approved
        deadline = time.time() + 30
        while time.time() < deadline:
            cls.c.call("POST", "/v1/experiments/%s/approve" % KEY, {},
                       token=ADMIN)
            st, d = cls.c.call("GET", "/v1/experiments/" + KEY, token=ADMIN)
            if {a["name"]: a["weight"] for a in d["arms"]}["next"] == 50:
                break
            time.sleep(0.2)
        assert {a["name"]: a["weight"] for a in d["arms"]}["next"] == 50, d
        new = ["d%d" % i for i in range(400)]
        served = cls.assign(units + new)
        for u in new:
            cls.first[u] = served[u]
        cls.moved = [u for u in units if served[u] != cls.first[u]]
        assert len(cls.moved) > 200, len(cls.moved)
        cls.post([e for u in units + new for e in cls.outcomes(u, served[u])])
        cls.states.append(cls.wait_for_look())
        cls.evidence = cls.states[-1]["evidence"]

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        cls.server.stop()

    @classmethod
    def assign(cls, units):
        return assign_units(cls.c, KEY, units)

    @classmethod
    def outcomes(cls, u, arm):
        """A harmless candidate: the same error rate and latency."""
        rng, out = cls.rng, []
        for _ in range(rng.randint(1, 3)):        # requests: 1 failed, 0 not
            out.append(("errors", 1.0 if rng.random() < 0.03 else 0.0))
        for _ in range(rng.randint(1, 2)):
            out.append(("latency", round(rng.gauss(100, 15), 4)))
        out.append(("thru", round(rng.gauss(50, 8), 4)))
        out.append(("conv", 1.0 if rng.random() < 0.2 else 0.0))
        return [{"experiment": KEY, "unit": u, "metric": m, "value": v}
                for m, v in out]

    @classmethod
    def post(cls, evs):
        assert len(evs) <= 10000, len(evs)   # one request, one transaction
        st, ans = cls.c.call("POST", "/v1/events", evs)
        assert st == 202 and ans["accepted"] == len(evs), ans

    @classmethod
    def read_raw(cls):
        out = harness.psql(
            cls.url, "SELECT r.unit, r.arm, r.metric, r.value, "
            "(SELECT max(h.weights_version) FROM arbiter.weights_history h "
            " WHERE h.experiment_id = r.experiment_id AND h.created_at <= "
            " r.ts) FROM arbiter.events_raw r JOIN arbiter.experiments e "
            "ON e.id = r.experiment_id WHERE e.key = '%s'" % KEY)
        rows = []
        for line in out.splitlines():
            u, a, m, v, w = line.split("|")
            rows.append((u, a, m, float(v), int(w)))
        return rows

    @classmethod
    def wait_for_look(cls):
        """The raw events, the exposures and the weights now, once the
        leader's evidence has looked at all of them (its error counts
        include every stored error)."""
        raw = cls.read_raw()
        errors = sum(1 for r in raw if r[2] == "errors" and r[3] != 0)
        deadline = time.time() + 60
        ev = None
        while time.time() < deadline:
            st, res = cls.c.call("GET", "/v1/experiments/%s/results" % KEY,
                                 token=ADMIN)
            assert st == 200, res
            ev = (res.get("rollout") or {}).get("evidence") or {}
            e = ev.get("errors")
            if e and e["errors_control"] + e["errors_candidate"] >= errors \
                    and len(ev.get("guardrails", [])) == 3:
                time.sleep(1.0)      # a few more ticks on the same data
                st, res = cls.c.call("GET", "/v1/experiments/%s/results"
                                     % KEY, token=ADMIN)
                ev = res["rollout"]["evidence"]
                break
            time.sleep(0.2)
        assert ev and ev.get("errors"), ev
        exposed, exposed_version = {}, {}
        for line in harness.psql(
                cls.url, "SELECT x.unit, x.arm, x.weights_version FROM "
                "arbiter.exposure_units x JOIN arbiter.experiments e ON "
                "e.id = x.experiment_id WHERE e.key = '%s'" % KEY
                ).splitlines():
            u, a, v = line.split("|")
            exposed[u] = a
            exposed_version[u] = int(v)
        weights = {}
        for line in harness.psql(
                cls.url, "SELECT h.weights_version, "
                "coalesce((h.weights->>'next')::float8, 0) / 100.0 FROM "
                "arbiter.weights_history h JOIN arbiter.experiments e ON "
                "e.id = h.experiment_id WHERE e.key = '%s'" % KEY
                ).splitlines():
            v, s = line.split("|")
            weights[int(v)] = float(s)
        return {"raw": raw, "exposed": exposed, "weights": weights,
                "exposed_version": exposed_version, "evidence": ev}

    def close(self, got, want, what, rel=1e-9):
        self.assertIsNotNone(got, what)
        self.assertTrue(tol(got, want, rel),
                        "%s: got %r want %r" % (what, got, want))

    # ---- the reference ---------------------------------------------------
    @staticmethod
    def error_periods(state):
        """[(share_t, errors_c, errors_t)] per weights version with
        0 < share < 1; an error is an event with a nonzero value."""
        per = {}
        for u, a, m, v, w in state["raw"]:
            if m != "errors" or v == 0:
                continue
            c, t = per.get(w, (0, 0))
            per[w] = (c + (a == "stable"), t + (a == "next"))
        return [(state["weights"][w], c, t) for w, (c, t) in sorted(
            per.items()) if 0 < state["weights"][w] < 1]

    @staticmethod
    def per_unit(state, metric, kind=None):
        """{arm: per-unit values} under the attribution rule."""
        kind = kind or {**GUARDRAILS, "conv": ("binary", None)}[metric][0]
        pop = {"stable": set(), "next": set()}
        for u, a in state["exposed"].items():
            pop[a].add(u)
        s, n = {}, {}
        for u, a, m, v, _ in state["raw"]:
            pop[a].add(u)
            if m == metric:
                s[(u, a)] = s.get((u, a), 0.0) + v
                n[(u, a)] = n.get((u, a), 0) + 1
        out = {}
        for a, units in pop.items():
            if kind == "binary":
                out[a] = np.array([1.0 if s.get((u, a), 0) > 0 else 0.0
                                   for u in sorted(units)])
            else:
                out[a] = np.array([s[(u, a)] / n[(u, a)]
                                   for u in sorted(units) if (u, a) in n])
        return out

    def harm(self, state, metric):
        """Effect, se, control mean and the harm test's p at one look."""
        kind, direction = GUARDRAILS[metric]
        y = self.per_unit(state, metric)
        c, t = y["stable"], y["next"]
        nc, nt = len(c), len(t)
        vc, vt = c.var(ddof=1), t.var(ddof=1)
        if kind == "binary":      # pooled p (1 - p) in both arms
            p = (c.sum() + t.sum()) / (nc + nt)
            vc = vt = p * (1 - p)
        eff = t.mean() - c.mean()
        V = vc / nc + vt / nt
        side = "greater" if direction == "decrease" else "less"
        n_tests = len(GUARDRAILS) + 2   # + the error test, a worse primary
        p_harm = msprt_one_sided(eff, V, vc + vt, side,
                                 ROLLBACK_ALPHA / n_tests)
        # non-inferiority at margin 0: per-arm variances, the good side
        vc2, vt2 = c.var(ddof=1), t.var(ddof=1)
        p_safe = msprt_one_sided(eff, vc2 / nc + vt2 / nt, vc2 + vt2,
                                 "less" if direction == "decrease"
                                 else "greater", ALPHA)
        return eff, math.sqrt(V), c.mean(), p_harm, p_safe

    # ---- the tests -------------------------------------------------------
    def test_units_of_the_evidence(self):
        """Units behind the evidence: total = exposed units; the SRM check
        counts units first exposed under the weights in force, per arm;
        the plan's units per arm = each metric's n (the rule above)."""
        st = self.states[-1]
        ev = self.evidence
        self.assertEqual(ev["total_units"], len(st["exposed"]))
        now = max(st["weights"])
        want = {}
        for u, a in st["exposed"].items():
            if st["exposed_version"][u] == now:
                want[a] = want.get(a, 0) + 1
        self.assertEqual(ev["srm"]["units"], want)
        plans = {p["metric"]: p for p in ev["plan"]["metrics"]}
        self.assertTrue(plans, ev["plan"])
        for metric, p in plans.items():
            y = self.per_unit(st, metric)
            self.assertEqual((p["have_control"], p["have_candidate"]),
                             (len(y["stable"]), len(y["next"])), metric)


    def test_moved_units_outcomes_follow_the_served_arm(self):
        """The second phase's events of moved units name the candidate."""
        raw = self.states[-1]["raw"]
        moved = set(self.moved)
        last = max(self.states[-1]["weights"])
        arms = {a for u, a, _, _, w in raw if u in moved and w == last}
        self.assertEqual(arms, {"next"})

    def test_error_test_from_the_raw_events(self):
        ev = self.evidence["errors"]
        final = self.error_periods(self.states[-1])
        self.assertEqual(len(final), 2, final)   # the 20 % and 50 % steps
        self.assertEqual(ev["errors_control"], sum(c for _, c, _ in final))
        self.assertEqual(ev["errors_candidate"], sum(t for _, _, t in final))
        p = [counts_p(self.error_periods(s)) for s in self.states]
        self.close(ev["p_value"], p[-1], "error test p (this look)")
        self.close(ev["p_running"], min(p), "error test p (running)")

    def test_primary_test_from_the_raw_events(self):
        """The primary metric (binary): the two-sided mSPRT at alpha with
        the pooled variance (core/rollout_eval.c); p running is at most
        this look's (exposures before events, as for binary guardrails)."""
        lines = self.evidence["primary"]
        self.assertEqual([g["metric"] for g in lines], ["conv"])
        g = lines[0]
        ps = []
        for st in self.states:
            y = self.per_unit(st, "conv", "binary")
            c, t = y["stable"], y["next"]
            p = (c.sum() + t.sum()) / (len(c) + len(t))
            v = p * (1 - p)
            V = v / len(c) + v / len(t)
            eff = t.mean() - c.mean()
            rho2 = (-2 * math.log(ALPHA) +
                    math.log(1 - 2 * math.log(ALPHA))) / TUNING
            r = rho2 * 2 * v / V
            z = eff / math.sqrt(V)
            ps.append(min(1.0, math.exp(0.5 * math.log1p(r) -
                                        z * z * r / (2 * (1 + r)))))
        self.close(g["effect"], eff, "primary effect")
        self.close(g["se"], math.sqrt(V), "primary se")
        self.close(g["control_mean"], c.mean(), "primary control mean")
        self.assertLessEqual(g["p_running"], min(ps) * (1 + 1e-9))

    def test_guardrail_harm_tests_from_the_raw_events(self):
        lines = {g["metric"]: g for g in self.evidence["guardrails"]}
        self.assertEqual(set(lines), set(GUARDRAILS))
        self.close(self.evidence["alpha_harm"],
                   ROLLBACK_ALPHA / (len(GUARDRAILS) + 2), "alpha_harm")
        for metric in GUARDRAILS:
            looks = [self.harm(s, metric) for s in self.states]
            eff, se, mc, _, _ = looks[-1]
            g = lines[metric]
            self.close(g["effect"], eff, (metric, "effect"))
            self.close(g["se"], se, (metric, "se"))
            self.close(g["control_mean"], mc, (metric, "control mean"))
            self.assertEqual(g["p_running"], g["p_harm_running"])
            for k, name in ((3, "p_harm_running"), (4, "p_safe_running")):
                want = min(x[k] for x in looks)
                if GUARDRAILS[metric][0] == "binary":
                    # n of a binary metric counts exposed units, and units
                    # are exposed when assigned, before their events are
                    # posted: the leader also looks at states between S1
                    # and S2, so the running minimum is at most ours
                    self.assertLessEqual(g[name], want * (1 + 1e-9),
                                         (metric, name))
                else:
                    self.close(g[name], want, (metric, name))
            self.assertNotEqual(g["verdict"], "harm", g)


if __name__ == "__main__":
    harness.main()
