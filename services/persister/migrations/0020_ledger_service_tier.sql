-- The service tier that served each paid call (default, flex, priority): it sets the call's price,
-- and the cost report compares spend per tier.
ALTER TABLE llm_calls ADD COLUMN IF NOT EXISTS service_tier text NOT NULL DEFAULT 'default';
