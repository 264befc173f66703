-- 018_drift.sql -- drift watch (issue 16): the state of every watched
-- metric (a metric declared with "drift" in an experiment's definition,
-- whose events carry feature or score values). Written by the decision
-- leader (service/drift_job.c); read by GET .../results and Grafana
-- through arbiter.drift.
--
-- The reference sample is copied here once it is complete (raw events
-- expire with the retention), at most 20,000 values (the earliest); it
-- never changes afterwards. looks counts the looks of the sequential
-- two-sample test (stats/drift.h: look k spends alpha 6 / (pi^2 k^2)).
-- flagged latches at the first look that rejects.

CREATE TABLE arbiter.drift_state (
    experiment_id  bigint NOT NULL
                   REFERENCES arbiter.experiments(id) ON DELETE CASCADE,
    metric         text NOT NULL,
    reference_from timestamptz NOT NULL,
    reference_to   timestamptz NOT NULL,   -- exclusive
    reference      double precision[] NOT NULL,
    looks          bigint NOT NULL DEFAULT 0,
    last_seen      timestamptz,            -- newest value of the last look
    flagged        boolean NOT NULL DEFAULT false,
    flagged_at     timestamptz,
    result         jsonb NOT NULL DEFAULT '{}'::jsonb, -- the last look
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (experiment_id, metric)
);

-- The reference of a watch: the values of the first p_reference_s seconds
-- from the first value, extended to the first p_min values when fewer
-- came in that time; copied into drift_state when complete. Answers the
-- watch's state as JSON: {"state": "collecting", "values": n} while the
-- reference is incomplete, else {"state": "ready", "reference": [...],
-- "reference_from_ms", "reference_to_ms", "looks", "last_seen_ms",
-- "flagged"}.
CREATE FUNCTION arbiter.drift_reference(p_experiment bigint, p_metric text,
                                        p_reference_s double precision,
                                        p_min integer, p_cap integer)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    s arbiter.drift_state;
    t0 timestamptz;
    t1 timestamptz;
    nth timestamptz;
    n bigint;
BEGIN
    SELECT * INTO s FROM arbiter.drift_state
     WHERE experiment_id = p_experiment AND metric = p_metric;
    IF NOT FOUND THEN
        SELECT min(ts), count(*) INTO t0, n FROM arbiter.events_raw
         WHERE experiment_id = p_experiment AND metric = p_metric;
        IF t0 IS NULL THEN
            RETURN jsonb_build_object('state', 'collecting', 'values', 0);
        END IF;
        t1 := t0 + make_interval(secs => p_reference_s);
        SELECT ts INTO nth FROM arbiter.events_raw
         WHERE experiment_id = p_experiment AND metric = p_metric
         ORDER BY ts OFFSET greatest(p_min, 1) - 1 LIMIT 1;
        IF now() < t1 OR nth IS NULL THEN
            RETURN jsonb_build_object('state', 'collecting', 'values', n,
                                      'reference_from_ms',
                                      floor(extract(epoch FROM t0) * 1000));
        END IF;
        IF nth >= t1 THEN
            t1 := nth + interval '1 microsecond';
        END IF;
        INSERT INTO arbiter.drift_state (experiment_id, metric,
                                         reference_from, reference_to,
                                         reference)
        SELECT p_experiment, p_metric, t0, t1,
               array_agg(x.value ORDER BY x.ts)
          FROM (SELECT value, ts FROM arbiter.events_raw
                 WHERE experiment_id = p_experiment AND metric = p_metric
                   AND ts < t1 ORDER BY ts LIMIT p_cap) x
        ON CONFLICT (experiment_id, metric) DO NOTHING;
        SELECT * INTO s FROM arbiter.drift_state
         WHERE experiment_id = p_experiment AND metric = p_metric;
    END IF;
    RETURN jsonb_build_object(
        'state', 'ready', 'reference', to_jsonb(s.reference),
        'reference_from_ms', floor(extract(epoch FROM s.reference_from) * 1000),
        'reference_to_ms', floor(extract(epoch FROM s.reference_to) * 1000),
        'looks', s.looks,
        'last_seen_ms', floor(extract(epoch FROM s.last_seen) * 1000),
        'flagged', s.flagged);
END $$;

-- The current window of a watch: the newest p_cap values from
-- greatest(end of the reference, now - p_window_s) on, with the newest
-- value's time: {"values": [...], "newest_ms", "from_ms"}.
CREATE FUNCTION arbiter.drift_current(p_experiment bigint, p_metric text,
                                      p_window_s double precision,
                                      p_cap integer)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    WITH s AS (SELECT greatest(reference_to,
                               now() - make_interval(secs => p_window_s))
                      AS from_ts
                 FROM arbiter.drift_state
                WHERE experiment_id = p_experiment AND metric = p_metric),
         v AS (SELECT r.value, r.ts FROM arbiter.events_raw r, s
                WHERE r.experiment_id = p_experiment AND r.metric = p_metric
                  AND r.ts >= s.from_ts
                ORDER BY r.ts DESC LIMIT p_cap)
    SELECT jsonb_build_object(
        'values', coalesce((SELECT jsonb_agg(value) FROM v), '[]'::jsonb),
        'newest_ms', (SELECT floor(extract(epoch FROM max(ts)) * 1000) FROM v),
        'from_ms', (SELECT floor(extract(epoch FROM from_ts) * 1000) FROM s))
$$;

-- One row per watched metric that has a reference (Grafana, analysts).
CREATE VIEW arbiter.drift AS
    SELECT e.key AS experiment, d.metric, d.looks, d.flagged, d.flagged_at,
           (d.result->>'psi')::double precision AS psi,
           (d.result->>'ks_d')::double precision AS ks_d,
           (d.result->>'ks_p')::double precision AS ks_p,
           (d.result->>'alpha_look')::double precision AS alpha_look,
           (d.result->>'drift')::boolean AS drift_at_last_look,
           cardinality(d.reference) AS reference_values,
           (d.result->>'current_values')::bigint AS current_values,
           d.reference_from, d.reference_to, d.last_seen, d.updated_at
      FROM arbiter.drift_state d
      JOIN arbiter.experiments e ON e.id = d.experiment_id;
