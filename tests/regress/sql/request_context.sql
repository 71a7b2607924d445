-- The request context: a principal per transaction, set by authz_authenticate (API key)
-- or authz_set_user, read by authz_current_user and authz_can, in RLS policies and
-- procedures; savepoints, spoofing attempts, errors and privileges.
CREATE EXTENSION authz_ext;

-- alice (100) is a developer with a deny on document 3; bob (200) a viewer who may update
-- document 2; carol (300) an admin.
SELECT authz_set_role(100, 'developer'), authz_set_role(200, 'viewer'), authz_set_role(300, 'admin');
SELECT authz_grant(100, 'document:read', 3, NULL, 'deny');
SELECT authz_grant(200, 'document:update', 2);
SELECT token AS alice_read_token FROM api_key_create(100, 'reader', ARRAY['documents:read']) \gset
SELECT token AS alice_admin_token FROM api_key_create(100, 'full', ARRAY['admin']) \gset
SELECT key_id AS bob_key, token AS bob_token FROM api_key_create(200, 'bob', ARRAY['documents:read', 'documents:write']) \gset

CREATE TABLE documents (id bigint PRIMARY KEY, title text NOT NULL);
INSERT INTO documents VALUES (1, 'Roadmap'), (2, 'Budget'), (3, 'Salaries');
ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
CREATE POLICY documents_select ON documents FOR SELECT USING (authz_can('document:read', id));
CREATE POLICY documents_insert ON documents FOR INSERT WITH CHECK (authz_can('document:create', id));
CREATE POLICY documents_update ON documents FOR UPDATE USING (authz_can('document:update', id));
CREATE POLICY documents_delete ON documents FOR DELETE USING (authz_can('document:delete', id));

-- Two non-superuser login roles of the application; only the first may call authz_set_user.
CREATE ROLE authz_ctx_app_trusted;
CREATE ROLE authz_ctx_app_keys;
GRANT SELECT, INSERT, UPDATE, DELETE ON documents TO authz_ctx_app_trusted, authz_ctx_app_keys;
SELECT authz_grant_execute('authz_ctx_app_trusted', 'authz_set_user');

-- No principal: authz_can is false and RLS shows nothing.
SET ROLE authz_ctx_app_trusted;
SELECT authz_current_user() AS principal, authz_can('document:read', 1) AS can_read;
SELECT id, title FROM documents ORDER BY id;

-- alice through authz_set_user: she reads 1 and 2 (not 3), updates as a developer, may not delete.
BEGIN;
SELECT authz_set_user(100);
SELECT authz_current_user() AS principal;
SELECT id, title FROM documents ORDER BY id;
UPDATE documents SET title = title || ' (alice)' RETURNING id, title;
DELETE FROM documents WHERE id = 1 RETURNING id;
INSERT INTO documents VALUES (4, 'Alice notes') RETURNING id;
ROLLBACK;
-- The principal ended with the transaction.
SELECT authz_current_user() AS principal_after_rollback;
RESET ROLE;

-- bob through his API key (documents:read, documents:write), as a role without authz_set_user.
SET ROLE authz_ctx_app_keys;
SELECT authz_set_user(300);
\echo :SQLSTATE
BEGIN;
SELECT authz_authenticate(:'bob_token') AS principal;
SELECT id, title FROM documents ORDER BY id;
UPDATE documents SET title = title || ' (bob)' RETURNING id, title;
DELETE FROM documents RETURNING id;
ROLLBACK;
RESET ROLE;

-- Key scopes intersect the owner's permissions: carol (admin) and alice (developer) with a
-- key of each scope set; authz_set_user (no key) for comparison. Columns: document:read,
-- document:delete, project:read, organization:read, report:execute, user:read, api_key:create.
SELECT token AS carol_docs_read FROM api_key_create(300, 'k', ARRAY['documents:read']) \gset
SELECT token AS carol_docs_write FROM api_key_create(300, 'k', ARRAY['documents:write']) \gset
SELECT token AS carol_projects FROM api_key_create(300, 'k', ARRAY['projects:read']) \gset
SELECT token AS carol_users FROM api_key_create(300, 'k', ARRAY['users:read']) \gset
SELECT token AS carol_mixed FROM api_key_create(300, 'k', ARRAY['documents:read', 'reports:write']) \gset
SELECT token AS carol_admin FROM api_key_create(300, 'k', ARRAY['admin']) \gset
CREATE TEMP TABLE principals (label text, token text);
INSERT INTO principals VALUES
    ('carol, no key', NULL),
    ('carol documents:read', :'carol_docs_read'),
    ('carol documents:write', :'carol_docs_write'),
    ('carol projects:read', :'carol_projects'),
    ('carol users:read', :'carol_users'),
    ('carol documents:read+reports:write', :'carol_mixed'),
    ('carol admin', :'carol_admin'),
    ('alice admin', :'alice_admin_token'),
    ('alice documents:read', :'alice_read_token');
CREATE FUNCTION can_as(p_label text, p_token text, p_permission text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF p_token IS NULL THEN
        PERFORM authz_set_user(300);
    ELSE
        PERFORM authz_authenticate(p_token);
    END IF;
    RETURN authz_can(p_permission, 1);
END $$;
SELECT label,
       string_agg(CASE WHEN can_as(label, token, perm) THEN 'Y' ELSE '.' END, ' ' ORDER BY ord) AS
           "doc:r doc:del proj:r org:r report:exec user:r key:create"
FROM principals,
     unnest(ARRAY['document:read', 'document:delete', 'project:read', 'organization:read',
                  'report:execute', 'user:read', 'api_key:create']) WITH ORDINALITY AS p (perm, ord)
GROUP BY label ORDER BY min(ctid);

-- A key revoked, or expired, after authz_authenticate stops counting at once.
BEGIN;
SELECT authz_authenticate(:'bob_token') AS principal;
SELECT authz_can('document:read', 1) AS before_revoke;
SELECT api_key_revoke(:'bob_key');
SELECT authz_current_user() AS principal, authz_can('document:read', 1) AS after_revoke;
ROLLBACK;
BEGIN;
SELECT authz_authenticate(:'bob_token') AS principal;
UPDATE authz.api_keys SET expires_at = now() - interval '1 second' WHERE id = :'bob_key';
SELECT authz_can('document:read', 1) AS after_expiry;
ROLLBACK;

-- Savepoints: a principal set in a rolled-back savepoint is undone; a released one stays.
BEGIN;
SELECT authz_set_user(100);
SAVEPOINT a;
SELECT authz_set_user(200);
SELECT authz_current_user() AS inside_savepoint;
ROLLBACK TO SAVEPOINT a;
SELECT authz_current_user() AS after_rollback_to;
SAVEPOINT b;
SELECT authz_authenticate(:'alice_read_token');
SAVEPOINT c;
SELECT authz_set_user(NULL);
SELECT authz_current_user() AS cleared;
RELEASE SAVEPOINT c;
SELECT authz_current_user() AS after_release;
ROLLBACK TO SAVEPOINT b;
SELECT authz_current_user() AS after_outer_rollback_to, authz_can('document:delete', 1) AS alice_without_key_scopes;
-- An error rolls back a PL/pgSQL block's subtransaction, and the principal set inside it.
DO $$ BEGIN PERFORM authz_set_user(300); PERFORM 1 / 0;
      EXCEPTION WHEN division_by_zero THEN NULL; END $$;
SELECT authz_current_user() AS after_failed_block;
COMMIT;
SELECT authz_current_user() AS after_commit;

-- Spoofing: no setting holds the principal. Names under authz. are reserved (an error);
-- other settings, SET LOCAL, set_config, RESET and SET ROLE change nothing.
SET authz.principal = '300';
SELECT set_config('authz.current_user', '300', false);
BEGIN;
SELECT authz_set_user(100);
SET LOCAL app.user_id = '300';
SELECT set_config('app.principal', '300', true);
RESET ALL;
SET LOCAL ROLE authz_ctx_app_keys;
SELECT authz_current_user() AS principal, authz_can('document:delete', 1) AS can_delete;
ROLLBACK;
SELECT authz_current_user() AS principal_outside_transaction;

-- A principal cannot survive an error: the failed transaction ends with it.
BEGIN;
SELECT authz_set_user(100);
SELECT 1 / 0;
ROLLBACK;
SELECT authz_current_user() AS after_failed_transaction;

-- authz_authenticate: 28000 with the status, never the token.
SELECT authz_authenticate(NULL);
\echo :SQLSTATE
SELECT authz_authenticate('azk_' || repeat('x', 38));
\echo :SQLSTATE
BEGIN;
SELECT token AS doomed_token FROM api_key_create(100, 'doomed', ARRAY['admin']) \gset
ROLLBACK;
SELECT authz_authenticate(:'doomed_token');
\echo :SQLSTATE
SELECT authz_authenticate(:'bob_token') IS NOT NULL AS bob_still_valid;
SELECT api_key_revoke(:'bob_key');
SELECT authz_authenticate(:'bob_token');
\echo :SQLSTATE
SELECT key_id AS expired_key, token AS expired_token FROM api_key_create(100, 'old', ARRAY['admin'], now() + interval '1 hour') \gset
UPDATE authz.api_keys SET expires_at = now() - interval '1 second' WHERE id = :'expired_key';
SELECT authz_authenticate(:'expired_token');
\echo :SQLSTATE
-- A failed authenticate leaves the previous principal in place (the statement failed).
BEGIN;
SELECT authz_set_user(100);
SAVEPOINT s;
SELECT authz_authenticate('nope');
ROLLBACK TO SAVEPOINT s;
SELECT authz_current_user() AS principal;
ROLLBACK;
SELECT authz_set_user('');
\echo :SQLSTATE
SELECT authz_set_user(1.5);
\echo :SQLSTATE

-- authz_require in a procedure, for the principal.
CREATE PROCEDURE archive_document(p_id bigint) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM authz_require(authz_current_user(), 'document:delete', p_id);
    DELETE FROM documents WHERE id = p_id;
END $$;
BEGIN;
SELECT authz_set_user(100);
CALL archive_document(1);
\echo :SQLSTATE
ROLLBACK;
BEGIN;
SELECT authz_set_user(300);
CALL archive_document(1);
SELECT count(*) AS documents_left FROM documents;
ROLLBACK;

-- Changes made for a principal are audited with it as the actor (unless given explicitly).
BEGIN;
SELECT authz_set_user(300);
SELECT authz_grant(400, 'report:read', 1) > 0 AS granted;
SELECT authz_grant(400, 'report:read', 2, NULL, 'allow', 'someone-else') > 0 AS granted;
SELECT authz_set_role(400, 'viewer');
SELECT key_id AS audited_key FROM api_key_create(400, 'k', ARRAY['admin']) \gset
SELECT api_key_revoke(:'audited_key');
SELECT action, actor FROM authz.audit_log WHERE target ->> 'user_id' = '400' ORDER BY id;
SELECT created_by, revoked_by FROM authz.api_keys WHERE id = :'audited_key';
ROLLBACK;

-- Markings and privileges.
SELECT proname, provolatile, proparallel, prosecdef,
       has_function_privilege('public', oid, 'EXECUTE') AS public_execute
FROM pg_proc
WHERE proname IN ('authz_authenticate', 'authz_set_user', 'authz_current_user', 'authz_can')
ORDER BY proname;

DROP PROCEDURE archive_document(bigint);
DROP TABLE documents;
DROP OWNED BY authz_ctx_app_trusted;
DROP ROLE authz_ctx_app_trusted;
DROP ROLE authz_ctx_app_keys;
DROP EXTENSION authz_ext;
