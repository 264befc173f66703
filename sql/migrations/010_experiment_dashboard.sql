-- 010_experiment_dashboard.sql -- what the experiment dashboard shows,
-- as views a read-only Grafana role can SELECT (dashboards/README.md):
--
--   arbiter.experiment_results   per experiment, metric and treatment arm:
--       the estimate, the effect and relative lift with their intervals,
--       the p-value and the verdict -- the numbers of
--       GET /v1/experiments/{key}/results at its defaults (method msprt,
--       alpha 0.05, tuning 5000: the always-valid p-value and interval of
--       the current look; guardrails one-sided in their harmful direction; Holm
--       across the comparisons of a metric when there are more than two
--       arms), computed here from arbiter.arm_stats.
--   arbiter.rollout_timeline     every decision of an experiment in time
--       order, with the step, the candidate's share and the evidence
--       flattened into columns.
--
-- Formulas (stats/msprt.h; Johari, Pekelis & Walsh 2017; Howard et al.
-- 2021): per arm mean m = sum/n and variance v = (sum_sq - sum^2/n)/(n-1);
-- absolute effect d = m_t - m_c, V = v_t/n_t + v_c/n_c; relative lift
-- l = m_t/m_c - 1, V_l = v_t/(n_t m_c^2) + m_t^2 v_c/(n_c m_c^4) (delta
-- method); t_eff = s2/V with s2 the V of one unit per arm;
-- rho2 = (-2 ln a + ln(1 - 2 ln a)) / 5000, r = rho2 t_eff, z = d/sqrt(V);
-- two-sided LR = (1+r)^(-1/2) exp(z^2 r / (2 (1+r))), one-sided LR =
-- 2 Phi(z') (1+r)^(-1/2) exp(...) with z' = z sqrt(r/(1+r)) (z negated for
-- lower-is-better); p = min(1, 1/LR); two-sided interval
-- d -/+ sqrt(V) sqrt(2 (1+r)/r (ln(1/a) + ln(1+r)/2)). A one-sided test's
-- interval has one finite end, found by bisection on LR = 1/a.
-- Ratio metrics get their estimate (sum / den_sum) but no test here
-- (status 'not_computed', verdict 'unknown'): /results has them (delta
-- method), and CUPED covariates, which the default msprt method does not
-- use either.

-- Standard normal CDF: Hart's algorithm as given by West (2005), "Better
-- approximations to cumulative normal functions", Wilmott 9:70-76;
-- double-precision accuracy.
CREATE FUNCTION arbiter.norm_cdf(x double precision)
RETURNS double precision LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    xa double precision := abs(x);
    e double precision;
    b double precision;
    c double precision;
BEGIN
    IF xa > 37 THEN
        c := 0;
    ELSE
        e := exp(-xa * xa / 2);
        IF xa < 7.07106781186547 THEN
            b := 3.52624965998911e-02 * xa + 0.700383064443688;
            b := b * xa + 6.37396220353165;
            b := b * xa + 33.912866078383;
            b := b * xa + 112.079291497871;
            b := b * xa + 221.213596169931;
            b := b * xa + 220.206867912376;
            c := e * b;
            b := 8.83883476483184e-02 * xa + 1.75566716318264;
            b := b * xa + 16.064177579207;
            b := b * xa + 86.7807322029461;
            b := b * xa + 296.564248779674;
            b := b * xa + 637.333633378831;
            b := b * xa + 793.826512519948;
            b := b * xa + 440.413735824752;
            c := c / b;
        ELSE
            b := xa + 0.65;
            b := xa + 4 / b;
            b := xa + 3 / b;
            b := xa + 2 / b;
            b := xa + 1 / b;
            c := e / b / 2.506628274631;
        END IF;
    END IF;
    IF x > 0 THEN
        RETURN 1 - c;
    END IF;
    RETURN c;
END $$;

-- The mixture likelihood ratio's log at one null value (see the header);
-- sided: 'two', 'greater' or 'less'.
CREATE FUNCTION arbiter.msprt_log_lr(d double precision, d0 double precision,
                                     se double precision, r double precision,
                                     sided text)
RETURNS double precision LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT CASE WHEN sided = 'two' THEN base
                ELSE base + ln(2) + ln(greatest(arbiter.norm_cdf(
                         zs * sqrt(r / (1 + r))), 1e-300)) END
      FROM (SELECT CASE WHEN sided = 'less' THEN -(d - d0) / se
                        ELSE (d - d0) / se END AS zs) z,
           LATERAL (SELECT -0.5 * ln(1 + r)
                           + z.zs * z.zs * r / (2 * (1 + r)) AS base) b
$$;

-- The finite end of a one-sided always-valid interval: the null value where
-- LR = 1/alpha, by bisection (LR falls monotonically towards it).
CREATE FUNCTION arbiter.msprt_bound(d double precision, se double precision,
                                    r double precision, alpha double precision,
                                    sided text)
RETURNS double precision LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    target double precision := ln(1 / alpha);
    half double precision := se * sqrt(2 * (1 + r) / r
                                       * (target + ln(1 + r) / 2)) + se;
    near double precision := d;   -- LR(near) < 1/alpha
    far double precision;         -- LR(far) >= 1/alpha
    mid double precision;
BEGIN
    IF se <= 0 THEN
        RETURN NULL;
    END IF;
    -- greater: the interval is (low, inf), low below d; less: (-inf, high)
    far := CASE WHEN sided = 'greater' THEN d - half ELSE d + half END;
    WHILE arbiter.msprt_log_lr(d, far, se, r, sided) < target LOOP
        far := d + 2 * (far - d);
    END LOOP;
    FOR i IN 1..200 LOOP
        mid := (near + far) / 2;
        EXIT WHEN mid = near OR mid = far;
        IF arbiter.msprt_log_lr(d, mid, se, r, sided) < target THEN
            near := mid;
        ELSE
            far := mid;
        END IF;
    END LOOP;
    RETURN (near + far) / 2;
END $$;

CREATE VIEW arbiter.experiment_results AS
WITH arms AS (
    SELECT s.experiment, s.experiment_id, s.metric, s.kind, s.direction,
           s.role, s.arm, s.n::float8 AS n,
           CASE WHEN s.kind = 'ratio' THEN s.sum / nullif(s.den_sum, 0)
                WHEN s.n > 0 THEN s.sum / s.n END AS mean,
           CASE WHEN s.n > 1
                THEN greatest((s.sum_sq - s.sum * s.sum / s.n) / (s.n - 1), 0)
           END AS var,
           coalesce((SELECT (a->>'control')::boolean
                       FROM jsonb_array_elements(e.definition->'arms') a
                      WHERE a->>'name' = s.arm), false) AS control,
           d.covariate
      FROM arbiter.arm_stats s
      JOIN arbiter.experiments e ON e.id = s.experiment_id
      JOIN arbiter.metric_defs d
        ON d.experiment_id = s.experiment_id AND d.name = s.metric
),
pairs AS (
    SELECT t.experiment, t.metric, t.kind, coalesce(t.direction, 'increase')
               AS direction, coalesce(t.role, 'primary') AS role,
           t.arm, c.arm AS control_arm, t.covariate,
           c.n AS control_n, c.mean AS control_mean, c.var AS control_var,
           t.n, t.mean, t.var,
           -- a guardrail is tested one-sided in its HARMFUL direction,
           -- as /results and the rollout engine do
           -- (core_guardrail_harm_side): a 'decrease' metric is harmed by
           -- an increase, an 'increase' one by a decrease
           CASE WHEN t.role = 'guardrail'
                THEN CASE WHEN t.direction = 'decrease' THEN 'greater'
                          ELSE 'less' END
                ELSE 'two' END AS sided,
           count(*) OVER (PARTITION BY t.experiment_id, t.metric) + 1
               AS n_arms,
           (-2 * ln(0.05) + ln(1 - 2 * ln(0.05))) / 5000 AS rho2
      FROM arms t
      JOIN arms c ON c.experiment_id = t.experiment_id
                 AND c.metric = t.metric AND c.control
     WHERE NOT t.control
),
effects AS (
    SELECT p.*,
           CASE WHEN p.kind = 'ratio' THEN 'not_computed'
                WHEN p.n < 2 OR p.control_n < 2 THEN 'few_units'
                WHEN p.var + p.control_var <= 0 THEN 'zero_variance'
                ELSE 'ok' END AS status,
           p.mean - p.control_mean AS effect,
           p.var / p.n + p.control_var / p.control_n AS v,
           p.var + p.control_var AS s2,
           CASE WHEN p.control_mean <> 0
                THEN p.mean / p.control_mean - 1 END AS lift,
           CASE WHEN p.control_mean <> 0
                THEN p.var / (p.n * p.control_mean ^ 2)
                     + p.mean ^ 2 * p.control_var
                       / (p.control_n * p.control_mean ^ 4) END AS v_lift,
           CASE WHEN p.control_mean <> 0
                THEN p.var / p.control_mean ^ 2
                     + p.mean ^ 2 * p.control_var / p.control_mean ^ 4
           END AS s2_lift
      FROM pairs p
),
tests AS (
    SELECT f.*,
           CASE WHEN f.status = 'ok' THEN f.rho2 * f.s2 / f.v END AS r,
           CASE WHEN f.status = 'ok' AND f.v_lift > 0
                THEN f.rho2 * f.s2_lift / f.v_lift END AS r_lift
      FROM effects f
),
pvalues AS (
    SELECT t.*,
           CASE WHEN t.status = 'ok' THEN least(1, exp(-arbiter.msprt_log_lr(
                    t.effect, 0, sqrt(t.v), t.r, t.sided))) END AS p_value
      FROM tests t
),
holm AS (
    SELECT p.*,
           CASE WHEN p.n_arms > 2 AND p.p_value IS NOT NULL THEN
               least(1, max((p.n_arms - 1 - rnk + 1) * p.p_value)
                   OVER (PARTITION BY p.experiment, p.metric
                         ORDER BY p.p_value, p.arm
                         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW))
           END AS adjusted_p_value
      FROM (SELECT q.*, row_number() OVER (PARTITION BY q.experiment, q.metric
                                           ORDER BY q.p_value, q.arm) AS rnk
              FROM pvalues q) p
)
SELECT h.experiment, h.metric, h.kind, h.direction, h.role, h.arm,
       h.control_arm, h.sided, h.status,
       h.control_n::bigint AS control_n, h.control_mean,
       h.n::bigint AS n, h.mean AS estimate,
       CASE WHEN h.status = 'ok' THEN h.effect END AS effect,
       CASE WHEN h.status = 'ok' THEN sqrt(h.v) END AS se,
       CASE WHEN h.status <> 'ok' THEN NULL
            WHEN h.sided = 'less' THEN NULL
            WHEN h.sided = 'greater' THEN arbiter.msprt_bound(
                     h.effect, sqrt(h.v), h.r, 0.05, 'greater')
            ELSE h.effect - sqrt(h.v) * sqrt(2 * (1 + h.r) / h.r
                                             * (ln(20) + ln(1 + h.r) / 2))
       END AS ci_low,
       CASE WHEN h.status <> 'ok' THEN NULL
            WHEN h.sided = 'greater' THEN NULL
            WHEN h.sided = 'less' THEN arbiter.msprt_bound(
                     h.effect, sqrt(h.v), h.r, 0.05, 'less')
            ELSE h.effect + sqrt(h.v) * sqrt(2 * (1 + h.r) / h.r
                                             * (ln(20) + ln(1 + h.r) / 2))
       END AS ci_high,
       CASE WHEN h.status = 'ok' THEN h.lift END AS lift,
       CASE WHEN h.status <> 'ok' OR h.r_lift IS NULL THEN NULL
            WHEN h.sided = 'less' THEN NULL
            WHEN h.sided = 'greater' THEN arbiter.msprt_bound(
                     h.lift, sqrt(h.v_lift), h.r_lift, 0.05, 'greater')
            ELSE h.lift - sqrt(h.v_lift) * sqrt(2 * (1 + h.r_lift) / h.r_lift
                                           * (ln(20) + ln(1 + h.r_lift) / 2))
       END AS lift_ci_low,
       CASE WHEN h.status <> 'ok' OR h.r_lift IS NULL THEN NULL
            WHEN h.sided = 'greater' THEN NULL
            WHEN h.sided = 'less' THEN arbiter.msprt_bound(
                     h.lift, sqrt(h.v_lift), h.r_lift, 0.05, 'less')
            ELSE h.lift + sqrt(h.v_lift) * sqrt(2 * (1 + h.r_lift) / h.r_lift
                                           * (ln(20) + ln(1 + h.r_lift) / 2))
       END AS lift_ci_high,
       h.p_value, h.adjusted_p_value,
       coalesce(h.adjusted_p_value, h.p_value) <= 0.05 AS significant,
       CASE WHEN h.status <> 'ok' THEN 'unknown'
            WHEN coalesce(h.adjusted_p_value, h.p_value) > 0.05
                 THEN 'inconclusive'
            WHEN (CASE WHEN h.direction = 'decrease' THEN -h.effect
                       ELSE h.effect END) > 0 THEN 'better'
            WHEN (CASE WHEN h.direction = 'decrease' THEN -h.effect
                       ELSE h.effect END) < 0 THEN 'worse'
            ELSE 'inconclusive' END AS verdict
  FROM holm h;

CREATE VIEW arbiter.rollout_timeline AS
    SELECT d.experiment, d.at, d.action, d.actor, d.from_state, d.to_state,
           d.reason,
           (d.details->>'step')::int AS step,
           coalesce((d.details->>'share')::float8,
                    (d.details->'weights'->>(e.definition->'arms'->-1->>'name'))::float8)
               AS share,
           d.details->>'phase' AS phase,
           d.details AS evidence
      FROM arbiter.decisions d
      JOIN arbiter.experiments e ON e.key = d.experiment;
