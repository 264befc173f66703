"""test_stats_bayes.py -- method "bayes" of `arbiter analyze` against
independent implementations written here:

  Normal model on the effect (Gelman et al., BDA3, 2.5): posterior
  N(mu, s^2) from scipy.stats.norm; chance to win Phi(mu/s); expected loss
  E[max(0, X)] = mu Phi(mu/s) + s phi(mu/s) checked by scipy quad.
  Beta-Binomial (uniform Beta(1,1) prior per arm):
    P(p_t > p_c): Evan Miller's closed-form sum (2015, "Formulas for
      Bayesian A/B testing"), exact for integer parameters, in log space
      with scipy.special.betaln;
    risk: scipy.integrate.quad of f_c(x) (x F_t(x) - m_t F_t+(x)) (the
      other arm's density than the C code integrates);
    interval: scipy brentq on quad of the convolution.
Agreement: 1e-9 relative for closed forms; 1e-7 for numerical integrals
and roots (their own tolerance is 1e-12).
"""
import json
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402

import unittest  # noqa: E402

import numpy as np  # noqa: E402
import scipy.integrate as si  # noqa: E402
import scipy.optimize as so  # noqa: E402
import scipy.special as sp  # noqa: E402
import scipy.stats as st  # noqa: E402


def analyze(req):
    r = harness.run_cli(["analyze"], stdin=json.dumps(req))
    if r.returncode != 0:
        raise AssertionError("analyze exit %d: %s" % (r.returncode, r.stderr))
    assert "NaN" not in r.stdout and "Infinity" not in r.stdout, r.stdout
    return json.loads(r.stdout)


def moments(y):
    y = np.asarray(y, dtype=float)
    return {"n": int(len(y)), "sum": math.fsum(y),
            "sum_sq": math.fsum(y * y)}


class Close:
    def close(self, got, want, what, rtol=1e-9, atol=1e-12):
        if want is None:
            self.assertIsNone(got, what)
            return
        self.assertIsNotNone(got, what)
        self.assertLessEqual(abs(got - want), rtol * abs(want) + atol,
                             "%s: got %r want %r" % (what, got, want))


def miller_prob_b_beats_a(aa, ba, ab, bb):
    """P(p_B > p_A), p_A ~ Beta(aa, ba), p_B ~ Beta(ab, bb), ab integer."""
    terms = [math.exp(sp.betaln(aa + i, ba + bb) - math.log(bb + i) -
                      sp.betaln(1 + i, bb) - sp.betaln(aa, ba))
             for i in range(int(ab))]
    return math.fsum(terms)


def bpdf(x, a, b):
    if x <= 0 or x >= 1:
        return 0.0
    return math.exp((a - 1) * math.log(x) + (b - 1) * math.log1p(-x) -
                    sp.betaln(a, b))


def bcdf(x, a, b):
    return float(sp.betainc(a, b, min(1.0, max(0.0, x))))


def window(a, b):
    m, s = a / (a + b), math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    return max(0.0, m - 30 * s), min(1.0, m + 30 * s)


def expected_loss(ax, bx, ay, by):
    """E[max(0, X - Y)], X ~ Beta(ax, bx), Y ~ Beta(ay, by), by quad over
    the density of X: int f_X(x) (x F_Y(x) - m_Y F_{Y+}(x)) dx."""
    my = ay / (ay + by)
    lo, hi = window(ax, bx)
    f = lambda x: bpdf(x, ax, bx) * (  # noqa: E731
        x * bcdf(x, ay, by) - my * bcdf(x, ay + 1, by))
    v, _ = si.quad(f, lo, hi, epsabs=1e-15, epsrel=1e-12, limit=400)
    return v


def diff_quantile(ac, bc, at, bt, p, relative):
    lo, hi = window(ac, bc)

    def cdf(d):
        if relative:
            g = lambda x: bpdf(x, ac, bc) * \
                bcdf((1 + d) * x, at, bt)  # noqa: E731
        else:
            g = lambda x: bpdf(x, ac, bc) * bcdf(x + d, at, bt)  # noqa
        v, _ = si.quad(g, lo, hi, epsabs=1e-15, epsrel=1e-12, limit=400)
        return v - p
    return so.brentq(cdf, -0.999999 if relative else -1, 5 if relative
                     else 1, xtol=1e-15, rtol=1e-13, maxiter=500)


class TestNormalModel(unittest.TestCase, Close):
    def test_random_cases(self):
        """40 requests of one control and 5 treatments: 200 comparisons."""
        rng = np.random.default_rng(99)
        cases = 0
        for rep in range(40):
            c = rng.normal(10, 2, int(rng.integers(5, 2000)))
            ts = [rng.normal(10 + rng.normal(0, 0.3), 2,
                             int(rng.integers(5, 2000))) for _ in range(5)]
            effect = ("absolute", "relative")[rep % 2]
            direction = ("increase", "decrease")[(rep // 2) % 2]
            side = ("two", "greater", "less")[rep % 3]
            alpha = float(rng.choice([0.05, 0.1, 0.2]))
            prior = None
            if rep % 3 != 0:
                prior = {"mean": float(rng.normal(0, 0.1)),
                         "sd": float(rng.uniform(0.01, 1))}
            req = {"metric": {"kind": "mean", "direction": direction},
                   "method": "bayes", "effect": effect, "sided": side,
                   "alpha": alpha,
                   "arms": [dict(name="c", **moments(c))] +
                   [dict(name="t%d" % i, **moments(t))
                    for i, t in enumerate(ts)]}
            if prior:
                req["prior"] = prior
            for t, cmp in zip(ts, analyze(req)["comparisons"]):
                mc, mt = c.mean(), t.mean()
                vc, vt = c.var(ddof=1) / len(c), t.var(ddof=1) / len(t)
                if effect == "absolute":
                    est, se = mt - mc, math.sqrt(vc + vt)
                else:
                    est = mt / mc - 1
                    se = math.sqrt(vt / mc**2 + mt**2 * vc / mc**4)
                if prior:
                    prec = 1 / se**2 + 1 / prior["sd"] ** 2
                    mu = (est / se**2 + prior["mean"] / prior["sd"] ** 2) / \
                        prec
                    s = math.sqrt(1 / prec)
                else:
                    mu, s = est, se
                post = st.norm(mu, s)
                sgn = 1 if direction == "increase" else -1
                win = post.sf(0) if sgn > 0 else post.cdf(0)
                # risk by numerical integration (independent of the formula)
                loss_pos, _ = si.quad(lambda x: x * post.pdf(x), 0,
                                      max(0.0, mu + 40 * s), epsabs=1e-15,
                                      epsrel=1e-12)
                loss_neg, _ = si.quad(lambda x: -x * post.pdf(x),
                                      min(0.0, mu - 40 * s), 0,
                                      epsabs=1e-15, epsrel=1e-12)
                risk_t = loss_neg if sgn > 0 else loss_pos
                risk_c = loss_pos if sgn > 0 else loss_neg
                if side == "two":
                    lo, hi = post.ppf(alpha / 2), post.ppf(1 - alpha / 2)
                elif side == "greater":
                    lo, hi = post.ppf(alpha), None
                else:
                    lo, hi = None, post.ppf(1 - alpha)
                self.close(cmp["effect"], mu, "posterior mean")
                self.close(cmp["se"], s, "posterior sd")
                self.close(cmp["chance_to_win"], win, "chance to win")
                self.close(cmp["ci"][0], lo, "credible lo")
                self.close(cmp["ci"][1], hi, "credible hi")
                self.close(cmp["risk"]["treatment"], risk_t, "risk t", 1e-8,
                           1e-13)
                self.close(cmp["risk"]["control"], risk_c, "risk c", 1e-8,
                           1e-13)
                self.assertIsNone(cmp["p_value"])
                self.assertEqual(cmp["significant"],
                                 (lo is not None and lo > 0) or
                                 (hi is not None and hi < 0))
                cases += 1
        self.assertEqual(cases, 200)

    def test_golden_flat_prior(self):
        # Flat prior: posterior = N(est, se^2) with est = 0.2, se = 0.1
        # (two units per arm: means 1 and 1.2, variances 0.01 each):
        # chance to win = Phi(2) = 0.97724986805182079 (scipy norm.cdf(2));
        # risk of treatment = -0.2 Phi(-2) + 0.1 phi(2) (scipy, below).
        c = {"name": "c", "n": 2, "sum": 2.0, "sum_sq": 2.0 + 0.01}
        t = {"name": "t", "n": 2, "sum": 2.4, "sum_sq": 2.88 + 0.01}
        cmp = analyze({"metric": {"kind": "mean"}, "method": "bayes",
                       "arms": [c, t]})["comparisons"][0]
        self.close(cmp["effect"], 0.2, "golden mean", 1e-12)
        self.close(cmp["se"], 0.1, "golden sd", 1e-9)
        self.close(cmp["chance_to_win"], 0.97724986805182079, "Phi(2)",
                   1e-8)
        want = -0.2 * st.norm.cdf(-2) + 0.1 * st.norm.pdf(2)
        self.close(cmp["risk"]["treatment"], want, "E[max(0,-X)]", 1e-8)


class TestBetaBinomial(unittest.TestCase, Close):
    def test_random_cases(self):
        """30 requests of one control and 5 treatments: 150 comparisons."""
        rng = np.random.default_rng(123)
        cases = 0
        for rep in range(30):
            nc = int(rng.integers(10, 3000))
            pc = float(rng.uniform(0.02, 0.5))
            xc = int(rng.binomial(nc, pc))
            effect = ("absolute", "relative")[rep % 2]
            if effect == "relative" and xc < 2:
                xc = 2
            direction = ("increase", "decrease")[(rep // 2) % 2]
            side = ("two", "greater", "less")[rep % 3]
            alpha = 0.05
            arms = [{"name": "c", "n": nc, "sum": xc}]
            for k in range(5):
                nt = int(rng.integers(10, 3000))
                xt = int(rng.binomial(nt, pc * float(rng.uniform(0.8, 1.3))))
                arms.append({"name": "t%d" % k, "n": nt, "sum": xt})
            ans = analyze({
                "metric": {"kind": "binary", "direction": direction},
                "method": "bayes", "effect": effect, "sided": side,
                "arms": arms})
            for k, cmp in enumerate(ans["comparisons"]):
                nt, xt = arms[k + 1]["n"], arms[k + 1]["sum"]
                ac, bc, at, bt = 1 + xc, 1 + nc - xc, 1 + xt, 1 + nt - xt
                # each tail by its own sum, so a small one keeps its digits
                p_t_wins = miller_prob_b_beats_a(ac, bc, at, bt)
                p_c_wins = miller_prob_b_beats_a(at, bt, ac, bc)
                win = p_t_wins if direction == "increase" else p_c_wins
                loss_if_t = expected_loss(ac, bc, at, bt)   # E[(p_c-p_t)+]
                loss_if_c = expected_loss(at, bt, ac, bc)   # E[(p_t-p_c)+]
                if direction == "decrease":
                    loss_if_t, loss_if_c = loss_if_c, loss_if_t
                self.close(cmp["chance_to_win"], win,
                           "chance to win (Miller sum)", 1e-9, 1e-13)
                self.close(cmp["risk"]["treatment"], loss_if_t, "risk t",
                           1e-7, 1e-13)
                self.close(cmp["risk"]["control"], loss_if_c, "risk c",
                           1e-7, 1e-13)
                rel = effect == "relative"
                if rel:
                    einv, _ = si.quad(lambda x: bpdf(x, ac, bc) / x,
                                      *window(ac, bc), epsabs=1e-15,
                                      epsrel=1e-12)
                    mean = at / (at + bt) * einv - 1
                else:
                    mean = at / (at + bt) - ac / (ac + bc)
                # absolute slack 1e-11: the oracle's quad of E[1/p_c]
                # (epsrel 1e-12) is subtracted from 1 for a small lift
                self.close(cmp["effect"], mean, "posterior mean", 1e-9,
                           1e-11)
                cases += 1
                if k != 0:    # intervals (slow oracle): first arm only
                    continue
                lo_p = alpha / 2 if side == "two" else alpha
                if side != "less":
                    self.close(cmp["ci"][0],
                               diff_quantile(ac, bc, at, bt, lo_p, rel),
                               "credible lo", 1e-7, 1e-10)
                else:
                    self.assertIsNone(cmp["ci"][0])
                if side != "greater":
                    self.close(cmp["ci"][1],
                               diff_quantile(ac, bc, at, bt, 1 - lo_p, rel),
                               "credible hi", 1e-7, 1e-10)
                else:
                    self.assertIsNone(cmp["ci"][1])
        self.assertEqual(cases, 150)

    def test_golden(self):
        # 100/1000 vs 120/1000, Beta(1,1) priors: P(p_t > p_c) from
        # Miller's closed-form sum (121 terms) is the source.
        cmp = analyze({"metric": {"kind": "binary"}, "method": "bayes",
                       "arms": [{"name": "c", "n": 1000, "sum": 100},
                                {"name": "t", "n": 1000, "sum": 120}]}
                      )["comparisons"][0]
        self.close(cmp["chance_to_win"],
                   miller_prob_b_beats_a(101, 901, 121, 881), "golden", 1e-9)
        self.assertGreater(cmp["chance_to_win"], 0.9)
        self.assertLess(cmp["chance_to_win"], 0.95)


if __name__ == "__main__":
    harness.main()
