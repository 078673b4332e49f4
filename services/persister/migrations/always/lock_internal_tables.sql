-- Run after every migration run (services/persister/migrations.py), so it also covers tables that
-- later migrations add. Our internal tables are for our services alone: on Supabase the API roles
-- (`anon`, `authenticated`) get ALL on every new table in `public` by Supabase's default
-- privileges, and a row forged into `outbox` would be published by the relay as a real event
-- (paid LLM work). So, for each of them:
--   - row-level security on, with no policy: every role but the owner (and BYPASSRLS roles such
--     as service_role) reads and writes nothing, even if someone grants it privileges later;
--   - and, where the API roles exist, every privilege revoked from them (tables and sequences).
-- Plain Postgres: the roles do not exist, and RLS does not apply to the owner our services use.
-- A new internal table belongs in this list: tests/integration/test_supabase_internal_tables.py
-- fails for a table of ours that is in neither this list nor the four shared ones.
DO $$
DECLARE
    internal CONSTANT text[] := ARRAY['outbox', 'llm_calls', 'schema_migrations', 'workout_week_versions', 'global_spend'];
    api_roles CONSTANT text[] := ARRAY['anon', 'authenticated'];
    t text;
    r text;
    s text;
    f regprocedure;
BEGIN
    FOREACH t IN ARRAY internal LOOP
        CONTINUE WHEN to_regclass(t) IS NULL;
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        FOREACH r IN ARRAY api_roles LOOP
            CONTINUE WHEN to_regrole(r) IS NULL;
            EXECUTE format('REVOKE ALL ON TABLE %I FROM %I', t, r);
            FOR s IN SELECT pg_get_serial_sequence(format('%I', t), a.attname)
                     FROM pg_attribute a
                     WHERE a.attrelid = t::regclass AND a.attnum > 0 AND NOT a.attisdropped
                         AND pg_get_serial_sequence(format('%I', t), a.attname) IS NOT NULL
            LOOP
                EXECUTE format('REVOKE ALL ON SEQUENCE %s FROM %I', s, r);
            END LOOP;
        END LOOP;
    END LOOP;
    -- Our trigger functions: nothing but the triggers calls them; and the gateway's accept step
    -- (0012, 0014 for many at once, 0017 for a week written again): a request and an outbox row written through the API would
    -- be paid LLM work.
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
             WHERE p.pronamespace = 'public'::regnamespace
                 AND (p.proname LIKE '%\_same\_as\_original' OR p.proname IN ('accept_plan_request', 'accept_plan_requests', 'accept_week_request'))
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        FOREACH r IN ARRAY api_roles LOOP
            CONTINUE WHEN to_regrole(r) IS NULL;
            EXECUTE format('REVOKE ALL ON FUNCTION %s FROM %I', f, r);
        END LOOP;
    END LOOP;
END
$$;
