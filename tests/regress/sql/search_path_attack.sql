-- search_path safety: an attacker who may create objects in schema public shadows the
-- functions, operators and tables the extension uses internally, and puts public (and
-- pg_temp) ahead of pg_catalog. Every public function, called directly and from an RLS
-- policy, must ignore them. And CREATE EXTENSION must refuse to install over objects that
-- already exist (the CVE-2022-2625 class).
-- (CONTEXT lines are not shown: they differ between PostgreSQL majors.)
\set SHOW_CONTEXT never
CREATE ROLE authz_sp_attacker LOGIN;
GRANT CREATE ON SCHEMA public TO authz_sp_attacker;
DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO authz_sp_attacker', current_database()); END $$;

-- 1. Installing over pre-existing objects the installer does not own: refused.
SET ROLE authz_sp_attacker;
CREATE SCHEMA authz;
RESET ROLE;
CREATE EXTENSION authz_ext;                    -- fails: schema "authz" already exists
SELECT count(*) AS installed FROM pg_extension WHERE extname = 'authz_ext';
DROP SCHEMA authz;

SET ROLE authz_sp_attacker;
CREATE FUNCTION public.authz_current_user() RETURNS text LANGUAGE sql AS $$ SELECT 'attacker' $$;
RESET ROLE;
CREATE EXTENSION authz_ext;                    -- fails: the function already exists
SELECT count(*) AS installed FROM pg_extension WHERE extname = 'authz_ext';
DROP FUNCTION public.authz_current_user();

SET ROLE authz_sp_attacker;
CREATE FUNCTION public.api_key_validate(token text) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
RESET ROLE;
CREATE EXTENSION authz_ext;                    -- fails: the function already exists
DROP FUNCTION public.api_key_validate(text);

-- Now installed cleanly, with data to check against.
CREATE EXTENSION authz_ext;
SELECT authz_set_role('alice', 'viewer');
SELECT authz_grant('alice', 'document:update', 7);
SELECT authz_grant('alice', 'document:read', 8, NULL, 'deny');
SELECT authz_set_role('mallory', 'viewer');
SELECT token AS alice_token FROM api_key_create('alice', 'k', ARRAY['documents:read']) \gset
SELECT authz_model_write('model
  schema 1.1
type user
type document
  relations
    define viewer: [user]') IS NOT NULL AS model_written;
SELECT authz_tuple_write('document:7', 'viewer', 'user:alice');

-- 2. The attacker's traps: every one raises "hijacked" if it is ever called.
SET ROLE authz_sp_attacker;
CREATE FUNCTION public.hijacked(what text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hijacked: %', what; END $$;
-- Comparison operators for every type the extension compares.
DO $$
DECLARE
    t text;
    op record;
BEGIN
    FOREACH t IN ARRAY ARRAY['text', 'bigint', 'integer', 'timestamptz', 'uuid', 'bytea', 'boolean', 'name', 'oid', 'text[]'] LOOP
        FOR op IN SELECT * FROM (VALUES ('=', 'eq'), ('<>', 'ne'), ('<', 'lt'), ('>', 'gt'), ('<=', 'le'), ('>=', 'ge')) AS v(sym, tag) LOOP
            EXECUTE format('CREATE FUNCTION public.%I(%s, %s) RETURNS boolean LANGUAGE sql AS %L',
                           'hj_' || op.tag || '_' || replace(t, '[]', '_arr'), t, t,
                           format('SELECT public.hijacked(%L)', op.sym || ' on ' || t));
            EXECUTE format('CREATE OPERATOR public.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = public.%I)',
                           op.sym, t, t, 'hj_' || op.tag || '_' || replace(t, '[]', '_arr'));
        END LOOP;
    END LOOP;
END $$;
-- Functions with the names of built-ins the extension calls.
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT NULL::timestamptz WHERE public.hijacked('now') $$;
CREATE FUNCTION public.clock_timestamp() RETURNS timestamptz LANGUAGE sql AS $$ SELECT NULL::timestamptz WHERE public.hijacked('clock_timestamp') $$;
CREATE FUNCTION public.statement_timestamp() RETURNS timestamptz LANGUAGE sql AS $$ SELECT NULL::timestamptz WHERE public.hijacked('statement_timestamp') $$;
CREATE FUNCTION public.nextval(regclass) RETURNS bigint LANGUAGE sql AS $$ SELECT 0::bigint WHERE public.hijacked('nextval') $$;
CREATE FUNCTION public.current_setting(text) RETURNS text LANGUAGE sql AS $$ SELECT '' WHERE public.hijacked('current_setting') $$;
CREATE FUNCTION public.current_setting(text, boolean) RETURNS text LANGUAGE sql AS $$ SELECT '' WHERE public.hijacked('current_setting') $$;
CREATE FUNCTION public.lower(text) RETURNS text LANGUAGE sql AS $$ SELECT '' WHERE public.hijacked('lower') $$;
CREATE FUNCTION public.length(text) RETURNS integer LANGUAGE sql AS $$ SELECT 0 WHERE public.hijacked('length') $$;
CREATE FUNCTION public.array_length(anyarray, integer) RETURNS integer LANGUAGE sql AS $$ SELECT 0 WHERE public.hijacked('array_length') $$;
CREATE FUNCTION public.cardinality(anyarray) RETURNS integer LANGUAGE sql AS $$ SELECT 0 WHERE public.hijacked('cardinality') $$;
CREATE FUNCTION public.unnest(anyarray) RETURNS SETOF text LANGUAGE sql AS $$ SELECT '' WHERE public.hijacked('unnest') $$;
CREATE FUNCTION public.array_agg(text) RETURNS text LANGUAGE sql AS $$ SELECT '' WHERE public.hijacked('array_agg') $$;
CREATE FUNCTION public.to_jsonb(anyelement) RETURNS jsonb LANGUAGE sql AS $$ SELECT NULL::jsonb WHERE public.hijacked('to_jsonb') $$;
CREATE FUNCTION public.jsonb_build_object(text, text) RETURNS jsonb LANGUAGE sql AS $$ SELECT NULL::jsonb WHERE public.hijacked('jsonb_build_object') $$;
CREATE FUNCTION public.format(text) RETURNS text LANGUAGE sql AS $$ SELECT '' WHERE public.hijacked('format') $$;
CREATE FUNCTION public.sha256(bytea) RETURNS bytea LANGUAGE sql AS $$ SELECT NULL::bytea WHERE public.hijacked('sha256') $$;
CREATE FUNCTION public.random() RETURNS float8 LANGUAGE sql AS $$ SELECT 0::float8 WHERE public.hijacked('random') $$;
CREATE FUNCTION public.pg_advisory_xact_lock(bigint) RETURNS void LANGUAGE sql AS $$ SELECT WHERE public.hijacked('pg_advisory_xact_lock') $$;
-- Tables with the names of the extension's tables, in public and (in the calling session) pg_temp.
CREATE TABLE public.grants (user_id text, permission text, resource_id text, effect text);
INSERT INTO public.grants VALUES ('mallory', 'document:delete', '7', 'allow');
CREATE TABLE public.user_roles (user_id text, role text);
INSERT INTO public.user_roles VALUES ('mallory', 'admin');
CREATE TABLE public.api_keys (id uuid, key_hash bytea);
CREATE TEMP TABLE grants (user_id text, permission text, resource_id text, effect text);
INSERT INTO pg_temp.grants VALUES ('mallory', 'document:delete', '7', 'allow');
CREATE TEMP TABLE user_roles (user_id text, role text);
INSERT INTO pg_temp.user_roles VALUES ('mallory', 'admin');
CREATE TEMP TABLE roles (name text, rank integer, all_permissions boolean);
INSERT INTO pg_temp.roles VALUES ('viewer', 100, true);
CREATE TABLE public.relation_tuples (object_type text, object_id text, relation text, subject_type text,
                                     subject_id text, subject_relation text, condition text, expires_at timestamptz);
INSERT INTO public.relation_tuples VALUES ('document', '7', 'viewer', 'user', 'mallory', '', NULL, NULL);
CREATE TEMP TABLE relation_tuples (LIKE public.relation_tuples);
INSERT INTO pg_temp.relation_tuples SELECT * FROM public.relation_tuples;
CREATE TEMP TABLE relation_models (id bigint, dsl text);
INSERT INTO pg_temp.relation_models VALUES (999, 'model
  schema 1.1
type user
type document
  relations
    define viewer: [user:*]');
SELECT public.hijacked('a trap works') ;        -- shows what a sprung trap looks like
SET search_path = pg_temp, public, pg_catalog;

-- 3. As the attacker (PUBLIC's functions), with the traps ahead of pg_catalog.
SELECT authz_check('mallory', 'document:delete', 7) AS mallory_delete_7,
       authz_check('mallory', 'document:read', 7) AS mallory_read_7,
       authz_check('alice', 'document:read', 8) AS alice_read_8,
       authz_check('alice', 'document:update', 7) AS alice_update_7,
       authz_check('mallory', 'project:delete') AS mallory_project_delete;
SELECT valid, status, user_id, scopes FROM api_key_validate(:'alice_token');
SELECT valid, status FROM api_key_validate('azk_not_a_real_token');
SELECT count(*) AS counters FROM authz_stats();
BEGIN;
SELECT authz_authenticate(:'alice_token') AS principal;
SELECT authz_current_user() AS current_user_id,
       authz_can('document:read', 1) AS can_read_1,
       authz_can('document:update', 7) AS can_update_7;
ROLLBACK;
SELECT authz_relation_check('user:alice', 'viewer', 'document:7') AS alice_views_7,
       authz_relation_check('user:mallory', 'viewer', 'document:7') AS mallory_views_7;
-- The mutators and listings stay closed to the attacker, traps or not.
SELECT authz_grant('mallory', 'document:delete', 7);
SELECT authz_tuple_write('document:7', 'viewer', 'user:mallory');
SELECT authz_set_user('alice');
SELECT * FROM api_key_list('alice');

-- 4. From an RLS policy, queried by the attacker.
RESET ROLE;
RESET search_path;
CREATE TABLE sp_documents (id bigint PRIMARY KEY, title text);
INSERT INTO sp_documents VALUES (7, 'seven'), (8, 'eight'), (9, 'nine');
ALTER TABLE sp_documents ENABLE ROW LEVEL SECURITY;
CREATE POLICY sp_read ON sp_documents FOR SELECT USING (authz_can('document:read', id));
GRANT SELECT ON sp_documents TO authz_sp_attacker;
SET ROLE authz_sp_attacker;
SET search_path = pg_temp, public, pg_catalog;
BEGIN;
SELECT authz_authenticate(:'alice_token') IS NOT NULL AS authenticated;
SELECT id, title FROM sp_documents ORDER BY id;      -- 7 and 9: 8 is denied
ROLLBACK;
SELECT count(*) AS rows_without_a_principal FROM sp_documents;

-- 5. As the superuser with the attacker's search_path: every other public function.
RESET ROLE;
SET search_path = pg_temp, public, pg_catalog;
-- (This file's own expressions name pg_catalog where the traps would catch them.)
SELECT authz_grant('bob', 'document:read', 5, pg_catalog.now() OPERATOR(pg_catalog.+) interval '1 day') IS NOT NULL AS granted;
SELECT authz_revoke('bob', 'document:read', 5) AS revoked;
SELECT authz_set_role('bob', 'developer');
SELECT authz_user_role('bob') AS bob_role;
SELECT count(*) AS bob_permissions FROM authz_user_permissions('bob');
SELECT count(*) AS viewer_defaults FROM authz_role_permissions('viewer');
SELECT authz_role_permission_add('viewer', 'document:update');
SELECT authz_role_permission_remove('viewer', 'document:update');
SELECT authz_init_role_permissions();
SELECT authz_define_permission('report', 'export');
SELECT authz_cleanup_expired() AS cleaned;
SELECT allowed, decided_by FROM authz_explain('alice', 'document:read', 8);
SELECT authz_require('alice', 'document:update', 7);
SELECT authz_require('alice', 'document:read', 8);
SELECT pg_catalog.array_agg(r ORDER BY r) AS alice_update_resources FROM authz_resources('alice', 'document:update') AS r;
SELECT key_id AS bob_key FROM api_key_create('bob', 'b', ARRAY['documents:read']) \gset
SELECT name, scopes, revoked_at IS NULL AS live FROM api_key_list('bob');
SELECT name FROM api_key_get('bob', :'bob_key');
SELECT api_key_revoke(:'bob_key', 'admin') AS revoked_key;
BEGIN;
SELECT authz_set_user('bob') AS principal;
SELECT authz_current_user() AS current_user_id, authz_can('document:read', 1) AS can_read_1;
ROLLBACK;
SELECT authz_check('bob', 'document:read', 1) AS bob_read_1;
SELECT authz_model_write('model
  schema 1.1
type user
type document
  relations
    define owner: [user]
    define viewer: [user] or owner') IS NOT NULL AS model_written;
SELECT authz_tuple_write('document:8', 'owner', 'user:bob') AS bob_owns_8;
SELECT authz_tuple_write_bulk('[{"object": "document:9", "relation": "viewer", "user": "user:bob"}]',
                              '[{"object": "document:7", "relation": "viewer", "user": "user:alice"}]') AS changed;
SELECT authz_tuple_delete('document:9', 'viewer', 'user:bob') AS deleted;
SELECT pg_catalog.array_agg(o ORDER BY o) AS bob_views FROM authz_list_objects('user:bob', 'document', 'viewer') AS o;
SELECT pg_catalog.array_agg(u ORDER BY u) AS viewers_of_8 FROM authz_list_users('document:8', 'viewer', ARRAY['user']) AS u;
RESET search_path;
-- Every public function of the extension was called above (a new one changes this count).
SELECT count(*) AS public_functions
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'authz_ext')
  AND p.pronamespace = 'public'::regnamespace;

-- 6. Nothing the attacker planted was ever used: their tables are unchanged.
SELECT (SELECT count(*) FROM public.grants) AS public_grants,
       (SELECT count(*) FROM pg_temp.grants) AS temp_grants,
       (SELECT count(*) FROM public.relation_tuples) AS public_tuples,
       (SELECT count(*) FROM pg_temp.relation_tuples) AS temp_tuples;

-- 7. Hijacking a call (CVE-2018-1058): a function with exact argument types beats one
-- that needs a conversion or takes "any", whatever the order of the search path. A role
-- that may create in any schema on a privileged caller's path, even after the extension's,
-- can take over an unqualified call. The safe patterns: call schema-qualified, or keep
-- every schema an untrusted role can create in off the path.
SET ROLE authz_sp_attacker;
CREATE SCHEMA sp_attacker_schema;
CREATE FUNCTION sp_attacker_schema.authz_check(integer, text, integer) RETURNS boolean
LANGUAGE sql AS $$ SELECT true $$;
GRANT USAGE ON SCHEMA sp_attacker_schema TO PUBLIC;
RESET ROLE;
SET search_path = public, sp_attacker_schema;
SELECT authz_check(7, 'document:delete', 7) AS unqualified_with_attacker_on_path;   -- true: hijacked
SELECT public.authz_check(7, 'document:delete', 7) AS schema_qualified;             -- the extension's
SET search_path = public, pg_catalog;
SELECT authz_check(7, 'document:delete', 7) AS only_trusted_schemas_on_path;        -- the extension's
RESET search_path;

-- Clean up.
DROP TABLE sp_documents;
DROP TABLE pg_temp.grants, pg_temp.user_roles, pg_temp.roles, pg_temp.relation_tuples, pg_temp.relation_models;
DROP OWNED BY authz_sp_attacker;
DROP ROLE authz_sp_attacker;
DROP EXTENSION authz_ext;
