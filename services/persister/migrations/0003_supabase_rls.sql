-- Supabase compatibility: on a Supabase database a signed-in user reads only their own rows through
-- Supabase's APIs, and the app can watch its request's status over Realtime. Elsewhere (plain
-- Postgres: the tests, `make run`) there is no `auth` schema and this migration does nothing.
--
-- The services connect as the tables' owner, and row-level security does not apply to the owner
-- unless forced, so it is enabled, never forced: the services keep reading and writing everything.
--
-- Policies are SELECT-only because the app never writes through Supabase. With RLS on, a command
-- without a policy is refused, even where Supabase's default privileges grant it to `authenticated`.
--
-- `exercises` is a shared catalogue without an owner. A user reads an exercise only when an entry
-- of one of their own plans uses it: what other users' plans contain stays private, and a user's
-- own plan is still complete with its exercises' profiles.
--
-- Plain SQL inside the guarded branches is safe on plain Postgres: PL/pgSQL resolves names
-- (`auth.uid()`, the role `authenticated`) only when a statement runs.
DO $$
DECLARE
    tables CONSTANT text[] := ARRAY['workout_plan_requests', 'workout_plans', 'workout_entries', 'exercises'];
    t text;
BEGIN
    IF to_regnamespace('auth') IS NULL THEN
        RETURN;
    END IF;
    -- An `auth` schema without auth.uid() is not Supabase's. Skipping would leave the tables open on
    -- what was meant to be a Supabase database, so refuse instead.
    IF to_regprocedure('auth.uid()') IS NULL THEN
        RAISE EXCEPTION 'schema auth exists but auth.uid() does not: not a Supabase database?'
            USING HINT = 'Create auth.uid() as Supabase defines it, or drop the auth schema.';
    END IF;

    FOREACH t IN ARRAY tables LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    END LOOP;

    -- Without Supabase's role no one gets a policy: every role but the owner is then refused.
    IF to_regrole('authenticated') IS NOT NULL THEN
        FOREACH t IN ARRAY tables LOOP
            EXECUTE format('GRANT SELECT ON %I TO authenticated', t);
            EXECUTE format('DROP POLICY IF EXISTS read_own_rows ON %I', t);
        END LOOP;

        -- (SELECT auth.uid()) rather than auth.uid(): evaluated once per statement, not once per row.
        -- The subqueries already see only the user's rows through the other tables' policies; each
        -- policy still tests the owner itself, so it stays right if another table's policy widens.
        CREATE POLICY read_own_rows ON workout_plan_requests
            FOR SELECT TO authenticated
            USING (user_id = (SELECT auth.uid()));
        CREATE POLICY read_own_rows ON workout_plans
            FOR SELECT TO authenticated
            USING (user_id = (SELECT auth.uid()));
        CREATE POLICY read_own_rows ON workout_entries
            FOR SELECT TO authenticated
            USING (EXISTS (
                SELECT 1 FROM workout_plans p
                WHERE p.id = workout_entries.plan_id AND p.user_id = (SELECT auth.uid())
            ));
        CREATE POLICY read_own_rows ON exercises
            FOR SELECT TO authenticated
            USING (EXISTS (
                SELECT 1 FROM workout_entries e JOIN workout_plans p ON p.id = e.plan_id
                WHERE e.exercise_key = exercises.key AND p.user_id = (SELECT auth.uid())
            ));
    END IF;

    -- Realtime sends a change only to subscribers the row's policies let read it. ADD TABLE fails on
    -- a table the publication already lists and on a FOR ALL TABLES publication, hence the check.
    IF EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'supabase_realtime')
        AND NOT EXISTS (
            SELECT 1 FROM pg_publication_tables
            WHERE pubname = 'supabase_realtime'
                AND to_regclass(format('%I.%I', schemaname, tablename)) = 'workout_plan_requests'::regclass
        )
    THEN
        ALTER PUBLICATION supabase_realtime ADD TABLE workout_plan_requests;
    END IF;
END
$$;
