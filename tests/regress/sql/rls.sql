-- Row-level security with the request's principal: the application's login role sets the
-- principal at the start of each transaction, and the policy asks authz_can about it. A
-- setting cannot stand in for the principal.
CREATE EXTENSION authz_ext;
CREATE TABLE documents (id bigint PRIMARY KEY, title text NOT NULL);
INSERT INTO documents VALUES (1, 'Roadmap'), (2, 'Budget'), (3, 'Salaries');
ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
CREATE POLICY documents_read ON documents FOR SELECT USING (authz_can('document:read', id));

CREATE ROLE authz_rls_app;
GRANT SELECT ON documents TO authz_rls_app;
SELECT authz_grant_execute('authz_rls_app', 'authz_set_user');

-- User 100 is a viewer, denied the salaries; user 200 has one grant only.
SELECT authz_set_role(100, 'viewer');
SELECT authz_grant(100, 'document:read', 3, NULL, 'deny');
SELECT authz_grant(200, 'document:read', 2);

BEGIN;
SET LOCAL ROLE authz_rls_app;
SELECT authz_set_user(100);
SELECT id, title FROM documents ORDER BY id;
ROLLBACK;

BEGIN;
SET LOCAL ROLE authz_rls_app;
SELECT authz_set_user(200);
SELECT id, title FROM documents ORDER BY id;
-- The tables behind the check stay closed to the role.
SELECT count(*) FROM authz.grants;
ROLLBACK;

-- No principal, no rows: a setting of the application's changes nothing.
BEGIN;
SET LOCAL ROLE authz_rls_app;
SET LOCAL app.user_id = '100';
SELECT count(*) AS visible_without_a_principal FROM documents;
ROLLBACK;

-- An ordinary role may check but not change anything.
BEGIN;
SET LOCAL ROLE authz_rls_app;
SELECT authz_check(200, 'document:read', 2) AS check_ok;
SELECT authz_grant(200, 'document:read', 3);
ROLLBACK;

DROP TABLE documents;
DROP OWNED BY authz_rls_app;
DROP ROLE authz_rls_app;
DROP EXTENSION authz_ext;
