-- The demo database of scripts/demo.sh: the extension and a small application schema.
CREATE EXTENSION authz_ext;

CREATE TABLE projects (
    id   bigint PRIMARY KEY,
    name text NOT NULL
);
CREATE TABLE documents (
    id         bigint PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES projects (id),
    title      text NOT NULL
);
INSERT INTO projects VALUES (1, 'Apollo'), (2, 'Gemini');
INSERT INTO documents VALUES
    (10, 1, 'Apollo launch plan'),
    (11, 1, 'Apollo budget'),
    (20, 2, 'Gemini retrospective');

\echo 'Installed extension:'
SELECT extname, extversion FROM pg_extension WHERE extname = 'authz_ext';
\echo 'Seed catalog:'
SELECT (SELECT count(*) FROM authz.resource_types) AS resource_types,
       (SELECT count(*) FROM authz.permissions)    AS permissions,
       (SELECT count(*) FROM authz.role_permissions) AS role_defaults,
       (SELECT count(*) FROM authz.scopes)           AS scopes;

-- Two application users: 1 is a viewer, 2 a developer with one extra override.
SELECT authz_set_role(1, 'viewer');
SELECT authz_set_role(2, 'developer');
SELECT authz_grant(1, 'document:read', 11, NULL, 'deny');   -- user 1 may not read the budget
SELECT authz_grant(2, 'document:delete', 20);              -- user 2 may delete one document

-- Row-level security: the application sets app.user_id per transaction.
ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
CREATE POLICY documents_read ON documents FOR SELECT
    USING (authz_check(current_setting('app.user_id', true), 'document:read', id));
CREATE ROLE demo_app LOGIN;
GRANT SELECT ON projects, documents TO demo_app;

\echo 'What each user may do with document 11 (the budget):'
SELECT u AS user_id, p AS permission, e.allowed, e.decided_by, e.reason
FROM unnest(ARRAY[1, 2]) AS u, unnest(ARRAY['document:read', 'document:delete']) AS p,
     LATERAL authz_explain(u, p, 11) AS e
ORDER BY u, p;

\echo 'Documents visible to user 1 through RLS (as role demo_app):'
BEGIN;
SET LOCAL ROLE demo_app;
SET LOCAL app.user_id = '1';
SELECT id, title FROM documents ORDER BY id;
ROLLBACK;

\echo 'An API key for user 2, limited to reading documents (the token is shown only here):'
SELECT key_id AS demo_key, token AS demo_token, preview
FROM api_key_create(2, 'demo key', ARRAY['documents:read']) \gset
SELECT :'demo_token' AS token, :'preview' AS preview;
SELECT valid, status, user_id, scopes FROM api_key_validate(:'demo_token');
SELECT status FROM api_key_validate('azk_not_a_real_token');
SELECT api_key_revoke(:'demo_key') AS revoked;
SELECT status FROM api_key_validate(:'demo_token');
SELECT name, preview, scopes, revoked_at IS NOT NULL AS revoked FROM api_key_list(2);
