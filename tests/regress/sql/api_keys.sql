-- API keys: creation, the token format, storage, every validation status, last_used_at,
-- revocation, listing isolation, bad input, audit and privileges.
CREATE EXTENSION authz_ext;

-- A token is shown once: azk_ + 32 base62 + 6 base62 checksum; the preview is its first 12.
SELECT key_id AS alice_key, token AS alice_token, preview AS alice_preview
FROM api_key_create('alice', 'ci deploy', ARRAY['documents:read', 'projects:read', 'documents:read']) \gset
SELECT :'alice_token' ~ '^azk_[0-9A-Za-z]{38}$' AS token_shape,
       length(:'alice_token') AS token_length,
       :'alice_preview' = left(:'alice_token', 12) AS preview_is_prefix;

-- Stored: the SHA-256 of the token, as PostgreSQL's sha256() computes it (and pgcrypto's
-- digest(token, 'sha256')); never the token, anywhere.
SELECT key_hash = sha256(convert_to(:'alice_token', 'UTF8')) AS sha256_matches,
       scopes AS normalized_scopes, user_id, name, created_by, revoked_at IS NULL AS live
FROM authz.api_keys WHERE id = :'alice_key';
SELECT count(*) AS rows_containing_token FROM authz.api_keys k WHERE k::text LIKE '%' || :'alice_token' || '%';
SELECT count(*) AS audit_rows_with_secret FROM authz.audit_log a
WHERE a::text LIKE '%' || :'alice_token' || '%'
   OR a::text LIKE '%' || encode(sha256(convert_to(:'alice_token', 'UTF8')), 'hex') || '%';

-- valid: one row with the key, its owner, scopes and expiry.
SELECT valid, status, key_id = :'alice_key' AS same_key, user_id, scopes, expires_at
FROM api_key_validate(:'alice_token');
-- The same row however a set-returning function is called: in the select list, one column
-- of it, with ordinality, beside another function.
SELECT api_key_validate(:'alice_token') = (SELECT v FROM api_key_validate(:'alice_token') AS v) AS same_in_select_list;
SELECT (api_key_validate(:'alice_token')).status, (api_key_validate('azk_')).status AS malformed;
SELECT status, user_id, n FROM api_key_validate(:'alice_token') WITH ORDINALITY AS v(valid, status, key_id, user_id, scopes, expires_at, n);
SELECT status, g FROM ROWS FROM (api_key_validate(:'alice_token'), generate_series(1, 2)) AS r(valid, status, key_id, user_id, scopes, expires_at, g);

-- malformed: answered from the string alone (no scan of the keys table or its indexes).
-- The transaction's scan counters are compared before and after.
CREATE FUNCTION key_table_scans() RETURNS bigint LANGUAGE sql AS $$
    SELECT pg_stat_get_xact_numscans('authz.api_keys'::regclass)
         + (SELECT sum(pg_stat_get_xact_numscans(indexrelid)) FROM pg_index
            WHERE indrelid = 'authz.api_keys'::regclass)
$$;
BEGIN;
SELECT key_table_scans() AS scans_before \gset
SELECT t.label, v.valid, v.status, v.key_id, v.user_id, v.scopes, v.expires_at
FROM (VALUES ('NULL', NULL),
             ('empty', ''),
             ('prefix only', 'azk_'),
             ('one character short', left(:'alice_token', 41)),
             ('one character more', :'alice_token' || 'a'),
             ('checksum changed', left(:'alice_token', 41) || translate(right(:'alice_token', 1), 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', 'bcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789a')),
             ('random part changed', left(:'alice_token', 5) || translate(substr(:'alice_token', 6, 1), 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', 'bcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789a') || substr(:'alice_token', 7)),
             ('other prefix', 'ghp_' || substr(:'alice_token', 5)),
             ('upper-case prefix', upper(left(:'alice_token', 4)) || substr(:'alice_token', 5)),
             ('surrounding space', ' ' || :'alice_token'),
             ('non-ASCII', left(:'alice_token', 10) || 'é' || substr(:'alice_token', 13)),
             ('1 MB', repeat('azk_', 262144))) AS t (label, token),
     LATERAL api_key_validate(t.token) AS v;
SELECT key_table_scans() - :scans_before AS scans_by_malformed;
COMMIT;
-- A well-formed token not seen before is looked up: one scan, through the hash index.
SELECT token AS other_token FROM api_key_create('dave', 'other', ARRAY['admin']) \gset
BEGIN;
SELECT key_table_scans() AS scans_before \gset
SELECT status FROM api_key_validate(:'other_token');
SELECT key_table_scans() - :scans_before AS scans_by_one_wellformed;
COMMIT;

-- unknown: a well-formed token (checksum right) whose key was never stored.
BEGIN;
SELECT token AS never_stored FROM api_key_create('alice', 'discarded', ARRAY['admin']) \gset
ROLLBACK;
SELECT valid, status, key_id, user_id FROM api_key_validate(:'never_stored');

-- expired: expires_at passed (set here directly; creation refuses a past time).
SELECT key_id AS expiring_key, token AS expiring_token
FROM api_key_create('alice', 'nightly', ARRAY['reports:read'], now() + interval '1 hour') \gset
SELECT status, expires_at IS NOT NULL AS has_expiry FROM api_key_validate(:'expiring_token');
UPDATE authz.api_keys SET expires_at = now() - interval '1 second' WHERE id = :'expiring_key';
SELECT valid, status, key_id, user_id, scopes, expires_at FROM api_key_validate(:'expiring_token');

-- revoked: a soft delete; the second revoke returns false.
SELECT key_id AS old_key, token AS old_token FROM api_key_create('alice', 'old', ARRAY['admin']) \gset
SELECT api_key_revoke(:'old_key', 'admin-7') AS first_revoke;
SELECT api_key_revoke(:'old_key') AS second_revoke;
SELECT api_key_revoke('00000000-0000-0000-0000-000000000000') AS unknown_key_revoke;
SELECT valid, status, key_id, user_id, scopes, expires_at FROM api_key_validate(:'old_token');
SELECT revoked_by, revoked_at IS NOT NULL AS revoked FROM authz.api_keys WHERE id = :'old_key';
-- A revoked key that has also expired reports revoked.
UPDATE authz.api_keys SET expires_at = now() - interval '1 second' WHERE id = :'old_key';
SELECT status FROM api_key_validate(:'old_token');

-- last_used_at: written by validation at most once per authz.key_last_used_interval.
SELECT key_id AS fresh_key, token AS fresh_token FROM api_key_create(7, 'fresh', ARRAY['admin']) \gset
SELECT last_used_at IS NULL AS never_used FROM api_key_get(7, :'fresh_key');
SELECT status FROM api_key_validate(:'fresh_token');
SELECT last_used_at AS first_use FROM api_key_get(7, :'fresh_key') \gset
SELECT status FROM api_key_validate(:'fresh_token');
SELECT last_used_at = :'first_use' AS unchanged_within_interval FROM api_key_get(7, :'fresh_key');
SET authz.key_last_used_interval = 0;
SELECT status FROM api_key_validate(:'fresh_token');
SELECT last_used_at > :'first_use' AS written_with_interval_0 FROM api_key_get(7, :'fresh_key');
SELECT last_used_at AS second_use FROM api_key_get(7, :'fresh_key') \gset
-- Never in a read-only transaction, and validation still answers.
BEGIN READ ONLY;
SELECT valid, status FROM api_key_validate(:'fresh_token');
COMMIT;
SELECT last_used_at = :'second_use' AS unchanged_after_read_only FROM api_key_get(7, :'fresh_key');
RESET authz.key_last_used_interval;
SELECT setting, unit, context, short_desc IS NOT NULL AS described
FROM pg_settings WHERE name = 'authz.key_last_used_interval';

-- Listing: one user's keys only, revoked and expired ones included; never a hash.
SELECT key_id AS bob_key, token AS bob_token FROM api_key_create('bob', 'laptop', ARRAY['users:read']) \gset
SELECT name, preview = left(:'alice_token', 12) AS is_alice_ci, scopes,
       expires_at IS NOT NULL AS has_expiry, revoked_at IS NOT NULL AS revoked
FROM api_key_list('alice') ORDER BY created_at;
SELECT name, key_id = :'bob_key' AS is_bob_key FROM api_key_list('bob');
SELECT count(*) AS keys_of_nobody FROM api_key_list('carol');
SELECT count(*) AS null_user_keys FROM api_key_list(NULL::text);
-- api_key_get: a key only through its owner.
SELECT name FROM api_key_get('alice', :'alice_key');
SELECT count(*) AS bob_sees_alice_key FROM api_key_get('bob', :'alice_key');
SELECT count(*) AS alice_sees_bob_key FROM api_key_get('alice', :'bob_key');
SELECT count(*) AS null_key FROM api_key_get('alice', NULL);
-- Ids of any type are one id: 7, 7::bigint and '7'.
SELECT (SELECT count(*) FROM api_key_list(7)) AS by_int,
       (SELECT count(*) FROM api_key_list(7::bigint)) AS by_bigint,
       (SELECT count(*) FROM api_key_list('7')) AS by_text;
SELECT pg_get_function_result('api_key_list("any")'::regprocedure) AS list_columns;

-- Bad input: 22023 for scopes, names and past expiry; 22004 for NULLs; nothing stored.
SELECT count(*) AS keys_before FROM authz.api_keys \gset
SELECT * FROM api_key_create('alice', 'k', ARRAY[]::text[]);
\echo :SQLSTATE
SELECT * FROM api_key_create('alice', 'k', ARRAY['documents:read', 'documents:fly']);
\echo :SQLSTATE
SELECT * FROM api_key_create('alice', 'k', ARRAY['documents:read', NULL]);
\echo :SQLSTATE
SELECT * FROM api_key_create('alice', 'k', NULL);
\echo :SQLSTATE
SELECT * FROM api_key_create('alice', NULL, ARRAY['admin']);
\echo :SQLSTATE
SELECT * FROM api_key_create('alice', '  ', ARRAY['admin']);
\echo :SQLSTATE
SELECT * FROM api_key_create('alice', repeat('n', 201), ARRAY['admin']);
\echo :SQLSTATE
SELECT * FROM api_key_create('alice', 'k', ARRAY['admin'], now() - interval '1 second');
\echo :SQLSTATE
SELECT * FROM api_key_create(NULL::int, 'k', ARRAY['admin']);
\echo :SQLSTATE
SELECT * FROM api_key_create('', 'k', ARRAY['admin']);
\echo :SQLSTATE
SELECT * FROM api_key_create(1.5, 'k', ARRAY['admin']);
\echo :SQLSTATE
SELECT api_key_revoke(NULL);
\echo :SQLSTATE
SELECT api_key_revoke('not-a-uuid');
\echo :SQLSTATE
SELECT count(*) - :keys_before AS keys_added_by_errors FROM authz.api_keys;

-- Audit: create and revoke (also a no-op revoke), never the token or its hash.
SELECT action, actor, target ? 'key_id' AS has_key_id, target ->> 'user_id' AS user_id,
       new_value ->> 'name' AS name, new_value -> 'scopes' AS scopes,
       new_value ->> 'revoked_by' AS revoked_by
FROM authz.audit_log WHERE action LIKE 'api_key%' ORDER BY id;
SELECT count(*) AS audit_rows_with_secret FROM authz.audit_log a, authz.api_keys k
WHERE a::text LIKE '%' || encode(k.key_hash, 'hex') || '%'
   OR a::text LIKE '%' || encode(k.key_hash, 'base64') || '%';

-- Privileges: PUBLIC validates keys but cannot create, list, get, revoke or read the table.
CREATE ROLE authz_keys_plain;
SET ROLE authz_keys_plain;
SELECT valid, status, user_id FROM api_key_validate(:'bob_token');
SELECT * FROM api_key_create('mallory', 'k', ARRAY['admin']);
\echo :SQLSTATE
SELECT * FROM api_key_list('bob');
\echo :SQLSTATE
SELECT * FROM api_key_get('bob', :'bob_key');
\echo :SQLSTATE
SELECT api_key_revoke(:'bob_key');
\echo :SQLSTATE
SELECT key_hash FROM authz.api_keys;
\echo :SQLSTATE
RESET ROLE;
DROP ROLE authz_keys_plain;
SELECT proname, provolatile, proparallel, prosecdef
FROM pg_proc WHERE proname LIKE 'api_key%' ORDER BY proname;

-- The keys a backend remembers take at most an eighth of authz.cache_memory (another eighth
-- for key principals' checks): 1,000 keys (about 210 bytes each) validated with 64 kB
-- leave the cache's whole figure under 64 kB plus an eighth (the miss log) plus a quarter;
-- every key is still valid, the second time too.
SET authz.cache_memory = '64kB';
CREATE TEMP TABLE many_tokens AS
SELECT k.token FROM generate_series(1, 1000) AS i, LATERAL api_key_create('many' || i, 'many', ARRAY['documents:read']) AS k;
SELECT count(*) FILTER (WHERE v.valid) AS valid_first, count(*) AS keys
FROM many_tokens, LATERAL api_key_validate(token) AS v;
SELECT count(*) FILTER (WHERE v.valid) AS valid_again FROM many_tokens, LATERAL api_key_validate(token) AS v;
SELECT value <= 64 * 1024 * 11 / 8 AS cache_within_bound FROM authz_stats() WHERE counter = 'cache_bytes';
RESET authz.cache_memory;
DROP TABLE many_tokens;

DROP EXTENSION authz_ext;

