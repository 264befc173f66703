-- 005_rollouts.sql -- automated rollouts: terminal outcomes, the arm a
-- promoted or rolled-back experiment serves, and the rollout state the
-- decision leader keeps between ticks (so a new leader continues where the
-- old one was).

ALTER TABLE arbiter.experiments DROP CONSTRAINT experiments_state_check;
ALTER TABLE arbiter.experiments ADD CONSTRAINT experiments_state_check
    CHECK (state IN ('draft', 'running', 'paused', 'stopped', 'promoted',
                     'rolled_back'));
-- promoted: served_arm is the winner; rolled_back: served_arm is control
ALTER TABLE arbiter.experiments ADD COLUMN served_arm text;

CREATE TABLE arbiter.rollout_state (
    experiment_id    bigint PRIMARY KEY
                     REFERENCES arbiter.experiments(id) ON DELETE CASCADE,
    phase            text NOT NULL,       -- ramp, waiting_approval, smoke,
                                          -- switched, shadow
    step             integer NOT NULL DEFAULT 0,
    phase_started_at timestamptz NOT NULL,
    approved         boolean NOT NULL DEFAULT false,
    last_units       bigint NOT NULL DEFAULT 0,
    last_units_at    timestamptz NOT NULL,
    tests            jsonb NOT NULL DEFAULT '{}'::jsonb, -- running test state
    evidence         jsonb NOT NULL DEFAULT '{}'::jsonb, -- last tick's numbers
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE VIEW arbiter.rollouts AS
    SELECT e.key AS experiment, e.state, e.served_arm,
           e.definition->>'strategy' AS strategy, r.phase, r.step,
           r.phase_started_at, r.approved, r.evidence, r.updated_at
      FROM arbiter.experiments e
      LEFT JOIN arbiter.rollout_state r ON r.experiment_id = e.id;

-- Errors of one metric per arm and per period of constant weights (the
-- weights version in force when each event happened), for the
-- counting-process test of a canary.
CREATE FUNCTION arbiter.error_periods(p_experiment bigint, p_metric text,
                                      p_control text, p_candidate text)
RETURNS TABLE (weights_version bigint, share_t double precision,
               errors_c bigint, errors_t bigint)
LANGUAGE sql STABLE AS $$
    SELECT w.weights_version,
           coalesce((w.weights->>p_candidate)::float8, 0) / 100.0,
           count(*) FILTER (WHERE r.arm = p_control),
           count(*) FILTER (WHERE r.arm = p_candidate)
      FROM arbiter.events_raw r
      CROSS JOIN LATERAL (
          SELECT h.weights_version, h.weights FROM arbiter.weights_history h
           WHERE h.experiment_id = r.experiment_id AND h.created_at <= r.ts
           ORDER BY h.weights_version DESC LIMIT 1) w
     WHERE r.experiment_id = p_experiment AND r.metric = p_metric
     GROUP BY 1, 2 ORDER BY 1
$$;
