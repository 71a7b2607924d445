-- Ids as applications hold them: every id parameter takes bigint, integer, smallint, uuid,
-- text, varchar, citext, a domain over one of them, or a parameter of unknown type (as
-- drivers send strings), each independently, with no casts. One id, one canonical text.
CREATE EXTENSION authz_ext;
CREATE EXTENSION citext;
CREATE DOMAIN account_id AS bigint CHECK (VALUE > 0);
CREATE DOMAIN document_key AS uuid;
CREATE DOMAIN email AS citext;
SELECT authz_grant(42, 'document:read', 'b7c1c5e2-6a4e-4d0b-9d1c-0d5c3b0e8a11'::uuid) > 0 AS granted;
SELECT authz_grant('Ann@Example.com'::citext, 'document:read', 7) > 0 AS granted;

SELECT authz_check(42, 'document:read', 'b7c1c5e2-6a4e-4d0b-9d1c-0d5c3b0e8a11'::uuid) AS int_and_uuid,
       authz_check(42::smallint, 'document:read', 'B7C1C5E2-6A4E-4D0B-9D1C-0D5C3B0E8A11'::uuid) AS smallint_and_uuid,
       authz_check('42', 'document:read', 'b7c1c5e2-6a4e-4d0b-9d1c-0d5c3b0e8a11') AS literals,
       authz_check(42::account_id, 'document:read', 'b7c1c5e2-6a4e-4d0b-9d1c-0d5c3b0e8a11'::document_key) AS domains,
       authz_check('42'::varchar, 'document:read', 'b7c1c5e2-6a4e-4d0b-9d1c-0d5c3b0e8a11'::text) AS varchar_and_text;
-- citext is compared as the text it holds: the stored id is exactly what was given.
SELECT authz_check('Ann@Example.com'::citext, 'document:read', 7) AS citext,
       authz_check('Ann@Example.com'::email, 'document:read', 7::account_id) AS citext_domain,
       authz_check('ann@example.com'::citext, 'document:read', 7) AS other_case;
SELECT user_id, resource_id FROM authz.grants ORDER BY id;

-- Parameters of unknown type, as node-postgres sends every parameter: alone and mixed with
-- typed ones, in every function that takes ids.
PREPARE untyped_check AS SELECT authz_check($1, $2, $3);
EXECUTE untyped_check('42', 'document:read', 'b7c1c5e2-6a4e-4d0b-9d1c-0d5c3b0e8a11');
PREPARE mixed_check AS SELECT authz_check($1::bigint, $2, $3);
EXECUTE mixed_check(42, 'document:read', 'b7c1c5e2-6a4e-4d0b-9d1c-0d5c3b0e8a11');
PREPARE untyped_grant AS SELECT authz_grant($1, $2, $3, $4, $5) > 0;
EXECUTE untyped_grant('43', 'document:read', '9', NULL, 'deny');
PREPARE mixed_grant AS SELECT authz_grant($1::int, $2, $3) > 0;
EXECUTE mixed_grant(43, 'document:update', 'nine');
PREPARE untyped_explain AS SELECT allowed, decided_by FROM authz_explain($1, $2, $3);
EXECUTE untyped_explain('43', 'document:read', '9');
PREPARE untyped_revoke AS SELECT authz_revoke($1, $2, $3);
EXECUTE untyped_revoke('43', 'document:update', 'nine');
PREPARE untyped_key AS SELECT preview IS NOT NULL FROM api_key_create($1, $2, $3);
EXECUTE untyped_key('43', 'k', '{documents:read}');
PREPARE untyped_role AS SELECT authz_set_role($1, $2);
EXECUTE untyped_role('43', 'viewer');
SELECT authz_user_role(43) AS role_of_43;

-- char(n) without its padding, as PostgreSQL casts it to text.
SELECT authz_check('42'::char(5), 'document:read', 'b7c1c5e2-6a4e-4d0b-9d1c-0d5c3b0e8a11') AS padded_char;

-- Other types are refused, with the list of what ids may be; also a type that only has
-- citext's name.
SELECT authz_check(4.2, 'document:read', 1);
\echo :SQLSTATE
CREATE SCHEMA lookalike;
CREATE TYPE lookalike.citext AS ENUM ('42');
SELECT authz_check('42'::lookalike.citext, 'document:read', 1);
\echo :SQLSTATE
DROP SCHEMA lookalike CASCADE;
SELECT authz_check(42, 'document:read', now());
\echo :SQLSTATE

-- Ids read row after row from a table (short varlena headers, compressed values,
-- varchar, integers of each width), answered the same whether a call
-- site answers from what it remembers or reads the value the general way.
CREATE TABLE id_rows (n int, u text, r text, rv varchar, ri int, rs smallint);
INSERT INTO id_rows
SELECT n, 'inline-user', CASE WHEN n = 5 THEN repeat('long-id ', 1000) ELSE 'doc-' || (n % 3) END,
       CASE WHEN n = 6 THEN repeat('y', 3000) ELSE 'doc-' || (n % 3) END, n % 3, n % 3
FROM generate_series(1, 9) n;
SELECT authz_grant('inline-user', 'document:read', 'doc-1') > 0 AS granted,
       authz_grant('inline-user', 'document:read', 2) > 0 AS granted_2;
SELECT n, authz_check(u, 'document:read', r) AS by_text, authz_check(u, 'document:read', rv) AS by_varchar,
       authz_check(u, 'document:read', ri) AS by_int, authz_check(u, 'document:read', rs) AS by_smallint,
       authz_check(u, 'document:read') AS type_level
FROM id_rows ORDER BY n;
DROP TABLE id_rows;
DROP EXTENSION authz_ext;
DROP DOMAIN email, document_key, account_id;
DROP EXTENSION citext;
