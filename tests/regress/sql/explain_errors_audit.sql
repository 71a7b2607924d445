-- authz_explain, authz_require, bad input and the audit log.
CREATE EXTENSION authz_ext;
SELECT authz_set_role(1, 'viewer');
SELECT authz_grant(1, 'document:update', 10) AS allow_id;
SELECT authz_grant(1, 'document:read', NULL, NULL, 'deny') AS type_deny_id;
SELECT authz_grant(1, 'document:read', 11, now() + interval '1 day') AS expiring_id;

-- Which level decided, the role, the deciding override and a reason.
SELECT allowed, decided_by, role, grant_id, expires_at IS NOT NULL AS expires, reason
FROM authz_explain(1, 'document:update', 10);
SELECT allowed, decided_by, role, grant_id, expires_at IS NOT NULL AS expires, reason
FROM authz_explain(1, 'document:read', 11);
SELECT allowed, decided_by, role, grant_id, reason FROM authz_explain(1, 'document:read', 12);
SELECT allowed, decided_by, role, grant_id, reason FROM authz_explain(1, 'project:read');
SELECT allowed, decided_by, role, grant_id, reason FROM authz_explain(1, 'project:delete', 3);
SELECT allowed, decided_by, role, grant_id, reason FROM authz_explain(2, 'project:read', 3);

-- authz_require: nothing when allowed, 42501 naming user, permission and resource.
SELECT authz_require(1, 'document:update', 10);
SELECT authz_require(1, 'document:read', 12);
\echo :SQLSTATE
SELECT authz_require(1, 'project:delete');
\echo :SQLSTATE

-- Bad input: 22023 (with what is valid), 22004 for NULL in a mutator, 22P02 for bad uuid text.
SELECT authz_check(1, 'document:fly', 1);
\echo :SQLSTATE
SELECT authz_check(1, 'spaceship:fly', 1);
\echo :SQLSTATE
SELECT authz_check(1, 'Document:Read', 1);
\echo :SQLSTATE
SELECT authz_check(1.5, 'document:read', 1);
\echo :SQLSTATE
SELECT authz_set_role(1, 'superhero');
\echo :SQLSTATE
SELECT authz_role_permissions('superhero');
\echo :SQLSTATE
SELECT authz_grant(1, 'document:read', 1, NULL, 'maybe');
\echo :SQLSTATE
SELECT authz_grant(1, 'document:read', 1, now() - interval '1 minute');
\echo :SQLSTATE
SELECT authz_grant(1, 'document:read', '');
\echo :SQLSTATE
SELECT authz_define_permission('Bad Type', 'read');
\echo :SQLSTATE
SELECT authz_role_permission_remove('admin', 'document:read');
\echo :SQLSTATE
SELECT authz_grant(NULL::int, 'document:read');
\echo :SQLSTATE
SELECT authz_grant(1, NULL);
\echo :SQLSTATE
SELECT authz_grant(1, 'document:read', 1, NULL, NULL);
\echo :SQLSTATE
SELECT authz_revoke(NULL::bigint, 'document:read');
\echo :SQLSTATE
SELECT authz_grant('not-a-uuid'::uuid, 'document:read');
\echo :SQLSTATE

-- NULL user or permission in a check: false, never an error.
SELECT authz_check(NULL::int, 'document:read', 1) AS null_user, authz_check(1, NULL, 1) AS null_permission;

-- Nothing is half-written after an error: the failed calls above left no rows.
SELECT count(*) AS grants FROM authz.grants;

-- Every change writes one audit row in the same transaction, with old and new values.
SET authz.trace_id = 'req-0001';
SELECT authz_grant(5, 'project:export', 3, NULL, 'allow', 'alice');
SELECT authz_grant(5, 'project:export', 3, NULL, 'deny', 'bob');
RESET authz.trace_id;
SELECT authz_revoke(5, 'project:export', 3);
SELECT action, actor, db_role, target, old_value ->> 'effect' AS old_effect,
       new_value ->> 'effect' AS new_effect, trace_id
FROM authz.audit_log WHERE target ->> 'user_id' = '5' ORDER BY id;

-- A rolled-back change leaves no audit row (and no grant).
SELECT count(*) AS audit_rows_before FROM authz.audit_log \gset
BEGIN;
SELECT authz_grant(6, 'project:export', 3) > 0 AS granted;
ROLLBACK;
SELECT count(*) - :audit_rows_before AS new_audit_rows, (SELECT count(*) FROM authz.grants WHERE user_id = '6') AS grants
FROM authz.audit_log;

-- Function markings: checks are STABLE and PARALLEL RESTRICTED, mutators VOLATILE, none is
-- SECURITY DEFINER or carries a SET clause; PUBLIC may execute only the checks,
-- api_key_validate, authz_authenticate, authz_current_user and authz_can.
SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS args,
       p.provolatile, p.proparallel, p.prosecdef, p.proconfig,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
FROM pg_proc p
JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'authz_ext'
WHERE p.pronamespace = 'public'::regnamespace
ORDER BY p.proname, args;

DROP EXTENSION authz_ext;
