-- Writing many overrides (docs/guide.md, Importing overrides): authz_grant_bulk, all or
-- nothing, audited in one row; and authz_grant/authz_revoke reading one index entry,
-- however many grants of the permission exist.
CREATE EXTENSION authz_ext;
SET authz.trace_id = 'import-1';

-- Resource and type level, integer and text ids, expiry, effect; the count written.
SELECT authz_grant_bulk('[
    {"user_id": 1, "permission": "document:read", "resource_id": 10},
    {"user_id": "1", "permission": "document:read", "resource_id": "11", "effect": "deny"},
    {"user_id": "alice", "permission": "project:update"},
    {"user_id": "alice", "permission": "report:export", "resource_id": 3, "expires_at": "2999-01-01T00:00:00Z"},
    {"user_id": "bob", "permission": "document:delete", "resource_id": null, "effect": "deny"}
]', 'importer') AS written;
SELECT user_id, permission, resource_id, effect, expires_at, granted_by
FROM authz.grants ORDER BY id;
-- The checks see them (with the cache on: the commit dropped the users it named).
SELECT authz_check(1, 'document:read', 10) AS read_10, authz_check(1, 'document:read', 11) AS read_11,
       authz_check('alice', 'project:update', 99) AS alice_updates, authz_check('bob', 'document:delete') AS bob_deletes;

-- Replacing some and adding others in one call (the insert of all meets the unique index,
-- is undone, and the existing rows are updated instead): one audit row per call, with the
-- argument as given and the rows it replaced.
SELECT authz_grant_bulk('[{"user_id": 1, "permission": "document:read", "resource_id": 10, "effect": "deny"},
                          {"user_id": "alice", "permission": "project:update", "effect": "deny"},
                          {"user_id": "carol", "permission": "document:read", "resource_id": 10}]') AS written;
SELECT user_id, permission, resource_id, effect, granted_by FROM authz.grants ORDER BY id;
SELECT action, actor, target, jsonb_array_length(new_value) AS elements, new_value -> 1 AS second_element,
       (SELECT jsonb_agg(jsonb_build_object('user_id', o -> 'user_id', 'resource_id', o -> 'resource_id',
                                            'effect', o -> 'effect', 'granted_by', o -> 'granted_by'))
        FROM jsonb_array_elements(old_value) o) AS replaced, trace_id
FROM authz.audit_log ORDER BY id;
SELECT authz_check(1, 'document:read', 10) AS read_10, authz_check('alice', 'project:update', 99) AS alice_updates;

-- Bad input: 22023 naming the element, or the catalog's own error; nothing written.
SELECT count(*) AS grants_before FROM authz.grants \gset
\set VERBOSITY terse
SELECT authz_grant_bulk('{"user_id": 1}');
SELECT authz_grant_bulk('[{"user_id": 2, "permission": "document:read"}, 7]');
SELECT authz_grant_bulk('[{"user_id": 2, "permission": "document:read", "resource": 5}]');
SELECT authz_grant_bulk('[{"permission": "document:read"}]');
SELECT authz_grant_bulk('[{"user_id": 2.5, "permission": "document:read"}]');
SELECT authz_grant_bulk('[{"user_id": "", "permission": "document:read"}]');
SELECT authz_grant_bulk(jsonb_build_array(jsonb_build_object('user_id', repeat('x', 1025), 'permission', 'document:read')));
SELECT authz_grant_bulk('[{"user_id": 2, "permission": "document:read", "resource_id": true}]');
SELECT authz_grant_bulk('[{"user_id": 2, "permission": 5}]');
SELECT authz_grant_bulk('[{"user_id": 2, "permission": "document:read", "effect": "maybe"}]');
SELECT authz_grant_bulk('[{"user_id": 2, "permission": "document:read", "expires_at": 5}]');
SELECT authz_grant_bulk('[{"user_id": 2, "permission": "document:read"}, {"user_id": 3, "permission": "document:reed"}]');
SELECT authz_grant_bulk('[{"user_id": 2, "permission": "document:read", "expires_at": "2000-01-01"}]');
SELECT authz_grant_bulk('[{"user_id": 2, "permission": "document:read", "expires_at": "soon"}]');
SELECT authz_grant_bulk('[{"user_id": 2, "permission": "document:read", "resource_id": 5},
                          {"user_id": "2", "permission": "document:read", "resource_id": "5"}]');
SELECT authz_grant_bulk(NULL);
\set VERBOSITY default
SELECT count(*) - :grants_before AS written_by_the_failures FROM authz.grants;
SELECT authz_grant_bulk('[]') AS nothing;

-- Only for the owner and the roles it grants EXECUTE to.
CREATE ROLE authz_bulk_app;
SET ROLE authz_bulk_app;
\set VERBOSITY terse
SELECT authz_grant_bulk('[]');
\set VERBOSITY default
RESET ROLE;
DROP ROLE authz_bulk_app;

-- authz_grant and authz_revoke find the row through the unique index on (user,
-- permission, resource): with 2,000 grants of document:read they read a row or two, not
-- every grant of the permission. (Tuples read by this transaction, before and after.)
SELECT authz_grant_bulk((SELECT jsonb_agg(jsonb_build_object('user_id', 'many-' || n, 'permission', 'document:read',
                                                               'resource_id', n))
                         FROM generate_series(1, 2000) n)) AS written;
ANALYZE authz.grants;
CREATE FUNCTION grants_tuples_read() RETURNS bigint LANGUAGE sql AS $$
    SELECT pg_stat_get_xact_tuples_returned('authz.grants'::regclass)
         + pg_stat_get_xact_tuples_fetched('authz.grants'::regclass)
$$;
BEGIN;
SELECT grants_tuples_read() AS before \gset
SELECT authz_grant('newcomer', 'document:read', 5) > 0 AS granted,
       authz_grant('newcomer', 'document:read', 5, NULL, 'deny') > 0 AS replaced,
       authz_revoke('newcomer', 'document:read', 5) AS revoked,
       authz_grant('newcomer', 'document:read') > 0 AS type_level,
       authz_revoke('newcomer', 'document:read') AS type_level_revoked;
SELECT grants_tuples_read() - :before <= 10 AS a_few_tuples_read;
COMMIT;

DROP EXTENSION authz_ext;
