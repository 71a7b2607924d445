-- Permission resolution (docs/guide.md, Permissions): resource override > resource-type override
-- > role default (through the hierarchy) > deny; deny beats allow; expired overrides ignored.
CREATE EXTENSION authz_ext;

-- The decision matrix for document:update (viewer lacks it, developer and up have it).
-- One user per cell: its resource-level and type-level override, and its role.
CREATE TEMP TABLE cell AS
SELECT r_state, t_state, role,
       r_state || '/' || t_state || '/' || coalesce(role, 'none') AS user_id
FROM unnest(ARRAY['none', 'allow', 'deny', 'expired-allow', 'expired-deny']) AS r_state,
     unnest(ARRAY['none', 'allow', 'deny', 'expired-allow', 'expired-deny']) AS t_state,
     unnest(ARRAY[NULL, 'viewer', 'developer', 'manager', 'admin']) AS role;

SELECT count(*) AS role_assignments FROM (
    SELECT authz_set_role(user_id, role) FROM cell WHERE role IS NOT NULL) s;
SELECT count(*) AS resource_overrides FROM (
    SELECT authz_grant(user_id, 'document:update', 7, NULL, replace(r_state, 'expired-', ''))
    FROM cell WHERE r_state <> 'none') s;
SELECT count(*) AS type_overrides FROM (
    SELECT authz_grant(user_id, 'document:update', NULL, NULL, replace(t_state, 'expired-', ''))
    FROM cell WHERE t_state <> 'none') s;
-- authz_grant refuses a past expires_at, so the owner ages these directly.
UPDATE authz.grants SET expires_at = now() - interval '1 hour'
WHERE user_id LIKE 'expired-%' AND resource_id IS NOT NULL
   OR user_id LIKE '%/expired-%' AND resource_id IS NULL;

SELECT r_state AS resource_override, t_state AS type_override,
       max(CASE WHEN role IS NULL THEN authz_check(user_id, 'document:update', 7)::text END) AS no_role,
       max(CASE WHEN role = 'viewer' THEN authz_check(user_id, 'document:update', 7)::text END) AS viewer,
       max(CASE WHEN role = 'developer' THEN authz_check(user_id, 'document:update', 7)::text END) AS developer,
       max(CASE WHEN role = 'manager' THEN authz_check(user_id, 'document:update', 7)::text END) AS manager,
       max(CASE WHEN role = 'admin' THEN authz_check(user_id, 'document:update', 7)::text END) AS admin
FROM cell
GROUP BY r_state, t_state
ORDER BY array_position(ARRAY['none', 'allow', 'deny', 'expired-allow', 'expired-deny'], r_state),
         array_position(ARRAY['none', 'allow', 'deny', 'expired-allow', 'expired-deny'], t_state);

-- The same users on another resource: only the type level and the role apply.
SELECT t_state AS type_override,
       string_agg(coalesce(role, 'none') || '=' || authz_check(user_id, 'document:update', 8), ' '
                  ORDER BY array_position(ARRAY[NULL, 'viewer', 'developer', 'manager', 'admin'], role)) AS answers
FROM cell WHERE r_state = 'allow'
GROUP BY t_state ORDER BY array_position(ARRAY['none', 'allow', 'deny', 'expired-allow', 'expired-deny'], t_state);

-- The 2-argument form and a NULL resource ask the resource-type level.
SELECT authz_check('none/deny/admin', 'document:update') AS two_args,
       authz_check('none/deny/admin', 'document:update', NULL) AS null_resource,
       authz_check('none/none/admin', 'document:update') AS admin_by_role;

-- Ids: 42, 42::int, '42' and 42::smallint are one id; a uuid user with a bigint resource.
SELECT authz_grant(42, 'report:export', 1001::bigint);
SELECT authz_check(42, 'report:export', 1001), authz_check(42::int, 'report:export', '1001'),
       authz_check('42', 'report:export', 1001::smallint), authz_check(42::bigint, 'report:export', 1001::int);
SELECT authz_grant('0C1D8B6E-4F3A-4B9E-8C2D-1E5F6A7B8C9D'::uuid, 'dataset:execute', 77::bigint);
SELECT authz_check('0c1d8b6e-4f3a-4b9e-8c2d-1e5f6a7b8c9d'::uuid, 'dataset:execute', 77),
       authz_check('0c1d8b6e-4f3a-4b9e-8c2d-1e5f6a7b8c9d', 'dataset:execute', '77');
SELECT user_id, permission, resource_id FROM authz.grants WHERE user_id IN ('42', '0c1d8b6e-4f3a-4b9e-8c2d-1e5f6a7b8c9d');

-- The hierarchy is walked: a default added to viewer reaches developer, manager, admin.
SELECT authz_role_permission_add('viewer', 'report:export');
SELECT authz_set_role('v', 'viewer'), authz_set_role('d', 'developer');
SELECT authz_check('v', 'report:export', 1), authz_check('d', 'report:export', 1);
SELECT authz_role_permission_remove('viewer', 'report:export');
SELECT authz_check('v', 'report:export', 1), authz_check('d', 'report:export', 1);

-- Removing a seeded default from viewer; developer lists it itself, so keeps it.
SELECT authz_role_permission_remove('viewer', 'document:read');
SELECT authz_check('v', 'document:read', 1) AS viewer_reads, authz_check('d', 'document:read', 1) AS developer_reads;
SELECT count(*) AS viewer_defaults FROM authz_role_permissions('viewer');
SELECT authz_init_role_permissions();
SELECT count(*) AS viewer_defaults FROM authz_role_permissions('viewer');
SELECT authz_role_permissions('viewer');

-- admin holds permissions added to the catalog later; others get them when added.
SELECT authz_define_permission('invoice', 'approve');
SELECT authz_check('none/none/admin', 'invoice:approve', 1) AS admin, authz_check('d', 'invoice:approve', 1) AS developer;
SELECT authz_role_permission_add('developer', 'invoice:approve');
SELECT authz_check('d', 'invoice:approve', 1) AS developer, authz_check('v', 'invoice:approve', 1) AS viewer;

-- Roles: set, change, remove.
SELECT authz_user_role('d');
SELECT authz_set_role('d', 'manager');
SELECT authz_user_role('d');
SELECT authz_set_role('d', NULL);
SELECT authz_user_role('d'), authz_check('d', 'document:read', 1);

-- Upsert: granting again replaces the override and keeps its id.
SELECT authz_grant('u', 'project:delete', 5) AS first, authz_grant('u', 'project:delete', 5, NULL, 'deny') AS second;
SELECT effect FROM authz.grants WHERE user_id = 'u';
SELECT authz_check('u', 'project:delete', 5);
SELECT authz_revoke('u', 'project:delete', 5) AS revoked, authz_revoke('u', 'project:delete', 5) AS again;

-- Listing a user's permissions and where they come from.
SELECT authz_set_role('lister', 'viewer');
SELECT authz_grant('lister', 'document:delete', 3);
SELECT authz_grant('lister', 'project:read', NULL, NULL, 'deny');
SELECT authz_grant('lister', 'report:read', 9, now() + interval '1 day');
SELECT permission, resource_id, effect, source, expires_at IS NOT NULL AS expires
FROM authz_user_permissions('lister');

-- Cleanup deletes expired overrides only.
SELECT authz_cleanup_expired() AS deleted;
SELECT count(*) AS expired_left FROM authz.grants WHERE expires_at <= now();

DROP EXTENSION authz_ext;
