-- Writing one week of a completed plan again (POST /v1/plans/{id}/weeks/{n}/regenerate).
--
-- A regeneration is a request like any other (workout_plan_requests: processing, then completed,
-- failed or cancelled; counted by the in-flight cap, the daily quota and the budgets; its calls on
-- the ledger), marked by the plan and week it rewrites. week_request keeps the event it was
-- accepted with (services/gateway: the plan as it stood, its skeleton and profile), so the sweeper
-- can re-drive it as it re-drives a plan request from its row.
--
-- workout_week_versions: every version of a rewritten week. The new week waits here ('pending')
-- until every exercise it uses has a profile; then, in one transaction, the week's entries are
-- replaced, the version becomes 'current', the one before it 'superseded' (version 1, the week as
-- the plan was first stored, is copied here from the entries the first time the week is rewritten),
-- and the request turns 'completed' last. A failed or cancelled regeneration deletes its pending
-- version; the plan is untouched.

ALTER TABLE workout_plan_requests
    ADD COLUMN IF NOT EXISTS regenerates_plan_id uuid,
    ADD COLUMN IF NOT EXISTS regenerates_week smallint CHECK (regenerates_week BETWEEN 1 AND 8),
    ADD COLUMN IF NOT EXISTS week_request jsonb;

-- One regeneration of a plan at a time: the accept step looks for one in flight.
CREATE INDEX IF NOT EXISTS workout_plan_requests_regenerating
    ON workout_plan_requests (regenerates_plan_id) WHERE status = 'processing' AND regenerates_plan_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS workout_week_versions (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plan_id        uuid NOT NULL REFERENCES workout_plans (id) ON DELETE CASCADE,
    week           smallint NOT NULL CHECK (week BETWEEN 1 AND 8),
    version        smallint CHECK (version >= 1),
    state          text NOT NULL CHECK (state IN ('pending', 'current', 'superseded')),
    request_id     uuid UNIQUE REFERENCES workout_plan_requests (id) ON DELETE CASCADE,
    instruction    text,
    content        jsonb NOT NULL,
    exercises      jsonb NOT NULL DEFAULT '[]',
    quality        jsonb,
    prompt_version text,
    model          text,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    current_from   timestamptz,
    CHECK ((state = 'pending') = (version IS NULL)),
    UNIQUE (plan_id, week, version)
);

CREATE UNIQUE INDEX IF NOT EXISTS workout_week_versions_one_current
    ON workout_week_versions (plan_id, week) WHERE state = 'current';

-- The gateway's accept step for a regeneration, in one call: under the user's lock (0012's), a
-- retry of an Idempotency-Key answers with its first request; the plan must be the user's and
-- complete ('not_found'), with no other regeneration of it in flight ('busy': that request's id);
-- then accept_plan_request's checks and inserts (the instruction stands in for the profile, which
-- an Idempotency-Key retry is compared on), and the row is marked with what it rewrites.
CREATE OR REPLACE FUNCTION accept_week_request(
    p_request_id uuid,
    p_user_id uuid,
    p_plan_id uuid,
    p_week smallint,
    p_instruction text,
    p_idempotency_key text,
    p_max_active integer,
    p_max_per_day integer,
    p_user_budget float8,
    p_global_budget float8,
    p_reserve float8,
    p_subject text,
    p_payload text,
    p_traceparent text
) RETURNS TABLE (
    outcome text,
    request_id uuid,
    status text,
    user_profile text,
    system_prompt text,
    spent float8,
    active bigint,
    wait float8,
    outbox_id bigint
)
LANGUAGE plpgsql VOLATILE
SET search_path = public, pg_temp
AS $$
DECLARE
    v_busy uuid;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_user_id::text, 7340022));
    IF p_idempotency_key IS NULL
       OR NOT EXISTS (SELECT FROM workout_plan_requests r
                      WHERE r.user_id = p_user_id AND r.idempotency_key = p_idempotency_key) THEN
        IF NOT EXISTS (SELECT FROM workout_plans p
                       WHERE p.id = p_plan_id AND p.user_id = p_user_id AND p.assembly = 'complete') THEN
            RETURN QUERY SELECT 'not_found', NULL::uuid, NULL::text, NULL::text, NULL::text,
                NULL::float8, NULL::bigint, NULL::float8, NULL::bigint;
            RETURN;
        END IF;
        SELECT r.id INTO v_busy FROM workout_plan_requests r
        WHERE r.regenerates_plan_id = p_plan_id AND r.status = 'processing' LIMIT 1;
        IF FOUND THEN
            RETURN QUERY SELECT 'busy', v_busy, 'processing'::text, NULL::text, NULL::text,
                NULL::float8, NULL::bigint, NULL::float8, NULL::bigint;
            RETURN;
        END IF;
    END IF;
    RETURN QUERY SELECT a.* FROM accept_plan_request(
        p_request_id, p_user_id, coalesce(p_instruction, ''), NULL, p_idempotency_key,
        p_max_active, p_max_per_day, p_user_budget, p_global_budget, p_reserve,
        p_subject, p_payload, p_traceparent
    ) AS a;
    UPDATE workout_plan_requests r
    SET regenerates_plan_id = p_plan_id, regenerates_week = p_week, week_request = p_payload::jsonb
    WHERE r.id = p_request_id;
END
$$;
