-- 002_events.sql -- outcome events, per-unit values, per-arm sufficient
-- statistics, idempotency, and the from-scratch recomputation.
--
-- Per unit u, arm a and declared metric m (kind k, covariate c):
--   n_u  = number of events of m,   s_u = sum of their values
--   y_u  = binary: [n_u > 0]   sum: s_u   mean: s_u / n_u   ratio: s_u
--   d_u  = ratio only: n_u (the denominator: requests)
--   x_u  = the unit's sum of covariate c events (0 when none)
-- Population: binary and sum metrics count every exposed unit of the arm
-- (units without events contribute y = 0); mean and ratio metrics count
-- units with at least one event of m.
-- Per (experiment, arm, metric) we keep, over the population:
--   units (with events), sum y, sum y^2, sum d, sum d^2, sum y*d,
--   sum x, sum x^2, sum x*y
-- maintained incrementally: every batch subtracts the old contribution of
-- each unit it touches and adds the new one, in the transaction that
-- stores the raw events. arbiter.arm_stats reads them in O(arms x metrics);
-- arbiter.arm_stats_recompute() derives the same numbers from raw events.

CREATE TABLE arbiter.events_raw (
    experiment_id bigint NOT NULL,
    event_id      text,                 -- client id (idempotency), or NULL
    unit          text NOT NULL,
    arm           text NOT NULL,
    metric        text NOT NULL,
    value         double precision NOT NULL,
    ts            timestamptz NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    attributes    jsonb
) PARTITION BY RANGE (ts);
CREATE TABLE arbiter.events_raw_default PARTITION OF arbiter.events_raw DEFAULT;
CREATE INDEX events_raw_experiment ON arbiter.events_raw (experiment_id, metric, unit);

-- Client event ids seen (idempotency window = event retention).
CREATE TABLE arbiter.event_ids (
    experiment_id bigint NOT NULL,
    event_id      text NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (experiment_id, event_id)
);

-- Every ingest batch (one HTTP request) ever committed: makes spool replay
-- and a retried commit of unknown outcome exactly-once.
CREATE TABLE arbiter.ingest_batches (
    batch_id     text PRIMARY KEY,
    events       integer NOT NULL,
    accepted     integer NOT NULL,
    duplicates   integer NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE arbiter.unit_metrics (
    experiment_id bigint NOT NULL,
    metric        text NOT NULL,
    unit          text NOT NULL,
    arm           text NOT NULL,
    n             bigint NOT NULL,
    value_sum     double precision NOT NULL,
    first_ts      timestamptz NOT NULL,
    last_ts       timestamptz NOT NULL,
    PRIMARY KEY (experiment_id, metric, unit, arm)
) WITH (fillfactor = 70); -- room for HOT updates: every ingest updates rows

CREATE TABLE arbiter.arm_metric_totals (
    experiment_id bigint NOT NULL,
    arm           text NOT NULL,
    metric        text NOT NULL,
    units         bigint NOT NULL DEFAULT 0,
    sum           double precision NOT NULL DEFAULT 0,
    sum_sq        double precision NOT NULL DEFAULT 0,
    den_sum       double precision NOT NULL DEFAULT 0,
    den_sum_sq    double precision NOT NULL DEFAULT 0,
    cross_sum     double precision NOT NULL DEFAULT 0,
    pre_sum       double precision NOT NULL DEFAULT 0,
    pre_sum_sq    double precision NOT NULL DEFAULT 0,
    pre_cross_sum double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment_id, arm, metric)
);

-- The declared metrics of every experiment, from its definition.
CREATE VIEW arbiter.metric_defs AS
    SELECT e.id AS experiment_id, e.key AS experiment, m.name, m.kind,
           m.direction, m.role, m.covariate
      FROM arbiter.experiments e,
           jsonb_to_recordset(coalesce(e.definition->'metrics', '[]'))
             AS m(name text, kind text, direction text, role text,
                  covariate text);

-- Contribution of one unit to its arm's totals for each declared metric
-- (see the header). Used with old and new per-unit values.
CREATE FUNCTION arbiter.contribution(kind text, n bigint, s double precision,
                                     x double precision,
                                     OUT units bigint, OUT y double precision,
                                     OUT d double precision,
                                     OUT counted boolean)
LANGUAGE sql IMMUTABLE AS $$
    SELECT (coalesce(n, 0) > 0)::int::bigint,
           CASE kind
             WHEN 'binary' THEN (coalesce(n, 0) > 0)::int::float8
             WHEN 'sum'    THEN coalesce(s, 0)
             WHEN 'mean'   THEN CASE WHEN coalesce(n, 0) > 0 THEN s / n END
             WHEN 'ratio'  THEN coalesce(s, 0)
           END,
           CASE kind WHEN 'ratio' THEN coalesce(n, 0)::float8 ELSE 0 END,
           CASE WHEN kind IN ('binary', 'sum') THEN true
                ELSE coalesce(n, 0) > 0 END
$$;

-- Ingest one group commit. Arrays are parallel, one element per event;
-- batch_ids names the requests they came from; p_batch is each event's
-- (1-based) index into it. Batches committed before are skipped whole and
-- report the counts stored when they were committed. Returns per batch:
-- accepted and duplicate counts.
--
-- Cost (measured by `make bench-ingest`, bench/results/ingest.md): every
-- statement below is one pass over the group; the per-key reads of big
-- tables are forced to index probes (correlated subqueries, LATERAL ...
-- OFFSET 0), since the temporary tables have no statistics and a hash join
-- would scan all of unit_metrics for every group. The per-arm totals touch
-- only the (unit, metric) pairs whose value or covariate changes: for the
-- others new - old is zero. jit is off: the planner's cost estimates of
-- these statements cross jit_above_cost and LLVM compilation cost more
-- than the statements themselves.
CREATE FUNCTION arbiter.ingest(
    batch_ids text[], p_batch int[], p_experiment bigint[], p_event_id text[], p_unit text[], p_arm text[],
    p_arm_hint text[], p_metric text[], p_value float8[], p_ts_ms bigint[],
    p_attributes text[])
RETURNS TABLE (batch_id text, accepted int, duplicates int)
LANGUAGE plpgsql SET jit = off SET work_mem = '64MB' AS $$
DECLARE
    lk record;
    skip int[];
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS ingest_in (
        ord int, batch int, experiment_id bigint, event_id text, unit text,
        arm text, metric text, value float8, ts timestamptz,
        attributes jsonb, keep boolean) ON COMMIT DELETE ROWS;
    -- per (experiment, metric, unit, arm): this group's count, sum, span
    CREATE TEMP TABLE IF NOT EXISTS ingest_delta (
        experiment_id bigint, metric text, unit text, arm text, n bigint,
        s float8, first_ts timestamptz, last_ts timestamptz)
        ON COMMIT DELETE ROWS;
    TRUNCATE ingest_in, ingest_delta;

    -- One writer per experiment at a time, in id order (no deadlock). The
    -- totals below are "new - old" per touched unit, with old and new read
    -- by different statements: two servers ingesting the same unit at once
    -- would both subtract the same old contribution and the totals would
    -- drift from arm_stats_recompute() (found by
    -- tests/integration/test_ingest_aggregates.py). In READ COMMITTED every
    -- statement after the lock sees what the previous holder committed.
    -- Key space: (class 1095910985 = 'ARBI', experiment id), apart from the
    -- one-bigint keys of migrations and the decision loop.
    FOR lk IN SELECT DISTINCT e FROM unnest(p_experiment) AS e ORDER BY 1
    LOOP
        PERFORM pg_advisory_xact_lock(1095910985, (lk.e % 2147483648)::int);
    END LOOP;

    -- batches committed before (spool replay, a retried commit whose
    -- outcome was unknown) are skipped whole, and so is a batch id repeated
    -- in this call (a spool replayed in groups could hold one twice; the
    -- second ingest_batches row would break the primary key, fail the
    -- group for ever and block the spool behind it -- found by
    -- tests/integration/test_ingest_durability.py)
    SELECT coalesce(array_agg(z.i), '{}') INTO skip
      FROM (SELECT k.i::int AS i, k.id,
                   row_number() OVER (PARTITION BY k.id ORDER BY k.i) AS r
              FROM unnest(batch_ids) WITH ORDINALITY AS k(id, i)) z
     WHERE z.r > 1
        OR EXISTS (SELECT 1 FROM arbiter.ingest_batches b
                    WHERE b.batch_id = z.id);

    -- stage, with the arm: explicit, else the unit's exposure, else the
    -- snapshot's hash (exposures as of before this group: the ones it
    -- creates are inserted below)
    INSERT INTO ingest_in
    SELECT t.ord::int, t.batch, t.experiment_id, t.event_id, t.unit,
           coalesce(t.arm,
                    (SELECT x.arm FROM arbiter.exposure_units x
                      WHERE x.experiment_id = t.experiment_id
                        AND x.unit = t.unit),
                    t.arm_hint),
           t.metric, t.value, to_timestamp(t.ts_ms / 1000.0),
           t.attributes::jsonb, t.batch <> ALL (skip)
      FROM unnest(p_batch, p_experiment, p_event_id, p_unit, p_arm,
                  p_arm_hint, p_metric, p_value, p_ts_ms, p_attributes)
           WITH ORDINALITY AS t(batch, experiment_id, event_id, unit, arm,
                                arm_hint, metric, value, ts_ms, attributes,
                                ord);

    -- client ids: the first occurrence wins, in order, if it is new
    WITH firsts AS (
        SELECT DISTINCT ON (i.experiment_id, i.event_id) i.ord,
               i.experiment_id, i.event_id
          FROM ingest_in i WHERE i.keep AND i.event_id IS NOT NULL
         ORDER BY i.experiment_id, i.event_id, i.ord),
    fresh AS (
        INSERT INTO arbiter.event_ids (experiment_id, event_id)
        SELECT f.experiment_id, f.event_id FROM firsts f ORDER BY 1, 2
        ON CONFLICT DO NOTHING
        RETURNING event_ids.experiment_id, event_ids.event_id),
    winners AS (
        SELECT f.ord FROM firsts f
          JOIN fresh n ON (n.experiment_id, n.event_id)
                        = (f.experiment_id, f.event_id))
    UPDATE ingest_in i SET keep = false
     WHERE i.keep AND i.event_id IS NOT NULL
       AND i.ord NOT IN (SELECT w.ord FROM winners w);

    -- a unit with outcomes but no recorded exposure is exposed now
    WITH ins AS (
        INSERT INTO arbiter.exposure_units (experiment_id, unit, arm,
            bucket_version, weights_version, propensity, first_seen,
            last_seen, count)
        SELECT DISTINCT ON (i.experiment_id, i.unit) i.experiment_id, i.unit,
               i.arm, 0, 0, 'NaN'::float8, i.ts, i.ts, 0
          FROM ingest_in i WHERE i.keep
         ORDER BY i.experiment_id, i.unit, i.ord
        ON CONFLICT DO NOTHING
        RETURNING exposure_units.experiment_id, exposure_units.arm)
    INSERT INTO arbiter.exposure_arm_totals AS t (experiment_id, arm, units,
                                                  exposures)
    SELECT ins.experiment_id, ins.arm, count(*), 0 FROM ins
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (experiment_id, arm) DO UPDATE SET units = t.units + excluded.units;

    -- the raw events
    INSERT INTO arbiter.events_raw (experiment_id, event_id, unit, arm, metric,
                                value, ts, attributes)
    SELECT i.experiment_id, i.event_id, i.unit, i.arm, i.metric, i.value,
           i.ts, i.attributes
      FROM ingest_in i WHERE i.keep ORDER BY i.ord;

    INSERT INTO ingest_delta
    SELECT i.experiment_id, i.metric, i.unit, i.arm, count(*), sum(i.value),
           min(i.ts), max(i.ts)
      FROM ingest_in i WHERE i.keep
     GROUP BY 1, 2, 3, 4;

    -- totals += new - old (arbiter.contribution(), written out so that it
    -- is inlined) for every (unit, arm, declared metric m) with events of
    -- m or of its covariate in this group. old: unit_metrics before the
    -- upsert below; new: old + this group's delta, the very floating-point
    -- operation that upsert stores. Every touched arm also gets a row
    -- for each binary and sum metric (their population is every exposed
    -- unit), as a full recomputation of the touched units would make.
    INSERT INTO arbiter.arm_metric_totals AS a (experiment_id, arm, metric,
        units, sum, sum_sq, den_sum, den_sum_sq, cross_sum, pre_sum,
        pre_sum_sq, pre_cross_sum)
    SELECT c.experiment_id, c.arm, c.metric,
           sum(c.units1 - c.units0), sum(c.y1 - c.y0),
           sum(c.y1 * c.y1 - c.y0 * c.y0), sum(c.d1 - c.d0),
           sum(c.d1 * c.d1 - c.d0 * c.d0), sum(c.y1 * c.d1 - c.y0 * c.d0),
           sum(c.x1 - c.x0), sum(c.x1 * c.x1 - c.x0 * c.x0),
           sum(c.x1 * c.y1 - c.x0 * c.y0)
      FROM (
        SELECT v.experiment_id, v.arm, v.metric,
               CASE WHEN v.c0 THEN (v.n0 > 0)::int ELSE 0 END AS units0,
               CASE WHEN v.c0 THEN v.y0 ELSE 0 END AS y0,
               CASE WHEN v.c0 THEN v.d0 ELSE 0 END AS d0,
               CASE WHEN v.c0 THEN v.x0 ELSE 0 END AS x0,
               CASE WHEN v.c1 THEN (v.n1 > 0)::int ELSE 0 END AS units1,
               CASE WHEN v.c1 THEN v.y1 ELSE 0 END AS y1,
               CASE WHEN v.c1 THEN v.d1 ELSE 0 END AS d1,
               CASE WHEN v.c1 THEN v.x1 ELSE 0 END AS x1
          FROM (
            SELECT o.experiment_id, o.arm, o.metric, o.n0, o.n1, o.x0, o.x1,
                   o.kind IN ('binary', 'sum') OR o.n0 > 0 AS c0,
                   o.kind IN ('binary', 'sum') OR o.n1 > 0 AS c1,
                   CASE o.kind WHEN 'binary' THEN (o.n0 > 0)::int::float8
                               WHEN 'sum' THEN o.s0
                               WHEN 'mean' THEN CASE WHEN o.n0 > 0
                                                     THEN o.s0 / o.n0 END
                               WHEN 'ratio' THEN o.s0 END AS y0,
                   CASE o.kind WHEN 'binary' THEN (o.n1 > 0)::int::float8
                               WHEN 'sum' THEN o.s1
                               WHEN 'mean' THEN CASE WHEN o.n1 > 0
                                                     THEN o.s1 / o.n1 END
                               WHEN 'ratio' THEN o.s1 END AS y1,
                   CASE o.kind WHEN 'ratio' THEN o.n0::float8 ELSE 0 END AS d0,
                   CASE o.kind WHEN 'ratio' THEN o.n1::float8 ELSE 0 END AS d1
              FROM (
                SELECT p.experiment_id, p.arm, p.metric, p.kind,
                       coalesce(ym.n, 0) AS n0,
                       coalesce(ym.n, 0) + coalesce(p.dn, 0) AS n1,
                       coalesce(ym.value_sum, 0) AS s0,
                       CASE WHEN p.dn IS NULL THEN coalesce(ym.value_sum, 0)
                            WHEN ym.n IS NULL THEN p.ds
                            ELSE ym.value_sum + p.ds END AS s1,
                       coalesce(xc.value_sum, 0) AS x0,
                       CASE WHEN p.dx IS NULL THEN coalesce(xc.value_sum, 0)
                            WHEN xc.n IS NULL THEN p.dx
                            ELSE xc.value_sum + p.dx END AS x1
                  FROM (
                    SELECT d.experiment_id, d.unit, d.arm, m.name AS metric,
                           m.kind, m.covariate,
                           sum(d.n) FILTER (WHERE d.metric = m.name) AS dn,
                           sum(d.s) FILTER (WHERE d.metric = m.name) AS ds,
                           sum(d.s) FILTER (WHERE d.metric = m.covariate) AS dx
                      FROM ingest_delta d
                      JOIN arbiter.metric_defs m
                        ON m.experiment_id = d.experiment_id
                       AND (d.metric = m.name OR d.metric = m.covariate)
                     GROUP BY 1, 2, 3, 4, 5, 6) p
                  LEFT JOIN LATERAL (
                    SELECT u.n, u.value_sum FROM arbiter.unit_metrics u
                     WHERE (u.experiment_id, u.metric, u.unit, u.arm)
                         = (p.experiment_id, p.metric, p.unit, p.arm)
                    OFFSET 0) ym ON true
                  LEFT JOIN LATERAL (
                    SELECT u.n, u.value_sum FROM arbiter.unit_metrics u
                     WHERE (u.experiment_id, u.metric, u.unit, u.arm)
                         = (p.experiment_id, p.covariate, p.unit, p.arm)
                    OFFSET 0) xc ON true) o) v
        UNION ALL
        SELECT DISTINCT d.experiment_id, d.arm, m.name, 0, 0, 0, 0, 0, 0,
               0, 0
          FROM ingest_delta d
          JOIN arbiter.metric_defs m ON m.experiment_id = d.experiment_id
         WHERE m.kind IN ('binary', 'sum')) c
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (experiment_id, arm, metric) DO UPDATE SET
        units = a.units + excluded.units, sum = a.sum + excluded.sum,
        sum_sq = a.sum_sq + excluded.sum_sq,
        den_sum = a.den_sum + excluded.den_sum,
        den_sum_sq = a.den_sum_sq + excluded.den_sum_sq,
        cross_sum = a.cross_sum + excluded.cross_sum,
        pre_sum = a.pre_sum + excluded.pre_sum,
        pre_sum_sq = a.pre_sum_sq + excluded.pre_sum_sq,
        pre_cross_sum = a.pre_cross_sum + excluded.pre_cross_sum;

    -- per-unit running values
    INSERT INTO arbiter.unit_metrics AS u (experiment_id, metric, unit, arm,
                                           n, value_sum, first_ts, last_ts)
    SELECT d.experiment_id, d.metric, d.unit, d.arm, d.n, d.s, d.first_ts,
           d.last_ts
      FROM ingest_delta d ORDER BY 1, 2, 3, 4
    ON CONFLICT (experiment_id, metric, unit, arm) DO UPDATE SET
        n = u.n + excluded.n, value_sum = u.value_sum + excluded.value_sum,
        first_ts = least(u.first_ts, excluded.first_ts),
        last_ts = greatest(u.last_ts, excluded.last_ts);

    INSERT INTO arbiter.ingest_batches (batch_id, events, accepted,
                                        duplicates)
    SELECT batch_ids[i.batch], count(*), count(*) FILTER (WHERE i.keep),
           count(*) FILTER (WHERE NOT i.keep)
      FROM ingest_in i
     WHERE i.batch <> ALL (skip)
     GROUP BY i.batch;

    RETURN QUERY
    SELECT b.batch_id, b.accepted, b.duplicates
      FROM unnest(batch_ids) WITH ORDINALITY AS k(id, i)
      JOIN arbiter.ingest_batches b ON b.batch_id = k.id
     ORDER BY k.i;
END
$$;

-- Monthly partitions of events_raw: [first day of month, next month).
-- Called at start-up and daily for the months that accepted timestamps can
-- fall in; anything else lands in the default partition.
CREATE FUNCTION arbiter.ensure_event_partitions(from_ts timestamptz,
                                                to_ts timestamptz)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    m date := date_trunc('month', from_ts AT TIME ZONE 'UTC')::date;
    made int := 0;
    name text;
BEGIN
    WHILE m <= (to_ts AT TIME ZONE 'UTC')::date LOOP
        name := 'events_raw_' || to_char(m, 'YYYYMM');
        IF to_regclass('arbiter.' || name) IS NULL THEN
            -- rows already in the default partition for this month move
            -- into the new partition (PostgreSQL refuses otherwise)
            EXECUTE format('CREATE TABLE arbiter.%I (LIKE arbiter.events_raw'
                           ' INCLUDING DEFAULTS)', name);
            EXECUTE format('WITH moved AS (DELETE FROM arbiter.events_raw_default'
                           ' WHERE ts >= %L AND ts < %L RETURNING *)'
                           ' INSERT INTO arbiter.%I SELECT * FROM moved',
                           m::timestamp AT TIME ZONE 'UTC',
                           (m + interval '1 month')::timestamp AT TIME ZONE 'UTC',
                           name);
            EXECUTE format('ALTER TABLE arbiter.events_raw ATTACH PARTITION'
                           ' arbiter.%I FOR VALUES FROM (%L) TO (%L)', name,
                           m::timestamp AT TIME ZONE 'UTC',
                           (m + interval '1 month')::timestamp AT TIME ZONE 'UTC');
            made := made + 1;
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN made;
END
$$;

-- Retention: drop monthly partitions that end before the cutoff, and the
-- idempotency keys received before it. Aggregates are kept: they already
-- hold those events.
CREATE FUNCTION arbiter.apply_retention(cutoff timestamptz)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    r record;
    dropped int := 0;
BEGIN
    FOR r IN SELECT c.relname FROM pg_inherits i
               JOIN pg_class c ON c.oid = i.inhrelid
               JOIN pg_class p ON p.oid = i.inhparent
               JOIN pg_namespace n ON n.oid = p.relnamespace
              WHERE n.nspname = 'arbiter' AND p.relname = 'events_raw'
                AND c.relname ~ '^events_raw_[0-9]{6}$'
    LOOP
        IF (to_date(substr(r.relname, 12), 'YYYYMM') + interval '1 month')
           ::timestamp AT TIME ZONE 'UTC' <= cutoff THEN
            EXECUTE format('DROP TABLE arbiter.%I', r.relname);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    DELETE FROM arbiter.events_raw_default WHERE ts < cutoff;
    DELETE FROM arbiter.event_ids WHERE received_at < cutoff;
    DELETE FROM arbiter.ingest_batches WHERE committed_at < cutoff;
    RETURN dropped;
END
$$;

-- Stable views ------------------------------------------------------------

CREATE VIEW arbiter.events AS
    SELECT e.key AS experiment, r.event_id, r.unit, r.arm, r.metric, r.value,
           r.ts, r.received_at, r.attributes
      FROM arbiter.events_raw r
      JOIN arbiter.experiments e ON e.id = r.experiment_id;

CREATE VIEW arbiter.unit_values AS
    SELECT e.key AS experiment, u.metric, u.unit, u.arm, u.n AS events,
           u.value_sum, u.first_ts, u.last_ts
      FROM arbiter.unit_metrics u
      JOIN arbiter.experiments e ON e.id = u.experiment_id;

-- Arms of an experiment: declared, plus any that has data (retired arms).
CREATE VIEW arbiter.experiment_arms AS
    SELECT e.id AS experiment_id, a.name AS arm
      FROM arbiter.experiments e,
           jsonb_to_recordset(e.definition->'arms') AS a(name text)
    UNION
    SELECT experiment_id, arm FROM arbiter.exposure_arm_totals
    UNION
    SELECT experiment_id, arm FROM arbiter.arm_metric_totals;

-- Sufficient statistics per (experiment, arm, metric), O(arms x metrics).
-- n: the analysis population (exposed units for binary and sum metrics,
-- units with events for mean and ratio). sum/sum_sq: of y (the ratio's
-- numerator); den_*: the ratio's denominator; cross_sum: sum y*d;
-- pre_*: the CUPED covariate x, and pre_cross_sum: sum x*y.
CREATE VIEW arbiter.arm_stats AS
    SELECT m.experiment, m.experiment_id, m.name AS metric, m.kind,
           m.direction, m.role, a.arm,
           CASE WHEN m.kind IN ('binary', 'sum') THEN coalesce(x.units, 0)
                ELSE coalesce(t.units, 0) END AS n,
           coalesce(x.units, 0) AS exposed_units,
           coalesce(t.units, 0) AS units_with_events,
           coalesce(t.sum, 0) AS sum, coalesce(t.sum_sq, 0) AS sum_sq,
           coalesce(t.den_sum, 0) AS den_sum,
           coalesce(t.den_sum_sq, 0) AS den_sum_sq,
           coalesce(t.cross_sum, 0) AS cross_sum,
           coalesce(t.pre_sum, 0) AS pre_sum,
           coalesce(t.pre_sum_sq, 0) AS pre_sum_sq,
           coalesce(t.pre_cross_sum, 0) AS pre_cross_sum
      FROM arbiter.metric_defs m
      JOIN arbiter.experiment_arms a ON a.experiment_id = m.experiment_id
      LEFT JOIN arbiter.arm_metric_totals t
             ON (t.experiment_id, t.arm, t.metric)
              = (m.experiment_id, a.arm, m.name)
      LEFT JOIN arbiter.exposure_arm_totals x
             ON (x.experiment_id, x.arm) = (m.experiment_id, a.arm);

-- The same statistics from raw events and exposures, from scratch (for
-- audits and tests: must equal arbiter.arm_stats up to rounding).
CREATE FUNCTION arbiter.arm_stats_recompute(p_experiment text)
RETURNS TABLE (experiment text, metric text, arm text, n bigint,
               units_with_events bigint, sum float8, sum_sq float8,
               den_sum float8, den_sum_sq float8, cross_sum float8,
               pre_sum float8, pre_sum_sq float8, pre_cross_sum float8)
LANGUAGE sql STABLE
-- JIT compilation cost seconds per call and saved nothing at these sizes
SET jit = off
AS $$
    WITH ex AS (SELECT id FROM arbiter.experiments WHERE key = p_experiment),
    u AS (SELECT r.metric, r.unit, r.arm, count(*) AS n, sum(r.value) AS s
            FROM arbiter.events_raw r, ex WHERE r.experiment_id = ex.id
           GROUP BY 1, 2, 3),
    pop AS (SELECT x.unit, x.arm FROM arbiter.exposure_units x, ex
             WHERE x.experiment_id = ex.id
            UNION SELECT u.unit, u.arm FROM u),
    c AS (SELECT m.name AS metric, m.kind, p.arm, k.units, k.y, k.d,
                 coalesce(xc.s, 0) AS x, k.counted
            FROM pop p
            JOIN arbiter.metric_defs m ON m.experiment = p_experiment
            LEFT JOIN u ym ON (ym.metric, ym.unit, ym.arm) = (m.name, p.unit, p.arm)
            LEFT JOIN u xc ON (xc.metric, xc.unit, xc.arm) = (m.covariate, p.unit, p.arm),
            LATERAL arbiter.contribution(m.kind, ym.n, ym.s, coalesce(xc.s, 0)) k),
    exposed AS (SELECT x.arm, count(*) AS units FROM arbiter.exposure_units x, ex
                 WHERE x.experiment_id = ex.id GROUP BY 1)
    SELECT p_experiment, c.metric, c.arm,
           CASE WHEN min(c.kind) IN ('binary', 'sum')
                THEN coalesce(min(e.units), 0)
                ELSE coalesce(sum(c.units) FILTER (WHERE c.counted), 0)
           END::bigint,
           coalesce(sum(c.units) FILTER (WHERE c.counted), 0)::bigint,
           coalesce(sum(c.y) FILTER (WHERE c.counted), 0),
           coalesce(sum(c.y * c.y) FILTER (WHERE c.counted), 0),
           coalesce(sum(c.d) FILTER (WHERE c.counted), 0),
           coalesce(sum(c.d * c.d) FILTER (WHERE c.counted), 0),
           coalesce(sum(c.y * c.d) FILTER (WHERE c.counted), 0),
           coalesce(sum(c.x) FILTER (WHERE c.counted), 0),
           coalesce(sum(c.x * c.x) FILTER (WHERE c.counted), 0),
           coalesce(sum(c.x * c.y) FILTER (WHERE c.counted), 0)
      FROM c LEFT JOIN exposed e ON e.arm = c.arm
     GROUP BY c.metric, c.arm
$$;
