-- authz_ext: the public SQL interface (docs/reference.md) and its privileges. Runs last.
--
-- Each function is a Rust C function (src/pg). None is SECURITY DEFINER or has a SET
-- clause: table access switches to the extension owner inside (src/pg/owner.rs), so a
-- per-row check pays no GUC save/restore.
--
-- Ids. An id parameter (written `id` below) takes bigint, integer, smallint, uuid or text
-- (and domains over them, varchar, citext), each independently and without casts, and so
-- does a driver parameter of unknown type (node-postgres sends all parameters so, psycopg
-- its strings). One declaration cannot do both: a parameter declared "any" takes every
-- type but never an untyped parameter. So each function is declared several times over
-- the same C function: every id "any" (the one documented), every id text, and, where two
-- or more ids are given, each mix of the two, so that PostgreSQL's own rules pick exactly
-- one for any call (typed non-text ids match only "any"; text, varchar, citext and unknown
-- prefer text). Defaults sit on the first two only; the mixes are declared at each number
-- of arguments instead. authz.declare() below writes them, and one C function serves all.
--
-- PUBLIC may call the checks (authz_relation_check too), api_key_validate,
-- authz_authenticate, authz_current_user and authz_can; everything that changes or lists
-- (authz_list_objects and authz_list_users too), and authz_set_user, is for the extension
-- owner and the roles it grants EXECUTE to.

CREATE FUNCTION authz.declare(p_name text, p_params text, p_returns text, p_markings text,
                              p_comment text, p_symbol text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_names text[] := '{}';
    v_types text[] := '{}';
    v_defaults text[] := '{}';
    v_ids int[] := '{}';
    v_required int;
    v_param text;
    v_symbol text := coalesce(p_symbol, p_name || '_wrapper');
    v_first_optional_id boolean;
    v_n int;
    v_mask int;
    v_variant_ids int[];
BEGIN
    FOREACH v_param IN ARRAY regexp_split_to_array(p_params, ',\s*') LOOP
        v_names := v_names || split_part(v_param, ' ', 1);
        v_types := v_types || split_part(split_part(v_param, ' ', 2), ' DEFAULT', 1);
        v_defaults := v_defaults || nullif(substring(v_param FROM ' DEFAULT (.*)$'), '');
        IF split_part(v_param, ' ', 2) = 'id' THEN
            v_ids := v_ids || cardinality(v_names);
        END IF;
    END LOOP;
    v_required := coalesce((SELECT min(i) - 1 FROM generate_subscripts(v_defaults, 1) i
                            WHERE v_defaults[i] IS NOT NULL), cardinality(v_names));
    v_first_optional_id := cardinality(v_ids) > 0 AND v_ids[1] > v_required;
    -- Every id "any" (the documented one); then, unless the first id may be left out (then
    -- only this one could be meant), every id text. Both keep the defaults: the first id
    -- tells them apart.
    PERFORM authz.declare_variant(p_name, v_names, v_types, v_defaults, cardinality(v_names), '{}',
                                  p_returns, p_markings, v_symbol, p_comment);
    IF cardinality(v_ids) > 0 AND NOT v_first_optional_id THEN
        PERFORM authz.declare_variant(p_name, v_names, v_types, v_defaults, cardinality(v_names), v_ids,
                                      p_returns, p_markings, v_symbol, NULL);
    END IF;
    -- The other mixes of "any" and text, at each number of arguments, without defaults.
    FOR v_n IN v_required .. cardinality(v_names) LOOP
        v_variant_ids := ARRAY(SELECT i FROM unnest(v_ids) i WHERE i <= v_n);
        CONTINUE WHEN cardinality(v_variant_ids) = 0;
        FOR v_mask IN 1 .. (1 << cardinality(v_variant_ids)) - 1 LOOP
            CONTINUE WHEN v_mask = (1 << cardinality(v_variant_ids)) - 1 AND NOT v_first_optional_id;
            PERFORM authz.declare_variant(
                p_name, v_names, v_types, '{}', v_n,
                ARRAY(SELECT v_variant_ids[b + 1] FROM generate_series(0, cardinality(v_variant_ids) - 1) b
                      WHERE v_mask & (1 << b) <> 0),
                p_returns, p_markings, v_symbol, NULL);
        END LOOP;
    END LOOP;
END;
$$;

-- One declaration: the first p_arity parameters, ids at p_text_ids as text and the others
-- "any"; p_comment, or (NULL) a pointer to the documented declaration.
CREATE FUNCTION authz.declare_variant(p_name text, p_names text[], p_types text[], p_defaults text[],
                                      p_arity int, p_text_ids int[], p_returns text, p_markings text,
                                      p_symbol text, p_comment text)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_params text[] := '{}';
    v_types text[] := '{}';
    v_type text;
BEGIN
    FOR i IN 1 .. p_arity LOOP
        v_type := CASE WHEN p_types[i] <> 'id' THEN p_types[i]
                       WHEN i = ANY (p_text_ids) THEN 'text' ELSE '"any"' END;
        v_types := v_types || v_type;
        v_params := v_params || (p_names[i] || ' ' || v_type || coalesce(' DEFAULT ' || p_defaults[i], ''));
    END LOOP;
    EXECUTE format('CREATE FUNCTION @extschema@.%I(%s) RETURNS %s LANGUAGE c %s AS %L, %L',
                   p_name, array_to_string(v_params, ', '), p_returns, p_markings, 'MODULE_PATHNAME', p_symbol);
    EXECUTE format('COMMENT ON FUNCTION @extschema@.%I(%s) IS %L', p_name, array_to_string(v_types, ', '),
                   coalesce(p_comment, format('Overload of %s for ids given as text or as driver parameters of unknown type; the same function.',
                                              p_name)));
END;
$$;

-- Checks ---------------------------------------------------------------------------------
-- PARALLEL RESTRICTED: a check reads through the leader's decision cache and takes fresh
-- snapshots, neither of which a parallel worker can do.

SELECT authz.declare('authz_check', 'user_id id, permission text, resource_id id',
    'boolean', 'STABLE PARALLEL RESTRICTED',
    'Whether the user holds the permission on the resource: resource override, then resource-type override, then role default, else false. NULL resource: the resource-type level.',
    'authz_check_fast');

SELECT authz.declare('authz_check', 'user_id id, permission text',
    'boolean', 'STABLE PARALLEL RESTRICTED',
    'Whether the user holds the permission on every resource of its type (resource-type override, then role default).',
    'authz_check_fast');

SELECT authz.declare('authz_explain', 'user_id id, permission text, resource_id id DEFAULT NULL',
    'TABLE (allowed boolean, decided_by text, role text, grant_id bigint, expires_at timestamptz, reason text)',
    'STABLE PARALLEL RESTRICTED ROWS 1',
    'authz_check with its reasons: which level decided (resource, resource_type, role, default), the role, the deciding grant and its expiry.');

SELECT authz.declare('authz_require', 'user_id id, permission text, resource_id id DEFAULT NULL',
    'void', 'STABLE PARALLEL RESTRICTED',
    'Raises insufficient_privilege (42501), naming user, permission and resource, unless authz_check allows.');

SELECT authz.declare('authz_resources', 'user_id id, permission text',
    'SETOF text', 'STABLE PARALLEL RESTRICTED ROWS 100',
    'The resource ids the user holds a live allow override for (not those reached through the role or a resource-type override): for RLS policies that find a selective user''s rows by index. A listing: not executable by PUBLIC.');

-- Overrides and roles ------------------------------------------------------------------------

SELECT authz.declare('authz_grant',
    'user_id id, permission text, resource_id id DEFAULT NULL, expires_at timestamptz DEFAULT NULL, effect text DEFAULT ''allow'', granted_by id DEFAULT NULL',
    'bigint', 'VOLATILE',
    'Creates or replaces the override for (user, permission, resource); NULL resource: every resource of the type. Returns the grant id.');

SELECT authz.declare('authz_grant_bulk', 'grants jsonb, granted_by id DEFAULT NULL',
    'bigint', 'VOLATILE',
    'Creates or replaces many overrides at once, all or nothing: grants is a JSON array of {"user_id", "permission", "resource_id", "expires_at", "effect"} objects (the last three optional), each written as authz_grant would; one audit row for the call (the argument, and the rows it replaced). Returns how many. Other grant writers wait until the transaction ends.');

SELECT authz.declare('authz_revoke', 'user_id id, permission text, resource_id id DEFAULT NULL',
    'boolean', 'VOLATILE',
    'Deletes the override for (user, permission, resource); true if there was one.');

SELECT authz.declare('authz_set_role', 'user_id id, role text',
    'void', 'VOLATILE',
    'Sets the user''s global role (viewer, developer, manager, admin); NULL removes it.');

SELECT authz.declare('authz_user_role', 'user_id id',
    'text', 'STABLE',
    'The user''s global role, or NULL.');

SELECT authz.declare('authz_user_permissions', 'user_id id',
    'TABLE (permission text, resource_id text, effect text, source text, expires_at timestamptz)', 'STABLE',
    'Where the user''s permissions come from: role defaults (source role) and live overrides (source resource or resource_type).');

-- Role defaults and the catalog --------------------------------------------------------------

CREATE FUNCTION @extschema@.authz_role_permissions(role text)
RETURNS SETOF text LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'authz_role_permissions_wrapper';
COMMENT ON FUNCTION @extschema@.authz_role_permissions(role text) IS
    'The permissions a role holds by default, including those of the roles below it.';

CREATE FUNCTION @extschema@.authz_init_role_permissions()
RETURNS void LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'authz_init_role_permissions_wrapper';
COMMENT ON FUNCTION @extschema@.authz_init_role_permissions() IS
    'Restores every seeded role default that was removed; defaults added by deployers stay.';

CREATE FUNCTION @extschema@.authz_role_permission_add(role text, permission text)
RETURNS void LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'authz_role_permission_add_wrapper';
COMMENT ON FUNCTION @extschema@.authz_role_permission_add(role text, permission text) IS
    'Adds a role default; it reaches every higher role too.';

CREATE FUNCTION @extschema@.authz_role_permission_remove(role text, permission text)
RETURNS void LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'authz_role_permission_remove_wrapper';
COMMENT ON FUNCTION @extschema@.authz_role_permission_remove(role text, permission text) IS
    'Removes a role default from this role''s own list (higher roles list their own).';

CREATE FUNCTION @extschema@.authz_define_permission(resource_type text, action text)
RETURNS void LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'authz_define_permission_wrapper';
COMMENT ON FUNCTION @extschema@.authz_define_permission(resource_type text, action text) IS
    'Adds <resource_type>:<action> to the catalog (and the resource type, if new).';

CREATE FUNCTION @extschema@.authz_cleanup_expired()
RETURNS bigint LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'authz_cleanup_expired_wrapper';
COMMENT ON FUNCTION @extschema@.authz_cleanup_expired() IS 'Deletes expired overrides; returns how many.';

-- API keys -----------------------------------------------------------------------------------

SELECT authz.declare('api_key_create', 'user_id id, name text, scopes text[], expires_at timestamptz DEFAULT NULL',
    'TABLE (key_id uuid, token text, preview text)', 'VOLATILE ROWS 1',
    'Creates an API key for the user with the given scopes; the token is returned here once and stored only as its SHA-256.');

CREATE FUNCTION @extschema@.api_key_validate(token text)
RETURNS TABLE (valid boolean, status text, key_id uuid, user_id text, scopes text[],
               expires_at timestamptz)
LANGUAGE c VOLATILE ROWS 1
AS 'MODULE_PATHNAME', 'api_key_validate_wrapper';
COMMENT ON FUNCTION @extschema@.api_key_validate(token text) IS
    'One row: status valid, malformed, unknown, expired or revoked; key, owner, scopes and expiry when valid. Volatile: it refreshes last_used_at (see authz.key_last_used_interval).';

SELECT authz.declare('api_key_revoke', 'key_id uuid, revoked_by id DEFAULT NULL',
    'boolean', 'VOLATILE',
    'Revokes the key (soft delete: it stays listed with revoked_at). False if it was already revoked or does not exist.');

SELECT authz.declare('api_key_list', 'user_id id',
    'TABLE (key_id uuid, name text, preview text, scopes text[], created_at timestamptz, expires_at timestamptz, last_used_at timestamptz, revoked_at timestamptz)',
    'STABLE',
    'The user''s keys, revoked and expired ones included, oldest first; never a token or hash.');

SELECT authz.declare('api_key_get', 'user_id id, key_id uuid',
    'TABLE (key_id uuid, name text, preview text, scopes text[], created_at timestamptz, expires_at timestamptz, last_used_at timestamptz, revoked_at timestamptz)',
    'STABLE ROWS 1',
    'One key, as api_key_list shows it, only if it belongs to the user; otherwise no row.');

-- Request context ------------------------------------------------------------------------------
-- The principal is backend memory that ends with the transaction (src/pg/context.rs), so
-- the two functions that read it are PARALLEL RESTRICTED: a parallel worker has no copy.

CREATE FUNCTION @extschema@.authz_authenticate(token text)
RETURNS text LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'authz_authenticate_wrapper';
COMMENT ON FUNCTION @extschema@.authz_authenticate(token text) IS
    'Validates the API key and makes its owner the principal of the current transaction, limited to the key''s scopes; returns the user id. Raises 28000 for a token that is not a valid key.';

SELECT authz.declare('authz_set_user', 'user_id id',
    'void', 'VOLATILE',
    'Makes the user the principal of the current transaction (NULL clears it), for applications that authenticate elsewhere. Not executable by PUBLIC.');

CREATE FUNCTION @extschema@.authz_current_user()
RETURNS text LANGUAGE c STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'authz_current_user_wrapper';
COMMENT ON FUNCTION @extschema@.authz_current_user() IS
    'The principal of the current transaction, or NULL.';

SELECT authz.declare('authz_can', 'permission text, resource_id id DEFAULT NULL',
    'boolean', 'STABLE PARALLEL RESTRICTED',
    'authz_check for the principal of the current transaction, and, when it authenticated with an API key, only if a scope of that (still valid) key covers the permission. False without a principal. No resource: the resource-type level.',
    'authz_can_fast');

-- Relationships (OpenFGA models) ----------------------------------------------------------------

CREATE FUNCTION @extschema@.authz_model_write(dsl text)
RETURNS text LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'authz_model_write_wrapper';
COMMENT ON FUNCTION @extschema@.authz_model_write(dsl text) IS
    'Validates a relationship model in OpenFGA''s DSL (schema 1.1) and stores it as the current model; returns its id. Invalid models: 22023 with the reason.';

CREATE FUNCTION @extschema@.authz_tuple_write(object text, relation text, subject text,
                                              condition text DEFAULT NULL, context jsonb DEFAULT NULL,
                                              expires_at timestamptz DEFAULT NULL)
RETURNS boolean LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'authz_tuple_write_wrapper';
COMMENT ON FUNCTION @extschema@.authz_tuple_write(text, text, text, text, jsonb, timestamptz) IS
    'Writes the tuple object#relation@subject (subject: type:id, type:* or type:id#relation), which the current model must allow (22023, OpenFGA error 2027); an existing one gets the new condition, context and expiry. True if the tuple is new.';

CREATE FUNCTION @extschema@.authz_tuple_delete(object text, relation text, subject text)
RETURNS boolean LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'authz_tuple_delete_wrapper';
COMMENT ON FUNCTION @extschema@.authz_tuple_delete(text, text, text) IS
    'Deletes the tuple object#relation@subject; true if there was one.';

CREATE FUNCTION @extschema@.authz_tuple_write_bulk(writes jsonb, deletes jsonb DEFAULT NULL)
RETURNS bigint LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'authz_tuple_write_bulk_wrapper';
COMMENT ON FUNCTION @extschema@.authz_tuple_write_bulk(jsonb, jsonb) IS
    'Deletes and writes many tuples at once, all or nothing: JSON arrays of {"object", "relation", "user"} objects (writes may add "condition" and "expires_at"), each checked and audited as authz_tuple_write and authz_tuple_delete would. Returns how many tuples were added or removed. Past 64 tuples in a transaction, other tuple writers wait until it ends.';

CREATE FUNCTION @extschema@.authz_relation_check(subject text, relation text, object text,
                                                 contextual_tuples jsonb DEFAULT NULL, context jsonb DEFAULT NULL,
                                                 model_id text DEFAULT NULL)
RETURNS boolean LANGUAGE c STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'authz_relation_check_wrapper';
COMMENT ON FUNCTION @extschema@.authz_relation_check(text, text, text, jsonb, jsonb, text) IS
    'Whether the subject is related to the object by the relation under the current model (or model_id), with OpenFGA''s semantics, counting the contextual tuples (a JSON array of {"object", "relation", "user"}) as stored ones. NULL subject, relation or object: false.';

CREATE FUNCTION @extschema@.authz_list_objects(subject text, type text, relation text,
                                               contextual_tuples jsonb DEFAULT NULL, context jsonb DEFAULT NULL,
                                               model_id text DEFAULT NULL)
RETURNS SETOF text LANGUAGE c STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'authz_list_objects_wrapper';
COMMENT ON FUNCTION @extschema@.authz_list_objects(text, text, text, jsonb, jsonb, text) IS
    'The objects (type:id) of the type that the subject is related to by the relation, as authz_relation_check would answer for each.';

CREATE FUNCTION @extschema@.authz_list_users(object text, relation text, filters text[],
                                             contextual_tuples jsonb DEFAULT NULL, context jsonb DEFAULT NULL,
                                             model_id text DEFAULT NULL)
RETURNS SETOF text LANGUAGE c STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'authz_list_users_wrapper';
COMMENT ON FUNCTION @extschema@.authz_list_users(text, text, text[], jsonb, jsonb, text) IS
    'The subjects related to the object by the relation, of the kinds the filters name (a type such as user: its objects and user:*; a userset such as group#member), as OpenFGA lists them.';

-- Observability ----------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.authz_stats()
RETURNS TABLE (counter text, value bigint, description text)
LANGUAGE c VOLATILE PARALLEL RESTRICTED ROWS 14
AS 'MODULE_PATHNAME', 'authz_stats_wrapper';
COMMENT ON FUNCTION @extschema@.authz_stats() IS
    'This backend''s counters since it started (checks, allows, denies, decision-cache hits, misses, bypasses and invalidations, key validations by status) and the memory its cache and authz_ext hold.';

-- Privileges on every declaration of a function at once ----------------------------------------

CREATE FUNCTION @extschema@.authz_grant_execute(role regrole, VARIADIC functions text[])
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name text;
    v_function regprocedure;
BEGIN
    FOREACH v_name IN ARRAY functions LOOP
        IF NOT EXISTS (SELECT FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
                       AND d.classid = 'pg_proc'::regclass
                       JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'authz_ext'
                       WHERE p.proname = v_name AND p.pronamespace = e.extnamespace) THEN
            RAISE EXCEPTION 'authz_ext has no function %', v_name USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR v_function IN
            SELECT p.oid FROM pg_proc p JOIN pg_extension e ON e.extname = 'authz_ext'
            WHERE p.proname = v_name AND p.pronamespace = e.extnamespace
        LOOP
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', v_function, role);
        END LOOP;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION @extschema@.authz_grant_execute(role regrole, VARIADIC functions text[]) IS
    'Grants EXECUTE on every declaration of the named authz_ext functions (each is declared for several id types) to a role; needs the right to grant them, as GRANT does.';

DROP FUNCTION authz.declare(text, text, text, text, text, text);
DROP FUNCTION authz.declare_variant(text, text[], text[], text[], int, int[], text, text, text, text);

-- Privileges -----------------------------------------------------------------------------------

DO $$
DECLARE
    v_function regprocedure;
BEGIN
    FOR v_function IN
        SELECT p.oid FROM pg_catalog.pg_proc p
        JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                                   AND d.objid = p.oid AND d.deptype = 'e'
        JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'authz_ext'
        WHERE p.pronamespace = e.extnamespace
          AND p.proname IN ('authz_grant', 'authz_grant_bulk', 'authz_revoke', 'authz_set_role', 'authz_user_role',
                            'authz_user_permissions', 'authz_resources', 'authz_role_permissions',
                            'authz_init_role_permissions', 'authz_role_permission_add',
                            'authz_role_permission_remove', 'authz_define_permission',
                            'authz_cleanup_expired', 'api_key_create', 'api_key_revoke',
                            'api_key_list', 'api_key_get', 'authz_set_user', 'authz_grant_execute',
                            'authz_model_write', 'authz_tuple_write', 'authz_tuple_delete',
                            'authz_tuple_write_bulk', 'authz_list_objects', 'authz_list_users')
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', v_function);
    END LOOP;
END;
$$;
