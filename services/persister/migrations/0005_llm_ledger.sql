-- The cost ledger: one row per paid LLM call, whatever became of its reply. Rows arrive as
-- llm.call.recorded events; call_id makes a redelivered event a no-op.
CREATE TABLE llm_calls (
    call_id           uuid PRIMARY KEY,
    request_id        uuid NOT NULL,
    stage             text NOT NULL,
    model             text NOT NULL,
    outcome           text NOT NULL,
    prompt_tokens     integer NOT NULL DEFAULT 0,
    completion_tokens integer NOT NULL DEFAULT 0,
    cached_tokens     integer NOT NULL DEFAULT 0,
    seconds           double precision NOT NULL DEFAULT 0,
    cost_usd          numeric(14, 8) NOT NULL DEFAULT 0,
    called_at         timestamptz NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX llm_calls_called_at ON llm_calls (called_at);
CREATE INDEX llm_calls_request ON llm_calls (request_id);

-- What every paid call made for the request cost (the ledger's total; the token columns above
-- count the calls behind the plan and profiles it got).
ALTER TABLE workout_plan_requests ADD COLUMN cost_usd numeric(14, 8) NOT NULL DEFAULT 0;
