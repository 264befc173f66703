/* gst.c -- group sequential boundaries by Lan-DeMets error spending.
 *
 * Canonical joint distribution (Jennison & Turnbull 2000, sec. 3.1): with
 * information fractions t_1 < ... < t_K (information scaled so that t = 1
 * is the planned maximum) and drift theta = E[Z] at t = 1, the score
 * S_k = Z_k sqrt(t_k) has independent increments
 *     S_k - S_{k-1} ~ N(theta (t_k - t_{k-1}), t_k - t_{k-1}).
 * The sub-density of Z_k on the continuation region C_k = (a_k, b_k) is
 *     h_1(z) = phi(z - theta sqrt(t_1)),
 *     h_k(z) = int_{C_{k-1}} h_{k-1}(u) sqrt(t_k / D)
 *              phi((z sqrt(t_k) - u sqrt(t_{k-1}) - theta D) / sqrt(D)) du,
 * D = t_k - t_{k-1} (Armitage, McPherson & Rowe 1969), and the probability
 * of first crossing above c at look k is
 *     int_{C_{k-1}} h_{k-1}(u) Q((c sqrt(t_k) - u sqrt(t_{k-1}) - theta D)
 *                                / sqrt(D)) du.
 * Integrals use Simpson's rule on the grid of Jennison & Turnbull (2000),
 * sec. 19.2.1: 6r - 1 points centred on theta sqrt(t_k), denser near the
 * centre, trimmed to C_k with the end points added, plus midpoints.
 *
 * Efficacy boundaries (theta = 0): c_k solves
 *     P(first crossing at k) = alpha(t_k) - alpha(t_{k-1})
 * with the last look spending all that is left (alpha(1)); two-sided
 * designs use +-c_k and spend alpha/2 per tail. Futility boundaries
 * (one-sided, non-binding, beta spending as in rpact): with the efficacy
 * boundaries fixed, for a drift theta, b_k solves
 *     P_theta(Z_k <= b_k, b_j < Z_j < c_j for j < k) = beta(t_k) -
 *     beta(t_{k-1}),
 * capped at c_k; theta is the root of "the type II error through the last
 * look, with b_K = c_K, equals beta" (Pampallona, Tsiatis & Kim 2001).
 * Roots are found by bisection (boundaries) and Illinois regula falsi
 * (drift, stats/root.h), all in caller-owned workspace.
 */
#include "stats/gst.h"

#include <math.h>
#include <stddef.h>

#include <gsl/gsl_cdf.h>

#include "stats/root.h"

#define BOUND_HI 40.0  /* |z| beyond which every tail is below 1e-300 */
#define ROOT_TOL 1e-13 /* absolute, on the z scale */
#define DRIFT_TOL 1e-12

/* ---- small helpers ------------------------------------------------------ */

static double
norm_q(double x) /* upper tail Q(x) = 1 - Phi(x), accurate in both tails */
{
    return 0.5 * erfc(x * M_SQRT1_2);
}

static double
norm_p(double x)
{
    return 0.5 * erfc(-x * M_SQRT1_2);
}

static double
norm_pdf(double x)
{
    return exp(-0.5 * x * x) * (0.5 * M_2_SQRTPI * M_SQRT1_2);
}

static int
spend_valid(enum stats_gst_spend f, double param)
{
    switch (f) {
    case STATS_GST_OBF:
    case STATS_GST_POCOCK:
        return 1;
    case STATS_GST_POWER:
        return isfinite(param) && param > 0;
    case STATS_GST_HSD:
        return isfinite(param) && fabs(param) <= 700;
    case STATS_GST_NONE:
        break;
    }
    return 0;
}

ab_status
stats_gst_spend_value(enum stats_gst_spend f, double param, double x,
                      double t, double *out, enum stats_reason *why)
{
    double v;

    if (isnan(x) || isnan(t) ||
        ((f == STATS_GST_POWER || f == STATS_GST_HSD) && isnan(param))) {
        stats_set_reason(why, STATS_REASON_NOT_FINITE);
        return AB_EINVAL;
    }
    if (!spend_valid(f, param) || !(x > 0 && x < 1) || t < 0 || isinf(t)) {
        stats_set_reason(why, STATS_REASON_BAD_PARAMETER);
        return AB_EINVAL;
    }
    if (t > 1)
        t = 1;
    if (t == 0) {
        *out = 0;
        return AB_OK;
    }
    switch (f) {
    case STATS_GST_OBF:
        v = 2 * norm_q(gsl_cdf_ugaussian_Qinv(x / 2) / sqrt(t));
        break;
    case STATS_GST_POCOCK:
        v = x * log1p((M_E - 1) * t);
        break;
    case STATS_GST_POWER:
        v = x * pow(t, param);
        break;
    case STATS_GST_HSD:
        if (param == 0)
            v = x * t;
        else
            v = x * expm1(-param * t) / expm1(-param);
        break;
    default:
        v = 0;
        break;
    }
    if (t == 1 || v > x)
        v = x;
    *out = v;
    return AB_OK;
}

/* ---- the grid -------------------------------------------------------- */

/* One look's Simpson grid: m points x[], weights w[] and density h[]. */
struct grid {
    double *x, *w, *h;
    size_t m;
    double sq; /* sqrt(t) of this look */
};

/* Build the J&T grid centred on mu, trimmed to (lo, hi) (either may be
 * infinite); sets g->m (0 when the region is empty). Uses g->h as scratch
 * for the base points. */
static void
grid_make(struct grid *g, double mu, double lo, double hi)
{
    const int r = STATS_GST_GRID_R;
    double *base = g->h, *p = g->w; /* scratch: base points, kept points */
    size_t nb = 0, n = 0, i;

    for (int k = 1; k <= 6 * r - 1; k++) {
        double v;
        if (k < r)
            v = -3 - 4 * log((double)r / k);
        else if (k <= 5 * r)
            v = -3 + 3.0 * (k - r) / (2.0 * r);
        else
            v = 3 + 4 * log((double)r / (6 * r - k));
        base[nb++] = mu + v;
    }
    if (!(hi > lo)) {
        g->m = 0;
        return;
    }
    if (lo > base[0])
        p[n++] = lo;
    for (i = 0; i < nb; i++)
        if (base[i] > lo && base[i] < hi)
            p[n++] = base[i];
    if (hi < base[nb - 1])
        p[n++] = hi;
    if (n < 2) { /* a region narrower than one grid step */
        if (n == 0 || !(hi > lo)) {
            g->m = 0;
            return;
        }
        p[0] = fmax(lo, base[0]);
        p[1] = fmin(hi, base[nb - 1]);
        n = 2;
    }
    /* odd points (0-based even) are the kept points, plus midpoints */
    g->m = 2 * n - 1;
    for (i = 0; i < n; i++)
        g->x[2 * i] = p[i];
    for (i = 0; i + 1 < n; i++)
        g->x[2 * i + 1] = 0.5 * (p[i] + p[i + 1]);
    for (i = 0; i < g->m; i++) {
        if (i % 2 == 1)
            g->w[i] = 4 * (g->x[i + 1] - g->x[i - 1]) / 6;
        else if (i == 0)
            g->w[i] = (g->x[2] - g->x[0]) / 6;
        else if (i == g->m - 1)
            g->w[i] = (g->x[i] - g->x[i - 2]) / 6;
        else
            g->w[i] = (g->x[i + 2] - g->x[i - 2]) / 6;
    }
}

/* The sequential integration state: the previous look's grid with
 * w[i] * h[i] folded into h (prev), and the increment parameters. */
struct seq {
    struct stats_gst_work *work;
    int cur;            /* slot of the current grid */
    struct grid g;      /* current look's grid, h = w * density */
    double theta;
    double sq_prev, t_prev; /* sqrt(t_{k-1}) and t_{k-1} */
    int first;
};

static void
seq_start(struct seq *s, struct stats_gst_work *work, double theta)
{
    s->work = work;
    s->cur = 0;
    s->theta = theta;
    s->first = 1;
    s->g.m = 0;
}

/* P(first crossing above c at the look with fraction t) and below a
 * (either may be infinite), given the continuation so far. */
static double
seq_upper(const struct seq *s, double t, double c)
{
    double sqt = sqrt(t), sum = 0, sd;

    if (c == INFINITY)
        return 0;
    if (s->first)
        return norm_q(c - s->theta * sqt);
    sd = sqrt(t - s->t_prev);
    for (size_t i = 0; i < s->g.m; i++)
        sum += s->g.h[i] * norm_q((c * sqt - s->g.x[i] * s->sq_prev -
                                   s->theta * (sd * sd)) /
                                  sd);
    return sum;
}

static double
seq_lower(const struct seq *s, double t, double a)
{
    double sqt = sqrt(t), sum = 0, sd;

    if (a == -INFINITY)
        return 0;
    if (s->first)
        return norm_p(a - s->theta * sqt);
    sd = sqrt(t - s->t_prev);
    for (size_t i = 0; i < s->g.m; i++)
        sum += s->g.h[i] * norm_p((a * sqt - s->g.x[i] * s->sq_prev -
                                   s->theta * (sd * sd)) /
                                  sd);
    return sum;
}

/* Move to the look with fraction t, continuation region (a, b). */
static void
seq_advance(struct seq *s, double t, double a, double b)
{
    struct stats_gst_work *wk = s->work;
    int nx = s->first ? 0 : 1 - s->cur;
    struct grid ng;
    double sqt = sqrt(t), mu = s->theta * sqt;

    ng.x = wk->x[nx];
    ng.w = wk->w[nx];
    ng.h = wk->h[nx];
    ng.sq = sqt;
    grid_make(&ng, mu, a, b);
    if (s->first) {
        for (size_t j = 0; j < ng.m; j++)
            ng.h[j] = ng.w[j] * norm_pdf(ng.x[j] - mu);
    } else {
        double d = t - s->t_prev, sd = sqrt(d);
        double scale = sqt / sd;
        for (size_t j = 0; j < ng.m; j++) {
            double sum = 0, zj = ng.x[j] * sqt - s->theta * d;
            for (size_t i = 0; i < s->g.m; i++)
                sum += s->g.h[i] *
                       norm_pdf((zj - s->g.x[i] * s->sq_prev) / sd);
            ng.h[j] = ng.w[j] * sum * scale;
        }
    }
    s->g = ng;
    s->cur = nx;
    s->sq_prev = sqt;
    s->t_prev = t;
    s->first = 0;
}

/* ---- root finding --------------------------------------------------- */

enum tail { TAIL_UPPER, TAIL_TWO, TAIL_LOWER };

static double
tail_prob(const struct seq *s, enum tail which, double t, double c)
{
    switch (which) {
    case TAIL_UPPER:
        return seq_upper(s, t, c);
    case TAIL_TWO:
        return seq_upper(s, t, c) + seq_lower(s, t, -c);
    case TAIL_LOWER:
        return seq_lower(s, t, c);
    }
    return 0;
}

/* Solve tail_prob(c) = target by bisection to ROOT_TOL. For UPPER/TWO the
 * tail decreases in c, for LOWER it increases; a target outside the range
 * on [-BOUND_HI, BOUND_HI] gives the end of the bracket. */
static ab_status
solve_bound(const struct seq *s, enum tail which, double t, double target,
            double *c)
{
    double lo = which == TAIL_TWO ? 0 : -BOUND_HI, hi = BOUND_HI;
    double flo = tail_prob(s, which, t, lo) - target;
    double fhi = tail_prob(s, which, t, hi) - target;

    if (!isfinite(flo) || !isfinite(fhi))
        return AB_ENUMERIC;
    if (which == TAIL_LOWER) { /* increasing */
        if (flo >= 0) {
            *c = lo;
            return AB_OK;
        }
        if (fhi <= 0) {
            *c = hi;
            return AB_OK;
        }
    } else {
        if (flo <= 0) {
            *c = lo;
            return AB_OK;
        }
        if (fhi >= 0) {
            *c = hi;
            return AB_OK;
        }
    }
    for (int it = 0; it < 200 && hi - lo > ROOT_TOL; it++) {
        double mid = 0.5 * (lo + hi);
        double f = tail_prob(s, which, t, mid) - target;
        if (!isfinite(f))
            return AB_ENUMERIC;
        if ((which == TAIL_LOWER) == (f < 0))
            lo = mid;
        else
            hi = mid;
    }
    *c = 0.5 * (lo + hi);
    return AB_OK;
}

/* ---- validation ------------------------------------------------------ */

static ab_status
design_check(const struct stats_gst_design *d, enum stats_reason *why)
{
    size_t k;
    int has_fut = d->beta_spend != STATS_GST_NONE;

    if (d->k_max < 1 || d->k_max > STATS_GST_MAX_LOOKS)
        goto bad;
    if (d->side != STATS_SIDE_TWO && d->side != STATS_SIDE_GREATER &&
        d->side != STATS_SIDE_LESS)
        goto bad;
    for (k = 0; k < d->k_max; k++)
        if (!isfinite(d->info[k]))
            goto not_finite;
    if (!isfinite(d->alpha) || !isfinite(d->alpha_param) ||
        (has_fut && (!isfinite(d->beta) || !isfinite(d->beta_param))))
        goto not_finite;
    for (k = 0; k < d->k_max; k++) {
        if (d->info[k] <= 0)
            goto bad;
        if (k > 0 && d->info[k] <= d->info[k - 1])
            goto bad;
        if (k + 1 < d->k_max && d->info[k] >= 1)
            goto bad;
    }
    if (d->side == STATS_SIDE_TWO) {
        if (!(d->alpha > 0 && d->alpha < 1))
            goto bad;
    } else if (!(d->alpha > 0 && d->alpha < 0.5)) {
        goto bad;
    }
    if (!spend_valid(d->alpha_spend, d->alpha_param))
        goto bad;
    if (has_fut) {
        if (d->side == STATS_SIDE_TWO)
            goto bad;
        if (!(d->beta > 0 && d->beta < 1 - d->alpha))
            goto bad;
        if (!spend_valid(d->beta_spend, d->beta_param))
            goto bad;
    }
    return AB_OK;
not_finite:
    stats_set_reason(why, STATS_REASON_NOT_FINITE);
    return AB_EINVAL;
bad:
    stats_set_reason(why, STATS_REASON_BAD_PARAMETER);
    return AB_EINVAL;
}

/* Cumulative spending at look k (0-based) of n_looks planned: the last
 * look spends everything. */
static double
spent_at(enum stats_gst_spend f, double param, double x,
         const struct stats_gst_design *d, size_t k)
{
    double v = 0;

    if (k + 1 == d->k_max)
        return x;
    (void)stats_gst_spend_value(f, param, x, d->info[k], &v, NULL);
    return v;
}

/* ---- efficacy ---------------------------------------------------------- */

/* Efficacy boundaries c[0 .. n-1] of d (n <= k_max) under H0, ignoring
 * futility (non-binding); spent[] cumulative alpha (both tails). */
static ab_status
efficacy_bounds(const struct stats_gst_design *d, size_t n,
                struct stats_gst_work *work, double *c, double *spent)
{
    struct seq s;
    int two = d->side == STATS_SIDE_TWO;
    double x = two ? d->alpha / 2 : d->alpha, prev = 0;
    ab_status rc;

    seq_start(&s, work, 0);
    for (size_t k = 0; k < n; k++) {
        double cum = spent_at(d->alpha_spend, d->alpha_param, x, d, k);
        double inc = cum - prev, ck;

        if (inc <= 0) {
            ck = INFINITY;
        } else {
            rc = solve_bound(&s, two ? TAIL_TWO : TAIL_UPPER, d->info[k],
                             two ? 2 * inc : inc, &ck);
            if (rc != AB_OK)
                return rc;
        }
        c[k] = ck;
        spent[k] = two ? 2 * cum : cum;
        prev = cum;
        if (k + 1 < n)
            seq_advance(&s, d->info[k], two ? -ck : -INFINITY, ck);
    }
    return AB_OK;
}

/* ---- futility ---------------------------------------------------------- */

/* For drift theta: futility bounds b[0 .. K-2] from beta spending, and
 * the return value: P_theta(accept at the last look) - its beta
 * increment (decreasing in theta). *bad is set on a numerical failure. */
static double
futility_gap(const struct stats_gst_design *d, const double *c, double theta,
             struct stats_gst_work *work, double *b, int *bad)
{
    struct seq s;
    double prev = 0;
    size_t k_max = d->k_max;

    seq_start(&s, work, theta);
    for (size_t k = 0; k + 1 < k_max; k++) {
        double cum = spent_at(d->beta_spend, d->beta_param, d->beta, d, k);
        double inc = cum - prev, bk;

        if (inc <= 0) {
            bk = STATS_GST_FUTILITY_MIN;
        } else if (solve_bound(&s, TAIL_LOWER, d->info[k], inc, &bk) !=
                   AB_OK) {
            *bad = 1;
            return 0;
        }
        if (bk < STATS_GST_FUTILITY_MIN)
            bk = STATS_GST_FUTILITY_MIN;
        if (bk > c[k])
            bk = c[k];
        b[k] = bk;
        prev = cum;
        seq_advance(&s, d->info[k], bk, c[k]);
    }
    return seq_lower(&s, d->info[k_max - 1], c[k_max - 1]) - (d->beta - prev);
}

/* futility_gap() as a stats_root_fn: NaN on a numerical failure. */
struct gap_arg {
    const struct stats_gst_design *d;
    const double *c;
    struct stats_gst_work *work;
    double *b;
    int bad;
};

static double
gap_fn(double theta, void *arg)
{
    struct gap_arg *g = arg;
    double v = futility_gap(g->d, g->c, theta, g->work, g->b, &g->bad);
    return g->bad ? NAN : v;
}

static ab_status
futility_bounds(const struct stats_gst_design *d, const double *c,
                struct stats_gst_work *work, double *b, double *drift)
{
    double lo = 0, hi = 1, flo, fhi;
    int bad = 0;

    flo = futility_gap(d, c, lo, work, b, &bad);
    fhi = futility_gap(d, c, hi, work, b, &bad);
    while (!bad && fhi > 0 && hi < 64) {
        lo = hi;
        flo = fhi;
        hi *= 2;
        fhi = futility_gap(d, c, hi, work, b, &bad);
    }
    if (bad || !(flo > 0) || fhi > 0)
        return AB_ENUMERIC;
    /* refine the bracket (stats/root.h; gap is decreasing in theta) */
    struct gap_arg g = {d, c, work, b, 0};
    static const struct stats_root_tol tol = {.x_abs = DRIFT_TOL,
                                              .x_rel = 0,
                                              .f_abs = 0,
                                              .max_iter = 200,
                                              .strict = false};
    if (stats_root_illinois(gap_fn, &g, lo, hi, flo, fhi, &tol, drift) != AB_OK)
        return AB_ENUMERIC;
    (void)futility_gap(d, c, *drift, work, b, &bad);
    return bad ? AB_ENUMERIC : AB_OK;
}

/* ---- public ------------------------------------------------------------ */

ab_status
stats_gst_bounds(const struct stats_gst_design *d,
                 struct stats_gst_work *work, struct stats_gst_bounds *out,
                 enum stats_reason *why)
{
    double c[STATS_GST_MAX_LOOKS], spent[STATS_GST_MAX_LOOKS];
    double b[STATS_GST_MAX_LOOKS], drift = 0;
    size_t k, k_max;
    int fut;
    ab_status rc;

    rc = design_check(d, why);
    if (rc != AB_OK)
        return rc;
    k_max = d->k_max;
    fut = d->beta_spend != STATS_GST_NONE;
    rc = efficacy_bounds(d, k_max, work, c, spent);
    if (rc == AB_OK && fut && k_max > 1)
        rc = futility_bounds(d, c, work, b, &drift);
    if (rc != AB_OK) {
        stats_set_reason(why, STATS_REASON_NO_CONVERGENCE);
        return rc;
    }
    if (fut && k_max == 1) /* one look: drift for power 1 - beta */
        drift = (c[0] - gsl_cdf_ugaussian_Pinv(d->beta)) / sqrt(d->info[0]);
    out->k_max = k_max;
    for (k = 0; k < STATS_GST_MAX_LOOKS; k++) {
        int in = k < k_max;
        out->efficacy[k] = in ? c[k] : 0;
        out->alpha_spent[k] = in ? spent[k] : 0;
        if (in && fut)
            out->futility[k] = k + 1 < k_max ? b[k] : c[k];
        else
            out->futility[k] = in ? -INFINITY : 0;
        out->beta_spent[k] =
            in && fut ? spent_at(d->beta_spend, d->beta_param, d->beta, d, k)
                      : 0;
    }
    out->drift = drift;
    out->has_futility = fut;
    return AB_OK;
}

ab_status
stats_gst_decide(const struct stats_gst_design *d, size_t look, double z,
                 struct stats_gst_work *work, struct stats_gst_decision *out,
                 enum stats_reason *why)
{
    double c[STATS_GST_MAX_LOOKS], spent[STATS_GST_MAX_LOOKS];
    double eff, fut = -INFINITY, zs;
    int last, sign;
    enum stats_gst_action act;
    ab_status rc;

    rc = design_check(d, why);
    if (rc != AB_OK)
        return rc;
    if (!isfinite(z)) {
        stats_set_reason(why, STATS_REASON_NOT_FINITE);
        return AB_EINVAL;
    }
    if (look < 1 || look > d->k_max) {
        stats_set_reason(why, STATS_REASON_BAD_PARAMETER);
        return AB_EINVAL;
    }
    last = look == d->k_max;
    if (d->beta_spend != STATS_GST_NONE) {
        struct stats_gst_bounds bd;
        rc = stats_gst_bounds(d, work, &bd, why);
        if (rc != AB_OK)
            return rc;
        eff = bd.efficacy[look - 1];
        fut = bd.futility[look - 1];
        spent[look - 1] = bd.alpha_spent[look - 1];
    } else {
        rc = efficacy_bounds(d, look, work, c, spent);
        if (rc != AB_OK) {
            stats_set_reason(why, STATS_REASON_NO_CONVERGENCE);
            return rc;
        }
        eff = c[look - 1];
    }
    sign = d->side == STATS_SIDE_LESS ? -1 : 1;
    zs = sign * z; /* on the scale where large is good for H1 */
    if (d->side == STATS_SIDE_TWO ? fabs(z) >= eff : zs >= eff)
        act = STATS_GST_EFFICACY;
    else if (last)
        act = STATS_GST_ACCEPT;
    else if (zs <= fut)
        act = STATS_GST_FUTILITY;
    else
        act = STATS_GST_CONTINUE;
    out->action = act;
    out->look = look;
    out->z = z;
    out->efficacy = sign * eff;
    out->futility = sign * fut;
    out->alpha_spent = spent[look - 1];
    out->direction = act == STATS_GST_EFFICACY ? (z > 0 ? 1 : -1) : 0;
    return AB_OK;
}
