-- Row-level security with authz_check: two database roles see different rows.
CREATE EXTENSION authz_ext;
CREATE TABLE documents (id bigint PRIMARY KEY, title text NOT NULL);
INSERT INTO documents VALUES (1, 'Roadmap'), (2, 'Budget'), (3, 'Salaries');
ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
-- The application user comes from a setting the app sets per request.
CREATE POLICY documents_read ON documents FOR SELECT
    USING (authz_check(current_setting('app.user_id', true), 'document:read', id));

CREATE ROLE authz_rls_alice;
CREATE ROLE authz_rls_bob;
GRANT SELECT ON documents TO authz_rls_alice, authz_rls_bob;

-- alice (user 100) is a viewer, denied the salaries; bob (user 200) has one grant only.
SELECT authz_set_role(100, 'viewer');
SELECT authz_grant(100, 'document:read', 3, NULL, 'deny');
SELECT authz_grant(200, 'document:read', 2);

BEGIN;
SET LOCAL ROLE authz_rls_alice;
SET LOCAL app.user_id = '100';
SELECT id, title FROM documents ORDER BY id;
ROLLBACK;

BEGIN;
SET LOCAL ROLE authz_rls_bob;
SET LOCAL app.user_id = '200';
SELECT id, title FROM documents ORDER BY id;
-- The tables behind the check stay closed to the role.
SELECT count(*) FROM authz.grants;
ROLLBACK;

-- An ordinary role may check but not change anything.
BEGIN;
SET LOCAL ROLE authz_rls_bob;
SELECT authz_check(200, 'document:read', 2) AS check_ok;
SELECT authz_grant(200, 'document:read', 3);
ROLLBACK;

DROP TABLE documents;
DROP ROLE authz_rls_alice;
DROP ROLE authz_rls_bob;
DROP EXTENSION authz_ext;
