-- 013_quantiles.sql -- quantile metrics (issue 16): per (experiment,
-- metric, arm) a DDSketch of the per-request values, kept by the fold.
--
-- A metric of kind "quantile" (with q, e.g. 0.99) is analysed on the
-- distribution of its per-request values, which means and sums cannot
-- express. DDSketch buckets are integers, so the sketch is a table of
-- counts (stats/ddsketch.h has the guarantee):
--
--   quantile_buckets (experiment_id, metric, arm, bucket, count)
--   bucket = ceil(ln(value) / ln(gamma)), gamma = (1 + a) / (1 - a),
--            a = 0.01 (STATS_DDSKETCH_ALPHA); value <= 0: the zero bucket
--            -2147483648 (STATS_DDSKETCH_ZERO), which stands for 0
--
-- The fold keeps it: arbiter.fold_quantiles(w1) runs in the same
-- transaction as arbiter.fold() (one statement: sql/db_fold.c,
-- db_fold_run(), the LATERAL call), right after it, with w1 the watermark
-- the fold just wrote. It folds the raw events with txid in
-- [its own watermark, w1) -- the fold's own range [w0, w1), since both
-- watermarks move together in that transaction -- into bucket counts with
-- one set-based INSERT ... ON CONFLICT, attributing each event to the arm
-- stored on its raw row, as arbiter.fold() does. Its own watermark
-- (quantile_fold_state) keeps it exactly once even if a caller folds
-- without it (arbiter.apply_retention() calls arbiter.fold() alone): the
-- next hooked call sketches the skipped range, whose rows are committed
-- for good (below the fold's w1).
--
-- The metric's existing statistics stay as they were: metric_defs reports a
-- quantile metric's kind as 'mean' (its per-unit mean, which arm_stats and
-- the fold keep for every metric of kind mean), with the declared kind and
-- q in two new trailing columns. So arbiter.fold(), arm_stats and the
-- recomputation need no change.

CREATE OR REPLACE VIEW arbiter.metric_defs AS
    SELECT e.id AS experiment_id, e.key AS experiment, m.name,
           CASE WHEN m.kind = 'quantile' THEN 'mean' ELSE m.kind END AS kind,
           m.direction, m.role, m.covariate,
           m.kind AS declared_kind,
           CASE WHEN m.kind = 'quantile' THEN m.q END AS q
      FROM arbiter.experiments e,
           jsonb_to_recordset(coalesce(e.definition->'metrics', '[]'))
             AS m(name text, kind text, direction text, role text,
                  covariate text, q float8);

CREATE TABLE arbiter.quantile_buckets (
    experiment_id bigint NOT NULL,
    metric        text NOT NULL,
    arm           text NOT NULL,
    bucket        int NOT NULL,
    count         bigint NOT NULL,
    PRIMARY KEY (experiment_id, metric, arm, bucket)
);

CREATE TABLE arbiter.quantile_fold_state (
    id        boolean PRIMARY KEY DEFAULT true CHECK (id),
    watermark bigint NOT NULL -- every txid below it is sketched
);
-- no quantile metric existed before this migration: start where the fold is
INSERT INTO arbiter.quantile_fold_state (watermark)
SELECT f.watermark FROM arbiter.fold_state f;

-- The bucket of a value: the same double-precision operations, in the same
-- order, as stats_ddsketch_index() (stats/ddsketch.c): PostgreSQL's ln()
-- on float8 is the C library's log(), the division and ceil() are IEEE,
-- so C and SQL agree bit for bit on one machine (tested at and next to
-- bucket boundaries in tests/integration/test_quantile_fold.py). With a
-- different libm, a value within an ulp or two of a boundary gamma^i could
-- land in the neighbouring bucket; its representative is then still within
-- a (1 + 1e-12) of it, which keeps the guarantee up to that rounding.
CREATE FUNCTION arbiter.ddsketch_index(v float8) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN v > 0
                THEN ceil(ln(v) / ln((1 + 0.01::float8) / (1 - 0.01::float8)))::int
                ELSE -2147483648 END
$$;

-- The value a bucket stands for: 2 gamma^i / (gamma + 1) (0: zero bucket).
CREATE FUNCTION arbiter.ddsketch_value(bucket int) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN bucket = -2147483648 THEN 0::float8
                ELSE 2 * exp(bucket * ln((1 + 0.01::float8) / (1 - 0.01::float8)))
                     / ((1 + 0.01::float8) / (1 - 0.01::float8) + 1) END
$$;

-- Sketch the raw events of [quantile watermark, w1) (see the header).
-- Returns the events sketched. Call it in the transaction of
-- arbiter.fold(), with the watermark that call returned.
CREATE FUNCTION arbiter.fold_quantiles(w1 bigint) RETURNS bigint
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    w0 bigint;
    n bigint := 0;
BEGIN
    -- the fold's lock (already held in the fold's transaction)
    PERFORM pg_advisory_xact_lock(1095910985, 0);
    SELECT s.watermark INTO w0 FROM arbiter.quantile_fold_state s FOR UPDATE;
    IF w1 IS NULL OR w1 <= w0 THEN
        RETURN 0;
    END IF;
    WITH defs AS (
        SELECT DISTINCT d.experiment_id, d.name FROM arbiter.metric_defs d
         WHERE d.declared_kind = 'quantile'),
    ev AS (
        SELECT r.experiment_id, r.metric, r.arm,
               arbiter.ddsketch_index(r.value) AS bucket
          FROM arbiter.events_raw r
          JOIN defs ON (defs.experiment_id, defs.name)
                     = (r.experiment_id, r.metric)
         WHERE r.txid >= w0 AND r.txid < w1 AND r.arm IS NOT NULL),
    agg AS (
        SELECT ev.experiment_id, ev.metric, ev.arm, ev.bucket,
               count(*) AS c
          FROM ev GROUP BY 1, 2, 3, 4),
    ins AS (
        INSERT INTO arbiter.quantile_buckets AS b (experiment_id, metric, arm,
                                                   bucket, count)
        SELECT agg.experiment_id, agg.metric, agg.arm, agg.bucket, agg.c
          FROM agg ORDER BY 1, 2, 3, 4
        ON CONFLICT (experiment_id, metric, arm, bucket)
        DO UPDATE SET count = b.count + excluded.count)
    SELECT coalesce(sum(agg.c), 0) INTO n FROM agg;
    UPDATE arbiter.quantile_fold_state SET watermark = w1;
    RETURN n;
END
$$;

-- For analysts and Grafana: the sketches with each bucket's value.
CREATE VIEW arbiter.quantile_sketches AS
    SELECT e.key AS experiment, b.experiment_id, b.metric, b.arm, b.bucket,
           arbiter.ddsketch_value(b.bucket) AS value, b.count
      FROM arbiter.quantile_buckets b
      JOIN arbiter.experiments e ON e.id = b.experiment_id;

-- From scratch over the raw events (the check the design asks of every
-- aggregate): must equal quantile_buckets for the folded events.
CREATE FUNCTION arbiter.quantile_buckets_recompute(p_experiment text)
RETURNS TABLE (metric text, arm text, bucket int, count bigint)
LANGUAGE sql STABLE AS $$
    SELECT r.metric, r.arm, arbiter.ddsketch_index(r.value), count(*)
      FROM arbiter.events_raw r
      JOIN arbiter.metric_defs d
        ON (d.experiment_id, d.name) = (r.experiment_id, r.metric)
     WHERE d.experiment = p_experiment AND d.declared_kind = 'quantile'
       AND r.arm IS NOT NULL
     GROUP BY 1, 2, 3
$$;
