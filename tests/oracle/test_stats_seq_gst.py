"""test_stats_seq_gst.py -- group sequential boundaries (stats/gst.c)
against R rpact.

The oracle is R rpact (Wassmer & Pahlke), run live with Rscript:
getDesignGroupSequential(kMax, alpha, sided, typeOfDesign = "asOF" | "asP"
| "asKD" (gammaA = rho) | "asHSD" (gammaA = gamma), informationRates,
typeBetaSpending = "bsOF" | "bsP" | "bsKD" | "bsHSD" (gammaB), beta),
fields criticalValues and futilityBounds (non-binding). Our C code is
driven through the test tool seq_oracle (tests/tools/seq_oracle.c).
Agreement required: 1e-6 absolute on the z scale, for every look.

Over- and under-running (last information fraction > 1 or < 1) have no
direct rpact call; such a design is the same as informationRates t / t_K
with the user alpha spending alpha(min(t_k, 1)) and alpha at the last
look, which rpact computes with typeOfDesign = "asUser".
"""
import json
import os
import random
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402

TOL = 1e-6
# rpact's own integration error passes 1e-6 when a look comes soon after the
# previous one relative to its information, (t_k - t_{k-1}) / t_k < 0.1:
# for fractions 0.1879 0.6356 0.6785 1 (one-sided 0.025, HSD -4) rpact
# gives 2.6121544 and 2.0015362 for the last two boundaries, ours
# 2.6121580 and 2.0015378. Genz's algorithm (scipy multivariate_normal.cdf,
# abseps 1e-12) puts the type I error of our boundaries at 0.0065718286 and
# 0.0250000053 (targets 0.0065718280 and 0.025) and of rpact's at
# 0.0065718550 and 0.0250001014, and refining our grid (r = 32, 64, 128)
# moves ours by less than 1e-8. So the rpact comparison uses designs with
# relative gaps >= MIN_REL_GAP (a scan of 400 random designs: at >= 0.12
# all agreed within 8.8e-7), and test_close_looks_against_genz checks the
# close-look designs against the independent multivariate normal oracle.
MIN_REL_GAP = 0.15
# rpact stops its root search when the spent probability is within
# tolerance (at least 1e-10) of the target, so a bound whose spending
# increment is tiny sits where the sub-density is tiny and rpact's z is
# loose: two-sided OBF, 8 equal looks, alpha 0.05, look 2 (increment
# 1.47e-5): rpact 4.3326422, ours 4.3326364; the type I error through
# look 2 by Genz's bivariate normal is 1.473361548e-5 for ours, 1.473322701e-5
# for rpact's, target 1.473361687e-5. Bounds whose spending increment is
# below SMALL_SPEND, and the later bounds of the same design that inherit
# its error, are loose in rpact. So designs compared with rpact have every
# alpha and beta increment >= SMALL_SPEND (decided in Python from the
# spending functions, before any C runs); test_against_genz checks such
# ill-conditioned bounds against an independent bivariate normal. rpact
# also reports Inf where alpha(t) < ~1e-15 (it computes 1 - pnorm(.) and
# the tail cancels); such designs are counted and skipped.
SMALL_SPEND = 1e-4
RANDOM_SEED, N_RANDOM = 20261123, 120


def rel_gaps_ok(rates):
    prev = 0.0
    for t in rates:
        if (t - prev) / t < MIN_REL_GAP:
            return False
        prev = t
    return True


DRIVER = os.path.join(harness.BUILD, "tests", "seq_oracle")
FAMILY_R = {"obf": "OF", "pocock": "P", "power": "KD", "hsd": "HSD"}

# One R function, called once per design; prints one line per design:
# "ok <critical values> | <futility bounds>" or "error <message>".
R_PRELUDE = r"""
suppressMessages(library(rpact))
run <- function(args) {
  args$tolerance <- 1e-10
  x <- tryCatch(do.call(getDesignGroupSequential, args),
                error = function(e) conditionMessage(e))
  if (is.character(x)) {
    cat("error", gsub("[\r\n]", " ", x), "\n")
  } else {
    cat("ok", sprintf("%.17g", x$criticalValues), "|",
        sprintf("%.17g", x$futilityBounds), "\n")
  }
}
cat("version", as.character(packageVersion("rpact")), "\n")
"""


def r_vector(xs):
    return "c(" + ", ".join(repr(float(x)) for x in xs) + ")"


def r_call(d):
    """run(list(...)) for one design (the dict built by to_r)."""
    args = ["kMax = %d" % d["k"], "alpha = %r" % d["alpha"],
            "sided = %d" % d["sided"], "typeOfDesign = \"%s\"" % d["type"],
            "informationRates = " + r_vector(d["rates"])]
    if "gammaA" in d:
        args.append("gammaA = %r" % float(d["gammaA"]))
    if "user" in d:
        args.append("userAlphaSpending = " + r_vector(d["user"]))
    if "betaType" in d:
        args += ["typeBetaSpending = \"%s\"" % d["betaType"],
                 "beta = %r" % d["beta"]]
        if "gammaB" in d:
            args.append("gammaB = %r" % float(d["gammaB"]))
    return "run(list(%s))" % ", ".join(args)


_RPACT_CACHE = {}


def rpact(designs):
    """rpact results for designs, from one Rscript run for all that are
    not cached yet (R and rpact take seconds to start)."""
    missing = [d for d in designs if json.dumps(d, sort_keys=True)
               not in _RPACT_CACHE]
    if missing:
        for d, r in zip(missing, rpact_run(missing)):
            _RPACT_CACHE[json.dumps(d, sort_keys=True)] = r
    return [_RPACT_CACHE[json.dumps(d, sort_keys=True)] for d in designs]


def rpact_run(designs):
    with tempfile.NamedTemporaryFile("w", suffix=".R", delete=False) as f:
        f.write(R_PRELUDE)
        for d in designs:
            f.write(r_call(d) + "\n")
        path = f.name
    try:
        out = subprocess.run(["Rscript", path], capture_output=True,
                             text=True, timeout=600)
    finally:
        os.unlink(path)
    if out.returncode != 0:
        raise RuntimeError("Rscript failed:\n" + out.stderr)
    lines = out.stdout.splitlines()
    version = lines[0].split()[1]
    res = []
    for ln in lines[1:]:
        if ln.startswith("error"):
            res.append({"error": ln[6:].strip()})
            continue
        c, f = ln[3:].split("|")
        res.append({"c": [float(v) for v in c.split()],
                    "f": [float(v) for v in f.split()],
                    "version": version})
    if len(res) != len(designs):
        raise RuntimeError("rpact gave %d answers for %d designs:\n%s"
                           % (len(res), len(designs), out.stdout))
    return res


def drive(lines):
    out = subprocess.run([DRIVER], input="\n".join(lines) + "\n",
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError("seq_oracle failed:\n" + out.stderr)
    return [json.loads(x) for x in out.stdout.splitlines()]


def spend(family, param, x, t):
    """Spending functions, restated from the rpact documentation."""
    from scipy.stats import norm
    import math
    t = min(t, 1.0)
    if family == "obf":
        return 2 * norm.sf(norm.isf(x / 2) / math.sqrt(t))
    if family == "pocock":
        return x * math.log(1 + (math.e - 1) * t)
    if family == "power":
        return x * t ** param
    if param == 0:
        return x * t
    return x * (1 - math.exp(-param * t)) / (1 - math.exp(-param))


def well_conditioned(d):
    """Relative gaps >= MIN_REL_GAP and spending increments >=
    SMALL_SPEND (see the top of this file)."""
    if not rel_gaps_ok([t / d["rates"][-1] for t in d["rates"]]):
        return False
    for fam, param, x in ((d["fam"], d["param"], d["alpha"]),
                          (d["bfam"], d["bparam"], d["beta"])):
        if fam == "none":
            continue
        if fam == d["fam"] and d["side"] == "two":
            x = x / 2
        prev = 0.0
        for j, t in enumerate(d["rates"]):
            cum = x if j == d["k"] - 1 else spend(fam, param, x, t)
            if cum - prev < SMALL_SPEND:
                return False
            prev = cum
    return True


def random_designs(rng, n):
    out = []
    while len(out) < n:
        k = rng.choice([1, 2, 2, 3, 3, 4, 4, 5, 6, 8])
        fam = rng.choice(["obf", "pocock", "power", "hsd"])
        param = 0.0
        if fam == "power":
            param = rng.choice([0.5, 1, 1.5, 2, 3, 4])
        elif fam == "hsd":
            param = rng.choice([-8, -4, -2, -1, 0, 1, 2])
        # unequal, increasing fractions ending at 1 (see MIN_REL_GAP)
        while True:
            cuts = sorted(round(rng.uniform(0.02, 0.95), 4)
                          for _ in range(k - 1))
            rates = cuts + [1.0]
            if rel_gaps_ok(rates):
                break
        one_sided = rng.random() < 0.6
        alpha = rng.choice([0.01, 0.025, 0.05]) if one_sided else \
            rng.choice([0.01, 0.05, 0.1])
        d = {"k": k, "fam": fam, "param": param, "rates": rates,
             "side": "greater" if one_sided else "two", "alpha": alpha,
             "bfam": "none", "beta": 0.0, "bparam": 0.0}
        if one_sided and k > 1 and rng.random() < 0.5:
            d["bfam"] = rng.choice(["obf", "pocock", "power", "hsd"])
            d["beta"] = rng.choice([0.1, 0.2, 0.3])
            if d["bfam"] == "power":
                d["bparam"] = rng.choice([1, 2, 3])
            elif d["bfam"] == "hsd":
                d["bparam"] = rng.choice([-4, -2, 0, 1])
        if well_conditioned(d):
            out.append(d)
    return out


def to_r(d, rates=None, user=None):
    r = {"k": d["k"], "alpha": d["alpha"],
         "sided": 2 if d["side"] == "two" else 1,
         "type": "as" + FAMILY_R[d["fam"]],
         "rates": rates or d["rates"]}
    if d["fam"] in ("power", "hsd"):
        r["gammaA"] = d["param"]
    if user is not None:
        r["type"] = "asUser"
        r["user"] = user
        r.pop("gammaA", None)
    if d["bfam"] != "none":
        r["betaType"] = "bs" + FAMILY_R[d["bfam"]]
        r["beta"] = d["beta"]
        if d["bfam"] in ("power", "hsd"):
            r["gammaB"] = d["bparam"]
    return r


def to_line(d, rates=None):
    rates = rates or d["rates"]
    return " ".join(["gst", d["side"], repr(d["alpha"]), d["fam"],
                     repr(float(d["param"])), d["bfam"], repr(d["beta"]),
                     repr(float(d["bparam"])), str(d["k"])] +
                    [repr(float(t)) for t in rates])


def classic_designs():
    """Equally spaced looks, the textbook settings."""
    designs = []
    for k in (2, 3, 4, 5):
        for fam, param in (("obf", 0), ("pocock", 0), ("power", 3),
                           ("hsd", -4), ("hsd", 1)):
            for side, alpha in (("greater", 0.025), ("two", 0.05)):
                designs.append({
                    "k": k, "fam": fam, "param": param,
                    "rates": [(j + 1) / k for j in range(k)],
                    "side": side, "alpha": alpha, "bfam": "none",
                    "beta": 0.0, "bparam": 0.0})
                if not well_conditioned(designs[-1]):
                    designs.pop()
        designs.append({
            "k": k, "fam": "obf", "param": 0,
            "rates": [(j + 1) / k for j in range(k)],
            "side": "greater", "alpha": 0.025, "bfam": "pocock",
            "beta": 0.1, "bparam": 0.0})
        if not well_conditioned(designs[-1]):
            designs.pop()
    return designs, [to_r(d) for d in designs], \
        [to_line(d) for d in designs]


def over_running_designs():
    """Last fraction != 1: all remaining alpha is spent at the last look;
    equal to rpact asUser on the rescaled fractions."""
    rng = random.Random(7)
    designs, r_designs, lines = [], [], []
    while len(designs) < 25:
        k = rng.choice([2, 3, 4, 5])
        fam = rng.choice(["obf", "pocock", "power", "hsd"])
        param = {"obf": 0, "pocock": 0, "power": 2, "hsd": -2}[fam]
        cuts = sorted(round(rng.uniform(0.1, 0.95), 4)
                      for _ in range(k - 1))
        # over-running (t_K > 1) and under-running (t_K < 1)
        last = round(rng.choice([rng.uniform(1.01, 1.6),
                                 rng.uniform(0.8, 0.99)]), 4)
        rates = cuts + [last]
        if any(b <= a for a, b in zip(rates, rates[1:])):
            continue
        side = rng.choice(["greater", "two"])
        alpha = 0.025 if side == "greater" else 0.05
        d = {"k": k, "fam": fam, "param": param, "rates": rates,
             "side": side, "alpha": alpha, "bfam": "none", "beta": 0.0,
             "bparam": 0.0}
        if not well_conditioned(d):
            continue
        per_side = alpha / 2 if side == "two" else alpha
        user = [spend(fam, param, per_side, t) * (2 if side == "two"
                                                   else 1)
                for t in rates[:-1]] + [alpha]
        designs.append(d)
        r_designs.append(to_r(d, rates=[t / last for t in rates],
                              user=user))
        lines.append(to_line(d))
    return designs, r_designs, lines


class GstAgainstRpact(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        r_all = [to_r(d) for d in
                 random_designs(random.Random(RANDOM_SEED), N_RANDOM)]
        r_all += classic_designs()[1] + over_running_designs()[1]
        rpact(r_all)

    def compare(self, designs, r_designs, lines):
        want = rpact(r_designs)
        got = drive(lines)
        worst, refused, rpact_inf, compared = 0.0, 0, 0, 0
        for d, w, g in zip(designs, want, got):
            msg = "design %r\nrpact %r\nours %r" % (d, w, g)
            if "error" in w:
                # rpact refuses some extreme beta-spending designs
                # ("futilityBounds too extreme"); ours must still answer
                # with numbers or a defined status, never NaN
                refused += 1
                self.assertIn(g["status"], ("ok", "numeric"), msg)
                if g["status"] == "ok":
                    self.assertFalse(any(v != v for v in g["efficacy"] +
                                         g["futility"]), msg)
                continue
            self.assertEqual(g["status"], "ok", msg)
            self.assertEqual(len(g["efficacy"]), d["k"], msg)
            if any(c == float("inf") for c in w["c"]):
                rpact_inf += 1   # see SMALL_SPEND: rpact's cancellation
                continue
            for k in range(d["k"]):
                self.assertAlmostEqual(g["efficacy"][k], w["c"][k],
                                       delta=TOL, msg=msg)
                worst = max(worst, abs(g["efficacy"][k] - w["c"][k]))
                compared += 1
            if d["bfam"] != "none":
                for k in range(d["k"] - 1):
                    self.assertAlmostEqual(g["futility"][k], w["f"][k],
                                           delta=TOL, msg=msg)
                    worst = max(worst, abs(g["futility"][k] - w["f"][k]))
                    compared += 1
                self.assertEqual(g["futility"][-1], g["efficacy"][-1])
            else:
                self.assertTrue(all(f == float("-inf")
                                    for f in g["futility"]), msg)
        self.assertLessEqual(refused + rpact_inf, len(designs) // 10)
        print("\n  %d designs: %d bounds agree within %.2e (%d designs "
              "with an rpact Inf, %d refused by rpact)"
              % (len(designs), compared, worst, rpact_inf, refused))
        return worst, refused

    def test_random_designs(self):
        """120 seeded designs: kMax 1..8, alpha, four spending families
        with several rho/gamma, unequal fractions, one- and two-sided,
        half the one-sided ones with a beta-spending futility bound."""
        designs = random_designs(random.Random(RANDOM_SEED), N_RANDOM)
        n_fut = sum(d["bfam"] != "none" for d in designs)
        self.assertGreaterEqual(n_fut, 20)
        self.compare(designs, [to_r(d) for d in designs],
                     [to_line(d) for d in designs])

    def test_classic_designs(self):
        """Equally spaced looks, the textbook settings."""
        designs, r_designs, lines = classic_designs()
        self.assertGreaterEqual(len(designs), 25)
        self.compare(designs, r_designs, lines)

    def test_over_running(self):
        """Last fraction != 1 (over- and under-running): all remaining
        alpha is spent at the last look; equal to rpact asUser on the
        rescaled fractions."""
        self.compare(*over_running_designs())

    def test_against_genz(self):
        """The first two bounds of designs that rpact cannot resolve (tiny
        spending, close looks) against an independent oracle: the type I
        error through look 2, P(Z_1 >= c_1 or Z_2 >= c_2) (two-sided: |Z|),
        by scipy's bivariate normal (Genz), equals alpha(t_2) within
        1e-9 (the sub-density at these bounds is >= 1e-3, so that is
        better than 1e-6 on the z scale), and P(Z_1 >= c_1) = alpha(t_1)
        within 1e-12 relative."""
        import numpy as np
        from scipy.stats import multivariate_normal, norm
        cases = [("two", 0.05, "obf", 0.0, [0.125, 0.25, 1.0]),
                 ("greater", 0.01, "obf", 0.0, [0.2054, 0.2942, 1.0]),
                 ("greater", 0.025, "hsd", -4.0, [0.6356, 0.6785, 1.0]),
                 ("greater", 0.025, "obf", 0.0, [0.1, 0.12, 1.0]),
                 ("two", 0.01, "pocock", 0.0, [0.5929, 0.6052, 1.0]),
                 ("greater", 0.05, "power", 3.0, [0.0317, 0.0857, 1.0])]
        lines = []
        for side, alpha, fam, param, rates in cases:
            d = {"k": 3, "fam": fam, "param": param, "rates": rates,
                 "side": side, "alpha": alpha, "bfam": "none", "beta": 0.0,
                 "bparam": 0.0}
            lines.append(to_line(d))
        for (side, alpha, fam, param, rates), g in zip(cases, drive(lines)):
            c1, c2 = g["efficacy"][:2]
            r = (rates[0] / rates[1]) ** 0.5
            cov = np.array([[1.0, r], [r, 1.0]])

            def cdf(a, b):
                return multivariate_normal.cdf(
                    np.array([a, b]), mean=np.zeros(2), cov=cov,
                    abseps=1e-14, releps=1e-14)
            x = alpha / 2 if side == "two" else alpha
            a1 = spend(fam, param, x, rates[0])
            a2 = spend(fam, param, x, rates[1])
            if side == "two":
                p2 = 1 - (cdf(c1, c2) - cdf(-c1, c2) - cdf(c1, -c2) +
                          cdf(-c1, -c2))
                p1 = 2 * norm.sf(c1)
                a1, a2 = 2 * a1, 2 * a2
            else:
                p2 = 1 - cdf(c1, c2)
                p1 = norm.sf(c1)
            msg = (side, alpha, fam, rates, g["efficacy"])
            self.assertAlmostEqual(p1, a1, delta=1e-12 * a1, msg=msg)
            self.assertAlmostEqual(p2, a2, delta=1e-9, msg=msg)

    def test_spending_values(self):
        """stats_gst_spend_value against the closed forms, 1e-13."""
        rng = random.Random(11)
        cases, lines = [], []
        for _ in range(300):
            fam = rng.choice(["obf", "pocock", "power", "hsd"])
            param = {"obf": 0.0, "pocock": 0.0,
                     "power": rng.uniform(0.3, 5),
                     "hsd": rng.uniform(-10, 5)}[fam]
            x = rng.uniform(0.001, 0.3)
            t = rng.uniform(0.01, 1.2)
            cases.append((fam, param, x, t))
            lines.append("spend %s %r %r %r" % (fam, param, x, t))
        for (fam, param, x, t), g in zip(cases, drive(lines)):
            self.assertEqual(g["status"], "ok")
            want = spend(fam, param, x, t)
            self.assertAlmostEqual(g["value"], want,
                                   delta=1e-13 * max(want, 1e-300) + 1e-300,
                                   msg=(fam, param, x, t))

    def test_decisions_follow_boundaries(self):
        """decide() at each look agrees with the boundaries."""
        d = {"k": 4, "fam": "obf", "param": 0.0,
             "rates": [0.25, 0.5, 0.75, 1.0], "side": "greater",
             "alpha": 0.025, "bfam": "hsd", "beta": 0.2, "bparam": -2.0}
        b = drive([to_line(d)])[0]
        lines, expect = [], []
        for k in range(4):
            c, f = b["efficacy"][k], b["futility"][k]
            for z, act in ((c + 1e-7, 1), (c - 1e-7, 3 if k == 3 else 0),
                           (f - 1e-7, 3 if k == 3 else 2)):
                lines.append(to_line(d).replace("gst", "decide", 1) +
                             " %d %r" % (k + 1, z))
                expect.append(act)
        for g, act in zip(drive(lines), expect):
            self.assertEqual(g["status"], "ok")
            self.assertEqual(g["action"], act, g)

    def test_refusals(self):
        """Degenerate designs give a status and a reason, never numbers."""
        base = "gst greater 0.025 obf 0 none 0 0 3 "
        cases = [
            (base + "0.3 0.3 1", "invalid", "bad_parameter"),
            (base + "0.5 0.3 1", "invalid", "bad_parameter"),
            (base + "0 0.5 1", "invalid", "bad_parameter"),
            (base + "0.3 1 1.2", "invalid", "bad_parameter"),
            (base + "0.3 nan 1", "invalid", "not_finite"),
            ("gst two 0.05 obf 0 obf 0.2 0 2 0.5 1", "invalid",
             "bad_parameter"),
            ("gst greater 0.6 obf 0 none 0 0 2 0.5 1", "invalid",
             "bad_parameter"),
            ("gst greater 0.025 power -1 none 0 0 2 0.5 1", "invalid",
             "bad_parameter"),
            ("gst greater 0.025 obf 0 none 0 0 0", "invalid",
             "bad_parameter"),
        ]
        got = drive([c[0] for c in cases])
        for (line, st, why), g in zip(cases, got):
            self.assertEqual((g["status"], g.get("reason")), (st, why), line)


if __name__ == "__main__":
    harness.main()
