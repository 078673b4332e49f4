-- Who reads the shared tables through Supabase's APIs (PostgREST, pg_graphql, Realtime), now that
-- they carry the original's columns too. Replaces 0003's policies; like 0003 it acts only where
-- an `auth` schema exists (Supabase), and it is safe to run again.
--
-- - A signed-in user (`authenticated`) reads their own requests, and their own plans once we
--   finished assembling them, with those plans' entries and exercises; the original's rows too,
--   through the original's columns (workout_plan_id, exercise_id), which every row has.
-- - Nobody writes a request through the API. The original let a user insert their own requests
--   and anyone update any (its policy "Service role can update requests" is USING (true) for
--   every role); today a 'processing' row is work: the sweeper would re-drive a forged one and pay
--   for its LLM calls. Its three policies on this table go, and the API roles lose write access.
-- - Plans, entries and exercises keep whatever else the original granted (its own policies and
--   Supabase's default privileges): the original app may still write them for its other features.
-- - Realtime: the table is in `supabase_realtime` (0003) with REPLICA IDENTITY FULL, so an UPDATE
--   carries the whole old row as well as the new one: user_id (what the app filters on) is on both
--   sides, and Realtime can check the old row against the policy too.

CREATE INDEX IF NOT EXISTS workout_entries_workout_plan ON workout_entries (workout_plan_id);
CREATE INDEX IF NOT EXISTS workout_entries_exercise_id ON workout_entries (exercise_id);

DO $$
DECLARE
    api_role text;
BEGIN
    IF to_regnamespace('auth') IS NULL THEN
        RETURN;
    END IF;
    IF to_regprocedure('auth.uid()') IS NULL THEN
        RAISE EXCEPTION 'schema auth exists but auth.uid() does not: not a Supabase database?'
            USING HINT = 'Create auth.uid() as Supabase defines it, or drop the auth schema.';
    END IF;

    DROP POLICY IF EXISTS "Users can view own requests" ON workout_plan_requests;
    DROP POLICY IF EXISTS "Users can create own requests" ON workout_plan_requests;
    DROP POLICY IF EXISTS "Service role can update requests" ON workout_plan_requests;
    FOREACH api_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF to_regrole(api_role) IS NOT NULL THEN
            EXECUTE format(
                'REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON workout_plan_requests FROM %I',
                api_role);
        END IF;
    END LOOP;

    IF to_regrole('authenticated') IS NOT NULL THEN
        DROP POLICY IF EXISTS read_own_rows ON workout_plan_requests;
        DROP POLICY IF EXISTS read_own_rows ON workout_plans;
        DROP POLICY IF EXISTS read_own_rows ON workout_entries;
        DROP POLICY IF EXISTS read_own_rows ON exercises;
        -- (SELECT auth.uid()): evaluated once per statement, not once per row.
        CREATE POLICY read_own_rows ON workout_plan_requests
            FOR SELECT TO authenticated
            USING (user_id = (SELECT auth.uid()));
        CREATE POLICY read_own_rows ON workout_plans
            FOR SELECT TO authenticated
            USING (user_id = (SELECT auth.uid()) AND assembly = 'complete');
        CREATE POLICY read_own_rows ON workout_entries
            FOR SELECT TO authenticated
            USING (EXISTS (
                SELECT 1 FROM workout_plans p
                WHERE p.id = workout_entries.workout_plan_id
                    AND p.user_id = (SELECT auth.uid()) AND p.assembly = 'complete'
            ));
        CREATE POLICY read_own_rows ON exercises
            FOR SELECT TO authenticated
            USING (EXISTS (
                SELECT 1 FROM workout_entries e JOIN workout_plans p ON p.id = e.workout_plan_id
                WHERE (e.exercise_id = exercises.id OR e.streak_exercise_id = exercises.id)
                    AND p.user_id = (SELECT auth.uid())
            ));
    END IF;

    IF EXISTS (SELECT FROM pg_publication WHERE pubname = 'supabase_realtime') THEN
        ALTER TABLE workout_plan_requests REPLICA IDENTITY FULL;
    END IF;
END
$$;
