-- The four tables of the original system, with our columns.
-- Status moves processing -> completed | failed (| cancelled); the persister alone changes it.
--
-- On the original app's own database the four tables already exist, with its columns and rows:
-- CREATE TABLE IF NOT EXISTS leaves them alone and the DO block below adds our columns to them
-- (nullable, or with a default, so the original's rows and writers keep working). On an empty
-- database this file creates exactly what it always created. 0008 brings both to one schema.

CREATE TABLE IF NOT EXISTS workout_plan_requests (
    id              uuid PRIMARY KEY,
    user_id         uuid NOT NULL,
    status          text NOT NULL DEFAULT 'processing'
                    CHECK (status IN ('processing', 'completed', 'failed', 'cancelled')),
    stage           text NOT NULL DEFAULT 'queued',
    error           text,
    user_profile    text NOT NULL,
    system_prompt   text,
    idempotency_key text,
    plan_id         uuid,
    prompt_tokens     integer NOT NULL DEFAULT 0,
    completion_tokens integer NOT NULL DEFAULT 0,
    llm_calls         integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    completed_at    timestamptz,
    CHECK ((status = 'completed') = (plan_id IS NOT NULL))
);

CREATE TABLE IF NOT EXISTS exercises (
    key         text PRIMARY KEY,
    name        text NOT NULL,
    profile     jsonb,
    profiled_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE IF NOT EXISTS workout_plans (
    id           uuid PRIMARY KEY,
    request_id   uuid NOT NULL UNIQUE REFERENCES workout_plan_requests (id),
    user_id      uuid NOT NULL,
    status       text NOT NULL DEFAULT 'assembling' CHECK (status IN ('assembling', 'complete')),
    title        text NOT NULL,
    summary      text NOT NULL,
    model        text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    completed_at timestamptz
);

CREATE TABLE IF NOT EXISTS workout_entries (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plan_id       uuid NOT NULL REFERENCES workout_plans (id) ON DELETE CASCADE,
    week          smallint NOT NULL CHECK (week BETWEEN 1 AND 8),
    day           smallint NOT NULL CHECK (day BETWEEN 1 AND 7),
    position      smallint NOT NULL CHECK (position >= 1),
    week_theme    text NOT NULL,
    day_focus     text NOT NULL,
    exercise_key  text NOT NULL REFERENCES exercises (key),
    exercise_name text NOT NULL,
    sets          smallint NOT NULL,
    reps          text NOT NULL,
    rest_seconds  integer NOT NULL,
    notes         text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (plan_id, week, day, position)
);

-- The original app's tables (created before this file ran): add our columns. Collisions with its
-- own columns get other names here (ours: workout_plans.assembly, workout_entries.day_of_week;
-- theirs keep `status` and `day`); 0008 renames ours to match on databases made by this file alone.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'workout_plan_requests'::regclass AND attname = 'stage') THEN
        ALTER TABLE workout_plan_requests
            ADD COLUMN IF NOT EXISTS stage text NOT NULL DEFAULT 'queued',
            ADD COLUMN IF NOT EXISTS error text,
            ADD COLUMN IF NOT EXISTS system_prompt text,
            ADD COLUMN IF NOT EXISTS idempotency_key text,
            ADD COLUMN IF NOT EXISTS plan_id uuid,
            ADD COLUMN IF NOT EXISTS prompt_tokens integer NOT NULL DEFAULT 0,
            ADD COLUMN IF NOT EXISTS completion_tokens integer NOT NULL DEFAULT 0,
            ADD COLUMN IF NOT EXISTS llm_calls integer NOT NULL DEFAULT 0,
            ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT clock_timestamp();
        -- The original's rows, in our columns: their last change is when they ended (or began), so
        -- the sweeper fails a long-dead 'processing' one (timeout) instead of re-driving it.
        UPDATE workout_plan_requests
        SET stage = CASE status WHEN 'processing' THEN 'queued' ELSE status END,
            error = error_message,
            plan_id = workout_plan_id,
            updated_at = coalesce(completed_at, created_at, updated_at);
    END IF;

    IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'exercises'::regclass AND attname = 'key') THEN
        ALTER TABLE exercises
            ADD COLUMN IF NOT EXISTS key text UNIQUE,
            ADD COLUMN IF NOT EXISTS profile jsonb,
            ADD COLUMN IF NOT EXISTS profiled_at timestamptz;
    END IF;

    IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'workout_plans'::regclass AND attname = 'model') THEN
        ALTER TABLE workout_plans
            ADD COLUMN IF NOT EXISTS request_id uuid UNIQUE REFERENCES workout_plan_requests (id),
            ADD COLUMN IF NOT EXISTS assembly text NOT NULL DEFAULT 'complete'
                CHECK (assembly IN ('assembling', 'complete')),
            ADD COLUMN IF NOT EXISTS title text NOT NULL DEFAULT '',
            ADD COLUMN IF NOT EXISTS model text NOT NULL DEFAULT '',
            ADD COLUMN IF NOT EXISTS completed_at timestamptz;
        -- The original's plans keep request_id NULL: our /v1/plans serves only plans we assembled
        -- (the original app keeps reading its own through requests.workout_plan_id).
    END IF;

    IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'workout_entries'::regclass AND attname = 'exercise_key') THEN
        ALTER TABLE workout_entries
            ADD COLUMN IF NOT EXISTS plan_id uuid REFERENCES workout_plans (id) ON DELETE CASCADE,
            ADD COLUMN IF NOT EXISTS week smallint CHECK (week BETWEEN 1 AND 8),
            ADD COLUMN IF NOT EXISTS day_of_week smallint CHECK (day_of_week BETWEEN 1 AND 7),
            ADD COLUMN IF NOT EXISTS position integer CHECK (position >= 1),
            ADD COLUMN IF NOT EXISTS week_theme text,
            ADD COLUMN IF NOT EXISTS day_focus text,
            ADD COLUMN IF NOT EXISTS exercise_key text REFERENCES exercises (key),
            ADD COLUMN IF NOT EXISTS exercise_name text,
            ADD COLUMN IF NOT EXISTS rest_seconds integer,
            ADD COLUMN IF NOT EXISTS notes text DEFAULT '';
        UPDATE workout_entries e
        SET plan_id = e.workout_plan_id,
            week = e.week_number,
            day_of_week = array_position(
                ARRAY['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'], e.day::text),
            day_focus = e.day_name,
            exercise_name = x.name
        FROM exercises x
        WHERE x.id = e.exercise_id;
    END IF;
END
$$;

CREATE INDEX IF NOT EXISTS workout_plan_requests_user_created ON workout_plan_requests (user_id, created_at DESC);
CREATE UNIQUE INDEX IF NOT EXISTS workout_plan_requests_user_idempotency
    ON workout_plan_requests (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS workout_plan_requests_processing ON workout_plan_requests (updated_at)
    WHERE status = 'processing';
CREATE INDEX IF NOT EXISTS workout_plans_user ON workout_plans (user_id);
CREATE INDEX IF NOT EXISTS workout_entries_exercise ON workout_entries (exercise_key);
