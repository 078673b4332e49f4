-- The transactional outbox: an event is stored in the same transaction as the row it announces,
-- and deleted once JetStream acknowledged it. The relay publishes whatever is left.
CREATE TABLE outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject    text NOT NULL,
    payload    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts   integer NOT NULL DEFAULT 0,
    last_error text
);
CREATE INDEX outbox_created ON outbox (created_at);

-- How often the sweeper re-drove a request that made no progress.
ALTER TABLE workout_plan_requests ADD COLUMN redrives integer NOT NULL DEFAULT 0;
