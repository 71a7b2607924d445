-- The demo database of scripts/demo.sh: authz_ext under a small application. The app
-- authenticates each request once per transaction (an API key, or a user it authenticated
-- itself), and row-level security asks authz_can about the principal on every row.
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

-- Two application users: 1 is a viewer who may not read the budget; 2 a developer who may
-- also delete one document.
SELECT authz_set_role(1, 'viewer');
SELECT authz_set_role(2, 'developer');
SELECT authz_grant(1, 'document:read', 11, NULL, 'deny');
SELECT authz_grant(2, 'document:delete', 20);

-- Row-level security on documents, one policy per command, all about the principal.
ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
CREATE POLICY documents_select ON documents FOR SELECT USING (authz_can('document:read', id));
CREATE POLICY documents_insert ON documents FOR INSERT WITH CHECK (authz_can('document:create', id));
CREATE POLICY documents_update ON documents FOR UPDATE USING (authz_can('document:update', id));
CREATE POLICY documents_delete ON documents FOR DELETE USING (authz_can('document:delete', id));

-- The application's login role: no superuser, no access to the authz tables. It may set a
-- user it authenticated itself only because it is granted authz_set_user.
CREATE ROLE demo_app LOGIN;
GRANT SELECT, INSERT, UPDATE, DELETE ON projects, documents TO demo_app;
SELECT authz_grant_execute('demo_app', 'authz_set_user');

\echo 'What each user may do with document 11 (the budget):'
SELECT u AS user_id, p AS permission, e.allowed, e.decided_by, e.reason
FROM unnest(ARRAY[1, 2]) AS u, unnest(ARRAY['document:read', 'document:delete']) AS p,
     LATERAL authz_explain(u, p, 11) AS e
ORDER BY u, p;

\echo 'An API key for user 2, limited to reading documents (the token is shown only here):'
SELECT key_id AS demo_key, token AS demo_token, preview
FROM api_key_create(2, 'demo key', ARRAY['documents:read']) \gset
SELECT :'demo_token' AS token, :'preview' AS preview;
SELECT valid, status, user_id, scopes FROM api_key_validate(:'demo_token');

SET ROLE demo_app;
\echo 'Request as user 1 (authz_set_user): the budget is hidden, nothing may be deleted'
BEGIN;
SELECT authz_set_user(1);
SELECT id, title FROM documents ORDER BY id;
DELETE FROM documents RETURNING id AS deleted;
ROLLBACK;

\echo 'Request as user 2 (authz_set_user): every document; may delete document 20 only'
BEGIN;
SELECT authz_set_user(2);
SELECT id, title FROM documents ORDER BY id;
DELETE FROM documents RETURNING id AS deleted;
ROLLBACK;

\echo 'Request with user 2''s API key (scope documents:read): reads, but the key cannot delete'
BEGIN;
SELECT authz_authenticate(:'demo_token') AS principal;
SELECT id, title FROM documents ORDER BY id;
DELETE FROM documents RETURNING id AS deleted;
COMMIT;

\echo 'After the transaction there is no principal, so no rows:'
SELECT authz_current_user() AS principal, count(*) AS visible_documents FROM documents;
RESET ROLE;

\echo 'Revoking the key: it no longer validates (authz_authenticate would raise 28000)'
SELECT api_key_revoke(:'demo_key') AS revoked;
SELECT status FROM api_key_validate(:'demo_token');
SELECT name, preview, scopes, revoked_at IS NOT NULL AS revoked FROM api_key_list(2);

\echo 'Relationships (OpenFGA model): ana is in team eng, which views project 7; document 70 is in project 7'
SELECT authz_model_write($$
model
  schema 1.1
type user
type team
  relations
    define member: [user, team#member]
type project
  relations
    define viewer: [user, team#member]
type document
  relations
    define parent: [project]
    define viewer: [user] or viewer from parent
$$) AS model_id;
SELECT authz_tuple_write_bulk('[
  {"object": "team:eng", "relation": "member", "user": "user:ana"},
  {"object": "project:7", "relation": "viewer", "user": "team:eng#member"},
  {"object": "document:70", "relation": "parent", "user": "project:7"},
  {"object": "document:71", "relation": "viewer", "user": "user:bo"}
]') AS tuples_written;
SELECT authz_relation_check('user:ana', 'viewer', 'document:70') AS ana_views_70,
       authz_relation_check('user:bo', 'viewer', 'document:70') AS bo_views_70;
SELECT o AS ana_can_view FROM authz_list_objects('user:ana', 'document', 'viewer') AS o;
\echo 'The backend remembers those answers until a tuple or the model changes: ana leaving the team counts at once'
SELECT authz_tuple_delete('team:eng', 'member', 'user:ana') AS ana_left;
SELECT authz_relation_check('user:ana', 'viewer', 'document:70') AS ana_views_70;
