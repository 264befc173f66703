-- 001_foundation.sql -- experiments, exposures, decisions (audit).
--
-- Analysts and Grafana read the views at the end (stable names); the tables
-- may change layout in later migrations. Everything is keyed by experiment
-- id so the schema can be distributed by experiment (Citus) later.

CREATE TABLE arbiter.experiments (
    id              bigserial PRIMARY KEY,
    key             text NOT NULL UNIQUE,
    definition      jsonb NOT NULL,          -- canonical definition document
    state           text NOT NULL DEFAULT 'draft'
                    CHECK (state IN ('draft', 'running', 'paused', 'stopped')),
    version         bigint NOT NULL DEFAULT 1,  -- raised on every change
    weights_version bigint NOT NULL DEFAULT 1,  -- raised when weights change
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    stopped_at      timestamptz
);

-- Every weights version an experiment has served, so a propensity recorded
-- with an exposure can always be traced back to the weights behind it.
CREATE TABLE arbiter.weights_history (
    experiment_id   bigint NOT NULL REFERENCES arbiter.experiments(id) ON DELETE CASCADE,
    weights_version bigint NOT NULL,
    weights         jsonb NOT NULL,          -- {"arm": percent, ...}
    source          text NOT NULL,           -- 'create', 'patch', 'bandit', ...
    inputs          jsonb,                   -- what produced them (bandits)
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (experiment_id, weights_version)
);

-- One row per (experiment, unit): the arm of the first exposure is kept
-- (the sticky store), with first/last seen and the number of assignments.
CREATE TABLE arbiter.exposure_units (
    experiment_id   bigint NOT NULL REFERENCES arbiter.experiments(id) ON DELETE CASCADE,
    unit            text NOT NULL,
    arm             text NOT NULL,
    bucket_version  integer NOT NULL,
    weights_version bigint NOT NULL,
    propensity      double precision NOT NULL,
    first_seen      timestamptz NOT NULL,
    last_seen       timestamptz NOT NULL,
    count           bigint NOT NULL,
    PRIMARY KEY (experiment_id, unit)
);

-- Per-arm exposure totals kept incrementally with exposure_units, so counts
-- per arm cost O(arms) whatever the number of units.
CREATE TABLE arbiter.exposure_arm_totals (
    experiment_id   bigint NOT NULL REFERENCES arbiter.experiments(id) ON DELETE CASCADE,
    arm             text NOT NULL,
    units           bigint NOT NULL DEFAULT 0,
    exposures       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment_id, arm)
);

-- The audit trail: every state change, automatic or manual.
CREATE TABLE arbiter.decision_log (
    id              bigserial PRIMARY KEY,
    experiment_id   bigint NOT NULL REFERENCES arbiter.experiments(id) ON DELETE CASCADE,
    at              timestamptz NOT NULL DEFAULT now(),
    action          text NOT NULL,   -- create, start, pause, resume, stop, patch, ...
    from_state      text,
    to_state        text,
    actor           text NOT NULL,   -- 'admin' (API) or 'engine'
    reason          text NOT NULL DEFAULT '',
    details         jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX decision_log_experiment ON arbiter.decision_log (experiment_id, at);

-- Stable views ------------------------------------------------------------

CREATE VIEW arbiter.experiments_v AS
    SELECT id, key, state, definition->>'strategy' AS strategy,
           definition->>'description' AS description, definition,
           version, weights_version, created_at, updated_at, started_at,
           stopped_at
      FROM arbiter.experiments;

CREATE VIEW arbiter.exposures AS
    SELECT e.key AS experiment, u.unit, u.arm, u.bucket_version,
           u.weights_version, u.propensity, u.first_seen, u.last_seen,
           u.count
      FROM arbiter.exposure_units u
      JOIN arbiter.experiments e ON e.id = u.experiment_id;

CREATE VIEW arbiter.exposure_counts AS
    SELECT e.key AS experiment, t.arm, t.units, t.exposures
      FROM arbiter.exposure_arm_totals t
      JOIN arbiter.experiments e ON e.id = t.experiment_id;

CREATE VIEW arbiter.decisions AS
    SELECT d.id, e.key AS experiment, d.at, d.action, d.from_state,
           d.to_state, d.actor, d.reason, d.details
      FROM arbiter.decision_log d
      JOIN arbiter.experiments e ON e.id = d.experiment_id;
