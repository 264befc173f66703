-- 012_fold_checkpoint.sql -- the fold keeps per-unit values in memory and
-- checkpoints them in bulk (issue 11).
--
-- Measured before (bench/results/ingest.md): the fold of 006_fold.sql
-- spent ~41 us of PostgreSQL CPU per event, almost all of it on the
-- per-unit rows: two index probes for a unit's old values and one upsert
-- of its new ones per fold batch, with 100k units per experiment a batch
-- almost never seeing a unit twice. Now the leader (service/fold.c)
-- holds the running value of every unit it has touched since its last
-- checkpoint, and
--
--   per batch (one transaction, arbiter.fold_begin + the leader's writes):
--       raw events of [watermark, w1) -> exposures of new units, the delta
--       per (experiment, metric, unit, arm) -> the leader, which computes
--       the per-arm changes from the old and new values it holds and
--       writes them (a few rows per experiment); watermark := w1.
--       unit_metrics is not touched.
--   per checkpoint (one transaction, every few seconds):
--       every unit value changed since the last checkpoint, written once
--       (absolute values); unit_watermark := watermark.
--
-- fold_state.unit_watermark: every txid below it is in unit_metrics.
-- Invariant: unit_watermark <= watermark; the aggregates (arm totals,
-- exposures) reflect [.., watermark), unit_metrics [.., unit_watermark),
-- and the difference is exactly the raw events with unit_watermark <=
-- txid < watermark (the same xid argument as in 006_fold.sql: every range
-- is closed once folded). A leader that dies between checkpoints loses
-- nothing: whoever folds next (a new leader, or arbiter.fold() below)
-- first refolds that range into unit_metrics (arbiter.fold_units_sync())
-- -- the per-unit values only: the aggregates already hold those events --
-- and starts from unit_watermark = watermark. Every writer of fold_state
-- and of unit_metrics holds the fold lock (advisory 'ARBI', 0), and the
-- leader checks, under that lock, that fold_state still holds the two
-- watermarks it left there before it trusts its memory: a fold by anyone
-- else makes it drop its memory and start over from the checkpoint.
--
-- Retention keeps every raw event at or above unit_watermark: it calls
-- arbiter.fold() first, which syncs the units (unit_watermark =
-- watermark) in the same transaction, under the same lock.

ALTER TABLE arbiter.fold_state ADD COLUMN unit_watermark bigint;
UPDATE arbiter.fold_state SET unit_watermark = watermark;
ALTER TABLE arbiter.fold_state ALTER COLUMN unit_watermark SET NOT NULL;
ALTER TABLE arbiter.fold_state ADD COLUMN checkpointed_at timestamptz;
UPDATE arbiter.fold_state SET checkpointed_at = folded_at;
-- Bumped by whoever changes the folded tables behind the fold's back
-- (TRUNCATE of the aggregates by `make bench-ingest`, a restore): a
-- leader whose memory was built under another epoch drops it.
ALTER TABLE arbiter.fold_state ADD COLUMN epoch bigint NOT NULL DEFAULT 0;

-- Refold the raw events of [unit_watermark, watermark) into unit_metrics
-- (values only: the aggregates hold them already); unit_watermark :=
-- watermark. The caller holds the fold lock. Returns the events refolded.
CREATE FUNCTION arbiter.fold_units_sync() RETURNS bigint
LANGUAGE plpgsql SET jit = off SET work_mem = '64MB' AS $$
DECLARE
    uw bigint;
    w bigint;
    n_rows bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(1095910985, 0);
    SELECT f.unit_watermark, f.watermark INTO uw, w FROM arbiter.fold_state f;
    IF uw >= w THEN
        RETURN 0;
    END IF;
    INSERT INTO arbiter.unit_metrics AS u (experiment_id, metric, unit, arm,
                                           n, value_sum, first_ts, last_ts)
    SELECT r.experiment_id, r.metric, r.unit, r.arm, count(*), sum(r.value),
           min(r.ts), max(r.ts)
      FROM arbiter.events_raw r
     WHERE r.txid >= uw AND r.txid < w
     GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (experiment_id, metric, unit, arm) DO UPDATE SET
        n = u.n + excluded.n, value_sum = u.value_sum + excluded.value_sum,
        first_ts = least(u.first_ts, excluded.first_ts),
        last_ts = greatest(u.last_ts, excluded.last_ts);
    GET DIAGNOSTICS n_rows = ROW_COUNT;
    UPDATE arbiter.fold_state
       SET unit_watermark = w, checkpointed_at = clock_timestamp();
    RETURN n_rows;
END
$$;

-- The all-SQL fold of 006_fold.sql, kept as the fallback (read-your-writes
-- folds of /results in any process, retention, tests): it reads and
-- writes unit_metrics per batch, so the units are synced first and stay
-- synced.
ALTER FUNCTION arbiter.fold(int) RENAME TO fold_sql;

CREATE FUNCTION arbiter.fold(max_events int DEFAULT 500000)
RETURNS TABLE (folded bigint, watermark bigint, pending bigint)
LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1095910985, 0);
    PERFORM arbiter.fold_units_sync();
    RETURN QUERY SELECT * FROM arbiter.fold_sql(max_events);
    UPDATE arbiter.fold_state f
       SET unit_watermark = f.watermark, checkpointed_at = clock_timestamp();
END
$$;

-- The leader's batch, first half: takes the fold lock, picks the range
-- [w0, w1) as arbiter.fold() does (at most about max_events events, a
-- transaction never split), records the first exposure of units that
-- have none, and leaves the per-(experiment, metric, unit, arm) delta of
-- the range in pg_temp.ingest_delta for the leader to read. Returns the
-- range, the unit watermark (the leader checks both against its memory),
-- the events in it and whether max_events cut it short. Writes nothing else: the leader writes the arm
-- totals and moves the watermark in the same transaction
-- (arbiter.fold_finish).
CREATE FUNCTION arbiter.fold_begin(max_events int,
                                   OUT w0 bigint, OUT w1 bigint,
                                   OUT unit_w bigint, OUT events bigint,
                                   OUT more boolean, OUT epoch bigint)
LANGUAGE plpgsql SET jit = off SET work_mem = '64MB' AS $$
DECLARE
    cut bigint;
    lk record;
BEGIN
    PERFORM pg_advisory_xact_lock(1095910985, 0);
    SELECT f.watermark, f.unit_watermark, f.epoch INTO w0, unit_w, epoch
      FROM arbiter.fold_state f;
    w1 := pg_snapshot_xmin(pg_current_snapshot())::text::bigint;
    SELECT r.txid INTO cut FROM arbiter.events_raw r
     WHERE r.txid >= w0 AND r.txid < w1
     ORDER BY r.txid OFFSET greatest(max_events, 1) LIMIT 1;
    IF cut IS NOT NULL THEN
        IF EXISTS (SELECT 1 FROM arbiter.events_raw r
                    WHERE r.txid >= w0 AND r.txid < cut) THEN
            w1 := cut;
        ELSE
            w1 := cut + 1;
        END IF;
    END IF;
    w1 := greatest(w0, w1);
    more := cut IS NOT NULL; -- committed events beyond w1 wait already

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
    GET DIAGNOSTICS events = ROW_COUNT;
    IF events = 0 THEN
        RETURN;
    END IF;
    -- writers of the previous version aggregate per experiment under
    -- these locks (002_events.sql); take them in id order
    FOR lk IN SELECT DISTINCT experiment_id AS e FROM fold_in ORDER BY 1
    LOOP
        PERFORM pg_advisory_xact_lock(1095910985, (lk.e % 2147483648)::int);
    END LOOP;
    -- as in arbiter.fold_sql(): a unit with outcomes but no recorded
    -- exposure is exposed now, in the arm of its earliest event
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
END
$$;

-- The leader's batch, second half: add the per-(experiment, arm, metric)
-- changes the leader computed (arrays of equal length; the same columns
-- and the same rules as arbiter.fold_sql(), including a zero row for
-- every binary and sum metric of an arm that has data) and move the
-- watermark to w1. The per-unit values stay in the leader's memory.
CREATE FUNCTION arbiter.fold_finish(p_w1 bigint, p_events bigint,
    p_e bigint[], p_arm text[], p_metric text[], p_units bigint[],
    p_s float8[], p_s2 float8[], p_d float8[], p_d2 float8[],
    p_yd float8[], p_x float8[], p_x2 float8[], p_xy float8[])
RETURNS void
LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    INSERT INTO arbiter.arm_metric_totals AS a (experiment_id, arm, metric,
        units, sum, sum_sq, den_sum, den_sum_sq, cross_sum, pre_sum,
        pre_sum_sq, pre_cross_sum)
    SELECT * FROM unnest(p_e, p_arm, p_metric, p_units, p_s, p_s2, p_d,
                         p_d2, p_yd, p_x, p_x2, p_xy)
     ORDER BY 1, 2, 3
    ON CONFLICT (experiment_id, arm, metric) DO UPDATE SET
        units = a.units + excluded.units, sum = a.sum + excluded.sum,
        sum_sq = a.sum_sq + excluded.sum_sq,
        den_sum = a.den_sum + excluded.den_sum,
        den_sum_sq = a.den_sum_sq + excluded.den_sum_sq,
        cross_sum = a.cross_sum + excluded.cross_sum,
        pre_sum = a.pre_sum + excluded.pre_sum,
        pre_sum_sq = a.pre_sum_sq + excluded.pre_sum_sq,
        pre_cross_sum = a.pre_cross_sum + excluded.pre_cross_sum;
    UPDATE arbiter.fold_state f
       SET watermark = p_w1, folded_at = clock_timestamp(),
           events_total = f.events_total + p_events, folds = f.folds + 1
     WHERE f.watermark < p_w1;
END
$$;

-- The leader's checkpoint: the absolute values of the units it changed
-- since the last one (arrays of equal length; timestamps in microseconds
-- since the epoch), then unit_watermark := watermark. The caller holds
-- the fold lock and has checked both watermarks.
CREATE FUNCTION arbiter.fold_checkpoint(p_e bigint[], p_metric text[],
    p_unit text[], p_arm text[], p_n bigint[], p_s float8[],
    p_first_us bigint[], p_last_us bigint[]) RETURNS void
LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    INSERT INTO arbiter.unit_metrics AS u (experiment_id, metric, unit, arm,
                                           n, value_sum, first_ts, last_ts)
    SELECT k.e, k.m, k.u, k.a, k.n, k.s,
           'epoch'::timestamptz + k.f * interval '1 microsecond',
           'epoch'::timestamptz + k.l * interval '1 microsecond'
      FROM unnest(p_e, p_metric, p_unit, p_arm, p_n, p_s, p_first_us,
                  p_last_us) AS k(e, m, u, a, n, s, f, l)
     ORDER BY 1, 2, 3, 4
    ON CONFLICT (experiment_id, metric, unit, arm) DO UPDATE SET
        n = excluded.n, value_sum = excluded.value_sum,
        first_ts = excluded.first_ts, last_ts = excluded.last_ts;
END
$$;

-- What the units' checkpoint lags behind (for /metrics and tests).
CREATE OR REPLACE FUNCTION arbiter.fold_checkpoint_status(
    OUT watermark bigint, OUT unit_watermark bigint,
    OUT checkpointed_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT f.watermark, f.unit_watermark, f.checkpointed_at
      FROM arbiter.fold_state f
$$;

-- The recomputation's plan: the experiment's rows are estimated from a
-- CTE (one experiment of ~200), so the planner expects a few hundred
-- per-unit rows and merge-joins the covariate on the arm alone, filtering
-- (metric, unit) afterwards: quadratic in the units of an arm (minutes
-- for 20,000 units, where the exactness tests and `make bench-ingest` call
-- it). Hash joins on the whole key take seconds; the result is the same.
ALTER FUNCTION arbiter.arm_stats_recompute(text) SET enable_mergejoin = off;
