-- Installing authz_ext: the schema, the seed catalog, privileges, and create/drop.
-- (CONTEXT lines are not shown: they differ between PostgreSQL majors.)
\set SHOW_CONTEXT never
CREATE EXTENSION authz_ext;
SELECT extname, extversion, extrelocatable FROM pg_extension WHERE extname = 'authz_ext';

-- Every table lives in the schema authz.
SELECT c.relname, c.relkind
FROM pg_class c
WHERE c.relnamespace = 'authz'::regnamespace AND c.relkind IN ('r', 'S')
ORDER BY c.relname;

-- The seed catalog: 8 resource types, 40 permissions, 4 roles, 105 role defaults, 12 scopes.
SELECT (SELECT count(*) FROM authz.resource_types) AS resource_types,
       (SELECT count(*) FROM authz.permissions) AS permissions,
       (SELECT count(*) FROM authz.roles) AS roles,
       (SELECT count(*) FROM authz.role_permissions) AS role_defaults,
       (SELECT count(*) FROM authz.scopes) AS scopes,
       (SELECT count(*) FROM authz.scope_permissions) AS scope_permissions;

-- Permissions per resource type.
SELECT resource_type, string_agg(action, ' ' ORDER BY created_at, action) AS actions
FROM authz.permissions GROUP BY resource_type ORDER BY resource_type;

-- Role defaults: each role lists its whole set (6 + 23 + 36 + 40).
SELECT r.name, r.rank, count(rp.permission) AS defaults
FROM authz.roles r LEFT JOIN authz.role_permissions rp ON rp.role = r.name
GROUP BY r.name, r.rank ORDER BY r.rank;

-- What each role adds to the role below it.
SELECT r.name, string_agg(rp.permission, ', ' ORDER BY rp.permission) AS adds
FROM authz.roles r
JOIN authz.role_permissions rp ON rp.role = r.name
WHERE NOT EXISTS (SELECT 1 FROM authz.roles lower_role
                  JOIN authz.role_permissions l ON l.role = lower_role.name
                  WHERE lower_role.rank < r.rank AND l.permission = rp.permission)
GROUP BY r.name, r.rank ORDER BY r.rank;

-- Scopes and what they cover.
SELECT s.name, s.all_permissions, string_agg(sp.permission, ', ' ORDER BY sp.permission) AS covers
FROM authz.scopes s LEFT JOIN authz.scope_permissions sp ON sp.scope = s.name
GROUP BY s.name, s.all_permissions ORDER BY s.name;

-- pg_dump keeps the data tables (seed rows are left to CREATE EXTENSION).
SELECT cfg::regclass AS config_table, coalesce(nullif(cond, ''), '(all rows)') AS dumped
FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS t (cfg, cond)
WHERE e.extname = 'authz_ext' ORDER BY 1::text;

-- PUBLIC has no access to the schema or its tables.
SELECT has_schema_privilege('public', 'authz', 'USAGE') AS public_usage,
       bool_or(has_table_privilege('public', c.oid, 'SELECT')) AS public_select_any
FROM pg_class c WHERE c.relnamespace = 'authz'::regnamespace AND c.relkind = 'r';

CREATE ROLE authz_regress_app LOGIN;
SET ROLE authz_regress_app;
SELECT count(*) FROM authz.role_permissions;
\echo :SQLSTATE
SELECT * FROM authz.api_keys;
\echo :SQLSTATE
RESET ROLE;
DROP ROLE authz_regress_app;

-- DROP EXTENSION removes everything; create/drop/create works.
DROP EXTENSION authz_ext;
SELECT count(*) AS authz_schemas FROM pg_namespace WHERE nspname = 'authz';
CREATE EXTENSION authz_ext;
SELECT count(*) AS role_defaults FROM authz.role_permissions;
DROP EXTENSION authz_ext;

-- The install script will not adopt a pre-existing schema it does not own.
CREATE SCHEMA authz;
CREATE EXTENSION authz_ext;
\echo :SQLSTATE
DROP SCHEMA authz;
CREATE EXTENSION authz_ext;
SELECT count(*) AS role_defaults FROM authz.role_permissions;
DROP EXTENSION authz_ext;

-- Only UTF8 databases: others are refused at CREATE EXTENSION, with a clear error.
CREATE DATABASE authz_regress_latin1 TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C';
\c authz_regress_latin1
CREATE EXTENSION authz_ext;
\echo :SQLSTATE
\c authz_regress
DROP DATABASE authz_regress_latin1;

-- The settings' prefix is reserved: a misspelt authz.* setting is an error, not a new one.
CREATE EXTENSION authz_ext;
SET authz.cahce = off;
\echo :SQLSTATE
SELECT name FROM pg_settings WHERE name LIKE 'authz.%' ORDER BY name;
DROP EXTENSION authz_ext;
