-- Selective access: an RLS policy that finds a user's rows through an index when the user
-- holds only a few per-resource grants, and gives exactly the answers of the plain per-row
-- policy for every kind of principal.
CREATE EXTENSION authz_ext;
CREATE TABLE docs_plain (id bigint PRIMARY KEY);
CREATE TABLE docs_indexed (id bigint PRIMARY KEY);
INSERT INTO docs_plain SELECT generate_series(1, 10000);
INSERT INTO docs_indexed SELECT generate_series(1, 10000);
VACUUM ANALYZE docs_plain, docs_indexed;
ALTER TABLE docs_plain ENABLE ROW LEVEL SECURITY;
ALTER TABLE docs_indexed ENABLE ROW LEVEL SECURITY;
CREATE POLICY plain ON docs_plain FOR SELECT USING (authz_can('document:read', id));
-- The pattern of docs/guide.md: the explicitly granted ids, or every id when the principal holds the
-- permission on the whole type (role default or type-level allow); then the per-row check.
CREATE POLICY indexed ON docs_indexed FOR SELECT USING (
    (id = ANY (ARRAY(SELECT r::bigint FROM authz_resources((SELECT authz_current_user()), 'document:read') AS r))
     OR id >= (SELECT CASE WHEN authz_can('document:read') THEN -9223372036854775808 END))
    AND authz_can('document:read', id));
CREATE ROLE authz_sel_app;
GRANT SELECT ON docs_plain, docs_indexed TO authz_sel_app;
SELECT authz_grant_execute('authz_sel_app', 'authz_resources', 'authz_set_user');

-- 1: grants only (one expired, one deny); 2: viewer with a deny; 3: type-level deny plus one
-- allow; 4: type-level allow; 5: nothing; 6: a key without the documents:read scope.
SELECT authz_grant(1, 'document:read', r) FROM generate_series(10, 14) AS r \gset
SELECT authz_grant(1, 'document:read', 15, now() + interval '1 hour');
UPDATE authz.grants SET expires_at = now() - interval '1 second' WHERE user_id = '1' AND resource_id = '15';
SELECT authz_grant(1, 'document:read', 12, NULL, 'deny');
SELECT authz_set_role(2, 'viewer');
SELECT authz_grant(2, 'document:read', 7, NULL, 'deny');
SELECT authz_grant(3, 'document:read', NULL, NULL, 'deny');
SELECT authz_grant(3, 'document:read', 9);
SELECT authz_grant(4, 'document:read');
SELECT authz_set_role(6, 'viewer');
SELECT token AS key6 FROM api_key_create(6, 'k', ARRAY['projects:read']) \gset

SELECT * FROM authz_resources(1, 'document:read') ORDER BY 1;
SELECT count(*) AS null_user FROM authz_resources(NULL::int, 'document:read');
SELECT * FROM authz_resources(1, 'document:fly');
\echo :SQLSTATE

-- count, and the visible ids below 20
CREATE FUNCTION visible(p_table text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE v text;
BEGIN
    EXECUTE format('SELECT count(*) || '' rows: '' || coalesce(string_agg(id::text, '','' ORDER BY id) FILTER (WHERE id < 20), '''')
                    FROM %I', p_table) INTO v;
    RETURN v;
END $$;
CREATE FUNCTION visible_as(p_user int, p_table text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM authz_set_user(p_user);
    RETURN visible(p_table);
END $$;
SET ROLE authz_sel_app;
SELECT p.label, visible_as(p.usr, 'docs_plain') AS plain,
       visible_as(p.usr, 'docs_plain') = visible_as(p.usr, 'docs_indexed') AS same
FROM (VALUES (1, 'grants only'), (2, 'viewer with a deny'), (3, 'type deny, one allow'),
             (4, 'type-level allow'), (5, 'nothing')) AS p (usr, label)
ORDER BY p.usr;
BEGIN;
SELECT authz_authenticate(:'key6') AS principal;
SELECT visible('docs_plain') AS key_without_scope, visible('docs_plain') = visible('docs_indexed') AS same;
ROLLBACK;

-- The selective user's rows come from the index.
BEGIN;
SELECT authz_set_user(1);
-- (The plan's nodes, counted, not its text: the text differs between PostgreSQL majors.)
CREATE FUNCTION pg_temp.plan_nodes(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_plan jsonb;
BEGIN
    EXECUTE 'EXPLAIN (COSTS OFF, FORMAT JSON) ' || query INTO v_plan;
    RETURN (WITH RECURSIVE node(n) AS (
                SELECT v_plan -> 0 -> 'Plan'
                UNION ALL
                SELECT child FROM node, jsonb_array_elements(n -> 'Plans') AS child),
            named AS (SELECT (n ->> 'Node Type') || coalesce(' on ' || (n ->> 'Index Name'), '') AS name FROM node)
            SELECT string_agg(name || ' x' || count, ', ' ORDER BY name)
            FROM (SELECT name, count(*) FROM named GROUP BY name) AS counted);
END $$;
SELECT pg_temp.plan_nodes('SELECT id FROM docs_indexed') AS plan;
ROLLBACK;
RESET ROLE;

SELECT has_function_privilege('public', 'authz_resources("any", text)', 'EXECUTE') AS public_execute;
DROP TABLE docs_plain, docs_indexed;
DROP FUNCTION visible_as(int, text);
DROP FUNCTION visible(text);
DROP OWNED BY authz_sel_app;
DROP ROLE authz_sel_app;
DROP EXTENSION authz_ext;
