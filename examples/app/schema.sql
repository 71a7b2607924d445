-- The example app's database objects (examples/app/app.py). Run as a superuser in a
-- database with authz_ext installed; idempotent.
--
-- The app connects as authz_app: a login role that may read documents (through RLS) and
-- call the delegated administration functions (docs/guide.md, "Privileges, and delegating administration"), and
-- nothing else. Every request authenticates with authz_authenticate; what it may do is
-- decided by authz_can (the user's permissions and the key's scopes).

DO $$ BEGIN CREATE ROLE authz_app LOGIN PASSWORD 'authz_app'; EXCEPTION WHEN duplicate_object THEN NULL; END $$;

CREATE TABLE IF NOT EXISTS documents (id bigint PRIMARY KEY, title text NOT NULL);
ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS documents_read ON documents;
CREATE POLICY documents_read ON documents FOR SELECT USING (authz_can('document:read', id));
GRANT SELECT ON documents TO authz_app;

-- 42501 unless the request's principal (and its key's scopes) allow the permission.
CREATE OR REPLACE FUNCTION app_require(permission text, resource_id text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
BEGIN
    IF NOT authz_can(permission, resource_id) THEN
        RAISE EXCEPTION 'permission denied: % on %', permission, coalesce(resource_id, 'every resource')
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END $$;

SELECT authz_grant_execute('authz_app', 'authz_grant', 'authz_revoke', 'authz_user_permissions',
                           'api_key_create', 'api_key_revoke', 'api_key_list', 'api_key_get');
