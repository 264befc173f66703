"""test_exact_every_kind.py -- the end-to-end exactness suite of issue 10
("Must show"): ONE experiment with every metric kind (binary, sum, mean,
ratio, quantile) and covariates, units assigned through POST /v1/assign,
events with duplicates (client ids posted twice, in one batch and in a
later one), explicit arms (the served one, and for a few units another),
units moved by a change of weights (a ramp of a non-sticky experiment),
and units with covariate (pre-period) events only. Every number of
arbiter.arm_stats and of GET /results (welch, z, msprt, bayes; absolute
and relative; guardrails in both directions) is recomputed here from the
raw events (SELECT from arbiter.events_raw and arbiter.exposure_units,
never from arm_stats) and must agree within 1e-9 (integrals as in
tests/oracle/test_stats_bayes.py: the Beta-Binomial credible interval and
risks within 1e-7, the normal model's risks within 1e-8).

The attribution rule (README "Attribution", issue 10 item 4):
  - an outcome belongs to the arm that served the unit when it happened;
    a non-sticky event without "arm" is named by the server from the
    weights in force; an explicit "arm" is kept;
  - binary and sum metrics (n = population): a unit belongs to every arm
    it was served in: its exposure's arm plus every arm it has outcome
    events in (events of a declared, analysed metric); mean and ratio: the
    units with events of the metric in that arm;
  - units with covariate events only are not exposed and in no population.
Per-unit values per (unit, arm), core/metric_kind.h:
  binary y = [sum of values > 0]; sum y = sum of values (0 without);
  mean y = mean of values; ratio: num = sum of values, den = number of
  events; covariate x = sum of the unit's covariate events in that arm
  (0 without).
References, written beside the values:
  means, variances: numpy (ddof=1);
  welch: scipy.stats.ttest_ind(equal_var=False) p-values and
    Welch-Satterthwaite df (Welch 1947);
  z on a binary metric: statsmodels proportions_ztest (pooled statistic)
    and confint_proportions_2indep(method="wald") interval (Agresti 2013);
  relative effects: delta method (Deng, Knoblich & Lu 2018), formulas below;
  ratio metrics: per-unit linearisation (Deng et al. 2018);
  CUPED: theta from statsmodels OLS y ~ arm + x (the pooled within-arm
    slope; Deng, Xu, Kohavi & Walker 2013);
  msprt: normal mixture (Johari, Pekelis & Walsh 2017), one-sided
    half-normal mixture for guardrails (Howard et al. 2021);
  bayes: normal posterior (flat prior) via scipy.stats.norm; binary:
    Beta(1+x, 1+n-x) per arm, chance to win by Miller's closed-form sum,
    posterior mean and credible interval by scipy quad/brentq
    (tests/oracle/test_stats_bayes.py);
  quantile: DDSketch buckets (Masson et al. 2019) of the sorted raw values,
    rank ceil(q n), Price & Bonett 2002 order-statistic standard errors
    (stats/quantile.h), scipy.stats.norm.ppf.
"""
import math
import os
import random
import sys
import unittest

import numpy as np
from scipy import stats as sst
import statsmodels.api as sm
from statsmodels.stats.proportion import (confint_proportions_2indep,
                                          proportions_ztest)

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "oracle"))
sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from service_client import ADMIN, Client, assign_units  # noqa: E402
from test_stats_bayes import (diff_quantile, bpdf, window,  # noqa: E402
                              expected_loss, miller_prob_b_beats_a)

KEY = "every-kind"
ARMS = ("control", "treatment")
METRICS = {
    # name: (kind, direction, role, covariate)
    "conv": ("binary", "increase", "primary", None),
    "errs": ("binary", "decrease", "guardrail", None),
    "rev": ("sum", "increase", "secondary", "pre_rev"),
    "latency": ("mean", "decrease", "guardrail", "pre_lat"),
    "thru": ("mean", "increase", "guardrail", None),
    "ctr": ("ratio", "increase", "secondary", None),
    "resp": ("quantile", "decrease", "secondary", None),
}
Q = 0.9
COVARIATES = ("pre_rev", "pre_lat")
ALPHA = 0.05
N_STAR = 5000.0


def tol(got, want, rel=1e-9):
    return abs(got - want) <= rel * max(1.0, abs(want))


# ---- reference formulas ------------------------------------------------------

def welch_df(vc, nc, vt, nt):
    """Welch-Satterthwaite degrees of freedom (Welch 1947)."""
    a, b = vc / nc, vt / nt
    return (a + b) ** 2 / (a * a / (nc - 1) + b * b / (nt - 1))


def p_of(stat, dist, side):
    if side == "two-sided":
        return 2 * dist.sf(abs(stat))
    return dist.sf(stat) if side == "greater" else dist.cdf(stat)


def msprt_p(eff, V, s2, side):
    """Always-valid p of one look: normal mixture N(0, rho2 s2 / n...),
    r = rho2 s2 / V (Johari et al. 2017; two-sided), half-normal mixture for
    one side (Howard et al. 2021, Prop. 6): LR = 2 Phi(z' sqrt(r/(1+r)))
    (1+r)^(-1/2) exp(z'^2 r / (2 (1+r))), z' = z (greater) or -z (less)."""
    rho2 = (-2 * math.log(ALPHA) + math.log(1 - 2 * math.log(ALPHA))) / N_STAR
    r = rho2 * s2 / V
    z = eff / math.sqrt(V)
    if side == "two-sided":
        log_lr = -0.5 * math.log1p(r) + z * z * r / (2 * (1 + r))
    else:
        zs = z if side == "greater" else -z
        log_lr = (math.log(2 * sst.norm.cdf(zs * math.sqrt(r / (1 + r))))
                  - 0.5 * math.log1p(r) + zs * zs * r / (2 * (1 + r)))
    return min(1.0, math.exp(-log_lr))


GAMMA = (1 + 0.01) / (1 - 0.01)      # DDSketch, relative accuracy 1 %
LN_GAMMA = math.log(GAMMA)


def bucket(x):
    """DDSketch index ceil(ln x / ln gamma) (stats/ddsketch.c)."""
    return math.ceil(math.log(x) / LN_GAMMA)


def sketch_rank(sorted_x, r):
    """(representative, lower edge, upper edge) of the r-th smallest value's
    bucket: 2 gamma^i / (gamma + 1), gamma^(i-1), gamma^i."""
    i = bucket(sorted_x[int(r) - 1])
    return (2 * math.exp(i * LN_GAMMA) / (GAMMA + 1),
            math.exp((i - 1) * LN_GAMMA), math.exp(i * LN_GAMMA))


def quantile_arm_fixed(x, q):
    """Point, sketch bounds and Price-Bonett standard error of one arm
    (stats/quantile.h: h = z0 sqrt(n q (1-q)), l = floor(nq - h),
    u = ceil(nq + h) + 1, se = sqrt(q(1-q)/n) n (X_(u) - X_(l)) / (u - l),
    the spread widened to the bucket edges)."""
    x = sorted(x)
    n = len(x)
    h = sst.norm.ppf(0.975) * math.sqrt(n * q * (1 - q))
    lo, hi = math.floor(n * q - h), math.ceil(n * q + h) + 1
    assert lo >= 1 and hi <= n, (n, lo, hi)
    k = max(1, math.ceil(q * n))
    point, low, high = sketch_rank(x, k)
    spread = sketch_rank(x, hi)[2] - sketch_rank(x, lo)[1]
    se = math.sqrt(q * (1 - q) / n) * n * spread / (hi - lo)
    return point, low, high, se


def quantile_arm_cs(x, q, alpha, r=N_STAR):
    """Always-valid bounds on one arm's Q(q) (stats/quantile.h; Howard &
    Ramdas 2022, sec. 3): the counts s where the beta-binomial mixture
    ln M_t(s) = ln B(q r + s, (1-q) r + t - s) - ln B(q r, (1-q) r)
    - s ln q - (t - s) ln(1 - q) stays below ln(1/alpha) (scipy betaln,
    every s scanned), [s_lo, s_hi]; Q(q) in (edge below X_(s_lo), edge
    above X_(s_hi + 1)]."""
    from scipy.special import betaln
    x = sorted(x)
    t = len(x)
    s = np.arange(t + 1, dtype=float)
    lm = (betaln(q * r + s, (1 - q) * r + t - s) - betaln(q * r, (1 - q) * r)
          - s * math.log(q) - (t - s) * math.log1p(-q))
    inside = np.nonzero(lm < math.log(1 / alpha))[0]
    s_lo, s_hi = int(inside[0]), int(inside[-1])
    low = sketch_rank(x, s_lo)[1] if s_lo >= 1 else 0.0
    high = sketch_rank(x, s_hi + 1)[2] if s_hi + 1 <= t else math.inf
    return low, high


# ---- the experiment ----------------------------------------------------------

class EveryKindExact(unittest.TestCase):
    EXPLICIT_OTHER = ("u3", "u5", "u8")   # an explicit arm not served

    @classmethod
    def setUpClass(cls):
        cls.url = harness.fresh_database("e2e_exact_every_kind")
        # no rollout decision during the test: the engine would stop this
        # A/B (its guardrails are harmed on purpose) and a stopped
        # experiment serves everyone the control, so the outcomes of units
        # moved by the new weights would stop naming the arm they saw
        cls.server = harness.Server(
            cls.url, env={"ARBITER_DECISION_TICK_MS": "3600000"}).start()
        cls.c = Client(cls.server.port)
        metrics = []
        for name, (kind, direction, role, cov) in METRICS.items():
            m = {"name": name, "kind": kind, "direction": direction,
                 "role": role}
            if cov:
                m["covariate"] = cov
            if kind == "quantile":
                m["q"] = Q
            metrics.append(m)
        doc = {"key": KEY, "strategy": "ab",
               "arms": [{"name": "control", "weight": 50, "control": True},
                        {"name": "treatment", "weight": 50}],
               "metrics": metrics, "rollout": {"auto_promote": False}}
        st, ans = cls.c.call("POST", "/v1/experiments", doc, token=ADMIN)
        assert st == 201, ans
        assert ans["sticky"] is False, ans
        st, ans = cls.c.call("POST", "/v1/experiments/%s/start" % KEY,
                             token=ADMIN)
        assert st == 200, ans
        cls.rng = random.Random(1010)
        cls.log = []             # (id, unit, arm, metric, value): sent once
        cls.first = {}           # unit -> arm of its first exposure
        cls.latent = {}
        cls.n_ids = 0
        cls.dups_sent = 0
        units = ["u%d" % i for i in range(600)]
        served = cls.assign(units)
        cls.first.update(served)
        batch = []
        for u in units:          # pre-period covariates, then outcomes
            z = cls.rng.gauss(0, 1)
            cls.latent[u] = z
            batch += cls.event(u, served[u], "pre_rev",
                               round(max(0.0, 10 + 4 * z +
                                         cls.rng.gauss(0, 3)), 4))
            batch += cls.event(u, served[u], "pre_lat",
                               round(100 + 8 * z + cls.rng.gauss(0, 5), 4))
            batch += cls.outcomes(u, served[u])
        # explicit arms: the served one for u1..u20, another for u3, u5, u8
        for i in range(1, 21):
            u = "u%d" % i
            batch += cls.event(u, served[u], "thru",
                               round(cls.rng.gauss(50, 8), 4), explicit=True)
        cls.explicit_other = list(cls.EXPLICIT_OTHER)
        for u in cls.explicit_other:
            other = [a for a in ARMS if a != served[u]][0]
            batch += cls.event(u, other, "conv", 1.0, explicit=True)
            batch += cls.event(u, other, "rev", 7.5, explicit=True)
        # duplicates inside one batch: the same id twice
        dup_in_batch = [dict(e) for e in cls.rng.sample(batch, 25)]
        cls.post(batch + dup_in_batch, dups=len(dup_in_batch))
        # duplicates in a later batch: ids already stored
        cls.post([dict(e) for e in cls.rng.sample(batch, 150)], dups=150)
        # the weights change (a ramp): units move from control to treatment
        arms = [{"name": "control", "weight": 20, "control": True},
                {"name": "treatment", "weight": 80}]
        st, ans = cls.c.call("PATCH", "/v1/experiments/" + KEY,
                             {"arms": arms}, token=ADMIN)
        assert st == 200 and ans["weights_version"] == 2, ans
        new = ["v%d" % i for i in range(200)]
        served = cls.assign(units + new)
        for u in new:
            cls.first[u] = served[u]
            cls.latent[u] = cls.rng.gauss(0, 1)
        cls.moved = sorted(u for u in units if served[u] != cls.first[u])
        assert len(cls.moved) > 100, len(cls.moved)
        batch = []
        for u in units + new:
            batch += cls.outcomes(u, served[u])
        cls.post(batch)
        # units with covariate events only, never assigned
        cls.pre_only = ["p%d" % i for i in range(25)]
        batch = []
        for i, u in enumerate(cls.pre_only):
            batch += cls.event(u, None, "pre_rev", 5.0 + i)
            batch += cls.event(u, None, "pre_lat", 90.0 + i)
        cls.post(batch)
        # GET /results folds what is committed (README, "reads its
        # writes"): arm_stats and the exposures the fold records are then
        # complete
        st, ans = cls.c.call("GET", "/v1/experiments/%s/results" % KEY,
                             token=ADMIN)
        assert st == 200, ans
        cls.raw = cls.read_raw()
        cls.exposed = cls.read_exposures()
        cls.res = {}

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        cls.server.stop()

    # ---- driving the server ------------------------------------------------
    @classmethod
    def assign(cls, units):
        return assign_units(cls.c, KEY, units)

    @classmethod
    def event(cls, unit, arm, metric, value, explicit=False):
        cls.n_ids += 1
        eid = "e%d" % cls.n_ids
        ev = {"id": eid, "experiment": KEY, "unit": unit, "metric": metric,
              "value": value}
        if explicit:
            ev["arm"] = arm
        cls.log.append((eid, unit, arm, metric, value))
        return [ev]

    @classmethod
    def outcomes(cls, u, arm):
        """One visit's outcomes; the treatment converts more, errs more, is
        slower and has a longer tail."""
        rng, t, z = cls.rng, arm == "treatment", cls.latent[u]
        out = []
        out += cls.event(u, arm, "conv",
                         1.0 if rng.random() < (0.26 if t else 0.2) else 0.0)
        for _ in range(rng.randint(1, 3)):
            out += cls.event(u, arm, "errs", 1.0 if rng.random() <
                             (0.08 if t else 0.05) else 0.0)
        for _ in range(rng.randint(0, 2)):
            out += cls.event(u, arm, "rev", round(rng.uniform(0, 30) +
                                                  3 * z + 9, 4))
        if rng.random() < 0.9:
            for _ in range(rng.randint(1, 3)):
                out += cls.event(u, arm, "latency", round(
                    (104 if t else 100) + 8 * z + rng.gauss(0, 10), 4))
        out += cls.event(u, arm, "thru", round(rng.gauss(48 if t else 50, 8),
                                               4))
        for _ in range(rng.randint(1, 4)):
            out += cls.event(u, arm, "ctr", 1.0 if rng.random() <
                             (0.12 if t else 0.1) else 0.0)
        for _ in range(rng.randint(2, 5)):
            out += cls.event(u, arm, "resp", round(
                rng.lognormvariate(math.log(110 if t else 100), 0.4), 4))
        return out

    @classmethod
    def post(cls, evs, dups=0):
        for k in range(0, len(evs), 5000):
            part = evs[k:k + 5000]
            st, ans = cls.c.call("POST", "/v1/events", part)
            assert st == 202, ans
            assert not ans["rejected"], ans["rejected"][:3]
            cls.dups_sent += ans["duplicates"]
        cls.dups_expected = getattr(cls, "dups_expected", 0) + dups

    @classmethod
    def read_raw(cls):
        out = harness.psql(
            cls.url, "SELECT r.event_id, r.unit, r.arm, r.metric, r.value "
            "FROM arbiter.events_raw r JOIN arbiter.experiments e "
            "ON e.id = r.experiment_id WHERE e.key = '%s'" % KEY)
        rows = []
        for line in out.splitlines():
            eid, unit, arm, metric, value = line.split("|")
            rows.append((eid, unit, arm, metric, float(value)))
        return rows

    @classmethod
    def read_exposures(cls):
        out = harness.psql(
            cls.url, "SELECT x.unit, x.arm FROM arbiter.exposure_units x "
            "JOIN arbiter.experiments e ON e.id = x.experiment_id "
            "WHERE e.key = '%s'" % KEY)
        return dict(line.split("|") for line in out.splitlines())

    def results(self, method, effect):
        k = (method, effect)
        if k not in self.res:
            st, res = self.c.call(
                "GET", "/v1/experiments/%s/results?method=%s&effect=%s"
                % (KEY, method, effect), token=ADMIN)
            self.assertEqual(st, 200, res)
            self.res[k] = res
        return {m["name"]: m for m in self.res[k]["metrics"]}

    def close(self, got, want, what, rel=1e-9):
        self.assertIsNotNone(got, what)
        self.assertTrue(tol(got, want, rel),
                        "%s: got %r want %r" % (what, got, want))

    # ---- the reference, from the raw events ---------------------------------
    def populations(self):
        """{arm: set of units}: exposure arm plus every arm with an outcome
        event; a unit whose events are all covariate events is in none."""
        pop = {a: set() for a in ARMS}
        outcome = {u for _, u, _, m, _ in self.raw if m in METRICS}
        covariate_only = {u for _, u, _, m, _ in self.raw
                          if m in COVARIATES} - outcome
        for u, a in self.exposed.items():
            if u not in covariate_only:
                pop[a].add(u)
        for _, u, a, m, _ in self.raw:
            if m in METRICS:
                pop[a].add(u)
        return pop

    def per_unit(self, metric):
        """{arm: dict of arrays y, x (covariate), num, den} over the arm's
        analysis population (core/metric_kind.h)."""
        kind, _, _, cov = METRICS[metric]
        cnt, s, x = {}, {}, {}
        for _, u, a, m, v in self.raw:
            if m == metric:
                cnt[(u, a)] = cnt.get((u, a), 0) + 1
                s[(u, a)] = s.get((u, a), 0.0) + v
            if m == cov:
                x[(u, a)] = x.get((u, a), 0.0) + v
        pop = self.populations()
        out = {}
        for a in ARMS:
            ys, xs, num, den = [], [], [], []
            for u in sorted(pop[a]):
                k = (u, a)
                if kind in ("mean", "ratio") and k not in cnt:
                    continue
                if kind == "binary":
                    y = 1.0 if s.get(k, 0.0) > 0 else 0.0
                elif kind == "sum":
                    y = s.get(k, 0.0)
                elif kind == "mean":
                    y = s[k] / cnt[k]
                else:
                    y = s[k]
                ys.append(y)
                xs.append(x.get(k, 0.0))
                num.append(s.get(k, 0.0))
                den.append(float(cnt.get(k, 0)))
            out[a] = {"y": np.array(ys), "x": np.array(xs),
                      "num": np.array(num), "den": np.array(den)}
        return out

    def cuped(self, metric):
        """theta (statsmodels OLS y ~ arm + x), the adjusted arm summaries
        and each arm's cov(y', y)."""
        arms = self.per_unit(metric)
        y = np.concatenate([arms[a]["y"] for a in ARMS])
        x = np.concatenate([arms[a]["x"] for a in ARMS])
        d = np.concatenate([np.full(len(arms[a]["y"]), i)
                            for i, a in enumerate(ARMS)])
        fit = sm.OLS(y, np.column_stack([np.ones_like(y), d, x])).fit()
        theta = fit.params[2]
        xbar = x.mean()
        out = {}
        for a in ARMS:
            ya, xa = arms[a]["y"], arms[a]["x"]
            adj = ya - theta * (xa - xbar)
            out[a] = {"n": len(adj), "m": adj.mean(), "v": adj.var(ddof=1),
                      "raw_m": ya.mean(), "raw_v": ya.var(ddof=1),
                      "cov": np.cov(adj, ya, ddof=1)[0, 1]}
        return theta, out

    def summaries(self, metric):
        """{arm: (n, mean, var)} the analysis compares (CUPED-adjusted when
        the metric has a covariate; ratio by linearisation)."""
        kind, _, _, cov = METRICS[metric]
        if cov:
            return self.cuped(metric)[1]
        out = {}
        for a, d in self.per_unit(metric).items():
            n = len(d["y"])
            if kind == "ratio":
                # delta method: R = sum num / sum den, var of the linearised
                # per-unit value (num - R den) / mean(den) (Deng et al. 2018)
                r = d["num"].sum() / d["den"].sum()
                lin = (d["num"] - r * d["den"]) / d["den"].mean()
                out[a] = {"n": n, "m": r, "v": lin.var(ddof=1)}
            else:
                out[a] = {"n": n, "m": d["y"].mean(), "v": d["y"].var(ddof=1)}
        return out

    def side_of(self, metric, method):
        _, direction, role, _ = METRICS[metric]
        if role != "guardrail" or method == "bayes":
            return "two-sided"
        return "greater" if direction == "decrease" else "less"

    def effect_se(self, metric, relative):
        """Estimate and standard error of treatment vs control (normal
        pivot): absolute m_t - m_c, se^2 = v_t/n_t + v_c/n_c; relative
        m_t/m_c - 1 by the delta method, se^2 = (V_d - 2 L cov + L^2 V_c)
        / m_c^2 with L = the lift, V_c = v_c/n_c and cov = Cov(d, m_c)
        = -v_c/n_c (CUPED: -cov(y'_c, y_c)/n_c, on the raw control mean)."""
        s = self.summaries(metric)
        c, t = s["control"], s["treatment"]
        d = t["m"] - c["m"]
        vd = t["v"] / t["n"] + c["v"] / c["n"]
        if not relative:
            return d, math.sqrt(vd)
        if "raw_m" in c:
            mc, vmc, cov = c["raw_m"], c["raw_v"] / c["n"], -c["cov"] / c["n"]
        else:
            mc, vmc, cov = c["m"], c["v"] / c["n"], -c["v"] / c["n"]
        lift = d / mc
        return lift, math.sqrt((vd - 2 * lift * cov + lift * lift * vmc) /
                               (mc * mc))

    # ---- what was stored -------------------------------------------------
    def test_raw_events_are_the_events_served_once(self):
        """events_raw holds each client id once (duplicates dropped), with
        the arm that served the unit when it happened (or the explicit
        one) -- the named arm of a moved unit is its new arm."""
        self.assertEqual(self.dups_sent, self.dups_expected)
        want = sorted((eid, u, a, m, v) for eid, u, a, m, v in self.log
                      if u not in self.pre_only)
        got = sorted(r for r in self.raw if r[1] not in self.pre_only)
        self.assertEqual(len(got), len(want))
        wrong = [(g, w) for g, w in zip(got, want) if g != w]
        self.assertEqual(wrong[:5], [], "%d events differ" % len(wrong))
        self.assertEqual(len([r for r in self.raw if r[1] in self.pre_only]),
                         2 * len(self.pre_only))

    def test_exposures_are_the_assigned_units(self):
        """exposure_units: every assigned unit with its first arm; no unit
        with covariate events only."""
        self.assertEqual(self.exposed, self.first)

    def test_arm_stats_every_number(self):
        """Every column of arbiter.arm_stats against the raw events."""
        out = harness.psql(
            self.url, "SELECT metric, arm, n, units_with_events, sum, sum_sq,"
            " den_sum, den_sum_sq, cross_sum, pre_sum, pre_sum_sq, "
            "pre_cross_sum, exposed_units, moved_units FROM arbiter.arm_stats "
            "WHERE experiment = '%s'" % KEY)
        rows = {}
        for line in out.splitlines():
            f = line.split("|")
            rows[(f[0], f[1])] = [float(v) for v in f[2:]]
        pop = self.populations()
        exposed = {a: {u for u in pop[a] if self.exposed.get(u) == a}
                   for a in ARMS}
        for metric, (kind, _, _, cov) in METRICS.items():
            if kind == "quantile":
                continue
            for a, d in self.per_unit(metric).items():
                got = rows[(metric, a)]
                what = (metric, a)
                # exposed(A), and the members moved in: pop(A) - exposed(A)
                self.assertEqual(int(got[10]), len(exposed[a]),
                                 what + ("exposed_units",))
                self.assertEqual(int(got[11]), len(pop[a] - exposed[a]),
                                 what + ("moved_units",))
                self.assertEqual(int(got[0]), len(d["y"]), what + ("n",))
                self.assertEqual(int(got[1]), int((d["den"] > 0).sum()),
                                 what + ("units_with_events",))
                y = d["num"] if kind == "ratio" else d["y"]
                self.close(got[2], y.sum(), what + ("sum",))
                self.close(got[3], (y * y).sum(), what + ("sum_sq",))
                if kind == "ratio":
                    self.close(got[4], d["den"].sum(), what + ("den_sum",))
                    self.close(got[5], (d["den"] ** 2).sum(),
                               what + ("den_sum_sq",))
                    self.close(got[6], (d["num"] * d["den"]).sum(),
                               what + ("cross_sum",))
                if cov:
                    x = d["x"]
                    self.close(got[7], x.sum(), what + ("pre_sum",))
                    self.close(got[8], (x * x).sum(), what + ("pre_sum_sq",))
                    self.close(got[9], (x * d["y"]).sum(),
                               what + ("pre_cross_sum",))

    def test_units_in_several_arms(self):
        """Moved units and the explicit-arm units count in two arms."""
        pop = self.populations()
        several = pop["control"] & pop["treatment"]
        self.assertTrue(set(self.moved) <= several)
        self.assertTrue(set(self.explicit_other) <= several)
        self.results("welch", "absolute")
        res = self.res[("welch", "absolute")]
        self.assertEqual(res["units_in_several_arms"], len(several))
        # per arm: the members that are not exposed there (moved in)
        for a in ARMS:
            moved_in = {u for u in pop[a] if self.exposed.get(u) != a}
            self.assertEqual(res["moved_units"].get(a, 0), len(moved_in), a)

    # ---- /results -----------------------------------------------------------
    def test_arms_every_kind(self):
        for method in ("welch", "z", "msprt", "bayes"):
            res = self.results(method, "absolute")
            for metric, (kind, _, _, cov) in METRICS.items():
                if kind == "quantile":
                    continue
                arms = {a["name"]: a for a in res[metric]["analysis"]["arms"]}
                for a, s in self.summaries(metric).items():
                    what = (method, metric, a)
                    self.assertEqual(arms[a]["n"], s["n"], what)
                    self.close(arms[a]["mean"], s["m"], what + ("mean",))

    def test_arm_intervals_variances_theta_every_method(self):
        """Per arm: variance (ddof=1, CUPED-adjusted), the interval of the
        mean (t with n-1 df for welch, normal otherwise; Beta(1+x, 1+n-x)
        equal-tailed quantiles by scipy.stats.beta.ppf for bayes on a
        binary metric), the unadjusted mean and theta under CUPED."""
        for method in ("welch", "z", "msprt", "bayes"):
            res = self.results(method, "absolute")
            for metric, (kind, _, _, cov) in METRICS.items():
                if kind == "quantile":
                    continue
                ana = res[metric]["analysis"]
                arms = {a["name"]: a for a in ana["arms"]}
                theta = self.cuped(metric)[0] if cov else None
                if cov:
                    self.close(ana["theta"], theta, (method, metric, "theta"))
                for a, sm_ in self.summaries(metric).items():
                    what = (method, metric, a)
                    got = arms[a]
                    self.close(got["variance"], sm_["v"], what + ("var",))
                    if cov:
                        self.close(got["unadjusted_mean"], sm_["raw_m"],
                                   what + ("unadjusted",))
                    if method == "bayes" and kind == "binary" and not cov:
                        x = round(sm_["m"] * sm_["n"])
                        b = sst.beta(1 + x, 1 + sm_["n"] - x)
                        lo, hi = b.ppf(ALPHA / 2), b.ppf(1 - ALPHA / 2)
                    else:
                        q = (sst.t(sm_["n"] - 1) if method == "welch"
                             else sst.norm).ppf(1 - ALPHA / 2)
                        h = q * math.sqrt(sm_["v"] / sm_["n"])
                        lo, hi = sm_["m"] - h, sm_["m"] + h
                    self.close(got["ci"][0], lo, what + ("lo",))
                    self.close(got["ci"][1], hi, what + ("hi",))

    def test_significance_verdicts_and_srm(self):
        """Two arms: no family correction (no adjusted p); significant
        when p <= alpha (bayes: the credible interval excludes 0); the
        verdict reads the metric's direction. SRM per metric: refused
        (mixed_weights), the weights having changed; for the
        experiment: units first exposed under the weights in force against
        those weights (scipy.stats.chisquare)."""
        for method in ("welch", "z", "msprt", "bayes"):
            for effect in ("absolute", "relative"):
                res = self.results(method, effect)
                for metric, (kind, direction, _, _) in METRICS.items():
                    if kind == "quantile":
                        continue
                    cmp_ = res[metric]["analysis"]["comparisons"][0]
                    what = (method, effect, metric)
                    lo, hi = cmp_["ci"]
                    if method == "bayes":
                        sig = lo > 0 or hi < 0
                    else:
                        self.assertIsNone(cmp_["adjusted_p_value"], what)
                        sig = cmp_["p_value"] <= ALPHA
                    self.assertEqual(cmp_["significant"], sig, what)
                    good = (cmp_["effect"] if direction == "increase"
                            else -cmp_["effect"])
                    want = ("inconclusive" if not sig else
                            "better" if good > 0 else "worse")
                    self.assertEqual(cmp_["verdict"], want, what)
                    # the weights changed (50/50 -> 20/80): the metric's
                    # n mix two weightings, no per-metric SRM test
                    srm = res[metric]["analysis"]["srm"]
                    self.assertEqual(srm["reason_code"], "mixed_weights",
                                     what)
                    self.assertIsNone(srm["p_value"], what)
        top = self.res[("welch", "absolute")]["srm"]
        self.assertEqual(top["weights_version"], 2)
        out = harness.psql(
            self.url, "SELECT x.arm, count(*) FROM arbiter.exposure_units x "
            "JOIN arbiter.experiments e ON e.id = x.experiment_id WHERE "
            "e.key = '%s' AND x.weights_version = 2 GROUP BY 1" % KEY)
        units = {a: int(n) for a, n in (r.split("|")
                                        for r in out.splitlines())}
        self.assertEqual(top["units"], units)
        counts = [units.get(a, 0) for a in ARMS]
        chi = sst.chisquare(counts, [sum(counts) * 0.2, sum(counts) * 0.8])
        self.close(top["chi2"], chi.statistic, "experiment srm chi2")
        self.close(top["p_value"], chi.pvalue, "experiment srm p")

    def test_welch_and_z_every_kind_both_effects(self):
        for method in ("welch", "z"):
            for effect in ("absolute", "relative"):
                res = self.results(method, effect)
                for metric, (kind, _, _, cov) in METRICS.items():
                    if kind == "quantile":
                        continue
                    self.check_fixed(res[metric], metric, method, effect)

    def check_fixed(self, entry, metric, method, effect):
        kind, _, _, cov = METRICS[metric]
        side = self.side_of(metric, method)
        what = (method, effect, metric)
        cmp_ = entry["analysis"]["comparisons"][0]
        s = self.summaries(metric)
        c, t = s["control"], s["treatment"]
        eff, se = self.effect_se(metric, effect == "relative")
        prop = kind == "binary" and method == "z" and not cov
        if prop and effect == "absolute":
            # statsmodels: pooled z statistic, Wald interval (unpooled)
            xc, xt = round(c["m"] * c["n"]), round(t["m"] * t["n"])
            alt = {"two-sided": "two-sided", "greater": "larger",
                   "less": "smaller"}[side]
            _, p = proportions_ztest([xt, xc], [t["n"], c["n"]],
                                     alternative=alt)
            lo, hi = confint_proportions_2indep(
                xt, t["n"], xc, c["n"], method="wald", compare="diff",
                alpha=ALPHA if side == "two-sided" else 2 * ALPHA)
            se = math.sqrt(xc / c["n"] * (1 - xc / c["n"]) / c["n"] +
                           xt / t["n"] * (1 - xt / t["n"]) / t["n"])
        else:
            if prop:   # relative: the Bernoulli variance p(1-p)/n
                pc, pt = c["m"], t["m"]
                vc, vt = pc * (1 - pc) / c["n"], pt * (1 - pt) / t["n"]
                eff = pt / pc - 1
                se = math.sqrt((vt + vc - 2 * eff * (-vc) + eff ** 2 * vc) /
                               pc ** 2)
            df = welch_df(c["v"], c["n"], t["v"], t["n"])
            dist = sst.t(df) if method == "welch" else sst.norm
            p = p_of(eff / se, dist, side)
            q = dist.ppf(1 - ALPHA / 2 if side == "two-sided" else 1 - ALPHA)
            lo, hi = eff - q * se, eff + q * se
            if method == "welch" and effect == "absolute" and not cov and \
                    kind != "ratio":
                # the textbook routine on the per-unit values agrees
                arms = self.per_unit(metric)
                p2 = sst.ttest_ind(arms["treatment"]["y"],
                                   arms["control"]["y"], equal_var=False,
                                   alternative=side).pvalue
                self.close(p, p2, what + ("scipy ttest_ind",))
        self.close(cmp_["effect"], eff, what + ("effect",))
        self.close(cmp_["se"], se, what + ("se",))
        self.close(cmp_["p_value"], p, what + ("p",))
        got_lo, got_hi = cmp_["ci"]
        if side in ("two-sided", "greater"):
            self.close(got_lo, lo, what + ("lo",))
        if side in ("two-sided", "less"):
            self.close(got_hi, hi, what + ("hi",))

    def test_msprt_every_kind_both_effects_guardrails_both_sides(self):
        for effect in ("absolute", "relative"):
            res = self.results("msprt", effect)
            for metric, (kind, _, _, cov) in METRICS.items():
                if kind == "quantile":
                    continue
                s = self.summaries(metric)
                c, t = s["control"], s["treatment"]
                side = self.side_of(metric, "msprt")
                if effect == "relative":
                    # msprt takes the (adjusted) arms as plain summaries
                    mc, mt = c["m"], t["m"]
                    eff = mt / mc - 1
                    V = (t["v"] / (t["n"] * mc ** 2) +
                         mt ** 2 * c["v"] / (c["n"] * mc ** 4))
                    s2 = t["v"] / mc ** 2 + mt ** 2 * c["v"] / mc ** 4
                else:
                    eff = t["m"] - c["m"]
                    V = t["v"] / t["n"] + c["v"] / c["n"]
                    s2 = t["v"] + c["v"]
                cmp_ = res[metric]["analysis"]["comparisons"][0]
                what = ("msprt", effect, metric)
                self.close(cmp_["effect"], eff, what + ("effect",))
                self.close(cmp_["se"], math.sqrt(V), what + ("se",))
                self.close(cmp_["p_value"], msprt_p(eff, V, s2, side),
                           what + ("p",))
                lo, hi = cmp_["ci"]
                if side == "greater":
                    self.assertIsNone(hi, what)
                elif side == "less":
                    self.assertIsNone(lo, what)

    def test_view_experiment_results(self):
        """arbiter.experiment_results (the SQL view of the msprt results):
        the same populations and the same numbers as the raw-event
        recomputation, CUPED-adjusted where the metric has a covariate;
        ratio metrics are 'not_computed' there. Two-sided interval: the normal-mixture
        confidence sequence d +- sqrt(V) sqrt(2 (1+r)/r (ln(1/alpha) +
        ln(1+r)/2)) (Johari et al. 2017)."""
        out = harness.psql(
            self.url, "SELECT metric, status, control_n, n, control_mean, "
            "estimate, effect, se, p_value, lift, ci_low, ci_high FROM "
            "arbiter.experiment_results WHERE experiment = '%s'" % KEY)
        rows = {f[0]: f for f in (line.split("|")
                                  for line in out.splitlines())}
        self.assertEqual(rows["ctr"][1], "not_computed")
        for metric in ("conv", "errs", "thru", "rev", "latency"):
            f = rows[metric]
            self.assertEqual(f[1], "ok", f)
            s = self.summaries(metric)
            c, t = s["control"], s["treatment"]
            what = ("view", metric)
            self.assertEqual((int(f[2]), int(f[3])), (c["n"], t["n"]), what)
            self.close(float(f[4]), c["m"], what + ("control_mean",))
            self.close(float(f[5]), t["m"], what + ("estimate",))
            eff, V = t["m"] - c["m"], t["v"] / t["n"] + c["v"] / c["n"]
            self.close(float(f[6]), eff, what + ("effect",))
            self.close(float(f[7]), math.sqrt(V), what + ("se",))
            side = self.side_of(metric, "msprt")
            self.close(float(f[8]), msprt_p(eff, V, t["v"] + c["v"], side),
                       what + ("p",))
            self.close(float(f[9]), t["m"] / c["m"] - 1, what + ("lift",))
            if side == "two-sided":
                rho2 = (-2 * math.log(ALPHA) +
                        math.log(1 - 2 * math.log(ALPHA))) / N_STAR
                r = rho2 * (t["v"] + c["v"]) / V
                half = math.sqrt(V) * math.sqrt(
                    2 * (1 + r) / r * (math.log(1 / ALPHA) +
                                       math.log1p(r) / 2))
                self.close(float(f[10]), eff - half, what + ("lo",))
                self.close(float(f[11]), eff + half, what + ("hi",))

    def test_bayes_every_kind_both_effects(self):
        for effect in ("absolute", "relative"):
            res = self.results("bayes", effect)
            for metric, (kind, direction, _, cov) in METRICS.items():
                if kind == "quantile":
                    continue
                cmp_ = res[metric]["analysis"]["comparisons"][0]
                what = ("bayes", effect, metric)
                if kind == "binary" and not cov:
                    self.check_beta(cmp_, metric, direction, effect, what)
                    continue
                eff, se = self.effect_se(metric, effect == "relative")
                self.close(cmp_["effect"], eff, what + ("effect",))
                self.close(cmp_["se"], se, what + ("se",))
                q = sst.norm.ppf(0.975)
                self.close(cmp_["ci"][0], eff - q * se, what + ("lo",))
                self.close(cmp_["ci"][1], eff + q * se, what + ("hi",))
                good = eff if direction == "increase" else -eff
                self.close(cmp_["chance_to_win"], sst.norm.cdf(good / se),
                           what + ("chance",))
                # expected loss of each choice under N(eff, se^2):
                # E[max(0, -G)] and E[max(0, G)], G the gain in the good
                # direction: -g Phi(-g/s) + s phi(g/s), g Phi(g/s) + s phi
                risk_t = (-good * sst.norm.cdf(-good / se) +
                          se * sst.norm.pdf(good / se))
                risk_c = (good * sst.norm.cdf(good / se) +
                          se * sst.norm.pdf(good / se))
                self.close(cmp_["risk"]["treatment"], risk_t,
                           what + ("risk t",), 1e-8)
                self.close(cmp_["risk"]["control"], risk_c,
                           what + ("risk c",), 1e-8)

    def check_beta(self, cmp_, metric, direction, effect, what):
        from scipy import integrate as si
        s = self.summaries(metric)
        c, t = s["control"], s["treatment"]
        xc, xt = round(c["m"] * c["n"]), round(t["m"] * t["n"])
        ac, bc = 1 + xc, 1 + c["n"] - xc
        at, bt = 1 + xt, 1 + t["n"] - xt
        win = (miller_prob_b_beats_a(ac, bc, at, bt) if direction ==
               "increase" else miller_prob_b_beats_a(at, bt, ac, bc))
        self.close(cmp_["chance_to_win"], win, what + ("chance (Miller)",))
        rel = effect == "relative"
        if rel:
            einv, _ = si.quad(lambda x: bpdf(x, ac, bc) / x, *window(ac, bc),
                              epsabs=1e-15, epsrel=1e-12)
            mean = at / (at + bt) * einv - 1
        else:
            mean = at / (at + bt) - ac / (ac + bc)
        self.close(cmp_["effect"], mean, what + ("posterior mean",))
        # expected losses by quad (E[(p_c - p_t)+] risks the treatment)
        loss_t = expected_loss(ac, bc, at, bt)
        loss_c = expected_loss(at, bt, ac, bc)
        if direction == "decrease":
            loss_t, loss_c = loss_c, loss_t
        self.close(cmp_["risk"]["treatment"], loss_t, what + ("risk t",),
                   1e-7)
        self.close(cmp_["risk"]["control"], loss_c, what + ("risk c",),
                   1e-7)
        self.close(cmp_["ci"][0], diff_quantile(ac, bc, at, bt, ALPHA / 2,
                                                rel), what + ("lo",), 1e-7)
        self.close(cmp_["ci"][1], diff_quantile(ac, bc, at, bt,
                                                1 - ALPHA / 2, rel),
                   what + ("hi",), 1e-7)

    def test_quantile_fixed_horizon(self):
        """The quantile metric per arm (sketch of the raw per-request
        values, the arm on each raw event) and the fixed-horizon
        difference (welch, z and bayes report the same interval)."""
        vals = {a: [] for a in ARMS}
        for _, _, a, m, v in self.raw:
            if m == "resp":
                vals[a].append(v)
        est = {a: quantile_arm_fixed(vals[a], Q) for a in ARMS}
        (pc, lc, hc, sc), (pt, lt, ht, st_) = est["control"], est["treatment"]
        z = sst.norm.ppf(1 - ALPHA / 2)
        se = math.sqrt(sc * sc + st_ * st_)
        sel = math.sqrt((st_ / lt) ** 2 + (sc / lc) ** 2)
        want = {"difference": pt - pc,
                "ci_low": lt - hc - z * se, "ci_high": ht - lc + z * se,
                "relative": pt / pc - 1,
                "relative_ci_low": math.exp(math.log(lt / hc) - z * sel) - 1,
                "relative_ci_high": math.exp(math.log(ht / lc) + z * sel) - 1}
        for method in ("welch", "z", "bayes", "msprt"):
            ana = self.results(method, "absolute")["resp"]["analysis"]
            self.assertEqual(ana["status"], "ok", ana)
            arms = {a["name"]: a for a in ana["arms"]}
            for a in ARMS:
                self.assertEqual(arms[a]["n"], len(vals[a]), (method, a))
                self.close(arms[a]["quantile"], est[a][0],
                           (method, a, "quantile"))
            cmp_ = ana["comparisons"][0]
            if method == "msprt":
                self.check_quantile_cs(cmp_, vals, pc, pt)
                continue
            for k, v in want.items():
                self.close(cmp_[k], v, (method, "resp", k))

    def check_quantile_cs(self, cmp_, vals, pc, pt):
        """msprt: each arm's confidence sequence at alpha / 2, combined:
        difference [t_lo - c_hi, t_hi - c_lo], ratio [t_lo / c_hi,
        t_hi / c_lo] - 1."""
        cl, ch = quantile_arm_cs(vals["control"], Q, ALPHA / 2)
        tl, th = quantile_arm_cs(vals["treatment"], Q, ALPHA / 2)
        self.assertTrue(math.isfinite(ch) and cl > 0, (cl, ch))
        want = {"difference": pt - pc, "ci_low": tl - ch,
                "ci_high": th - cl, "relative": pt / pc - 1,
                "relative_ci_low": tl / ch - 1,
                "relative_ci_high": th / cl - 1}
        for k, v in want.items():
            if math.isfinite(v):
                self.close(cmp_[k], v, ("msprt", "resp", k))
            else:
                self.assertIsNone(cmp_[k], ("msprt", "resp", k))


if __name__ == "__main__":
    harness.main()
