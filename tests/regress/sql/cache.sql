-- Answers the decision cache must never change (run with authz.cache on and off by the
-- test command; the expected output is the same for both): changes through the functions,
-- direct changes to the tables, TRUNCATE, savepoints, rollbacks, expiry, catalog changes.
CREATE EXTENSION authz_ext;
SELECT authz_set_role(1, 'viewer');
CREATE FUNCTION show_checks() RETURNS TABLE (read_1 boolean, read_2 boolean, update_1 boolean, type_read boolean)
LANGUAGE sql AS $$
    SELECT authz_check(1, 'document:read', 1), authz_check(1, 'document:read', 2),
           authz_check(1, 'document:update', 1), authz_check(1, 'document:read')
$$;
SELECT * FROM show_checks();  -- fills the cache
SELECT authz_grant(1, 'document:read', 2, NULL, 'deny');
SELECT * FROM show_checks();
-- A direct change by the owner, bypassing the functions.
UPDATE authz.grants SET effect = 'allow' WHERE user_id = '1' AND resource_id = '2';
SELECT * FROM show_checks();
INSERT INTO authz.grants (user_id, permission, resource_id, effect) VALUES ('1', 'document:update', '1', 'allow');
SELECT * FROM show_checks();
TRUNCATE authz.grants;
SELECT * FROM show_checks();
-- Role changes, directly and through the function.
UPDATE authz.user_roles SET role = 'developer' WHERE user_id = '1';
SELECT * FROM show_checks();
SELECT authz_set_role(1, NULL);
SELECT * FROM show_checks();
SELECT authz_set_role(1, 'viewer');
-- Role defaults and the catalog.
SELECT authz_role_permission_remove('viewer', 'document:read');
SELECT * FROM show_checks();
SELECT authz_init_role_permissions();
SELECT * FROM show_checks();
SELECT authz_define_permission('invoice', 'approve');
SELECT authz_check(1, 'invoice:approve', 1) AS viewer_invoice, authz_check(2, 'invoice:approve', 1) AS nobody_invoice;
SELECT authz_set_role(2, 'admin');
SELECT authz_check(2, 'invoice:approve', 1) AS admin_invoice;
-- Own uncommitted changes, savepoints and rollback.
BEGIN;
SELECT * FROM show_checks();
SELECT authz_grant(1, 'document:read', 1, NULL, 'deny');
SELECT * FROM show_checks();
SAVEPOINT s;
SELECT authz_revoke(1, 'document:read', 1);
SELECT authz_grant(1, 'document:update', 1);
SELECT * FROM show_checks();
ROLLBACK TO SAVEPOINT s;
SELECT * FROM show_checks();
ROLLBACK;
SELECT * FROM show_checks();
-- A change and a check in the same statement see each other in order.
SELECT authz_grant(1, 'document:update', 1) > 0 AS granted, authz_check(1, 'document:update', 1) AS then_allowed;
-- Expiry: an override that expires is ignored from then on, cached or not.
SELECT authz_grant(1, 'document:read', 2, now() + interval '1 second', 'deny');
SELECT authz_check(1, 'document:read', 2) AS while_denied;
SELECT pg_sleep(1.1);
SELECT authz_check(1, 'document:read', 2) AS after_expiry;
-- Many users and resources in one statement.
SELECT u, string_agg(CASE WHEN authz_check(u, 'document:read', r) THEN 'Y' ELSE '.' END, '' ORDER BY r) AS docs
FROM generate_series(1, 3) AS u, generate_series(1, 4) AS r GROUP BY u ORDER BY u;
-- A user none of whose overrides expires: a call site's next rows take the resource's own
-- override, else the type level's (an allow here), for each integer type and NULL.
SELECT authz_grant('timeless', 'document:read') > 0 AS type_level_allow,
       authz_grant('timeless', 'document:read', 2, NULL, 'deny') > 0 AS denies_two,
       authz_grant('timeless', 'document:read', 5, NULL, 'deny') > 0 AS denies_five;
SELECT string_agg(CASE WHEN authz_check('timeless'::text, 'document:read', r::int2) THEN 'Y' ELSE '.' END, '' ORDER BY r) AS int2,
       string_agg(CASE WHEN authz_check('timeless'::text, 'document:read', r::int4) THEN 'Y' ELSE '.' END, '' ORDER BY r) AS int4,
       string_agg(CASE WHEN authz_check('timeless'::text, 'document:read', r::int8) THEN 'Y' ELSE '.' END, '' ORDER BY r) AS int8,
       string_agg(CASE WHEN authz_check('timeless'::text, 'document:read', nullif(r, 3)) THEN 'Y' ELSE '.' END, '' ORDER BY r) AS null_three
FROM generate_series(1, 6) r;
-- The cache keeps no grant ids: with the user's facts cached (a scan loads them whole),
-- explain and require's message still name the deciding override.
SELECT authz_grant(1, 'document:read', 3, NULL, 'deny') > 0 AS denied_three;
SELECT count(*) FILTER (WHERE authz_check(1, 'document:read', r)) AS allowed_of_forty FROM generate_series(1, 40) r;
SELECT e.allowed, e.decided_by, e.grant_id = g.id AS names_the_grant, e.reason LIKE '%override ' || g.id || ' (deny)%' AS reason_names_it
FROM authz_explain(1, 'document:read', 3) e, authz.grants g
WHERE g.user_id = '1' AND g.permission = 'document:read' AND g.resource_id = '3';
DO $$
DECLARE
  id bigint := (SELECT g.id FROM authz.grants g WHERE g.user_id = '1' AND g.permission = 'document:read' AND g.resource_id = '3');
BEGIN
  PERFORM authz_require(1, 'document:read', 3);
  RAISE NOTICE 'require allowed';
EXCEPTION WHEN insufficient_privilege THEN
  RAISE NOTICE 'require denied, naming the grant: %', SQLERRM LIKE '%override ' || id || ' (deny)%';
END $$;
-- The extension dropped and created again in this session: the cache follows the new
-- tables (a warm entry, then a grant in the new tables).
DROP EXTENSION authz_ext;
CREATE EXTENSION authz_ext;
SELECT array_agg(authz_check(1, 'document:read', r) ORDER BY r) AS after_recreate FROM generate_series(1, 2) r;
SELECT authz_grant(1, 'document:read', 1) > 0 AS granted;
SELECT array_agg(authz_check(1, 'document:read', r) ORDER BY r) AS after_grant FROM generate_series(1, 2) r;
DROP EXTENSION authz_ext;
