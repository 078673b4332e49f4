-- One schema for the four shared tables, whichever way a database got here: made by our own
-- migrations, or the original app's database with ours applied over it (0001 added our columns to
-- its tables). The original app reads its own columns (Supabase GraphQL, then Realtime) and keeps
-- working unchanged; our services keep theirs. docs/supabase.md has the column map.
--
-- Where the two sides name one thing differently, both columns exist and a trigger keeps them
-- equal in the same statement, so each side reads and writes its own names: requests.plan_id =
-- workout_plan_id, error = error_message, and request_id = id for our rows (a row of the original
-- keeps its own two); entries.plan_id = workout_plan_id, week = week_number, day_of_week = day.
-- Our columns are nullable or defaulted on the tables the original app may still write itself
-- (plans, entries, exercises), so its own inserts keep working and get ours filled.


DO $$
BEGIN
    IF to_regtype('workout_plan_status') IS NULL THEN
        CREATE TYPE workout_plan_status AS ENUM ('active', 'completed', 'paused');
    END IF;
    IF to_regtype('weekday') IS NULL THEN
        CREATE TYPE weekday AS ENUM ('monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday');
    END IF;

    -- Our names for the columns whose names the original uses for something else.
    IF (SELECT atttypid FROM pg_attribute
        WHERE attrelid = 'workout_plans'::regclass AND attname = 'status' AND NOT attisdropped) = 'text'::regtype THEN
        ALTER TABLE workout_plans RENAME COLUMN status TO assembly;
        ALTER TABLE workout_plans RENAME CONSTRAINT workout_plans_status_check TO workout_plans_assembly_check;
    END IF;
    IF (SELECT atttypid FROM pg_attribute
        WHERE attrelid = 'workout_entries'::regclass AND attname = 'day' AND NOT attisdropped) = 'smallint'::regtype THEN
        ALTER TABLE workout_entries RENAME COLUMN day TO day_of_week;
        ALTER TABLE workout_entries RENAME CONSTRAINT workout_entries_day_check TO workout_entries_day_of_week_check;
    END IF;

    -- The original keys entries by uuid and exercises by a uuid `id` (the app follows
    -- workout_entries.exercise_id to it); our `key` stays unique, for our joins and upserts.
    IF (SELECT atttypid FROM pg_attribute
        WHERE attrelid = 'workout_entries'::regclass AND attname = 'id' AND NOT attisdropped) = 'bigint'::regtype THEN
        ALTER TABLE workout_entries ALTER COLUMN id DROP IDENTITY;
        ALTER TABLE workout_entries DROP CONSTRAINT workout_entries_pkey;
        ALTER TABLE workout_entries ALTER COLUMN id TYPE uuid USING gen_random_uuid();
        ALTER TABLE workout_entries ADD CONSTRAINT workout_entries_pkey PRIMARY KEY (id);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'exercises'::regclass AND attname = 'id') THEN
        ALTER TABLE exercises ADD COLUMN id uuid NOT NULL DEFAULT gen_random_uuid();
        ALTER TABLE workout_entries DROP CONSTRAINT workout_entries_exercise_key_fkey;
        ALTER TABLE exercises DROP CONSTRAINT exercises_pkey;
        ALTER TABLE exercises ADD CONSTRAINT exercises_pkey PRIMARY KEY (id);
        ALTER TABLE exercises ADD CONSTRAINT exercises_key_key UNIQUE (key);
        ALTER TABLE workout_entries ADD CONSTRAINT workout_entries_exercise_key_fkey
            FOREIGN KEY (exercise_key) REFERENCES exercises (key);
    END IF;
END
$$;

-- workout_plan_requests: the columns the app selects (id request_id status workout_plan_id
-- error_message created_at completed_at) and its progress columns, with the original's defaults.
ALTER TABLE workout_plan_requests
    ADD COLUMN IF NOT EXISTS request_id uuid,
    ADD COLUMN IF NOT EXISTS workout_plan_id uuid,
    ADD COLUMN IF NOT EXISTS error_message text,
    ADD COLUMN IF NOT EXISTS current_step integer DEFAULT 1,
    ADD COLUMN IF NOT EXISTS total_steps integer DEFAULT 3,
    ADD COLUMN IF NOT EXISTS step_description text DEFAULT 'Generating workout plan...',
    ADD COLUMN IF NOT EXISTS exercises_total integer DEFAULT 0,
    ADD COLUMN IF NOT EXISTS exercises_completed integer DEFAULT 0;
UPDATE workout_plan_requests
SET request_id = coalesce(request_id, id),
    workout_plan_id = coalesce(workout_plan_id, plan_id),
    plan_id = coalesce(plan_id, workout_plan_id),
    error_message = coalesce(error_message, error),
    error = coalesce(error, error_message),
    created_at = coalesce(created_at, completed_at, updated_at)
WHERE request_id IS NULL OR workout_plan_id IS DISTINCT FROM plan_id OR error_message IS DISTINCT FROM error
    OR created_at IS NULL;
ALTER TABLE workout_plan_requests
    ALTER COLUMN id SET DEFAULT gen_random_uuid(),
    ALTER COLUMN request_id SET NOT NULL,
    ALTER COLUMN created_at SET NOT NULL,
    ALTER COLUMN created_at SET DEFAULT clock_timestamp(),
    DROP CONSTRAINT IF EXISTS workout_plan_requests_status_check,
    ADD CONSTRAINT workout_plan_requests_status_check
        CHECK (status IN ('processing', 'completed', 'failed', 'cancelled')),
    DROP CONSTRAINT IF EXISTS workout_plan_requests_check,
    DROP CONSTRAINT IF EXISTS workout_plan_requests_same_as_original,
    ADD CONSTRAINT workout_plan_requests_same_as_original
        CHECK (workout_plan_id IS NOT DISTINCT FROM plan_id AND error_message IS NOT DISTINCT FROM error);

-- Completed exactly when it names its plan. NOT VALID first: a row of the original that breaks
-- it (completed without a plan) must not stop the migration; every later write is checked.
ALTER TABLE workout_plan_requests
    DROP CONSTRAINT IF EXISTS workout_plan_requests_completed_with_plan,
    ADD CONSTRAINT workout_plan_requests_completed_with_plan
        CHECK ((status = 'completed') = (plan_id IS NOT NULL)) NOT VALID;
DO $$
BEGIN
    ALTER TABLE workout_plan_requests VALIDATE CONSTRAINT workout_plan_requests_completed_with_plan;
EXCEPTION WHEN check_violation THEN
    RAISE WARNING 'rows of the original app break workout_plan_requests_completed_with_plan; kept, not validated';
END
$$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'workout_plan_requests_request_id_key'
        AND conrelid = 'workout_plan_requests'::regclass) THEN
        ALTER TABLE workout_plan_requests ADD CONSTRAINT workout_plan_requests_request_id_key UNIQUE (request_id);
    END IF;
    -- Checked at commit: a plan and the request naming it may be written in either order.
    ALTER TABLE workout_plan_requests DROP CONSTRAINT IF EXISTS workout_plan_requests_workout_plan_id_fkey;
    ALTER TABLE workout_plan_requests ADD CONSTRAINT workout_plan_requests_workout_plan_id_fkey
        FOREIGN KEY (workout_plan_id) REFERENCES workout_plans (id) DEFERRABLE INITIALLY DEFERRED;
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'valid_step_range'
        AND conrelid = 'workout_plan_requests'::regclass) THEN
        ALTER TABLE workout_plan_requests ADD CONSTRAINT valid_step_range
            CHECK (current_step >= 1 AND current_step <= total_steps);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'valid_exercise_progress'
        AND conrelid = 'workout_plan_requests'::regclass) THEN
        ALTER TABLE workout_plan_requests ADD CONSTRAINT valid_exercise_progress
            CHECK (exercises_completed >= 0 AND exercises_completed <= exercises_total);
    END IF;
END
$$;

-- workout_plans: what the app reads (id summary start_date status created_at), status being the
-- user's own (active, completed, paused); ours is `assembly`. A plan the app writes itself is
-- complete as far as we are concerned.
ALTER TABLE workout_plans
    ADD COLUMN IF NOT EXISTS start_date date,
    ADD COLUMN IF NOT EXISTS status workout_plan_status DEFAULT 'active',
    ADD COLUMN IF NOT EXISTS updated_at timestamptz DEFAULT now();
UPDATE workout_plans SET start_date = coalesce(created_at, clock_timestamp())::date WHERE start_date IS NULL;
UPDATE workout_plans SET created_at = clock_timestamp() WHERE created_at IS NULL;
ALTER TABLE workout_plans
    ALTER COLUMN id SET DEFAULT gen_random_uuid(),
    ALTER COLUMN start_date SET NOT NULL,
    ALTER COLUMN start_date SET DEFAULT current_date,
    ALTER COLUMN created_at SET NOT NULL,
    ALTER COLUMN created_at SET DEFAULT clock_timestamp(),
    ALTER COLUMN request_id DROP NOT NULL,
    ALTER COLUMN assembly SET DEFAULT 'complete',
    ALTER COLUMN title SET DEFAULT '',
    ALTER COLUMN model SET DEFAULT '';

-- exercises: the original's catalogue columns. Text the app shows and we have no source for is ''.
ALTER TABLE exercises
    ADD COLUMN IF NOT EXISTS slug text,
    ADD COLUMN IF NOT EXISTS icon_description text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS instructions text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS video_description text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS equipment_text text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS equipment_groups jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN IF NOT EXISTS exercise_location text[] NOT NULL DEFAULT '{}',
    ADD COLUMN IF NOT EXISTS rep_limitations_progression_rules text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS progression_by_client_feedback text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS pain_injury_protocol text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS special_rules_by_location text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS trainer_notes text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS muscle_categories text[],
    ADD COLUMN IF NOT EXISTS required_equipment text,
    ADD COLUMN IF NOT EXISTS updated_at timestamptz DEFAULT now();
UPDATE exercises SET slug = key WHERE slug IS NULL;
UPDATE exercises SET created_at = clock_timestamp() WHERE created_at IS NULL;
ALTER TABLE exercises
    ALTER COLUMN id SET DEFAULT gen_random_uuid(),
    ALTER COLUMN key DROP NOT NULL,
    ALTER COLUMN slug SET NOT NULL,
    ALTER COLUMN created_at SET NOT NULL,
    ALTER COLUMN created_at SET DEFAULT clock_timestamp();
ALTER TABLE exercises
    ALTER COLUMN icon_description SET DEFAULT '',
    ALTER COLUMN instructions SET DEFAULT '',
    ALTER COLUMN video_description SET DEFAULT '',
    ALTER COLUMN equipment_text SET DEFAULT '',
    ALTER COLUMN equipment_groups SET DEFAULT '[]',
    ALTER COLUMN rep_limitations_progression_rules SET DEFAULT '',
    ALTER COLUMN progression_by_client_feedback SET DEFAULT '',
    ALTER COLUMN pain_injury_protocol SET DEFAULT '',
    ALTER COLUMN special_rules_by_location SET DEFAULT '',
    ALTER COLUMN trainer_notes SET DEFAULT '';
DO $$
BEGIN
    -- Our catalogue is keyed by the normalised key (`slug`, unique); a name is a label, and two
    -- keys may carry one (a renamed alias), so the original's UNIQUE (name) goes. A new exercise
    -- of ours still takes over the original's row of the same name (0009).
    ALTER TABLE exercises DROP CONSTRAINT IF EXISTS exercises_name_key;
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'exercises_slug_key'
        AND conrelid = 'exercises'::regclass) THEN
        ALTER TABLE exercises ADD CONSTRAINT exercises_slug_key UNIQUE (slug);
    END IF;
END
$$;

-- workout_entries: what the app reads (week_number day_name day date sets reps weight time
-- equipment notes, the exercise through exercise_id). A streak exercise is the original app's own
-- idea; our plans have none, so streak_exercise_id may be NULL.
ALTER TABLE workout_entries
    ADD COLUMN IF NOT EXISTS workout_plan_id uuid,
    ADD COLUMN IF NOT EXISTS week_number integer,
    ADD COLUMN IF NOT EXISTS day_name text,
    ADD COLUMN IF NOT EXISTS day weekday,
    ADD COLUMN IF NOT EXISTS date date,
    ADD COLUMN IF NOT EXISTS exercise_id uuid,
    ADD COLUMN IF NOT EXISTS weight text,
    ADD COLUMN IF NOT EXISTS time text,
    ADD COLUMN IF NOT EXISTS equipment text,
    ADD COLUMN IF NOT EXISTS streak_exercise_id uuid,
    ADD COLUMN IF NOT EXISTS streak_exercise_notes text,
    ADD COLUMN IF NOT EXISTS is_adjusted boolean DEFAULT false,
    ADD COLUMN IF NOT EXISTS adjustment_reason text,
    ADD COLUMN IF NOT EXISTS preset_id uuid,
    ADD COLUMN IF NOT EXISTS updated_at timestamptz DEFAULT now();
UPDATE workout_entries e
SET workout_plan_id = e.plan_id,
    week_number = e.week,
    day = (ARRAY['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'])[e.day_of_week]::weekday,
    day_name = e.day_focus,
    date = p.start_date + (e.week - 1) * 7 + (e.day_of_week - extract(isodow FROM p.start_date)::int + 7) % 7,
    exercise_id = x.id
FROM workout_plans p, exercises x
WHERE e.workout_plan_id IS NULL AND p.id = e.plan_id AND x.key = e.exercise_key;
UPDATE workout_entries SET created_at = clock_timestamp() WHERE created_at IS NULL;
ALTER TABLE workout_entries
    ALTER COLUMN id SET DEFAULT gen_random_uuid(),
    ALTER COLUMN created_at SET NOT NULL,
    ALTER COLUMN created_at SET DEFAULT clock_timestamp(),
    ALTER COLUMN workout_plan_id SET NOT NULL,
    ALTER COLUMN week_number SET NOT NULL,
    ALTER COLUMN day_name SET NOT NULL,
    ALTER COLUMN day SET NOT NULL,
    ALTER COLUMN date SET NOT NULL,
    ALTER COLUMN exercise_id SET NOT NULL,
    ALTER COLUMN streak_exercise_id DROP NOT NULL,
    ALTER COLUMN plan_id SET NOT NULL,
    ALTER COLUMN week SET NOT NULL,
    ALTER COLUMN day_of_week SET NOT NULL,
    ALTER COLUMN day_focus SET NOT NULL,
    ALTER COLUMN exercise_name SET NOT NULL,
    ALTER COLUMN position DROP NOT NULL,
    ALTER COLUMN position TYPE integer,
    ALTER COLUMN week_theme DROP NOT NULL,
    ALTER COLUMN exercise_key DROP NOT NULL,
    ALTER COLUMN rest_seconds DROP NOT NULL,
    ALTER COLUMN notes DROP NOT NULL,
    ALTER COLUMN notes SET DEFAULT '',
    ALTER COLUMN sets TYPE integer,
    DROP CONSTRAINT IF EXISTS workout_entries_position_check,
    ADD CONSTRAINT workout_entries_position_check CHECK (position >= 1),
    DROP CONSTRAINT IF EXISTS workout_entries_sets_check,
    ADD CONSTRAINT workout_entries_sets_check CHECK (sets > 0),
    DROP CONSTRAINT IF EXISTS workout_entries_week_number_check,
    ADD CONSTRAINT workout_entries_week_number_check CHECK (week_number >= 1 AND week_number <= 8),
    -- One foreign key to the plan, deleting with it (our cancel and failure paths drop an
    -- unfinished plan); two would fire in catalogue order, and a NO ACTION one first would refuse.
    DROP CONSTRAINT IF EXISTS workout_entries_plan_id_fkey,
    DROP CONSTRAINT IF EXISTS workout_entries_workout_plan_id_fkey,
    ADD CONSTRAINT workout_entries_workout_plan_id_fkey
        FOREIGN KEY (workout_plan_id) REFERENCES workout_plans (id) ON DELETE CASCADE;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'workout_entries_exercise_id_fkey'
        AND conrelid = 'workout_entries'::regclass) THEN
        ALTER TABLE workout_entries ADD CONSTRAINT workout_entries_exercise_id_fkey
            FOREIGN KEY (exercise_id) REFERENCES exercises (id);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'workout_entries_streak_exercise_id_fkey'
        AND conrelid = 'workout_entries'::regclass) THEN
        ALTER TABLE workout_entries ADD CONSTRAINT workout_entries_streak_exercise_id_fkey
            FOREIGN KEY (streak_exercise_id) REFERENCES exercises (id);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'workout_entries_plan_id_week_day_position_key'
        AND conrelid = 'workout_entries'::regclass) THEN
        ALTER TABLE workout_entries ADD CONSTRAINT workout_entries_plan_id_week_day_position_key
            UNIQUE (plan_id, week, day_of_week, position);
    END IF;
    -- On Supabase the original's users are auth.users; its rows go when the user goes.
    IF to_regclass('auth.users') IS NOT NULL THEN
        IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'workout_plan_requests_user_id_fkey'
        AND conrelid = 'workout_plan_requests'::regclass) THEN
            ALTER TABLE workout_plan_requests ADD CONSTRAINT workout_plan_requests_user_id_fkey
                FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE;
        END IF;
        IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'workout_plans_user_id_fkey'
        AND conrelid = 'workout_plans'::regclass) THEN
            ALTER TABLE workout_plans ADD CONSTRAINT workout_plans_user_id_fkey
                FOREIGN KEY (user_id) REFERENCES auth.users (id);
        END IF;
    END IF;
END
$$;
