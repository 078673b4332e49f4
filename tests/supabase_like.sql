-- A database prepared the way Supabase prepares its own, as far as our migrations and the
-- original app's ways in (PostgREST, pg_graphql, Realtime) rely on it. Run by the superuser on a
-- new database before anything else (tests/supabase.py). Sources, all in supabase/postgres:
--   migrations/db/init-scripts/00000000000000-initial-schema.sql: the publication
--     supabase_realtime (empty); roles anon and authenticated (NOLOGIN NOINHERIT), service_role
--     (NOLOGIN NOINHERIT BYPASSRLS), authenticator (LOGIN NOINHERIT, granted the three, which is
--     how PostgREST and pg_graphql switch to them: SET LOCAL ROLE); USAGE on schema public for
--     the three; and ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES, FUNCTIONS and
--     SEQUENCES TO postgres, anon, authenticated, service_role: every table created later is
--     fully open to the API roles until row-level security says otherwise.
--   migrations/db/init-scripts/00000000000001-auth-schema.sql: schema auth, auth.users, USAGE
--     on auth for the API roles.
--   auth.uid(), auth.role(), auth.jwt(): as Supabase Auth (GoTrue) redefines them in its
--     migration 20220224000811_update_auth_functions (in every Supabase schema dump since): the
--     claims come from the setting request.jwt.claims (JSON, PostgREST >= 9 and pg_graphql) or
--     the older per-claim settings request.jwt.claim.<name>.
-- Roles are cluster-wide, so they are created only when missing (one test server, many databases).

DO $$
BEGIN
    IF to_regrole('anon') IS NULL THEN CREATE ROLE anon NOLOGIN NOINHERIT; END IF;
    IF to_regrole('authenticated') IS NULL THEN CREATE ROLE authenticated NOLOGIN NOINHERIT; END IF;
    IF to_regrole('service_role') IS NULL THEN CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS; END IF;
    IF to_regrole('authenticator') IS NULL THEN CREATE ROLE authenticator LOGIN NOINHERIT; END IF;
END
$$;
GRANT anon, authenticated, service_role TO authenticator;

CREATE PUBLICATION supabase_realtime;

GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;

CREATE SCHEMA auth;
-- The columns of Supabase's auth.users that anything here reads (the real table has many more).
CREATE TABLE auth.users (
    instance_id uuid,
    id          uuid NOT NULL PRIMARY KEY,
    aud         varchar(255),
    role        varchar(255),
    email       varchar(255) UNIQUE,
    created_at  timestamptz,
    updated_at  timestamptz
);
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;

CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;
CREATE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
$$;
CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;
