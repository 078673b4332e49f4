-- The skeleton shown to the user before the weeks are written (a waitpoint), per request.
--
-- A request accepted with review_seconds > 0 stops after its skeleton: the planner publishes
-- plan.awaiting.review and the persister sets stage 'waiting', review_until and review_outline
-- (the skeleton's outline as JSON). The user confirms it, adjusts it in words (review_round counts
-- the adjustments, review_adjustments keeps them in order: the skeleton is written again with all
-- of them and shown again), or lets it continue on its own once review_until passes (the sweeper);
-- review_action is the last decision, so a re-drive carries it. A cancel while waiting costs only
-- the skeleton. The sweeper treats a wait as a wait: no re-drive before review_until, and the
-- deadline is extended by review_seconds for each round shown.
--
-- accept_plan_request (0012) again, with one change: review_seconds comes from the accepted event
-- (its payload), so a request re-driven from its row still stops at its skeleton.

ALTER TABLE workout_plan_requests
    ADD COLUMN IF NOT EXISTS review_seconds integer NOT NULL DEFAULT 0 CHECK (review_seconds >= 0),
    ADD COLUMN IF NOT EXISTS review_round integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS review_action text CHECK (review_action IN ('confirm', 'adjust', 'timeout')),
    ADD COLUMN IF NOT EXISTS review_adjustments text[] NOT NULL DEFAULT '{}',
    ADD COLUMN IF NOT EXISTS review_until timestamptz,
    ADD COLUMN IF NOT EXISTS review_outline jsonb;

-- The sweeper's look for waits that ran out.
CREATE INDEX IF NOT EXISTS workout_plan_requests_waiting
    ON workout_plan_requests (review_until) WHERE status = 'processing' AND stage = 'waiting';

CREATE OR REPLACE FUNCTION accept_plan_request(
    p_request_id uuid,
    p_user_id uuid,
    p_user_profile text,
    p_system_prompt text,
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
    prior record;
    v_spent float8;
    v_active bigint;
    v_wait float8;
    v_outbox bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_user_id::text, 7340022));

    IF p_idempotency_key IS NOT NULL THEN
        SELECT r.id, r.status, r.user_profile, r.system_prompt INTO prior
        FROM workout_plan_requests r
        WHERE r.user_id = p_user_id AND r.idempotency_key = p_idempotency_key;
        IF FOUND THEN
            RETURN QUERY SELECT 'existing', prior.id, prior.status, prior.user_profile, prior.system_prompt,
                NULL::float8, NULL::bigint, NULL::float8, NULL::bigint;
            RETURN;
        END IF;
    END IF;

    -- What the last 24 hours cost, each processing request counted at least at the reserve, so a
    -- burst reserves budget before any of its requests has spent anything.
    IF p_user_budget IS NOT NULL THEN
        SELECT coalesce(sum(CASE WHEN r.status = 'processing' THEN greatest(r.cost_usd, p_reserve)
                                 ELSE r.cost_usd END), 0)::float8 INTO v_spent
        FROM workout_plan_requests r
        WHERE r.user_id = p_user_id AND r.created_at > clock_timestamp() - interval '1 day';
        IF v_spent + p_reserve > p_user_budget THEN
            RETURN QUERY SELECT 'user_budget', NULL::uuid, NULL::text, NULL::text, NULL::text,
                v_spent, NULL::bigint, NULL::float8, NULL::bigint;
            RETURN;
        END IF;
    END IF;
    IF p_global_budget IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(7340023);
        SELECT coalesce(sum(CASE WHEN r.status = 'processing' THEN greatest(r.cost_usd, p_reserve)
                                 ELSE r.cost_usd END), 0)::float8 INTO v_spent
        FROM workout_plan_requests r
        WHERE r.created_at > clock_timestamp() - interval '1 day';
        IF v_spent + p_reserve > p_global_budget THEN
            RETURN QUERY SELECT 'global_budget', NULL::uuid, NULL::text, NULL::text, NULL::text,
                v_spent, NULL::bigint, NULL::float8, NULL::bigint;
            RETURN;
        END IF;
    END IF;

    SELECT count(*) INTO v_active
    FROM workout_plan_requests r WHERE r.user_id = p_user_id AND r.status = 'processing';
    IF v_active >= p_max_active THEN
        RETURN QUERY SELECT 'active_cap', NULL::uuid, NULL::text, NULL::text, NULL::text,
            NULL::float8, v_active, NULL::float8, NULL::bigint;
        RETURN;
    END IF;

    SELECT extract(epoch FROM r.created_at + interval '1 day' - clock_timestamp())::float8 INTO v_wait
    FROM workout_plan_requests r
    WHERE r.user_id = p_user_id AND r.created_at > clock_timestamp() - interval '1 day'
    ORDER BY r.created_at DESC
    OFFSET p_max_per_day - 1 LIMIT 1;
    IF FOUND THEN
        RETURN QUERY SELECT 'daily_quota', NULL::uuid, NULL::text, NULL::text, NULL::text,
            NULL::float8, v_active, v_wait, NULL::bigint;
        RETURN;
    END IF;

    INSERT INTO workout_plan_requests
        (id, user_id, status, stage, user_profile, system_prompt, idempotency_key, review_seconds)
    VALUES (p_request_id, p_user_id, 'processing', 'queued', p_user_profile, p_system_prompt, p_idempotency_key,
            coalesce((p_payload::jsonb ->> 'review_seconds')::integer, 0));
    INSERT INTO outbox (subject, payload, traceparent) VALUES (p_subject, p_payload, p_traceparent)
    RETURNING id INTO v_outbox;
    RETURN QUERY SELECT 'accepted', p_request_id, 'processing'::text, NULL::text, NULL::text,
        NULL::float8, v_active, NULL::float8, v_outbox;
END
$$;
