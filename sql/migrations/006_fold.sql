-- 006_fold.sql -- acknowledge on the raw write, fold the aggregates
-- asynchronously, exactly once (issue 11).
--
-- Before: arbiter.ingest() kept unit_metrics and arm_metric_totals in the
-- acknowledging transaction (~50 us of PostgreSQL CPU per event). Now:
--
--   writer (every process)            fold (the decision leader, or any
--   ---------------------             reader that needs fresh numbers)
--   BEGIN                             one transaction per call of
--   COPY -> pg_temp.ingest_stage        arbiter.fold(max_events):
--   arbiter.ingest_raw(batch ids):      [w0, w1) = [watermark, xmin)
--     events_raw (+ txid), event_ids,   events_raw with w0 <= txid < w1
--     ingest_batches                      -> unit_metrics, arm_metric_totals,
--   COMMIT  -> 2xx                            exposures of new units
--                                       watermark := w1
--
-- The watermark is a transaction id, not a row id. Each acknowledging
-- transaction stamps its rows with its own top-level xid (txid). The fold
-- takes w1 = pg_snapshot_xmin(pg_current_snapshot()): the oldest
-- transaction still running. Every transaction with an xid below w1 has
-- ended (committed or aborted) before that snapshot was taken, so a
-- statement that starts afterwards sees all of its rows or, if it aborted,
-- none will ever appear. Transactions with xid >= w1 may still be running
-- or commit later, in any order: their rows are folded by a later call,
-- whose range starts exactly at w1. Every committed row therefore lands in
-- exactly one range [w0, w1), and the fold writes its aggregates and the
-- new watermark in one transaction: exactly once, under concurrent writers
-- committing out of order. (A bigserial row id is not enough: a lower id
-- can commit after a higher one was folded -- see
-- tests/integration/test_ingest_fold.py.) Folds are serialized by one
-- advisory lock, so several callers cannot fold the same range. xids are
-- 64-bit (xid8): no wraparound. Only transactions that hold an xid hold
-- w1 back: a long-running writing transaction anywhere in the cluster
-- delays the fold (visible as fold lag), read-only ones do not.
--
-- Rows written before this migration have txid NULL: the old
-- arbiter.ingest() already aggregated them (it stays, for binaries of the
-- previous version during a rolling upgrade; the fold takes the same
-- per-experiment locks as it does).

ALTER TABLE arbiter.events_raw ADD COLUMN txid bigint;
CREATE INDEX events_raw_txid ON arbiter.events_raw (txid);

CREATE TABLE arbiter.fold_state (
    id           boolean PRIMARY KEY DEFAULT true CHECK (id),
    watermark    bigint NOT NULL,      -- every txid below it is folded
    folded_at    timestamptz NOT NULL, -- when the watermark last moved
    events_total bigint NOT NULL DEFAULT 0,
    folds        bigint NOT NULL DEFAULT 0
);
INSERT INTO arbiter.fold_state (watermark, folded_at) VALUES (0, now());

-- Values the aggregates can hold: PostgreSQL refuses a float8 product
-- that overflows, and the fold squares every value: |v| <= 1e154
-- (1e154^2 = 1e308 < DBL_MAX); underflow is handled by arbiter.flush().
-- The HTTP edge validates more strictly; this is the database's own guard,
-- so that a value that slipped through refuses its own request before the
-- acknowledgement instead of stopping the fold afterwards.
CREATE FUNCTION arbiter.value_storable(v float8) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT abs(v) <= 1e154   -- false for NaN and infinities too
$$;

-- Tiny values: a product that underflows to 0 is an error in PostgreSQL,
-- and the fold squares every per-unit value. The aggregates therefore
-- flush per-unit values (y, x) below 1e-154 in magnitude to 0 (their
-- squares would be below DBL_MIN): the documented rule, applied the same
-- way by arbiter.fold() and arbiter.arm_stats_recompute(). Raw events keep
-- the value as sent.
CREATE FUNCTION arbiter.flush(v float8) RETURNS float8
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN abs(v) < 1e-154 THEN 0::float8 ELSE v END
$$;

-- The staging table of one acknowledging transaction (per session, filled
-- by COPY; emptied at commit). ord: the event's position in the call.
CREATE FUNCTION arbiter.ingest_stage_prepare() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('pg_temp.ingest_stage') IS NULL THEN
        CREATE TEMP TABLE ingest_stage (
            ord int, batch int, experiment_id bigint, event_id text,
            unit text, arm text, arm_hint text, metric text, value float8,
            ts_ms bigint, attributes text) ON COMMIT DELETE ROWS;
    END IF;
END
$$;

-- The acknowledging write of one group commit, after COPY into
-- pg_temp.ingest_stage: raw events (the arm explicit, else the unit's
-- exposure, else the snapshot's hash), the first occurrence of each new
-- client event id, one ingest_batches row per new batch. Batches committed
-- before (spool replay, a retried commit of unknown outcome) or repeated
-- in this call are skipped whole and report the counts stored with them.
-- No aggregate is touched and no lock is taken beyond the rows written:
-- writers of different processes never wait for one another except on the
-- same event id.
CREATE FUNCTION arbiter.ingest_raw(batch_ids text[])
RETURNS TABLE (batch_id text, accepted int, duplicates int)
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    skip int[];
    me bigint := pg_current_xact_id()::text::bigint;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_temp.ingest_stage s
                WHERE NOT arbiter.value_storable(s.value)) THEN
        RAISE EXCEPTION 'event value out of the storable range'
              USING ERRCODE = '22003';
    END IF;

    SELECT coalesce(array_agg(z.i), '{}') INTO skip
      FROM (SELECT k.i::int AS i, k.id,
                   row_number() OVER (PARTITION BY k.id ORDER BY k.i) AS r
              FROM unnest(batch_ids) WITH ORDINALITY AS k(id, i)) z
     WHERE z.r > 1
        OR EXISTS (SELECT 1 FROM arbiter.ingest_batches b
                    WHERE b.batch_id = z.id);

    WITH firsts AS (
        SELECT DISTINCT ON (s.experiment_id, s.event_id) s.ord,
               s.experiment_id, s.event_id
          FROM pg_temp.ingest_stage s
         WHERE s.event_id IS NOT NULL AND s.batch <> ALL (skip)
         ORDER BY s.experiment_id, s.event_id, s.ord),
    fresh AS (
        INSERT INTO arbiter.event_ids (experiment_id, event_id)
        SELECT f.experiment_id, f.event_id FROM firsts f ORDER BY 1, 2
        ON CONFLICT DO NOTHING
        RETURNING event_ids.experiment_id, event_ids.event_id),
    winners AS (
        SELECT f.ord FROM firsts f
          JOIN fresh n ON (n.experiment_id, n.event_id)
                        = (f.experiment_id, f.event_id)),
    k AS (
        SELECT s.*, (s.event_id IS NULL OR w.ord IS NOT NULL) AS keep
          FROM pg_temp.ingest_stage s
          LEFT JOIN winners w ON w.ord = s.ord
         WHERE s.batch <> ALL (skip)),
    raw AS (
        INSERT INTO arbiter.events_raw (experiment_id, event_id, unit, arm,
                                        metric, value, ts, attributes, txid)
        SELECT k.experiment_id, k.event_id, k.unit,
               coalesce(k.arm,
                        (SELECT x.arm FROM arbiter.exposure_units x
                          WHERE x.experiment_id = k.experiment_id
                            AND x.unit = k.unit),
                        k.arm_hint),
               k.metric, k.value, to_timestamp(k.ts_ms / 1000.0),
               k.attributes::jsonb, me
          FROM k WHERE k.keep ORDER BY k.ord)
    INSERT INTO arbiter.ingest_batches (batch_id, events, accepted,
                                        duplicates)
    SELECT batch_ids[k.batch], count(*), count(*) FILTER (WHERE k.keep),
           count(*) FILTER (WHERE NOT k.keep)
      FROM k GROUP BY k.batch;

    RETURN QUERY
    SELECT b.batch_id, b.accepted, b.duplicates
      FROM unnest(batch_ids) WITH ORDINALITY AS q(id, i)
      JOIN arbiter.ingest_batches b ON b.batch_id = q.id
     ORDER BY q.i;
END
$$;

-- Fold the committed raw events of [watermark, w1) into the aggregates,
-- where w1 is the oldest running xid (see the header), lowered so that at
-- most about max_events events are folded (never splitting one
-- transaction's events). Returns the events folded, the new watermark,
-- and the events still waiting at or above it (committed ones only).
--
-- The aggregate statements are those arbiter.ingest() ran per group
-- commit (002_events.sql, where their cost is discussed), fed by one
-- (experiment, metric, unit, arm) delta of the whole range: a unit touched
-- by many requests since the last fold is read and written once.
CREATE FUNCTION arbiter.fold(max_events int DEFAULT 500000)
RETURNS TABLE (folded bigint, watermark bigint, pending bigint)
LANGUAGE plpgsql SET jit = off SET work_mem = '64MB' AS $$
DECLARE
    w0 bigint;
    w1 bigint;
    cut bigint;
    lk record;
    n bigint;
BEGIN
    -- one fold at a time (key class 'ARBI', 0: apart from the experiment
    -- locks, whose ids are > 0)
    PERFORM pg_advisory_xact_lock(1095910985, 0);
    -- READ COMMITTED: this statement sees every fold committed before the
    -- lock was granted. The transaction holds no xid yet (no row written
    -- or locked), so w1 is not held back by the fold itself.
    SELECT f.watermark INTO w0 FROM arbiter.fold_state f;
    w1 := pg_snapshot_xmin(pg_current_snapshot())::text::bigint;
    SELECT r.txid INTO cut FROM arbiter.events_raw r
     WHERE r.txid >= w0 AND r.txid < w1
     ORDER BY r.txid OFFSET greatest(max_events, 1) LIMIT 1;
    IF cut IS NOT NULL THEN
        -- stop before the transaction that crosses max_events, unless it
        -- is the first one: a transaction is folded whole
        IF EXISTS (SELECT 1 FROM arbiter.events_raw r
                    WHERE r.txid >= w0 AND r.txid < cut) THEN
            w1 := cut;
        ELSE
            w1 := cut + 1;
        END IF;
    END IF;

    CREATE TEMP TABLE IF NOT EXISTS fold_in (
        experiment_id bigint, unit text, arm text, metric text,
        value float8, ts timestamptz, txid bigint) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS ingest_delta (
        experiment_id bigint, metric text, unit text, arm text, n bigint,
        s float8, first_ts timestamptz, last_ts timestamptz)
        ON COMMIT DELETE ROWS;

    INSERT INTO fold_in
    SELECT r.experiment_id, r.unit, r.arm, r.metric, r.value, r.ts, r.txid
      FROM arbiter.events_raw r
     WHERE r.txid >= w0 AND r.txid < w1;
    GET DIAGNOSTICS n = ROW_COUNT;

    IF n > 0 THEN
        -- writers of the previous version aggregate per experiment under
        -- these locks (002_events.sql); take them in id order
        FOR lk IN SELECT DISTINCT experiment_id AS e FROM fold_in ORDER BY 1
        LOOP
            PERFORM pg_advisory_xact_lock(1095910985,
                                          (lk.e % 2147483648)::int);
        END LOOP;

        -- a unit with outcomes but no recorded exposure is exposed now,
        -- in the arm of its earliest event
        WITH ins AS (
            INSERT INTO arbiter.exposure_units (experiment_id, unit, arm,
                bucket_version, weights_version, propensity, first_seen,
                last_seen, count)
            SELECT DISTINCT ON (i.experiment_id, i.unit) i.experiment_id,
                   i.unit, i.arm, 0, 0, 'NaN'::float8, i.ts, i.ts, 0
              FROM fold_in i
             ORDER BY i.experiment_id, i.unit, i.txid, i.ts
            ON CONFLICT DO NOTHING
            RETURNING exposure_units.experiment_id, exposure_units.arm)
        INSERT INTO arbiter.exposure_arm_totals AS t (experiment_id, arm,
                                                      units, exposures)
        SELECT ins.experiment_id, ins.arm, count(*), 0 FROM ins
         GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (experiment_id, arm) DO UPDATE
            SET units = t.units + excluded.units;

        INSERT INTO ingest_delta
        SELECT i.experiment_id, i.metric, i.unit, i.arm, count(*),
               sum(i.value), min(i.ts), max(i.ts)
          FROM fold_in i
         GROUP BY 1, 2, 3, 4;

        -- totals += new - old, as in arbiter.ingest() (002_events.sql),
        -- except that a binary unit converts when the sum of its values is
        -- > 0 (events are 0 or 1: a 0 is an observed non-conversion),
        -- as arbiter.contribution() below says
        INSERT INTO arbiter.arm_metric_totals AS a (experiment_id, arm,
            metric, units, sum, sum_sq, den_sum, den_sum_sq, cross_sum,
            pre_sum, pre_sum_sq, pre_cross_sum)
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
                SELECT o.experiment_id, o.arm, o.metric, o.n0, o.n1, o.x0,
                       o.x1,
                       o.kind IN ('binary', 'sum') OR o.n0 > 0 AS c0,
                       o.kind IN ('binary', 'sum') OR o.n1 > 0 AS c1,
                       arbiter.flush(
                       CASE o.kind WHEN 'binary' THEN (o.s0 > 0)::int::float8
                                   WHEN 'sum' THEN o.s0
                                   WHEN 'mean' THEN CASE WHEN o.n0 > 0
                                                         THEN o.s0 / o.n0 END
                                   WHEN 'ratio' THEN o.s0 END) AS y0,
                       arbiter.flush(
                       CASE o.kind WHEN 'binary' THEN (o.s1 > 0)::int::float8
                                   WHEN 'sum' THEN o.s1
                                   WHEN 'mean' THEN CASE WHEN o.n1 > 0
                                                         THEN o.s1 / o.n1 END
                                   WHEN 'ratio' THEN o.s1 END) AS y1,
                       CASE o.kind WHEN 'ratio' THEN o.n0::float8
                                   ELSE 0 END AS d0,
                       CASE o.kind WHEN 'ratio' THEN o.n1::float8
                                   ELSE 0 END AS d1
                  FROM (
                    SELECT p.experiment_id, p.arm, p.metric, p.kind,
                           coalesce(ym.n, 0) AS n0,
                           coalesce(ym.n, 0) + coalesce(p.dn, 0) AS n1,
                           coalesce(ym.value_sum, 0) AS s0,
                           CASE WHEN p.dn IS NULL
                                THEN coalesce(ym.value_sum, 0)
                                WHEN ym.n IS NULL THEN p.ds
                                ELSE ym.value_sum + p.ds END AS s1,
                           arbiter.flush(coalesce(xc.value_sum, 0)) AS x0,
                           arbiter.flush(
                           CASE WHEN p.dx IS NULL
                                THEN coalesce(xc.value_sum, 0)
                                WHEN xc.n IS NULL THEN p.dx
                                ELSE xc.value_sum + p.dx END) AS x1
                      FROM (
                        SELECT d.experiment_id, d.unit, d.arm,
                               m.name AS metric, m.kind, m.covariate,
                               sum(d.n) FILTER (WHERE d.metric = m.name)
                                   AS dn,
                               sum(d.s) FILTER (WHERE d.metric = m.name)
                                   AS ds,
                               sum(d.s) FILTER (WHERE d.metric = m.covariate)
                                   AS dx
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
            SELECT DISTINCT d.experiment_id, d.arm, m.name, 0, 0, 0, 0, 0,
                   0, 0, 0
              FROM ingest_delta d
              JOIN arbiter.metric_defs m
                ON m.experiment_id = d.experiment_id
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

        INSERT INTO arbiter.unit_metrics AS u (experiment_id, metric, unit,
                                               arm, n, value_sum, first_ts,
                                               last_ts)
        SELECT d.experiment_id, d.metric, d.unit, d.arm, d.n, d.s,
               d.first_ts, d.last_ts
          FROM ingest_delta d ORDER BY 1, 2, 3, 4
        ON CONFLICT (experiment_id, metric, unit, arm) DO UPDATE SET
            n = u.n + excluded.n, value_sum = u.value_sum + excluded.value_sum,
            first_ts = least(u.first_ts, excluded.first_ts),
            last_ts = greatest(u.last_ts, excluded.last_ts);
    END IF;

    IF w1 > w0 THEN
        UPDATE arbiter.fold_state f
           SET watermark = w1, folded_at = clock_timestamp(),
               events_total = f.events_total + n, folds = f.folds + 1;
    END IF;

    -- pending: capped at 10,000 (a caller only needs to know whether to
    -- fold again; an exact count of a large backlog costs a scan of it)
    RETURN QUERY
    SELECT n, greatest(w0, w1),
           (SELECT count(*) FROM (SELECT 1 FROM arbiter.events_raw r
                                   WHERE r.txid >= greatest(w0, w1)
                                   LIMIT 10000) z);
END
$$;

-- Age in seconds of the oldest committed event not yet folded (0 when
-- none): the received_at of the lowest transaction id at or above the
-- watermark (transactions get their ids in the order they first write,
-- and received_at is their start: the lowest id is the oldest up to the
-- few milliseconds between a transaction's start and its COPY). One index
-- probe: cheap enough to sample often.
CREATE FUNCTION arbiter.fold_lag() RETURNS float8
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT extract(epoch FROM clock_timestamp()
                                    - r.received_at)::float8
                       FROM arbiter.events_raw r, arbiter.fold_state f
                      WHERE r.txid >= f.watermark
                      ORDER BY r.txid LIMIT 1), 0)
$$;

-- How fresh the folded statistics are: the watermark, when it last moved,
-- the committed events not yet folded and the age of the oldest of them
-- (0 when none: the statistics hold every committed event). Readers that
-- decide (the rollout engine, the bandit job) compare lag_seconds with
-- their bound and wait while it is exceeded; /results reports it.
CREATE FUNCTION arbiter.fold_status(OUT watermark bigint,
                                    OUT folded_at timestamptz,
                                    OUT pending_events bigint,
                                    OUT lag_seconds float8,
                                    OUT events_total bigint)
LANGUAGE sql STABLE AS $$
    SELECT f.watermark, f.folded_at,
           (SELECT count(*) FROM arbiter.events_raw r
             WHERE r.txid >= f.watermark),
           arbiter.fold_lag(),
           f.events_total
      FROM arbiter.fold_state f
$$;

-- arm_stats carries the watermark it reflects (new trailing columns).
CREATE OR REPLACE VIEW arbiter.arm_stats AS
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
           coalesce(t.pre_cross_sum, 0) AS pre_cross_sum,
           f.watermark AS fold_watermark,
           f.folded_at
      FROM arbiter.metric_defs m
      JOIN arbiter.experiment_arms a ON a.experiment_id = m.experiment_id
      CROSS JOIN arbiter.fold_state f
      LEFT JOIN arbiter.arm_metric_totals t
             ON (t.experiment_id, t.arm, t.metric)
              = (m.experiment_id, a.arm, m.name)
      LEFT JOIN arbiter.exposure_arm_totals x
             ON (x.experiment_id, x.arm) = (m.experiment_id, a.arm);

-- Binary metrics: a unit converted when the sum of its values is > 0 (a
-- binary event is 0 or 1; a 0 records a non-conversion and is not one).
-- y is flushed like every per-unit value (arbiter.flush()).
-- The one definition, used by arm_stats_recompute(); arbiter.fold()
-- inlines the same expressions.
CREATE OR REPLACE FUNCTION arbiter.contribution(kind text, n bigint,
                                               s double precision,
                                               x double precision,
                                               OUT units bigint,
                                               OUT y double precision,
                                               OUT d double precision,
                                               OUT counted boolean)
LANGUAGE sql IMMUTABLE AS $$
    SELECT (coalesce(n, 0) > 0)::int::bigint,
           arbiter.flush(CASE kind
             WHEN 'binary' THEN (coalesce(s, 0) > 0)::int::float8
             WHEN 'sum'    THEN coalesce(s, 0)
             WHEN 'mean'   THEN CASE WHEN coalesce(n, 0) > 0 THEN s / n END
             WHEN 'ratio'  THEN coalesce(s, 0)
           END),
           CASE kind WHEN 'ratio' THEN coalesce(n, 0)::float8 ELSE 0 END,
           CASE WHEN kind IN ('binary', 'sum') THEN true
                ELSE coalesce(n, 0) > 0 END
$$;

-- Units whose outcomes were folded under more than one arm, or under an
-- arm other than their recorded exposure (ramps that moved them, explicit
-- arms): the analysis counts such a unit in every arm it has values in.
-- Their number per experiment, for analysts and for the rollout engine to
-- report (issue 10: "count and expose units seen in more than one arm").
CREATE VIEW arbiter.units_in_several_arms AS
    SELECT e.key AS experiment, z.units
      FROM (SELECT w.experiment_id, count(*) AS units
              FROM (SELECT u.experiment_id, u.unit
                      FROM arbiter.unit_metrics u
                      LEFT JOIN arbiter.exposure_units x
                             ON (x.experiment_id, x.unit)
                              = (u.experiment_id, u.unit)
                     GROUP BY 1, 2
                    HAVING count(DISTINCT u.arm) > 1
                        OR bool_or(x.arm IS NOT NULL AND x.arm <> u.arm)) w
             GROUP BY 1) z
      JOIN arbiter.experiments e ON e.id = z.experiment_id;

-- Retention with an asynchronous fold: raw events must not disappear
-- before they are folded (the aggregates keep what retention drops). Fold
-- what is committed first; then drop a month only when none of its rows
-- waits for the fold, and delete only folded rows of the default
-- partition (a spool replay can commit events older than the cutoff after
-- the fold ran: they go at the next call, once folded).
CREATE OR REPLACE FUNCTION arbiter.apply_retention(cutoff timestamptz)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    r record;
    dropped int := 0;
    wm bigint;
    waiting boolean;
BEGIN
    PERFORM arbiter.fold(500000);
    SELECT f.watermark INTO wm FROM arbiter.fold_state f;
    FOR r IN SELECT c.relname FROM pg_inherits i
               JOIN pg_class c ON c.oid = i.inhrelid
               JOIN pg_class p ON p.oid = i.inhparent
               JOIN pg_namespace n ON n.oid = p.relnamespace
              WHERE n.nspname = 'arbiter' AND p.relname = 'events_raw'
                AND c.relname ~ '^events_raw_[0-9]{6}$'
    LOOP
        IF (to_date(substr(r.relname, 12), 'YYYYMM') + interval '1 month')
           ::timestamp AT TIME ZONE 'UTC' <= cutoff THEN
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM arbiter.%I'
                           ' WHERE txid >= $1)', r.relname)
               INTO waiting USING wm;
            IF NOT waiting THEN
                EXECUTE format('DROP TABLE arbiter.%I', r.relname);
                dropped := dropped + 1;
            END IF;
        END IF;
    END LOOP;
    DELETE FROM arbiter.events_raw_default
     WHERE ts < cutoff AND (txid IS NULL OR txid < wm);
    DELETE FROM arbiter.event_ids WHERE received_at < cutoff;
    DELETE FROM arbiter.ingest_batches WHERE committed_at < cutoff;
    RETURN dropped;
END
$$;

-- The recomputation, with the covariate flushed like the fold's
-- (arbiter.flush()); otherwise as in 002_events.sql.
CREATE OR REPLACE FUNCTION arbiter.arm_stats_recompute(p_experiment text)
RETURNS TABLE (experiment text, metric text, arm text, n bigint,
               units_with_events bigint, sum float8, sum_sq float8,
               den_sum float8, den_sum_sq float8, cross_sum float8,
               pre_sum float8, pre_sum_sq float8, pre_cross_sum float8)
LANGUAGE sql STABLE
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
                 arbiter.flush(coalesce(xc.s, 0)) AS x, k.counted
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
