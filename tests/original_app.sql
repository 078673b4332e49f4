-- The original app's four tables as its Supabase project has them, before any migration of ours
-- (run after tests/supabase_like.sql). Columns, types, defaults, constraints and the request
-- table's policies as the original repository (TheLukaDragar/buddy) defines them: its
-- workout_plan_requests.sql and workout_plan_requests_progress.sql, and its schema dump
-- (scheam.sql) for workout_plans, workout_entries and exercises. Defaults use gen_random_uuid()
-- where it used uuid_generate_v4() (the uuid-ossp extension is not in the test server).

CREATE TYPE workout_plan_status AS ENUM ('active', 'completed', 'paused');
CREATE TYPE weekday AS ENUM ('monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday');

CREATE TABLE exercises (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL UNIQUE,
    slug text NOT NULL UNIQUE,
    icon_description text NOT NULL,
    instructions text NOT NULL,
    video_description text NOT NULL,
    equipment_text text NOT NULL,
    equipment_groups jsonb NOT NULL,
    exercise_location text[] NOT NULL DEFAULT '{}',
    rep_limitations_progression_rules text NOT NULL,
    progression_by_client_feedback text NOT NULL,
    pain_injury_protocol text NOT NULL,
    special_rules_by_location text NOT NULL,
    trainer_notes text NOT NULL,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now(),
    muscle_categories text[]
);

CREATE TABLE workout_plans (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES auth.users (id),
    summary text NOT NULL,
    start_date date NOT NULL,
    status workout_plan_status DEFAULT 'active',
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now()
);

CREATE TABLE workout_entries (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workout_plan_id uuid NOT NULL REFERENCES workout_plans (id),
    week_number integer NOT NULL CHECK (week_number >= 1 AND week_number <= 8),
    day_name text NOT NULL,
    day weekday NOT NULL,
    date date NOT NULL,
    exercise_id uuid NOT NULL REFERENCES exercises (id),
    sets integer NOT NULL CHECK (sets > 0),
    reps text NOT NULL,
    weight text,
    time text,
    notes text,
    streak_exercise_id uuid NOT NULL REFERENCES exercises (id),
    streak_exercise_notes text,
    is_adjusted boolean DEFAULT false,
    adjustment_reason text,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now(),
    preset_id uuid
);

CREATE TABLE workout_plan_requests (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    request_id uuid UNIQUE NOT NULL,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    status text NOT NULL DEFAULT 'processing' CHECK (status IN ('processing', 'completed', 'failed')),
    workout_plan_id uuid REFERENCES workout_plans (id),
    user_profile text NOT NULL,
    error_message text,
    created_at timestamptz DEFAULT now(),
    completed_at timestamptz,
    current_step integer DEFAULT 1,
    total_steps integer DEFAULT 3,
    step_description text DEFAULT 'Generating workout plan...',
    exercises_total integer DEFAULT 0,
    exercises_completed integer DEFAULT 0,
    CONSTRAINT valid_step_range CHECK (current_step >= 1 AND current_step <= total_steps),
    CONSTRAINT valid_exercise_progress CHECK (exercises_completed >= 0 AND exercises_completed <= exercises_total)
);
CREATE INDEX idx_workout_plan_requests_user_id ON workout_plan_requests (user_id);
CREATE INDEX idx_workout_plan_requests_status ON workout_plan_requests (status);
CREATE INDEX idx_workout_plan_requests_request_id ON workout_plan_requests (request_id);

ALTER TABLE workout_plan_requests ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can view own requests" ON workout_plan_requests FOR SELECT USING (auth.uid() = user_id);
CREATE POLICY "Users can create own requests" ON workout_plan_requests FOR INSERT WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Service role can update requests" ON workout_plan_requests FOR UPDATE USING (true);

-- Plans, entries and exercises: the dump shows no policies, so RLS stays off on them here.

ALTER PUBLICATION supabase_realtime ADD TABLE workout_plan_requests;
