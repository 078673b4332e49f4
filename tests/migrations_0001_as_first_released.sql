-- The four tables of the original system, with our columns.
-- Status moves processing -> completed | failed (| cancelled); the persister alone changes it.

CREATE TABLE workout_plan_requests (
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
CREATE INDEX workout_plan_requests_user_created ON workout_plan_requests (user_id, created_at DESC);
CREATE UNIQUE INDEX workout_plan_requests_user_idempotency
    ON workout_plan_requests (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX workout_plan_requests_processing ON workout_plan_requests (updated_at)
    WHERE status = 'processing';

CREATE TABLE exercises (
    key         text PRIMARY KEY,
    name        text NOT NULL,
    profile     jsonb,
    profiled_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE workout_plans (
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
CREATE INDEX workout_plans_user ON workout_plans (user_id);

CREATE TABLE workout_entries (
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
CREATE INDEX workout_entries_exercise ON workout_entries (exercise_key);
