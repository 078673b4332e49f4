-- Budgets compared at a millionth of a dollar, not in binary floating point.
--
-- Costs and reserves are float8, and a sum of them carries binary rounding: fifty reserves of
-- $0.02 add up to 1.0000000000000004, so a $1.00 daily budget at a $0.02 estimate admitted 49
-- plans, not 50 (three of $0.10 against $0.30: two). Both budget checks now compare the sum and
-- the budget rounded to micro-dollars (six decimals), far below any price and far above the
-- rounding of any realistic number of terms. services/gateway/repository.py's ``over_budget``
-- is the same rule for the in-memory fake.
--
-- accept_plan_request is 0022's with that change alone.

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
    v_computed_at timestamptz;
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
        IF round((v_spent + p_reserve)::numeric, 6) > round(p_user_budget::numeric, 6) THEN
            RETURN QUERY SELECT 'user_budget', NULL::uuid, NULL::text, NULL::text, NULL::text,
                v_spent, NULL::bigint, NULL::float8, NULL::bigint;
            RETURN;
        END IF;
    END IF;
    IF p_global_budget IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(7340023);
        SELECT s.spent + s.reserved_since, s.computed_at INTO v_spent, v_computed_at FROM global_spend s;
        IF v_computed_at IS NULL OR v_computed_at < clock_timestamp() - interval '5 seconds' THEN
            SELECT coalesce(sum(CASE WHEN r.status = 'processing' THEN greatest(r.cost_usd, p_reserve)
                                     ELSE r.cost_usd END), 0)::float8 INTO v_spent
            FROM workout_plan_requests r
            WHERE r.created_at > clock_timestamp() - interval '1 day';
            INSERT INTO global_spend (spent, reserved_since, computed_at) VALUES (v_spent, 0, clock_timestamp())
            ON CONFLICT (one) DO UPDATE
                SET spent = excluded.spent, reserved_since = 0, computed_at = excluded.computed_at;
        END IF;
        IF round((v_spent + p_reserve)::numeric, 6) > round(p_global_budget::numeric, 6) THEN
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
    IF p_global_budget IS NOT NULL THEN
        -- Counted as the full sum would count it until the next one: a processing request at its reserve.
        UPDATE global_spend SET reserved_since = reserved_since + p_reserve;
    END IF;
    RETURN QUERY SELECT 'accepted', p_request_id, 'processing'::text, NULL::text, NULL::text,
        NULL::float8, v_active, NULL::float8, v_outbox;
END
$$;

