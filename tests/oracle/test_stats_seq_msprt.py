"""test_stats_seq_msprt.py -- the mixture SPRT / asymptotic confidence
sequence (stats/msprt.c) against an independent scipy implementation.

The oracle below is written from the published formulas, in their
published parametrisation (not the (z, r) form the C code uses):

* Johari, Pekelis & Walsh (2017), "Always valid inference", sec. 4: for an
  estimate d ~ N(theta, V) and mixing theta - theta0 ~ N(0, tau^2),
      Lambda = sqrt(V / (V + tau^2))
               exp(tau^2 (d - theta0)^2 / (2 V (V + tau^2))),
  p_n = min(p_{n-1}, 1 / Lambda_n), interval {theta0: Lambda < 1/alpha}.
* Howard, Ramdas, McAuliffe & Sekhon (2021), Prop. 6 (one-sided normal
  mixture): mixing over the half-normal multiplies Lambda by
  2 Phi((d - theta0) tau / sqrt(V (V + tau^2))); the one-sided bound is
  found here by brentq on theta0.
* Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas (2023), sec. 3.2: tau^2 =
  rho^2 sigma^2 with rho^2 = (-2 ln alpha + ln(1 - 2 ln alpha)) / n_star,
  sigma^2 the per-unit-pair variance var_c + var_t (delta method for the
  relative effect).
A subset is checked a second time by integrating the mixture definition
numerically (scipy.integrate.quad), so the closed forms are not trusted
blindly either. Agreement: 1e-9 relative on every output.
"""
import json
import math
import os
import random
import subprocess
import sys
import unittest

from scipy import integrate, optimize, special

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402

REL = 1e-9
DRIVER = os.path.join(harness.BUILD, "tests", "seq_oracle")


def drive(lines):
    out = subprocess.run([DRIVER], input="\n".join(lines) + "\n",
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError("seq_oracle failed:\n" + out.stderr)
    return [json.loads(x) for x in out.stdout.splitlines()]


def rho2_of(alpha, n_star):
    l = -2 * math.log(alpha)
    return (l + math.log(1 + l)) / n_star


def log_lambda(d, theta0, V, tau2, side):
    """log of the mixture likelihood ratio (Johari et al.; Howard et al.)"""
    two = 0.5 * math.log(V / (V + tau2)) + \
        tau2 * (d - theta0) ** 2 / (2 * V * (V + tau2))
    if side == "two":
        return two
    x = (d - theta0) * math.sqrt(tau2) / math.sqrt(V * (V + tau2))
    if side == "less":
        x = -x
    return two + math.log(2) + special.log_ndtr(x)


def log_lambda_quad(d, theta0, V, tau2, side):
    """The same by integrating the definition over the mixing law."""
    s = math.sqrt(tau2)

    def log_integrand(l):
        return (((d - theta0) ** 2 - (d - theta0 - l) ** 2) / (2 * V) -
                l * l / (2 * tau2) - math.log(s * math.sqrt(2 * math.pi)))
    # centre and scale of the integrand (a Gaussian in l)
    prec = 1 / V + 1 / tau2
    mode = ((d - theta0) / V) / prec
    sd = 1 / math.sqrt(prec)
    lo, hi = mode - 40 * sd, mode + 40 * sd
    if side == "greater":
        lo = max(lo, 0.0)
    elif side == "less":
        hi = min(hi, 0.0)
    if lo >= hi:
        return -math.inf
    m = max(log_integrand(min(max(mode, lo), hi)), -700)
    val, _ = integrate.quad(lambda l: math.exp(log_integrand(l) - m), lo, hi,
                            epsabs=0, epsrel=1e-12, limit=200,
                            points=[min(max(mode, lo), hi)]
                            if lo < mode < hi else None)
    factor = 1.0 if side == "two" else 2.0
    return m + math.log(factor * val)


def oracle_effect(d, V, s2, theta0, alpha, rho2, side):
    tau2 = rho2 * s2
    llr = log_lambda(d, theta0, V, tau2, side)
    p = min(1.0, math.exp(-llr))
    target = -math.log(alpha)
    if side == "two":
        hw = math.sqrt(V * (V + tau2) / tau2 *
                       (2 * target + math.log((V + tau2) / V)))
        lo, hi = d - hw, d + hw
    else:
        # LR is monotone in theta0; solve LR(theta0) = 1/alpha
        def f(th):
            return log_lambda(d, th, V, tau2, side) - target
        step = math.sqrt(V)
        if side == "greater":   # bound below d
            a, b = d - step, d
            while f(a) < 0:
                a -= step
                step *= 2
            lo = optimize.brentq(f, a, b, xtol=1e-14 * (abs(d) + step),
                                 rtol=1e-15, maxiter=500)
            hi = math.inf
        else:
            a, b = d, d + step
            while f(b) < 0:
                b += step
                step *= 2
            hi = optimize.brentq(f, a, b, xtol=1e-14 * (abs(d) + step),
                                 rtol=1e-15, maxiter=500)
            lo = -math.inf
    return {"estimate": d, "se": math.sqrt(V), "null": theta0,
            "z": (d - theta0) / math.sqrt(V), "log_lr": llr, "p": p,
            "lo": lo, "hi": hi, "tau2": tau2}


def oracle(case):
    side, alpha, n_star, m_abs, m_rel, nc, mc, vc, nt, mt, vt = case
    rho2 = rho2_of(alpha, n_star or 5000.0)
    sign = {"two": 0, "greater": -1, "less": 1}[side]
    V = vc / nc + vt / nt
    out = {"rho2": rho2, "t_eff": (vc + vt) / V,
           "abs": oracle_effect(mt - mc, V, vc + vt, sign * m_abs, alpha,
                                rho2, side)}
    if mc != 0:
        q = mt / mc
        Vr = vt / (nt * mc * mc) + q * q * vc / (nc * mc * mc)
        s2r = vt / (mc * mc) + q * q * vc / (mc * mc)
        out["rel"] = oracle_effect(q - 1, Vr, s2r, sign * m_rel, alpha, rho2,
                                   side)
    return out


def random_case(rng):
    side = rng.choice(["two", "two", "greater", "less"])
    alpha = rng.choice([0.001, 0.01, 0.05, 0.1, 0.2, 0.5])
    n_star = rng.choice([0, 100, 1000, 5000, 20000, 1e6])
    nc = float(int(math.exp(rng.uniform(math.log(2), math.log(2e6)))))
    nt = float(max(2, int(nc * rng.uniform(0.5, 2))))
    mc = rng.choice([0.0, rng.uniform(-50, 50), rng.uniform(0.01, 0.3)])
    sd = math.exp(rng.uniform(math.log(1e-3), math.log(1e3)))
    vc = sd * sd
    vt = vc * rng.uniform(0.5, 2)
    V = vc / nc + vt / nt
    m_abs = m_rel = 0.0
    if side != "two" and rng.random() < 0.6:
        m_abs = rng.uniform(0, 3) * math.sqrt(V)
        m_rel = rng.uniform(0, 0.1)
    mt = mc + rng.uniform(-7, 7) * math.sqrt(V)
    return (side, alpha, n_star, m_abs, m_rel, nc, mc, vc, nt, mt, vt)


def line(case):
    return "msprt " + " ".join(repr(x) if not isinstance(x, str) else x
                               for x in case)


class MsprtAgainstScipy(unittest.TestCase):

    def close(self, got, want, scale, msg):
        if math.isinf(want):
            self.assertEqual(got, want, msg)
            return
        self.assertLessEqual(abs(got - want), REL * max(abs(want), scale),
                             msg)

    def check_effect(self, g, w, msg):
        self.close(g["estimate"], w["estimate"], 1e-300, msg)
        self.close(g["se"], w["se"], 0, msg)
        self.close(g["null"], w["null"], 0, msg)
        self.close(g["z"], w["z"], 1, msg)
        self.close(g["log_lr"], w["log_lr"], 1, msg)
        self.close(g["p"], w["p"], 1e-300, msg)
        # interval ends relative to the size of what is added
        width = abs(w["estimate"]) + abs(w["estimate"] - (
            w["lo"] if math.isfinite(w["lo"]) else w["hi"]))
        self.close(g["lo"], w["lo"], width, msg)
        self.close(g["hi"], w["hi"], width, msg)

    def test_random_cases(self):
        """600 seeded random cases, single looks, both effects."""
        rng = random.Random(424242)
        cases = [random_case(rng) for _ in range(600)]
        lines = []
        for c in cases:
            lines += ["reset", line(c)]
        got = drive(lines)[1::2]
        n_rel = n_sides = 0
        for c, g in zip(cases, got):
            msg = "case %r\nours %r" % (c, g)
            self.assertEqual(g["status"], "ok", msg)
            w = oracle(c)
            self.close(g["rho2"], w["rho2"], 0, msg)
            self.close(g["t_eff"], w["t_eff"], 0, msg)
            self.check_effect(g["abs"], w["abs"], msg)
            self.assertEqual(g["has_rel"], int("rel" in w), msg)
            if "rel" in w:
                n_rel += 1
                self.check_effect(g["rel"], w["rel"], msg)
            else:
                self.assertEqual(g["rel_why"], "zero_control_mean")
            n_sides += c[0] != "two"
            # a single look: running values are this look's
            self.assertEqual(g["abs"]["p_run"], g["abs"]["p"])
            self.assertEqual(g["abs"]["reject"],
                             int(g["abs"]["p"] <= c[1]), msg)
        self.assertGreater(n_rel, 300)
        self.assertGreater(n_sides, 200)

    def test_closed_form_equals_mixture_integral(self):
        """The closed forms against numerical integration of the mixture
        definition, 1e-8 relative on log Lambda, 150 cases."""
        rng = random.Random(99)
        n = 0
        while n < 150:
            c = random_case(rng)
            side, alpha, n_star = c[0], c[1], c[2] or 5000.0
            w = oracle(c)["abs"]
            if abs(w["log_lr"]) > 600:
                continue
            V = w["se"] ** 2
            q = log_lambda_quad(w["estimate"], w["null"], V, w["tau2"], side)
            self.assertAlmostEqual(q, w["log_lr"],
                                   delta=1e-8 * max(1, abs(w["log_lr"])),
                                   msg=c)
            n += 1

    def test_running_state_over_looks(self):
        """40 experiments of 12 cumulative looks each: the running p is the
        minimum, the running interval the intersection, of the oracle's
        per-look values."""
        rng = random.Random(2024)
        lines, plan = [], []
        for e in range(40):
            side = rng.choice(["two", "greater", "less"])
            alpha = rng.choice([0.01, 0.05, 0.1])
            n_star = rng.choice([500, 5000])
            effect = rng.choice([0.0, 0.0, 0.05, -0.05, 0.2])
            lines.append("reset")
            plan.append(None)
            nc = nt = 0
            sc = st = ssc = sst = 0.0
            for k in range(12):
                for _ in range(rng.randint(20, 200)):
                    y = rng.gauss(1.0, 1.0)
                    sc += y
                    ssc += y * y
                    nc += 1
                    y = rng.gauss(1.0 + effect, 1.0)
                    st += y
                    sst += y * y
                    nt += 1
                mc, mt = sc / nc, st / nt
                vc = (ssc - sc * mc) / (nc - 1)
                vt = (sst - st * mt) / (nt - 1)
                case = (side, alpha, n_star, 0.0, 0.0, float(nc), mc, vc,
                        float(nt), mt, vt)
                lines.append(line(case))
                plan.append((e, k, case))
        got = drive(lines)
        run = {}
        for p, g in zip(plan, got):
            if p is None:
                self.assertEqual(g["status"], "ok")
                run = {"p": 1.0, "lo": -math.inf, "hi": math.inf,
                       "rp": 1.0, "rlo": -math.inf, "rhi": math.inf}
                continue
            e, k, case = p
            msg = "experiment %d look %d\n%r" % (e, k, g)
            w = oracle(case)
            run["p"] = min(run["p"], w["abs"]["p"])
            run["lo"] = max(run["lo"], w["abs"]["lo"])
            run["hi"] = min(run["hi"], w["abs"]["hi"])
            run["rp"] = min(run["rp"], w["rel"]["p"])
            run["rlo"] = max(run["rlo"], w["rel"]["lo"])
            run["rhi"] = min(run["rhi"], w["rel"]["hi"])
            self.assertEqual(g["n_looks"], k + 1, msg)
            self.close(g["abs"]["p_run"], run["p"], 1e-300, msg)
            self.close(g["abs"]["lo_run"], run["lo"], 1, msg)
            self.close(g["abs"]["hi_run"], run["hi"], 1, msg)
            self.close(g["rel"]["p_run"], run["rp"], 1e-300, msg)
            self.close(g["rel"]["lo_run"], run["rlo"], 1, msg)
            self.close(g["rel"]["hi_run"], run["rhi"], 1, msg)
            self.assertEqual(g["abs"]["reject"], int(run["p"] <= case[1]))

    def test_one_sided_critical_values(self):
        """stats_msprt_z_crit against brentq on the published one-sided
        mixture, 200 (r, alpha) pairs, 1e-12 relative."""
        rng = random.Random(5)
        cases, lines = [], []
        for _ in range(200):
            r = math.exp(rng.uniform(math.log(1e-4), math.log(1e4)))
            alpha = rng.choice([0.001, 0.01, 0.05, 0.1, 0.3, 0.5])
            cases.append((r, alpha))
            lines.append("zcrit %r %r greater" % (r, alpha))
        for (r, alpha), g in zip(cases, drive(lines)):
            # V = 1, tau^2 = r: z is d - theta0
            def f(z):
                return log_lambda(z, 0.0, 1.0, r, "greater") + \
                    math.log(alpha)
            hi = 1.0
            while f(hi) < 0:
                hi *= 2
            want = optimize.brentq(f, 0.0, hi, xtol=1e-15, rtol=1e-15,
                                   maxiter=500)
            self.assertAlmostEqual(g["z"], want, delta=1e-12 * want,
                                   msg=(r, alpha))

    def test_refusals(self):
        """Degenerate inputs: a status and a reason, never NaN."""
        ok = "100 1 1 100 1.2 1"
        cases = [
            ("msprt two 0.05 5000 0 0 1 1 1 100 1.2 1", "numeric",
             "few_units"),
            ("msprt two 0.05 5000 0 0 -3 1 1 100 1.2 1", "invalid",
             "negative"),
            ("msprt two 0.05 5000 0 0 100 1 -1 100 1.2 1", "invalid",
             "negative"),
            ("msprt two 0.05 5000 0 0 100 nan 1 100 1.2 1", "invalid",
             "not_finite"),
            ("msprt two 0.05 5000 0 0 100 1 0 100 1.2 0", "numeric",
             "zero_variance"),
            ("msprt two 0 5000 0 0 " + ok, "invalid", "bad_parameter"),
            ("msprt two 0.05 -5 0 0 " + ok, "invalid", "bad_parameter"),
            ("msprt two 0.05 5000 0.1 0 " + ok, "invalid", "bad_parameter"),
            ("msprt greater 0.05 5000 -0.1 0 " + ok, "invalid",
             "bad_parameter"),
            ("zcrit 0 0.05 two", "invalid", "bad_parameter"),
        ]
        got = drive([c[0] for c in cases])
        for (ln, st, why), g in zip(cases, got):
            self.assertEqual((g["status"], g.get("reason")), (st, why), ln)
        # a refused look leaves the running state alone
        seq = drive(["reset", "msprt two 0.05 5000 0 0 " + ok,
                     "msprt two 0.05 5000 0 0 1 1 1 100 1.2 1",
                     "msprt two 0.05 5000 0 0 " + ok])
        self.assertEqual(seq[1]["n_looks"], 1)
        self.assertEqual(seq[3]["n_looks"], 2)


if __name__ == "__main__":
    harness.main()
