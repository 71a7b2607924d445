-- authz_ext: the seed catalog (docs/guide.md: Permissions, API keys). Every row is marked seeded,
-- so pg_dump leaves it to CREATE EXTENSION (see sql/schema.sql).

INSERT INTO authz.resource_types (name, seeded)
SELECT t, true
FROM pg_catalog.unnest(ARRAY['organization', 'project', 'document', 'dataset',
                             'pipeline', 'report', 'user', 'api_key']) AS t;

-- 8 resource types, 40 permissions.
INSERT INTO authz.permissions (name, resource_type, action, seeded)
SELECT c.resource_type OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) a.action,
       c.resource_type, a.action, true
FROM (VALUES
        ('organization', ARRAY['create', 'read', 'update', 'delete']),
        ('project',      ARRAY['create', 'read', 'update', 'delete', 'export']),
        ('document',     ARRAY['create', 'read', 'update', 'delete', 'export']),
        ('dataset',      ARRAY['create', 'read', 'update', 'delete', 'export', 'execute']),
        ('pipeline',     ARRAY['create', 'read', 'update', 'delete', 'execute', 'export']),
        ('report',       ARRAY['create', 'read', 'update', 'delete', 'export', 'execute']),
        ('user',         ARRAY['create', 'read', 'update', 'delete']),
        ('api_key',      ARRAY['create', 'read', 'update', 'delete'])
     ) AS c (resource_type, actions)
CROSS JOIN LATERAL pg_catalog.unnest(c.actions) AS a (action);

-- viewer < developer < manager < admin; admin holds every permission, present and future.
INSERT INTO authz.roles (name, rank, all_permissions, seeded) VALUES
    ('viewer',    10, false, true),
    ('developer', 20, false, true),
    ('manager',   30, false, true),
    ('admin',     40, true,  true);

-- Role defaults: each role lists its whole set (6 + 23 + 36 + 40 = 105 rows). Kept as a
-- function so that authz_init_role_permissions() can restore exactly these rows.
CREATE FUNCTION authz.seeded_role_permissions()
RETURNS TABLE (role text, permission text) LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH level (role, permission) AS (   -- what each role adds to the one below it
        SELECT 'viewer', t || ':read'
        FROM unnest(ARRAY['organization', 'project', 'document', 'dataset', 'pipeline', 'report']) AS t
        UNION ALL
        SELECT 'developer', t || ':' || a
        FROM unnest(ARRAY['project', 'document', 'dataset', 'pipeline', 'report']) AS t,
             unnest(ARRAY['create', 'update']) AS a
        UNION ALL
        SELECT 'developer', t || ':execute' FROM unnest(ARRAY['dataset', 'pipeline', 'report']) AS t
        UNION ALL
        SELECT 'developer', 'api_key:' || a FROM unnest(ARRAY['create', 'read', 'update', 'delete']) AS a
        UNION ALL
        SELECT 'manager', t || ':' || a
        FROM unnest(ARRAY['project', 'document', 'dataset', 'pipeline', 'report']) AS t,
             unnest(ARRAY['delete', 'export']) AS a
        UNION ALL
        SELECT 'manager', p FROM unnest(ARRAY['user:read', 'user:update', 'organization:update']) AS p
    )
    SELECT r.name, l.permission
    FROM authz.roles r
    JOIN authz.roles lower_role ON lower_role.rank <= r.rank
    JOIN level l ON l.role = lower_role.name
    WHERE r.seeded AND NOT r.all_permissions
    UNION ALL
    SELECT r.name, p.name
    FROM authz.roles r CROSS JOIN authz.permissions p
    WHERE r.seeded AND r.all_permissions AND p.seeded;
$$;

INSERT INTO authz.role_permissions (role, permission, seeded)
SELECT role, permission, true FROM authz.seeded_role_permissions();

-- API key scopes (docs/guide.md, API keys).
INSERT INTO authz.scopes (name, all_permissions, seeded) VALUES
    ('projects:read', false, true),   ('projects:write', false, true),
    ('documents:read', false, true),  ('documents:write', false, true),
    ('datasets:read', false, true),   ('datasets:write', false, true),
    ('pipelines:read', false, true),  ('pipelines:write', false, true),
    ('reports:read', false, true),    ('reports:write', false, true),
    ('users:read', false, true),      ('admin', true, true);

INSERT INTO authz.scope_permissions (scope, permission, seeded)
SELECT s.scope, p, true
FROM (VALUES
        ('projects:read',   ARRAY['project:read', 'project:export', 'organization:read']),
        ('projects:write',  ARRAY['project:create', 'project:update', 'project:delete']),
        ('documents:read',  ARRAY['document:read', 'document:export']),
        ('documents:write', ARRAY['document:create', 'document:update', 'document:delete']),
        ('datasets:read',   ARRAY['dataset:read', 'dataset:export']),
        ('datasets:write',  ARRAY['dataset:create', 'dataset:update', 'dataset:delete', 'dataset:execute']),
        ('pipelines:read',  ARRAY['pipeline:read', 'pipeline:export']),
        ('pipelines:write', ARRAY['pipeline:create', 'pipeline:update', 'pipeline:delete', 'pipeline:execute']),
        ('reports:read',    ARRAY['report:read', 'report:export']),
        ('reports:write',   ARRAY['report:create', 'report:update', 'report:delete', 'report:execute']),
        ('users:read',      ARRAY['user:read', 'organization:read'])
     ) AS s (scope, permissions)
CROSS JOIN LATERAL pg_catalog.unnest(s.permissions) AS p;
