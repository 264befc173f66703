-- 016_ingest_ack.sql -- the acknowledging transaction, cheaper (issue 11,
-- session 4). Same contract as 006_fold.sql's arbiter.ingest_raw(): raw
-- events, the first occurrence of each new client event id, one
-- ingest_batches row per new batch; batches committed before or repeated
-- in the call are skipped whole and report their stored counts.
--
-- Where an acknowledgement's PostgreSQL CPU goes (backend CPU from
-- /proc/PID/stat, 8,000 staged events per call in a rolled-back
-- transaction, `make bench-ingest`'s data, 5-6 runs each, load ~5):
--   whole call, arm named by the server         16.2-17.1 us per event
--   whole call, arm probed in exposure_units    19.8 us (the probe: 2.7)
--   of which: insert into events_raw (2 indexes)  7.2 us
--             idempotency insert into event_ids   5.6-5.8 us
--             the stage (COPY, reading it)        ~1 us
--             sorts, joins, plpgsql               ~2-3 us
-- The idempotency insert used ON CONFLICT DO NOTHING: a speculative
-- insertion per id (probe, heap insert, index insert with a token,
-- confirm). A plain insert of the ids no committed row holds (an
-- anti-join) costs 4.6 us per id (a plain insert without the probe: 3.3).
-- It differs only when two transactions insert the same new id at once:
-- the second waits on the unique index, then fails with 23505 instead of
-- skipping the id; sql/db_events.c treats 23505 as transient, so the
-- writer retries the whole group, whose retry sees the committed id and
-- counts the event as a duplicate (exactly once, as before; the same path
-- already covers a batch id committed meanwhile). The exposure probe runs
-- only for events that name no arm (coalesce is lazy): since issue 10 the
-- server names the served arm of non-sticky experiments on every event.

CREATE OR REPLACE FUNCTION arbiter.ingest_raw(batch_ids text[])
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
        SELECT f.experiment_id, f.event_id FROM firsts f
         WHERE NOT EXISTS (SELECT 1 FROM arbiter.event_ids x
                            WHERE x.experiment_id = f.experiment_id
                              AND x.event_id = f.event_id)
         ORDER BY 1, 2
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

-- Retention folded with the SQL fold on every call (006_fold.sql), hourly
-- on the leader and at its start: that moved the watermark under the
-- leader's in-memory fold, which then dropped its memory and resynced
-- from the checkpoint. The function only ever drops or deletes folded
-- rows; the fold only made more of them deletable now. So it folds only
-- when a raw event older than the cutoff is not folded yet (one probe of
-- the txid index per partition; normally none).
CREATE OR REPLACE FUNCTION arbiter.apply_retention(cutoff timestamptz)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    r record;
    dropped int := 0;
    wm bigint;
    waiting boolean;
BEGIN
    IF EXISTS (SELECT 1 FROM arbiter.events_raw e, arbiter.fold_state f
                WHERE e.txid >= f.watermark AND e.ts < cutoff) THEN
        PERFORM arbiter.fold(500000);
    END IF;
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
