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
);

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
CREATE FUNCTION arbiter.ingest(
    batch_ids text[], p_batch int[], p_experiment bigint[], p_event_id text[], p_unit text[], p_arm text[],
    p_arm_hint text[], p_metric text[], p_value float8[], p_ts_ms bigint[],
    p_attributes text[])
RETURNS TABLE (batch_id text, accepted int, duplicates int)
LANGUAGE plpgsql AS $$
DECLARE
    lk record;
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS ingest_in (
        ord int, batch int, experiment_id bigint, event_id text, unit text,
        arm text, arm_hint text, metric text, value float8, ts timestamptz,
        attributes jsonb, keep boolean) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS ingest_touched (
        experiment_id bigint, unit text, arm text,
        PRIMARY KEY (experiment_id, unit, arm)) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS ingest_old (
        experiment_id bigint, arm text, metric text, units bigint,
        y float8, d float8, x float8, counted boolean) ON COMMIT DELETE ROWS;
    TRUNCATE ingest_in, ingest_touched, ingest_old;

    -- stage
    INSERT INTO ingest_in
    SELECT t.ord::int, t.batch, t.experiment_id, t.event_id, t.unit, t.arm,
           t.arm_hint, t.metric, t.value, to_timestamp(t.ts_ms / 1000.0),
           t.attributes::jsonb, true
      FROM unnest(p_batch, p_experiment, p_event_id, p_unit, p_arm,
                  p_arm_hint, p_metric, p_value, p_ts_ms, p_attributes)
           WITH ORDINALITY AS t(batch, experiment_id, event_id, unit, arm,
                                arm_hint, metric, value, ts_ms, attributes,
                                ord);

    -- One writer per experiment at a time, in id order (no deadlock). The
    -- totals below are "new - old" per touched unit, with old and new read
    -- by different statements: two servers ingesting the same unit at once
    -- would both subtract the same old contribution and the totals would
    -- drift from arm_stats_recompute() (found by
    -- tests/integration/test_ingest_aggregates.py). In READ COMMITTED every
    -- statement after the lock sees what the previous holder committed.
    -- Key space: (class 1095910985 = 'ARBI', experiment id), apart from the
    -- one-bigint keys of migrations and the decision loop.
    FOR lk IN SELECT DISTINCT i.experiment_id FROM ingest_in i ORDER BY 1
    LOOP
        PERFORM pg_advisory_xact_lock(1095910985,
                                      (lk.experiment_id % 2147483648)::int);
    END LOOP;

    -- batches committed before (spool replay, a retried commit whose
    -- outcome was unknown) are skipped whole
    UPDATE ingest_in i SET keep = false
      FROM arbiter.ingest_batches b
     WHERE b.batch_id = batch_ids[i.batch];

    -- client ids: the first occurrence wins, in order
    WITH firsts AS (
        SELECT DISTINCT ON (i.experiment_id, i.event_id) i.ord
          FROM ingest_in i WHERE i.keep AND i.event_id IS NOT NULL
         ORDER BY i.experiment_id, i.event_id, i.ord),
    fresh AS (
        INSERT INTO arbiter.event_ids (experiment_id, event_id)
        SELECT i.experiment_id, i.event_id FROM ingest_in i
         WHERE i.ord IN (SELECT ord FROM firsts)
         ORDER BY 1, 2
        ON CONFLICT DO NOTHING
        RETURNING event_ids.experiment_id, event_ids.event_id)
    UPDATE ingest_in i SET keep = false
     WHERE i.keep AND i.event_id IS NOT NULL
       AND (i.ord NOT IN (SELECT ord FROM firsts)
            OR NOT EXISTS (SELECT 1 FROM fresh f
                            WHERE f.experiment_id = i.experiment_id
                              AND f.event_id = i.event_id));

    -- arm: explicit, else the unit's exposure, else the snapshot's hash
    UPDATE ingest_in i SET arm = coalesce(
        (SELECT x.arm FROM arbiter.exposure_units x
          WHERE x.experiment_id = i.experiment_id AND x.unit = i.unit),
        i.arm_hint)
     WHERE i.keep AND i.arm IS NULL;

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

    INSERT INTO ingest_touched
    SELECT DISTINCT i.experiment_id, i.unit, i.arm FROM ingest_in i WHERE i.keep;

    -- old contributions of every touched (unit, arm), every declared metric
    INSERT INTO ingest_old
    SELECT t.experiment_id, t.arm, m.name, c.units, c.y, c.d,
           coalesce(xc.value_sum, 0), c.counted
      FROM ingest_touched t
      JOIN arbiter.metric_defs m ON m.experiment_id = t.experiment_id
      LEFT JOIN arbiter.unit_metrics ym
             ON (ym.experiment_id, ym.metric, ym.unit, ym.arm)
              = (t.experiment_id, m.name, t.unit, t.arm)
      LEFT JOIN arbiter.unit_metrics xc
             ON (xc.experiment_id, xc.metric, xc.unit, xc.arm)
              = (t.experiment_id, m.covariate, t.unit, t.arm),
      LATERAL arbiter.contribution(m.kind, ym.n, ym.value_sum,
                                   coalesce(xc.value_sum, 0)) c;

    -- the raw events
    INSERT INTO arbiter.events_raw (experiment_id, event_id, unit, arm, metric,
                                value, ts, attributes)
    SELECT i.experiment_id, i.event_id, i.unit, i.arm, i.metric, i.value,
           i.ts, i.attributes
      FROM ingest_in i WHERE i.keep ORDER BY i.ord;

    -- per-unit running values
    INSERT INTO arbiter.unit_metrics AS u (experiment_id, metric, unit, arm,
                                           n, value_sum, first_ts, last_ts)
    SELECT i.experiment_id, i.metric, i.unit, i.arm, count(*), sum(i.value),
           min(i.ts), max(i.ts)
      FROM ingest_in i WHERE i.keep
     GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (experiment_id, metric, unit, arm) DO UPDATE SET
        n = u.n + excluded.n, value_sum = u.value_sum + excluded.value_sum,
        first_ts = least(u.first_ts, excluded.first_ts),
        last_ts = greatest(u.last_ts, excluded.last_ts);

    -- totals += new - old
    INSERT INTO arbiter.arm_metric_totals AS a (experiment_id, arm, metric,
        units, sum, sum_sq, den_sum, den_sum_sq, cross_sum, pre_sum,
        pre_sum_sq, pre_cross_sum)
    SELECT experiment_id, arm, metric, sum(sg * units),
           sum(sg * y), sum(sg * y * y), sum(sg * d), sum(sg * d * d),
           sum(sg * y * d), sum(sg * x), sum(sg * x * x), sum(sg * x * y)
      FROM (
        SELECT o.experiment_id, o.arm, o.metric, -1 AS sg, o.units,
               o.y, o.d, o.x FROM ingest_old o WHERE o.counted
        UNION ALL
        SELECT t.experiment_id, t.arm, m.name, 1, c.units, c.y, c.d,
               coalesce(xc.value_sum, 0)
          FROM ingest_touched t
          JOIN arbiter.metric_defs m ON m.experiment_id = t.experiment_id
          LEFT JOIN arbiter.unit_metrics ym
                 ON (ym.experiment_id, ym.metric, ym.unit, ym.arm)
                  = (t.experiment_id, m.name, t.unit, t.arm)
          LEFT JOIN arbiter.unit_metrics xc
                 ON (xc.experiment_id, xc.metric, xc.unit, xc.arm)
                  = (t.experiment_id, m.covariate, t.unit, t.arm),
          LATERAL arbiter.contribution(m.kind, ym.n, ym.value_sum,
                                       coalesce(xc.value_sum, 0)) c
         WHERE c.counted) z
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

    INSERT INTO arbiter.ingest_batches (batch_id, events, accepted,
                                        duplicates)
    SELECT batch_ids[i.batch], count(*), count(*) FILTER (WHERE i.keep),
           count(*) FILTER (WHERE NOT i.keep)
      FROM ingest_in i
     WHERE NOT EXISTS (SELECT 1 FROM arbiter.ingest_batches b
                        WHERE b.batch_id = batch_ids[i.batch])
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
LANGUAGE sql STABLE AS $$
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
