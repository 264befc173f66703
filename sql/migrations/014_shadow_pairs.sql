-- 014_shadow_pairs.sql -- paired observations of shadow experiments
-- (issue 16): one row per request that both the serving (control) and the
-- shadow (candidate) model answered, keyed by the caller's request id, so
-- a repeated post is a no-op. The label may arrive later
-- (arbiter.shadow_labels_set). Analysts read arbiter.shadow_observations.

CREATE TABLE arbiter.shadow_pairs (
    experiment_id        bigint NOT NULL
                         REFERENCES arbiter.experiments(id) ON DELETE CASCADE,
    request_id           text NOT NULL,
    unit                 text NOT NULL,
    control_class        text,             -- a label output, or
    control_score        float8,           -- a score output (one of them,
    candidate_class      text,             -- or neither on an error)
    candidate_score      float8,
    control_latency_ms   float8,
    candidate_latency_ms float8,
    control_error        boolean NOT NULL DEFAULT false,
    candidate_error      boolean NOT NULL DEFAULT false,
    label                text,             -- the truth, when known
    observed_at          timestamptz NOT NULL DEFAULT now(),
    labelled_at          timestamptz,
    PRIMARY KEY (experiment_id, request_id)
);
CREATE INDEX shadow_pairs_recent
    ON arbiter.shadow_pairs (experiment_id, observed_at DESC);

CREATE VIEW arbiter.shadow_observations AS
SELECT e.key AS experiment, p.request_id, p.unit,
       p.control_class, p.control_score, p.candidate_class,
       p.candidate_score, p.control_latency_ms, p.candidate_latency_ms,
       p.control_error, p.candidate_error, p.label, p.observed_at,
       p.labelled_at
  FROM arbiter.shadow_pairs p
  JOIN arbiter.experiments e ON e.id = p.experiment_id;

-- Store a batch of pairs (a JSON array of flat objects, validated by the
-- caller). A request id already stored, or repeated in the batch, is a
-- no-op. Returns {"accepted": n, "duplicates": m}.
CREATE FUNCTION arbiter.shadow_pairs_add(p_exp bigint, p_doc jsonb)
RETURNS jsonb LANGUAGE sql AS $$
    WITH ins AS (
        INSERT INTO arbiter.shadow_pairs AS p
            (experiment_id, request_id, unit, control_class, control_score,
             candidate_class, candidate_score, control_latency_ms,
             candidate_latency_ms, control_error, candidate_error, label,
             labelled_at)
        SELECT p_exp, r.request_id, r.unit, r.control_class, r.control_score,
               r.candidate_class, r.candidate_score, r.control_latency_ms,
               r.candidate_latency_ms, coalesce(r.control_error, false),
               coalesce(r.candidate_error, false), r.label,
               CASE WHEN r.label IS NOT NULL THEN now() END
          FROM jsonb_to_recordset(p_doc) AS r(
               request_id text, unit text, control_class text,
               control_score float8, candidate_class text,
               candidate_score float8, control_latency_ms float8,
               candidate_latency_ms float8, control_error boolean,
               candidate_error boolean, label text)
        ON CONFLICT (experiment_id, request_id) DO NOTHING
        RETURNING 1)
    SELECT jsonb_build_object(
        'accepted', (SELECT count(*) FROM ins),
        'duplicates', jsonb_array_length(p_doc) - (SELECT count(*) FROM ins))
$$;

-- Label stored pairs: [{"request_id": "...", "label": "..."}]. The first
-- label of a request wins; posting the same one again is a no-op. Nothing
-- is written when a request id is unknown ({"unknown": [...]}) or would
-- get a different label ({"conflicting": [...]}); otherwise
-- {"labelled": n, "unchanged": m}.
CREATE FUNCTION arbiter.shadow_labels_set(p_exp bigint, p_doc jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    bad jsonb;
    n integer;
BEGIN
    SELECT jsonb_agg(DISTINCT i.request_id) INTO bad
      FROM jsonb_to_recordset(p_doc) AS i(request_id text, label text)
     WHERE NOT EXISTS (SELECT 1 FROM arbiter.shadow_pairs p
                        WHERE p.experiment_id = p_exp
                          AND p.request_id = i.request_id);
    IF bad IS NOT NULL THEN
        RETURN jsonb_build_object('unknown', bad);
    END IF;
    -- lock the rows, so a concurrent label cannot slip between the check
    -- and the update
    PERFORM 1 FROM arbiter.shadow_pairs p
     WHERE p.experiment_id = p_exp
       AND p.request_id IN (SELECT i.request_id FROM
               jsonb_to_recordset(p_doc) AS i(request_id text, label text))
       FOR UPDATE;
    SELECT jsonb_agg(DISTINCT i.request_id) INTO bad
      FROM jsonb_to_recordset(p_doc) AS i(request_id text, label text)
      JOIN arbiter.shadow_pairs p
        ON p.experiment_id = p_exp AND p.request_id = i.request_id
     WHERE (p.label IS NOT NULL AND p.label <> i.label)
        OR EXISTS (SELECT 1 FROM jsonb_to_recordset(p_doc)
                              AS j(request_id text, label text)
                    WHERE j.request_id = i.request_id
                      AND j.label <> i.label);
    IF bad IS NOT NULL THEN
        RETURN jsonb_build_object('conflicting', bad);
    END IF;
    UPDATE arbiter.shadow_pairs p
       SET label = i.label, labelled_at = now()
      FROM (SELECT DISTINCT r.request_id, r.label
              FROM jsonb_to_recordset(p_doc) AS r(request_id text,
                                                  label text)) i
     WHERE p.experiment_id = p_exp AND p.request_id = i.request_id
       AND p.label IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN jsonb_build_object(
        'labelled', n,
        'unchanged', (SELECT count(DISTINCT r.request_id)
                        FROM jsonb_to_recordset(p_doc)
                             AS r(request_id text, label text)) - n);
END $$;

-- What the paired analysis needs (core/shadow.h, struct
-- core_shadow_summary): counts and moments over every pair, and the
-- latency and score differences of the p_sample most recent pairs (for
-- quantiles and the signed-rank test). Two outputs agree when both are
-- labels and equal, or both are scores at most p_tol apart; a label
-- against a score disagrees; a request where a model erred is not
-- compared. Correctness needs a label and a label output.
CREATE FUNCTION arbiter.shadow_summary(p_exp bigint, p_tol float8,
                                       p_sample integer)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    WITH x AS (
        SELECT p.*,
               p.candidate_latency_ms - p.control_latency_ms AS ld,
               p.candidate_score - p.control_score AS sd,
               CASE WHEN p.control_error OR p.candidate_error THEN NULL
                    WHEN p.control_class IS NOT NULL
                         AND p.candidate_class IS NOT NULL
                    THEN p.control_class = p.candidate_class
                    WHEN p.control_score IS NOT NULL
                         AND p.candidate_score IS NOT NULL
                    THEN abs(p.candidate_score - p.control_score) <= p_tol
                    WHEN (p.control_class IS NULL AND p.control_score IS NULL)
                         OR (p.candidate_class IS NULL
                             AND p.candidate_score IS NULL)
                    THEN NULL
                    ELSE false END AS agree,
               p.label IS NOT NULL AND NOT p.control_error
                   AND NOT p.candidate_error
                   AND p.control_class IS NOT NULL
                   AND p.candidate_class IS NOT NULL AS lab,
               p.control_class = p.label AS cr,
               p.candidate_class = p.label AS kr
          FROM arbiter.shadow_pairs p
         WHERE p.experiment_id = p_exp),
    recent AS (
        SELECT ld, sd FROM x ORDER BY observed_at DESC, request_id
         LIMIT p_sample)
    SELECT jsonb_build_object(
        'n_pairs', count(*),
        'n_units', count(DISTINCT unit),
        'n_compared', count(agree),
        'n_agree', count(*) FILTER (WHERE agree),
        'n_latency', count(ld),
        'lat_diff_mean', avg(ld),
        'lat_diff_var', var_samp(ld),
        'lat_control_mean', avg(control_latency_ms) FILTER (WHERE ld IS NOT NULL),
        'lat_candidate_mean', avg(candidate_latency_ms) FILTER (WHERE ld IS NOT NULL),
        'err_control', count(*) FILTER (WHERE control_error),
        'err_candidate', count(*) FILTER (WHERE candidate_error),
        'err_only_control',
            count(*) FILTER (WHERE control_error AND NOT candidate_error),
        'err_only_candidate',
            count(*) FILTER (WHERE candidate_error AND NOT control_error),
        'n_labelled', count(*) FILTER (WHERE lab),
        'both_right', count(*) FILTER (WHERE lab AND cr AND kr),
        'only_control_right', count(*) FILTER (WHERE lab AND cr AND NOT kr),
        'only_candidate_right', count(*) FILTER (WHERE lab AND kr AND NOT cr),
        'n_scores', count(sd),
        'lat_diffs', (SELECT coalesce(jsonb_agg(ld ORDER BY ld), '[]')
                        FROM recent WHERE ld IS NOT NULL),
        'score_diffs', (SELECT coalesce(jsonb_agg(sd), '[]')
                          FROM recent WHERE sd IS NOT NULL))
      FROM x
$$;
