-- 015_attribution.sql -- which arm an outcome belongs to when a unit's
-- served arm changed, and the analysis population that follows from it,
-- kept by the fold (issue 10, items 4, 5 and 6; the rule per strategy is
-- in the README, section "Attribution", and in core/metric_kind.h).
--
-- The rule. An outcome belongs to the arm that served the unit when it
-- happened: a sticky experiment serves a unit its first arm for good, so
-- an event without an explicit arm takes the unit's recorded exposure
-- (arbiter.ingest_raw, unchanged); any other experiment (fixed, ramp,
-- canary) serves the arm its current weights give, and the server names
-- that arm on every event (api/h_events.c); an explicit "arm" is kept.
--
-- The population. Per experiment, an OUTCOME event is an event of a
-- declared metric (a name in definition.metrics); an event of a name that
-- is only a covariate is a PRE-PERIOD event. Per arm A:
--
--   exposed(A) = units whose exposure_units row has arm A
--   pop(A)     = exposed(A) + units with an outcome event credited to A
--
-- binary and sum metrics: n(A) = |pop(A)|, and every sum (y, x) runs over
-- pop(A) (y = 0, x = 0 for a member without such events); mean and ratio
-- metrics: the units with events of the metric in A, as before. A unit
-- with pre-period events only is in no population and is not exposed.
-- The fold records an exposure (count 0) only for a unit with an outcome
-- event and no exposure, in the arm of its earliest outcome event (it
-- used to do so for any event, covariates included).
--
-- Where it is kept (O(arms x metrics) to read, as before 015): a unit
-- whose outcome goes to an arm other than its exposure's is a MOVED
-- member of that arm, one row in arbiter.attr_moved (experiment, unit,
-- arm), written by the fold with INSERT ... ON CONFLICT DO NOTHING; the
-- rows it inserts add to arbiter.arm_population.moved_units (per arm) and
-- arbiter.attr_units.several (units with at least one moved membership:
-- "units_in_several_arms"). So n(A) = exposure_arm_totals.units +
-- arm_population.moved_units. Per batch the fold lists, for every (unit,
-- arm) its events touch, whether the unit was a member of the arm before
-- the batch and after it (pg_temp.fold_members); a binary or sum metric
-- counts a unit's (y, x) exactly while it is a member, so a unit that
-- becomes one has its earlier pre-period value added then, and a
-- pre-period value of a non-member is held back. Both folds --
-- arbiter.fold_sql() and the leader's (arbiter.fold_begin() +
-- service/fold_units.c) -- call arbiter.fold_attribute() for this.
--
-- A pre-period value of a non-member is remembered in arbiter.attr_held;
-- the unit joins when an outcome there is folded, or when an exposure
-- the assignment path recorded there falls in the fold's range (exposures
-- carry their transaction id, as raw events do), so the sums do not
-- depend on when the fold ran relative to the exposure writer.
--
-- Limits (README, "Attribution"): a re-randomised unit (higher
-- bucket_version: its exposure row changes arm, not its txid) keeps the
-- memberships computed against its old arm; an outcome folded before the
-- exposure writer records the unit's assignment (its 200 ms flush) in a
-- different arm is attributed against the fold's placeholder exposure.

CREATE TABLE arbiter.attr_moved (
    experiment_id bigint NOT NULL,
    unit          text NOT NULL,
    arm           text NOT NULL,
    PRIMARY KEY (experiment_id, unit, arm)
);

CREATE TABLE arbiter.arm_population (
    experiment_id bigint NOT NULL,
    arm           text NOT NULL,
    moved_units   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment_id, arm)
);

CREATE TABLE arbiter.attr_units (
    experiment_id bigint PRIMARY KEY,
    several       bigint NOT NULL DEFAULT 0
);

-- (unit, arm) pairs with pre-period values whose unit was not a member of
-- the arm when the fold folded them: their values are held back from the
-- sums until the unit joins (an outcome there, or an exposure recorded
-- there). Read by the fold only (never by arm_stats).
CREATE TABLE arbiter.attr_held (
    experiment_id bigint NOT NULL,
    unit          text NOT NULL,
    arm           text NOT NULL,
    PRIMARY KEY (experiment_id, unit, arm)
);

-- Exposures carry the transaction that recorded them, as raw events do
-- (006_fold.sql): the fold learns of an exposure recorded after it held a
-- unit's pre-period value back exactly once, in the range [w0, w1) that
-- holds its txid. Rows from before 015 (NULL) and the fold's own (0)
-- count as known.
ALTER TABLE arbiter.exposure_units ADD COLUMN txid bigint;
ALTER TABLE arbiter.exposure_units
    ALTER COLUMN txid SET DEFAULT pg_current_xact_id()::text::bigint;
-- (partial: the fold's own exposures, txid 0, are never looked up by it)
CREATE INDEX exposure_units_txid ON arbiter.exposure_units (txid)
    WHERE txid > 0;

-- Attribution of one fold batch. Needs pg_temp.fold_in (the batch's raw
-- events; the caller holds the fold lock and the experiments' locks).
-- Leaves pg_temp.fold_members: per (experiment, unit, arm) the batch
-- touches, member0 (a member of the arm's population before the batch)
-- and member1 (after it); records the exposures of new units with
-- outcomes, the moved memberships and their counts.
CREATE FUNCTION arbiter.fold_attribute(p_w0 bigint, p_w1 bigint)
RETURNS void
LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS fold_members (
        experiment_id bigint, unit text, arm text, member0 boolean,
        member1 boolean, first_txid bigint, first_ts timestamptz,
        by_exposure boolean, x_arm text, outcome_arms bigint)
        ON COMMIT DELETE ROWS;
    TRUNCATE fold_members;

    -- per (unit, arm): its outcome events' earliest (txid, ts), NULL
    -- without one; member0: exposed there by a transaction below w0 (or
    -- by the fold: txid 0) or a moved member; member1: the same below w1,
    -- or an outcome there now (primary-key probes, OFFSET 0: without
    -- statistics the planner otherwise joins on the experiment alone)
    WITH names AS (
        SELECT DISTINCT d.experiment_id, d.name
          FROM arbiter.metric_defs d
         WHERE d.experiment_id IN (SELECT DISTINCT i.experiment_id
                                     FROM fold_in i)),
    ua AS (
        SELECT i.experiment_id, i.unit, i.arm,
               min(i.txid) FILTER (WHERE nm.name IS NOT NULL) AS first_txid,
               min(i.ts) FILTER (WHERE nm.name IS NOT NULL) AS first_ts
          FROM fold_in i
          LEFT JOIN names nm
            ON (nm.experiment_id, nm.name) = (i.experiment_id, i.metric)
         GROUP BY 1, 2, 3)
    INSERT INTO fold_members
    SELECT ua.experiment_id, ua.unit, ua.arm,
           coalesce(x.arm = ua.arm AND x.t < p_w0, false)
               OR mv.one IS NOT NULL,
           coalesce(x.arm = ua.arm AND x.t < p_w1, false)
               OR mv.one IS NOT NULL OR ua.first_txid IS NOT NULL,
           ua.first_txid, ua.first_ts, false, x.arm,
           count(*) FILTER (WHERE ua.first_txid IS NOT NULL)
               OVER (PARTITION BY ua.experiment_id, ua.unit)
      FROM ua
      LEFT JOIN LATERAL (
          SELECT e.arm, coalesce(e.txid, 0) AS t
            FROM arbiter.exposure_units e
           WHERE (e.experiment_id, e.unit) = (ua.experiment_id, ua.unit)
          OFFSET 0) x ON true
      LEFT JOIN LATERAL (
          SELECT 1 AS one FROM arbiter.attr_moved m
           WHERE (m.experiment_id, m.unit, m.arm)
               = (ua.experiment_id, ua.unit, ua.arm)
          OFFSET 0) mv ON true;

    -- a unit with an outcome but no recorded exposure is exposed now, in
    -- the arm of its earliest outcome event (pre-period events expose
    -- nobody: issue 10, item 6)
    WITH ins AS (
        INSERT INTO arbiter.exposure_units (experiment_id, unit, arm,
            bucket_version, weights_version, propensity, first_seen,
            last_seen, count, txid)
        SELECT DISTINCT ON (f.experiment_id, f.unit) f.experiment_id,
               f.unit, f.arm, 0, 0, 'NaN'::float8, f.first_ts, f.first_ts, 0,
               0
          FROM fold_members f
         WHERE f.first_txid IS NOT NULL
         ORDER BY f.experiment_id, f.unit, f.first_txid, f.first_ts, f.arm
        ON CONFLICT DO NOTHING
        RETURNING exposure_units.experiment_id, exposure_units.arm)
    INSERT INTO arbiter.exposure_arm_totals AS t (experiment_id, arm,
                                                  units, exposures)
    SELECT ins.experiment_id, ins.arm, count(*), 0 FROM ins
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (experiment_id, arm) DO UPDATE
        SET units = t.units + excluded.units;

    -- outcomes in an arm other than the exposure's: moved memberships
    -- (the statement's reads of attr_moved see the rows before it). The
    -- exposure is the one read above (x_arm); a unit that had none is
    -- exposed now in one of its outcome arms, read back only when it has
    -- outcomes in several (a unit with one is exposed there: not moved)
    WITH ins AS (
        INSERT INTO arbiter.attr_moved (experiment_id, unit, arm)
        SELECT f.experiment_id, f.unit, f.arm
          FROM fold_members f
         WHERE f.first_txid IS NOT NULL AND NOT f.member0
           AND CASE WHEN f.x_arm IS NOT NULL THEN f.x_arm <> f.arm
                    WHEN f.outcome_arms > 1 THEN
                         (SELECT e.arm FROM arbiter.exposure_units e
                           WHERE (e.experiment_id, e.unit)
                               = (f.experiment_id, f.unit)) <> f.arm
                    ELSE false END
         ORDER BY 1, 2, 3
        ON CONFLICT DO NOTHING
        RETURNING attr_moved.experiment_id, attr_moved.unit, attr_moved.arm),
    per_arm AS (
        INSERT INTO arbiter.arm_population AS p (experiment_id, arm,
                                                 moved_units)
        SELECT ins.experiment_id, ins.arm, count(*) FROM ins
         GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (experiment_id, arm) DO UPDATE
            SET moved_units = p.moved_units + excluded.moved_units)
    INSERT INTO arbiter.attr_units AS a (experiment_id, several)
    SELECT z.experiment_id, count(*)
      FROM (SELECT DISTINCT ins.experiment_id, ins.unit FROM ins
             WHERE NOT EXISTS (
                   SELECT 1 FROM arbiter.attr_moved m
                    WHERE (m.experiment_id, m.unit)
                        = (ins.experiment_id, ins.unit))) z
     GROUP BY 1 ORDER BY 1
    ON CONFLICT (experiment_id) DO UPDATE
        SET several = a.several + excluded.several;

    -- pre-period values of non-members are held back: remember the pairs,
    -- and forget those whose unit joins the arm in this batch
    INSERT INTO arbiter.attr_held (experiment_id, unit, arm)
    SELECT f.experiment_id, f.unit, f.arm FROM fold_members f
     WHERE NOT f.member1 ORDER BY 1, 2, 3
    ON CONFLICT DO NOTHING;
    DELETE FROM arbiter.attr_held h USING fold_members f
     WHERE (h.experiment_id, h.unit, h.arm)
         = (f.experiment_id, f.unit, f.arm)
       AND f.member1 AND NOT f.member0;

    -- an exposure recorded in [w0, w1) (the assignment path writes them
    -- with its transaction id, as the events) of a pair held back: the
    -- unit joins the arm now, its held values enter the sums
    WITH j AS (
        DELETE FROM arbiter.attr_held h USING arbiter.exposure_units x
         WHERE x.txid > 0 AND x.txid >= p_w0 AND x.txid < p_w1
           AND (h.experiment_id, h.unit, h.arm)
             = (x.experiment_id, x.unit, x.arm)
        RETURNING h.experiment_id, h.unit, h.arm)
    INSERT INTO fold_members
    SELECT j.experiment_id, j.unit, j.arm, false, true, NULL, NULL, true,
           j.arm, 0
      FROM j;
END
$$;

-- The all-SQL fold (006_fold.sql, renamed by 012), with the attribution:
-- binary and sum definitions count a unit's (y, x) in an arm while the
-- unit is a member of that arm's population (fold_members), and a unit
-- that becomes a member contributes its values from then on.
CREATE OR REPLACE FUNCTION arbiter.fold_sql(max_events int DEFAULT 500000)
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
    END IF;

    -- exposures of new units with outcomes, moved memberships, held-back
    -- pre-period values, the exposures recorded in [w0, w1), and
    -- pg_temp.fold_members (who is a member before and after)
    PERFORM arbiter.fold_attribute(w0, greatest(w0, w1));

    IF n > 0 OR EXISTS (SELECT 1 FROM fold_members) THEN

        -- the definitions of the batch's experiments, parsed once
        CREATE TEMP TABLE IF NOT EXISTS fold_defs (
            experiment_id bigint, name text, kind text, covariate text)
            ON COMMIT DELETE ROWS;
        TRUNCATE fold_defs;
        INSERT INTO fold_defs
        SELECT m.experiment_id, m.name, m.kind, m.covariate
          FROM arbiter.metric_defs m
         WHERE m.experiment_id IN (SELECT DISTINCT f.experiment_id
                                     FROM fold_members f);

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
                       o.x1, o.member0, o.member1,
                       CASE WHEN o.kind IN ('binary', 'sum')
                            THEN o.member0 ELSE o.n0 > 0 END AS c0,
                       CASE WHEN o.kind IN ('binary', 'sum')
                            THEN o.member1 ELSE o.n1 > 0 END AS c1,
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
                           p.member0, p.member1,
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
                        -- per (unit, arm, definition): the batch's delta
                        -- of the metric and of its covariate, and for a
                        -- unit that joins the arm's population in this
                        -- batch, every binary and sum definition (its
                        -- y and x enter the sums now)
                        SELECT q.experiment_id, q.unit, q.arm, q.metric,
                               q.kind, q.covariate, sum(q.dn) AS dn,
                               sum(q.ds) AS ds, sum(q.dx) AS dx,
                               fm.member0, fm.member1
                          FROM (
                            SELECT d.experiment_id, d.unit, d.arm,
                                   m.name AS metric, m.kind, m.covariate,
                                   CASE WHEN d.metric = m.name THEN d.n END
                                       AS dn,
                                   CASE WHEN d.metric = m.name THEN d.s END
                                       AS ds,
                                   CASE WHEN d.metric = m.covariate
                                        THEN d.s END AS dx
                              FROM ingest_delta d
                              JOIN fold_defs m
                                ON m.experiment_id = d.experiment_id
                               AND (d.metric = m.name
                                    OR d.metric = m.covariate)
                            UNION ALL
                            SELECT f.experiment_id, f.unit, f.arm, m.name,
                                   m.kind, m.covariate, NULL, NULL, NULL
                              FROM fold_members f
                              JOIN fold_defs m
                                ON m.experiment_id = f.experiment_id
                             WHERE f.member1 AND NOT f.member0
                               AND m.kind IN ('binary', 'sum')) q
                          JOIN fold_members fm
                            ON (fm.experiment_id, fm.unit, fm.arm)
                             = (q.experiment_id, q.unit, q.arm)
                         GROUP BY 1, 2, 3, 4, 5, 6, 10, 11) p
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
              JOIN fold_defs m
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

-- The leader's batch, first half (012_fold_checkpoint.sql), with the
-- attribution of arbiter.fold_attribute().
CREATE OR REPLACE FUNCTION arbiter.fold_begin(max_events int,
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
    -- writers of the previous version aggregate per experiment under
    -- these locks (002_events.sql); take them in id order
    FOR lk IN SELECT DISTINCT experiment_id AS e FROM fold_in ORDER BY 1
    LOOP
        PERFORM pg_advisory_xact_lock(1095910985, (lk.e % 2147483648)::int);
    END LOOP;
    -- as in arbiter.fold_sql(): exposures of new units with outcomes,
    -- moved memberships, held-back pre-period values, the exposures
    -- recorded in [w0, w1), and pg_temp.fold_members, which the leader
    -- reads beside the delta (db_fold_delta, db_fold_joins); even without
    -- events, for the exposures
    PERFORM arbiter.fold_attribute(w0, w1);

    INSERT INTO ingest_delta
    SELECT i.experiment_id, i.metric, i.unit, i.arm, count(*),
           sum(i.value), min(i.ts), max(i.ts)
      FROM fold_in i
     GROUP BY 1, 2, 3, 4;
END
$$;


-- n of binary and sum metrics: the exposed units plus the moved members
-- (header); everything else as in 006_fold.sql. O(arms x metrics).
CREATE OR REPLACE VIEW arbiter.arm_stats AS
    SELECT m.experiment, m.experiment_id, m.name AS metric, m.kind,
           m.direction, m.role, a.arm,
           CASE WHEN m.kind IN ('binary', 'sum')
                THEN coalesce(x.units, 0) + coalesce(p.moved_units, 0)
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
           f.folded_at,
           coalesce(p.moved_units, 0) AS moved_units
      FROM arbiter.metric_defs m
      JOIN arbiter.experiment_arms a ON a.experiment_id = m.experiment_id
      CROSS JOIN arbiter.fold_state f
      LEFT JOIN arbiter.arm_metric_totals t
             ON (t.experiment_id, t.arm, t.metric)
              = (m.experiment_id, a.arm, m.name)
      LEFT JOIN arbiter.exposure_arm_totals x
             ON (x.experiment_id, x.arm) = (m.experiment_id, a.arm)
      LEFT JOIN arbiter.arm_population p
             ON (p.experiment_id, p.arm) = (m.experiment_id, a.arm);

-- Units with an outcome in an arm other than their exposure's (moved by a
-- weight change, or named by an explicit arm), per experiment: kept by
-- the fold (arbiter.attr_units), one row to read.
CREATE OR REPLACE VIEW arbiter.units_in_several_arms AS
    SELECT e.key AS experiment, a.several AS units
      FROM arbiter.attr_units a
      JOIN arbiter.experiments e ON e.id = a.experiment_id
     WHERE a.several > 0;

-- The recomputation from raw events (audits and tests: must equal
-- arbiter.arm_stats up to rounding), by the rule of the header: the
-- population of an arm is its exposed units plus the units with an
-- outcome event credited to it; pre-period events expose nobody.
CREATE OR REPLACE FUNCTION arbiter.arm_stats_recompute(p_experiment text)
RETURNS TABLE (experiment text, metric text, arm text, n bigint,
               units_with_events bigint, sum float8, sum_sq float8,
               den_sum float8, den_sum_sq float8, cross_sum float8,
               pre_sum float8, pre_sum_sq float8, pre_cross_sum float8)
LANGUAGE sql STABLE
SET jit = off SET enable_mergejoin = off
AS $$
    WITH ex AS (SELECT id FROM arbiter.experiments WHERE key = p_experiment),
    defs AS (SELECT d.name, d.kind, d.covariate FROM arbiter.metric_defs d
              WHERE d.experiment = p_experiment),
    u AS (SELECT r.metric, r.unit, r.arm, count(*) AS n, sum(r.value) AS s
            FROM arbiter.events_raw r, ex WHERE r.experiment_id = ex.id
           GROUP BY 1, 2, 3),
    pop AS (SELECT x.unit, x.arm FROM arbiter.exposure_units x, ex
             WHERE x.experiment_id = ex.id
            UNION
            SELECT u.unit, u.arm FROM u
             WHERE u.metric IN (SELECT d.name FROM defs d)),
    c AS (SELECT m.name AS metric, m.kind, p.arm, k.units, k.y, k.d,
                 arbiter.flush(coalesce(xc.s, 0)) AS x, k.counted
            FROM pop p
            CROSS JOIN defs m
            LEFT JOIN u ym ON (ym.metric, ym.unit, ym.arm) = (m.name, p.unit, p.arm)
            LEFT JOIN u xc ON (xc.metric, xc.unit, xc.arm) = (m.covariate, p.unit, p.arm),
            LATERAL arbiter.contribution(m.kind, ym.n, ym.s, coalesce(xc.s, 0)) k),
    members AS (SELECT p.arm, count(*) AS units FROM pop p GROUP BY 1)
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
      FROM c LEFT JOIN members e ON e.arm = c.arm
     GROUP BY c.metric, c.arm
$$;

-- Errors of one metric per arm and per period of constant weights (the
-- weights version in force when each event happened), for the
-- counting-process test of a canary. An error is an event whose value is
-- nonzero: an error metric may record every request (1 failed, 0 did
-- not), and a 0 is not an error (issue 10, item 6). The arm is the one
-- that served the request (the rule above).
CREATE OR REPLACE FUNCTION arbiter.error_periods(p_experiment bigint,
                                                 p_metric text,
                                                 p_control text,
                                                 p_candidate text)
RETURNS TABLE (weights_version bigint, share_t double precision,
               errors_c bigint, errors_t bigint)
LANGUAGE sql STABLE AS $$
    SELECT w.weights_version,
           coalesce((w.weights->>p_candidate)::float8, 0) / 100.0,
           count(*) FILTER (WHERE r.arm = p_control AND r.value <> 0),
           count(*) FILTER (WHERE r.arm = p_candidate AND r.value <> 0)
      FROM arbiter.events_raw r
      CROSS JOIN LATERAL (
          SELECT h.weights_version, h.weights FROM arbiter.weights_history h
           WHERE h.experiment_id = r.experiment_id AND h.created_at <= r.ts
           ORDER BY h.weights_version DESC LIMIT 1) w
     WHERE r.experiment_id = p_experiment AND r.metric = p_metric
     GROUP BY 1, 2 ORDER BY 1
$$;

-- Bring data folded before this migration under the rule: refold the
-- per-unit values up to the watermark, drop the exposures the old fold
-- made from pre-period events alone, derive the moved memberships and
-- their counts, and recompute the per-arm totals from the per-unit
-- values (the set-based form of the fold's rule). The epoch moves, so a
-- running leader drops its memory. Under the fold lock; also for
-- operators after a restore.
CREATE FUNCTION arbiter.attr_rebuild() RETURNS void
LANGUAGE plpgsql SET jit = off SET work_mem = '64MB'
SET enable_mergejoin = off AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1095910985, 0);
    PERFORM arbiter.fold_units_sync();

    CREATE TEMP TABLE attr_names ON COMMIT DROP AS
    SELECT DISTINCT d.experiment_id, d.name FROM arbiter.metric_defs d;
    CREATE TEMP TABLE attr_outcomes ON COMMIT DROP AS
    SELECT DISTINCT u.experiment_id, u.unit, u.arm
      FROM arbiter.unit_metrics u
      JOIN attr_names nm
        ON (nm.experiment_id, nm.name) = (u.experiment_id, u.metric);

    -- exposures the fold made (count 0) for units without any outcome
    WITH gone AS (
        DELETE FROM arbiter.exposure_units x
         WHERE x.count = 0 AND x.bucket_version = 0
           AND NOT EXISTS (SELECT 1 FROM attr_outcomes o
                            WHERE (o.experiment_id, o.unit)
                                = (x.experiment_id, x.unit))
        RETURNING x.experiment_id, x.arm)
    UPDATE arbiter.exposure_arm_totals t SET units = t.units - g.n
      FROM (SELECT gone.experiment_id, gone.arm, count(*) AS n FROM gone
             GROUP BY 1, 2) g
     WHERE (t.experiment_id, t.arm) = (g.experiment_id, g.arm);

    DELETE FROM arbiter.attr_moved;
    INSERT INTO arbiter.attr_moved (experiment_id, unit, arm)
    SELECT o.experiment_id, o.unit, o.arm
      FROM attr_outcomes o
      JOIN arbiter.exposure_units x
        ON (x.experiment_id, x.unit) = (o.experiment_id, o.unit)
     WHERE x.arm <> o.arm;
    DELETE FROM arbiter.arm_population;
    INSERT INTO arbiter.arm_population (experiment_id, arm, moved_units)
    SELECT m.experiment_id, m.arm, count(*) FROM arbiter.attr_moved m
     GROUP BY 1, 2;
    DELETE FROM arbiter.attr_units;
    INSERT INTO arbiter.attr_units (experiment_id, several)
    SELECT m.experiment_id, count(DISTINCT m.unit) FROM arbiter.attr_moved m
     GROUP BY 1;
    -- pairs with values (pre-period ones) whose unit is no member
    DELETE FROM arbiter.attr_held;
    INSERT INTO arbiter.attr_held (experiment_id, unit, arm)
    SELECT DISTINCT u.experiment_id, u.unit, u.arm
      FROM arbiter.unit_metrics u
     WHERE NOT EXISTS (SELECT 1 FROM arbiter.exposure_units x
                        WHERE (x.experiment_id, x.unit, x.arm)
                            = (u.experiment_id, u.unit, u.arm))
       AND NOT EXISTS (SELECT 1 FROM attr_outcomes o
                        WHERE (o.experiment_id, o.unit, o.arm)
                            = (u.experiment_id, u.unit, u.arm));

    -- the totals of every defined metric, from the per-unit values over
    -- the populations (binary, sum) or the units with values (mean,
    -- ratio), as arbiter.arm_stats_recompute() does from raw events
    DELETE FROM arbiter.arm_metric_totals t
     WHERE EXISTS (SELECT 1 FROM attr_names nm
                    WHERE (nm.experiment_id, nm.name)
                        = (t.experiment_id, t.metric));
    INSERT INTO arbiter.arm_metric_totals (experiment_id, arm, metric,
        units, sum, sum_sq, den_sum, den_sum_sq, cross_sum, pre_sum,
        pre_sum_sq, pre_cross_sum)
    SELECT c.experiment_id, c.arm, c.name,
           coalesce(sum(c.units) FILTER (WHERE c.counted), 0),
           coalesce(sum(c.y) FILTER (WHERE c.counted), 0),
           coalesce(sum(c.y * c.y) FILTER (WHERE c.counted), 0),
           coalesce(sum(c.d) FILTER (WHERE c.counted), 0),
           coalesce(sum(c.d * c.d) FILTER (WHERE c.counted), 0),
           coalesce(sum(c.y * c.d) FILTER (WHERE c.counted), 0),
           coalesce(sum(c.x) FILTER (WHERE c.counted), 0),
           coalesce(sum(c.x * c.x) FILTER (WHERE c.counted), 0),
           coalesce(sum(c.x * c.y) FILTER (WHERE c.counted), 0)
      FROM (SELECT p.experiment_id, p.arm, m.name, k.units, k.y, k.d,
                   arbiter.flush(coalesce(xc.value_sum, 0)) AS x, k.counted
              FROM (SELECT x.experiment_id, x.unit, x.arm
                      FROM arbiter.exposure_units x
                    UNION
                    SELECT o.experiment_id, o.unit, o.arm
                      FROM attr_outcomes o) p
              JOIN arbiter.metric_defs m ON m.experiment_id = p.experiment_id
              LEFT JOIN arbiter.unit_metrics ym
                ON (ym.experiment_id, ym.metric, ym.unit, ym.arm)
                 = (p.experiment_id, m.name, p.unit, p.arm)
              LEFT JOIN arbiter.unit_metrics xc
                ON (xc.experiment_id, xc.metric, xc.unit, xc.arm)
                 = (p.experiment_id, m.covariate, p.unit, p.arm),
              LATERAL arbiter.contribution(m.kind, ym.n, ym.value_sum,
                                           coalesce(xc.value_sum, 0)) k) c
     GROUP BY 1, 2, 3;

    UPDATE arbiter.fold_state SET epoch = epoch + 1;
END
$$;

SELECT arbiter.attr_rebuild();

-- arbiter.experiment_results (010_experiment_dashboard.sql) with CUPED:
-- /results applies a metric's covariate under every method, its default
-- msprt included, so the view adjusts the arms the same way (theta pooled
-- over the arms, stats/cuped.h) before the same msprt formulas. The
-- estimate and control_mean columns are then the adjusted means, as
-- /results' arm "mean" (which shows "unadjusted_mean" beside it).
CREATE OR REPLACE VIEW arbiter.experiment_results AS
WITH raw AS (
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
           d.covariate,
           -- CUPED (stats/cuped.h): co-moments of the covariate x
           CASE WHEN s.n > 1 THEN s.pre_cross_sum - s.sum * s.pre_sum / s.n
           END AS sxy,
           CASE WHEN s.n > 1 THEN s.pre_sum_sq - s.pre_sum * s.pre_sum / s.n
           END AS sxx,
           s.sum_sq - s.sum * s.sum / nullif(s.n, 0) AS syy,
           s.pre_sum
      FROM arbiter.arm_stats s
      JOIN arbiter.experiments e ON e.id = s.experiment_id
      JOIN arbiter.metric_defs d
        ON d.experiment_id = s.experiment_id AND d.name = s.metric
),
-- theta pooled over the arms with at least 2 units, and the grand mean of
-- x over the same arms (Deng et al. 2013, 3.3; stats_cuped_theta)
cuped AS (
    SELECT r.experiment_id, r.metric,
           CASE WHEN sum(r.sxx) > 0 THEN sum(r.sxy) / sum(r.sxx) ELSE 0 END
               AS theta,
           sum(r.pre_sum) / nullif(sum(r.n), 0) AS xbar
      FROM raw r
     WHERE r.n > 1 AND r.covariate IS NOT NULL AND r.kind <> 'ratio'
     GROUP BY 1, 2
),
-- every method of /results uses the adjusted arms when the metric has a
-- covariate (issue 10, item 6): y' = y - theta (x - xbar)
arms AS (
    SELECT r.experiment, r.experiment_id, r.metric, r.kind, r.direction,
           r.role, r.arm, r.n,
           CASE WHEN c.theta IS NULL OR r.n < 2 THEN r.mean
                ELSE r.mean - c.theta * (r.pre_sum / r.n - c.xbar) END
               AS mean,
           CASE WHEN c.theta IS NULL OR r.n < 2 THEN r.var
                ELSE greatest((r.syy - 2 * c.theta * r.sxy
                               + c.theta * c.theta * r.sxx) / (r.n - 1), 0)
           END AS var,
           r.control, r.covariate
      FROM raw r
      LEFT JOIN cuped c
        ON (c.experiment_id, c.metric) = (r.experiment_id, r.metric)
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

