-- 011_models.sql -- the model registry: versions with their lineage and
-- lifecycle stage, state checkpoints, the deployment history, and the
-- evidence of every rollout tick (the deployment report's time series).
--
-- Lifecycle moves happen in the same transaction as the decision that
-- causes them: a trigger on arbiter.decision_log reads the experiment's arms
-- ("model": "name@version") and moves registered versions
--
--   start     candidate arms  registered|archived|rolled_back -> canary
--             (shadow for the shadow strategy); the control becomes
--             production when the model has no production version yet
--   promote   served arm -> production, the previous production ->
--             archived, other candidates -> archived
--   rollback  candidates -> rolled_back, the control -> production
--             (restored); the decision row names the checkpoint to restore
--   stop      candidates still in canary|shadow -> registered
--
-- and writes one arbiter.model_history row per move, carrying the decision's
-- id, so the deployment history and the audit trail cannot disagree. The
-- decision row's details get "models" (the moves) and, on rollback,
-- "model_restore" (version, artifact and latest checkpoint to restore).

CREATE TABLE arbiter.model_versions (
    id               bigserial PRIMARY KEY,
    model            text NOT NULL,
    version          text NOT NULL,
    artifact_uri     text NOT NULL,
    sha256           text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    framework        text NOT NULL DEFAULT '',
    training_data    text NOT NULL DEFAULT '',
    hyperparameters  jsonb NOT NULL DEFAULT '{}'::jsonb,
    metrics          jsonb NOT NULL DEFAULT '{}'::jsonb,
    stage            text NOT NULL DEFAULT 'registered'
                     CHECK (stage IN ('registered', 'shadow', 'canary',
                                      'production', 'archived',
                                      'rolled_back')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    stage_changed_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (model, version)
);
-- at most one production version per model
CREATE UNIQUE INDEX model_versions_production
    ON arbiter.model_versions (model) WHERE stage = 'production';

CREATE TABLE arbiter.model_checkpoints (
    id         bigserial PRIMARY KEY,
    version_id bigint NOT NULL
               REFERENCES arbiter.model_versions(id) ON DELETE CASCADE,
    uri        text NOT NULL,
    sha256     text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (version_id, uri)
);

-- Deployment history and the registry's audit trail: every registration
-- and every stage move, by hand (actor 'admin', decision_id NULL) or by a
-- rollout decision (decision_id = arbiter.decision_log.id).
CREATE TABLE arbiter.model_history (
    id            bigserial PRIMARY KEY,
    version_id    bigint NOT NULL
                  REFERENCES arbiter.model_versions(id) ON DELETE CASCADE,
    at            timestamptz NOT NULL DEFAULT now(),
    action        text NOT NULL, -- register, stage, start, promote, rollback, stop
    from_stage    text,
    to_stage      text NOT NULL,
    actor         text NOT NULL,
    reason        text NOT NULL DEFAULT '',
    experiment_id bigint REFERENCES arbiter.experiments(id) ON DELETE SET NULL,
    decision_id   bigint,
    details       jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX model_history_version ON arbiter.model_history (version_id, id);

-- The evidence of every rollout tick that changed it (the engine keeps
-- only the last one in rollout_state), for the report's time series.
CREATE TABLE arbiter.rollout_evidence_log (
    experiment_id bigint NOT NULL
                  REFERENCES arbiter.experiments(id) ON DELETE CASCADE,
    at            timestamptz NOT NULL DEFAULT now(),
    phase         text NOT NULL,
    step          integer NOT NULL,
    evidence      jsonb NOT NULL
);
CREATE INDEX rollout_evidence_log_experiment
    ON arbiter.rollout_evidence_log (experiment_id, at);

CREATE FUNCTION arbiter.rollout_evidence_keep() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.evidence <> '{}'::jsonb AND (TG_OP = 'INSERT' OR
       NEW.evidence IS DISTINCT FROM OLD.evidence) THEN
        INSERT INTO arbiter.rollout_evidence_log (experiment_id, phase, step,
                                                  evidence)
        VALUES (NEW.experiment_id, NEW.phase, NEW.step, NEW.evidence);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER rollout_evidence_keep AFTER INSERT OR UPDATE
    ON arbiter.rollout_state FOR EACH ROW
    EXECUTE FUNCTION arbiter.rollout_evidence_keep();

-- Move one version to a stage, with its history row. Making a version
-- production first archives the model's current production version.
-- Returns the moves made as a JSON array (empty when nothing changed).
CREATE FUNCTION arbiter.model_move(p_vid bigint, p_stage text, p_action text,
                                   p_actor text, p_reason text,
                                   p_experiment bigint, p_decision bigint)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v record;
    prev record;
    moves jsonb := '[]'::jsonb;
BEGIN
    SELECT id, model, version, stage INTO v FROM arbiter.model_versions
     WHERE id = p_vid FOR UPDATE;
    IF NOT FOUND OR v.stage = p_stage THEN
        RETURN moves;
    END IF;
    IF p_stage = 'production' THEN
        FOR prev IN SELECT id, version FROM arbiter.model_versions
                     WHERE model = v.model AND stage = 'production'
                       AND id <> p_vid FOR UPDATE LOOP
            UPDATE arbiter.model_versions SET stage = 'archived',
                   stage_changed_at = now() WHERE id = prev.id;
            INSERT INTO arbiter.model_history (version_id, action, from_stage,
                   to_stage, actor, reason, experiment_id, decision_id)
            VALUES (prev.id, p_action, 'production', 'archived', p_actor,
                    p_reason, p_experiment, p_decision);
            moves := moves || jsonb_build_object('model', v.model, 'version',
                     prev.version, 'from', 'production', 'to', 'archived');
        END LOOP;
    END IF;
    UPDATE arbiter.model_versions SET stage = p_stage,
           stage_changed_at = now() WHERE id = p_vid;
    INSERT INTO arbiter.model_history (version_id, action, from_stage,
           to_stage, actor, reason, experiment_id, decision_id)
    VALUES (p_vid, p_action, v.stage, p_stage, p_actor, p_reason,
            p_experiment, p_decision);
    PERFORM pg_notify('arbiter_models', v.model);
    RETURN moves || jsonb_build_object('model', v.model, 'version', v.version,
                                       'from', v.stage, 'to', p_stage);
END $$;

-- The registered version an arm names ("name@version"), or NULL.
CREATE FUNCTION arbiter.model_version_of(p_ref text) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT id FROM arbiter.model_versions
     WHERE p_ref LIKE '%@%'
       AND model = substring(p_ref FROM '^(.*)@[^@]*$')
       AND version = substring(p_ref FROM '@([^@]*)$')
$$;

-- The latest checkpoint of a version as JSON, or null.
CREATE FUNCTION arbiter.model_checkpoint_latest(p_vid bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('uri', uri, 'sha256', sha256, 'created_at',
                              to_char(created_at AT TIME ZONE 'UTC',
                                      'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
      FROM arbiter.model_checkpoints WHERE version_id = p_vid
     ORDER BY created_at DESC, id DESC LIMIT 1
$$;

CREATE FUNCTION arbiter.model_lifecycle() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    kind text;
    def jsonb;
    served text;
    arm jsonb;
    vid bigint;
    is_control boolean;
    cand_stage text;
    moves jsonb := '[]'::jsonb;
    restore jsonb := '[]'::jsonb;
    v record;
BEGIN
    IF NEW.to_state IS NOT DISTINCT FROM NEW.from_state THEN
        RETURN NEW;
    ELSIF NEW.to_state = 'running' AND NEW.from_state = 'draft' THEN
        kind := 'start';
    ELSIF NEW.to_state = 'promoted' THEN
        kind := 'promote';
    ELSIF NEW.to_state = 'rolled_back' THEN
        kind := 'rollback';
    ELSIF NEW.to_state = 'stopped' AND NEW.from_state <> 'draft' THEN
        kind := 'stop';
    ELSE
        RETURN NEW;
    END IF;
    SELECT definition, served_arm INTO def, served FROM arbiter.experiments
     WHERE id = NEW.experiment_id;
    cand_stage := CASE WHEN def->>'strategy' = 'shadow' THEN 'shadow'
                       ELSE 'canary' END;
    -- the control first (on start it may become the baseline production),
    -- except on rollback: candidates leave production before the control
    -- is restored
    FOR arm IN SELECT a.value FROM jsonb_array_elements(def->'arms')
                   AS a(value)
                ORDER BY (coalesce((a.value->>'control')::boolean, false)
                          = (kind <> 'rollback')) DESC LOOP
        vid := arbiter.model_version_of(arm->>'model');
        CONTINUE WHEN vid IS NULL;
        is_control := coalesce((arm->>'control')::boolean, false);
        SELECT model, version, stage INTO v FROM arbiter.model_versions
         WHERE id = vid;
        IF kind = 'start' THEN
            IF is_control THEN
                IF NOT EXISTS (SELECT 1 FROM arbiter.model_versions
                                WHERE model = v.model
                                  AND stage = 'production') THEN
                    moves := moves || arbiter.model_move(vid, 'production',
                             kind, NEW.actor, NEW.reason, NEW.experiment_id,
                             NEW.id);
                END IF;
            ELSIF v.stage IN ('registered', 'archived', 'rolled_back') THEN
                moves := moves || arbiter.model_move(vid, cand_stage, kind,
                         NEW.actor, NEW.reason, NEW.experiment_id, NEW.id);
            END IF;
        ELSIF kind = 'promote' THEN
            IF arm->>'name' = served THEN
                moves := moves || arbiter.model_move(vid, 'production', kind,
                         NEW.actor, NEW.reason, NEW.experiment_id, NEW.id);
            ELSIF NOT is_control AND v.stage IN ('canary', 'shadow') THEN
                moves := moves || arbiter.model_move(vid, 'archived', kind,
                         NEW.actor, NEW.reason, NEW.experiment_id, NEW.id);
            END IF;
        ELSIF kind = 'rollback' THEN
            IF is_control THEN
                moves := moves || arbiter.model_move(vid, 'production', kind,
                         NEW.actor, NEW.reason, NEW.experiment_id, NEW.id);
                restore := restore || jsonb_build_object(
                    'model', v.model, 'version', v.version,
                    'artifact_uri', (SELECT artifact_uri
                                       FROM arbiter.model_versions
                                      WHERE id = vid),
                    'checkpoint', arbiter.model_checkpoint_latest(vid));
            ELSIF v.stage IN ('canary', 'shadow', 'production') THEN
                moves := moves || arbiter.model_move(vid, 'rolled_back', kind,
                         NEW.actor, NEW.reason, NEW.experiment_id, NEW.id);
            END IF;
        ELSIF kind = 'stop' AND NOT is_control
              AND v.stage IN ('canary', 'shadow') THEN
            moves := moves || arbiter.model_move(vid, 'registered', kind,
                     NEW.actor, NEW.reason, NEW.experiment_id, NEW.id);
        END IF;
    END LOOP;
    IF moves <> '[]'::jsonb THEN
        NEW.details := NEW.details || jsonb_build_object('models', moves);
    END IF;
    IF restore <> '[]'::jsonb THEN
        NEW.details := NEW.details ||
                       jsonb_build_object('model_restore', restore);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER model_lifecycle BEFORE INSERT ON arbiter.decision_log
    FOR EACH ROW EXECUTE FUNCTION arbiter.model_lifecycle();

-- A stage change by hand. Answers 'ok', 'same', 'not_found', or
-- 'conflict:<experiment key>' when a running or paused experiment has the
-- version on an arm, or, for a move to production, canary or shadow, has
-- any version of the model on an arm (its rollout owns those stages).
CREATE FUNCTION arbiter.model_stage_manual(p_model text, p_version text,
                                           p_stage text, p_reason text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v record;
    busy text;
BEGIN
    SELECT id, stage INTO v FROM arbiter.model_versions
     WHERE model = p_model AND version = p_version FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'not_found';
    END IF;
    IF v.stage = p_stage THEN
        RETURN 'same';
    END IF;
    SELECT e.key INTO busy FROM arbiter.experiments e,
           jsonb_array_elements(e.definition->'arms') AS a(value)
     WHERE e.state IN ('running', 'paused')
       AND (a.value->>'model' = p_model || '@' || p_version
            OR (p_stage IN ('production', 'canary', 'shadow')
                AND a.value->>'model' LIKE replace(replace(replace(p_model, '\',
                    '\\'), '%', '\%'), '_', '\_') || '@%'))
     ORDER BY e.key LIMIT 1;
    IF busy IS NOT NULL THEN
        RETURN 'conflict:' || busy;
    END IF;
    PERFORM arbiter.model_move(v.id, p_stage, 'stage', 'admin', p_reason,
                               NULL, NULL);
    RETURN 'ok';
END $$;

-- Stable views for analysts.
CREATE VIEW arbiter.models AS
    SELECT model, version, stage, artifact_uri, sha256, framework,
           training_data, hyperparameters, metrics, created_at,
           stage_changed_at
      FROM arbiter.model_versions;

CREATE VIEW arbiter.model_deployments AS
    SELECT h.id, v.model, v.version, h.at, h.action, h.from_stage,
           h.to_stage, h.actor, h.reason, e.key AS experiment, h.decision_id
      FROM arbiter.model_history h
      JOIN arbiter.model_versions v ON v.id = h.version_id
      LEFT JOIN arbiter.experiments e ON e.id = h.experiment_id;

-- ---- documents the HTTP layer serves (built here, like db_text's others) --

CREATE FUNCTION arbiter.model_ts(p timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(p AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

CREATE FUNCTION arbiter.model_version_doc(p_vid bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'model', v.model, 'version', v.version,
        'ref', v.model || '@' || v.version,
        'artifact_uri', v.artifact_uri, 'sha256', v.sha256,
        'framework', v.framework, 'training_data', v.training_data,
        'hyperparameters', v.hyperparameters, 'metrics', v.metrics,
        'stage', v.stage, 'created_at', arbiter.model_ts(v.created_at),
        'stage_changed_at', arbiter.model_ts(v.stage_changed_at),
        'checkpoints', coalesce((SELECT jsonb_agg(jsonb_build_object(
                'uri', c.uri, 'sha256', c.sha256,
                'created_at', arbiter.model_ts(c.created_at))
                ORDER BY c.created_at, c.id)
            FROM arbiter.model_checkpoints c WHERE c.version_id = v.id),
            '[]'::jsonb))
      FROM arbiter.model_versions v WHERE v.id = p_vid
$$;

-- NULL when model@version is already registered (versions are immutable).
CREATE FUNCTION arbiter.model_register(p_model text, p_version text,
                                       p_uri text, p_sha text,
                                       p_framework text, p_training text,
                                       p_hyper jsonb, p_metrics jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    vid bigint;
BEGIN
    INSERT INTO arbiter.model_versions (model, version, artifact_uri, sha256,
           framework, training_data, hyperparameters, metrics)
    VALUES (p_model, p_version, p_uri, p_sha, p_framework, p_training,
            p_hyper, p_metrics)
    ON CONFLICT (model, version) DO NOTHING RETURNING id INTO vid;
    IF vid IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO arbiter.model_history (version_id, action, from_stage,
           to_stage, actor)
    VALUES (vid, 'register', NULL, 'registered', 'admin');
    PERFORM pg_notify('arbiter_models', p_model);
    RETURN arbiter.model_version_doc(vid);
END $$;

CREATE FUNCTION arbiter.model_doc(p_model text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'name', p_model,
        'production', (SELECT version FROM arbiter.model_versions
                        WHERE model = p_model AND stage = 'production'),
        'versions', jsonb_agg(arbiter.model_version_doc(id)
                              ORDER BY created_at, id))
      FROM arbiter.model_versions WHERE model = p_model
    HAVING count(*) > 0
$$;

CREATE FUNCTION arbiter.model_history_doc(p_model text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object(
        'id', h.id, 'version', v.version, 'at', arbiter.model_ts(h.at),
        'action', h.action, 'from_stage', h.from_stage,
        'to_stage', h.to_stage, 'actor', h.actor, 'reason', h.reason,
        'experiment', e.key, 'decision_id', h.decision_id)
        ORDER BY h.id), '[]'::jsonb)
      FROM arbiter.model_history h
      JOIN arbiter.model_versions v ON v.id = h.version_id
      LEFT JOIN arbiter.experiments e ON e.id = h.experiment_id
     WHERE v.model = p_model
$$;

-- Register a state checkpoint: {"status": created|exists|mismatch|not_found,
-- "checkpoint": {...}}. The same URI with another checksum is a mismatch
-- (the registered one is returned, never replaced).
CREATE FUNCTION arbiter.model_checkpoint_add(p_model text, p_version text,
                                             p_uri text, p_sha text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    vid bigint;
    c record;
BEGIN
    SELECT id INTO vid FROM arbiter.model_versions
     WHERE model = p_model AND version = p_version;
    IF vid IS NULL THEN
        RETURN jsonb_build_object('status', 'not_found');
    END IF;
    INSERT INTO arbiter.model_checkpoints (version_id, uri, sha256)
    VALUES (vid, p_uri, p_sha) ON CONFLICT (version_id, uri) DO NOTHING;
    SELECT uri, sha256, created_at INTO c FROM arbiter.model_checkpoints
     WHERE version_id = vid AND uri = p_uri;
    PERFORM pg_notify('arbiter_models', p_model);
    RETURN jsonb_build_object(
        'status', CASE WHEN c.sha256 <> p_sha THEN 'mismatch'
                       WHEN c.created_at = now() THEN 'created'
                       ELSE 'exists' END,
        'checkpoint', jsonb_build_object('uri', c.uri, 'sha256', c.sha256,
                      'created_at', arbiter.model_ts(c.created_at)));
END $$;

-- Every model's production version with its latest checkpoint: what the
-- in-memory holder serves.
CREATE FUNCTION arbiter.model_production_doc() RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_object_agg(v.model, jsonb_build_object(
        'model', v.model, 'version', v.version,
        'ref', v.model || '@' || v.version,
        'artifact_uri', v.artifact_uri, 'sha256', v.sha256,
        'framework', v.framework,
        'since', arbiter.model_ts(v.stage_changed_at),
        'checkpoint', arbiter.model_checkpoint_latest(v.id))), '{}'::jsonb)
      FROM arbiter.model_versions v WHERE v.stage = 'production'
$$;

-- Everything the deployment report shows, as one document. Times are
-- epoch milliseconds (t) for the charts. Series are bounded: at most 400
-- evidence points (evenly thinned) and 40 time buckets of events; in a
-- bucket, active_units counts the arm's units with any event (the
-- denominator of a rate), units those with an event of this metric.
CREATE FUNCTION arbiter.experiment_report(p_key text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    WITH x AS (SELECT * FROM arbiter.experiments WHERE key = p_key),
    ev AS (SELECT l.*, row_number() OVER (ORDER BY l.at) AS rn,
                  count(*) OVER () AS n
             FROM arbiter.rollout_evidence_log l, x
            WHERE l.experiment_id = x.id),
    raw AS (SELECT r.arm, r.metric, r.value, r.unit, r.ts
              FROM arbiter.events_raw r, x WHERE r.experiment_id = x.id),
    span AS (SELECT min(ts) AS lo,
                    greatest(extract(epoch FROM max(ts) - min(ts)) / 40.0,
                             1.0) AS w FROM raw),
    buckets AS (SELECT raw.metric, raw.arm,
                       floor(extract(epoch FROM raw.ts - span.lo) / span.w)
                           AS k,
                       count(*) AS events, count(DISTINCT raw.unit) AS units,
                       sum(raw.value) AS total, min(span.lo) AS lo,
                       min(span.w) AS w
                  FROM raw, span GROUP BY 1, 2, 3),
    active AS (SELECT raw.arm,
                      floor(extract(epoch FROM raw.ts - span.lo) / span.w)
                          AS k,
                      count(DISTINCT raw.unit) AS units
                 FROM raw, span GROUP BY 1, 2)
    SELECT jsonb_build_object(
        'experiment', jsonb_build_object(
            'key', x.key, 'state', x.state, 'served_arm', x.served_arm,
            'definition', x.definition,
            'created_at', arbiter.model_ts(x.created_at),
            'started_at', arbiter.model_ts(x.started_at),
            'stopped_at', arbiter.model_ts(x.stopped_at),
            'generated_at', arbiter.model_ts(now())),
        'rollout', (SELECT jsonb_build_object('phase', r.phase, 'step',
                           r.step, 'evidence', r.evidence)
                      FROM arbiter.rollout_state r WHERE r.experiment_id = x.id),
        'decisions', coalesce((SELECT jsonb_agg(jsonb_build_object(
                'id', d.id, 'at', arbiter.model_ts(d.at),
                't', (extract(epoch FROM d.at) * 1000)::bigint,
                'action', d.action, 'from_state', d.from_state,
                'to_state', d.to_state, 'actor', d.actor,
                'reason', d.reason, 'details', d.details) ORDER BY d.id)
            FROM arbiter.decision_log d WHERE d.experiment_id = x.id),
            '[]'::jsonb),
        'weights', coalesce((SELECT jsonb_agg(jsonb_build_object(
                'version', h.weights_version, 'at', arbiter.model_ts(h.created_at),
                't', (extract(epoch FROM h.created_at) * 1000)::bigint,
                'weights', h.weights, 'source', h.source)
                ORDER BY h.weights_version)
            FROM arbiter.weights_history h WHERE h.experiment_id = x.id),
            '[]'::jsonb),
        'evidence', coalesce((SELECT jsonb_agg(jsonb_build_object(
                't', (extract(epoch FROM ev.at) * 1000)::bigint,
                'phase', ev.phase, 'step', ev.step,
                'evidence', ev.evidence) ORDER BY ev.at)
            FROM ev WHERE ev.n <= 400 OR ev.rn = ev.n
                       OR (ev.rn * 400) / ev.n <> ((ev.rn - 1) * 400) / ev.n),
            '[]'::jsonb),
        'series', coalesce((SELECT jsonb_agg(jsonb_build_object(
                'metric', b.metric, 'arm', b.arm,
                't', ((extract(epoch FROM b.lo) + b.k * b.w) * 1000)::bigint,
                'events', b.events, 'units', b.units, 'sum', b.total,
                'active_units', a.units)
                ORDER BY b.metric, b.arm, b.k)
            FROM buckets b JOIN active a ON a.arm = b.arm AND a.k = b.k),
            '[]'::jsonb),
        'models', coalesce((SELECT jsonb_agg(jsonb_build_object(
                'model', v.model, 'version', v.version,
                'at', arbiter.model_ts(h.at), 'action', h.action,
                'from_stage', h.from_stage, 'to_stage', h.to_stage,
                'decision_id', h.decision_id) ORDER BY h.id)
            FROM arbiter.model_history h
            JOIN arbiter.model_versions v ON v.id = h.version_id
            WHERE h.experiment_id = x.id), '[]'::jsonb))
      FROM x
$$;

-- The report of every ended rollout (promoted, rolled back, stopped),
-- written once after the end by arbiter.experiment_reports_write() (the
-- registry's listener calls it, off the decision's transaction: a rollback
-- never waits for a report) and rewritten when a later decision follows
-- (a promoted experiment rolled back). It keeps the report whole after
-- event retention has removed the raw events behind its time series.
CREATE TABLE arbiter.experiment_reports (
    experiment_id bigint PRIMARY KEY
                  REFERENCES arbiter.experiments(id) ON DELETE CASCADE,
    decision_id   bigint NOT NULL, -- the last decision it covers
    created_at    timestamptz NOT NULL DEFAULT now(),
    document      jsonb NOT NULL
);

-- Write the missing or outdated reports; one instance at a time. Returns
-- how many were written.
CREATE FUNCTION arbiter.experiment_reports_write() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('arbiter.experiment_reports'))
    THEN
        RETURN 0;
    END IF;
    WITH todo AS (
        SELECT e.id, e.key,
               (SELECT max(d.id) FROM arbiter.decision_log d
                 WHERE d.experiment_id = e.id) AS last
          FROM arbiter.experiments e
         WHERE e.state IN ('promoted', 'rolled_back', 'stopped'))
    INSERT INTO arbiter.experiment_reports (experiment_id, decision_id,
                                            document)
    SELECT t.id, t.last, arbiter.experiment_report(t.key) FROM todo t
     WHERE t.last IS NOT NULL AND NOT EXISTS (
           SELECT 1 FROM arbiter.experiment_reports r
            WHERE r.experiment_id = t.id AND r.decision_id >= t.last)
    ON CONFLICT (experiment_id) DO UPDATE SET
        decision_id = excluded.decision_id, created_at = now(),
        document = excluded.document;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
