-- authz_ext: internal functions in schema authz, executable by the extension owner only.
-- The public functions of sql/api.sql are Rust wrappers: they turn ids of any type into
-- canonical text, switch to the extension owner, and call these. Every one pins
-- search_path, and every mutator writes its audit row here, in the same transaction.

CREATE FUNCTION authz.write_audit(p_action text, p_target jsonb, p_old jsonb, p_new jsonb,
                                  p_actor text, p_db_role text)
RETURNS void LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO authz.audit_log (actor, db_role, action, target, old_value, new_value, trace_id)
    VALUES (p_actor, p_db_role, p_action, p_target, p_old, p_new,
            nullif(current_setting('authz.trace_id', true), ''));
$$;

-- Raises 22023, saying what is valid, unless p_permission is in the catalog.
CREATE FUNCTION authz.require_known_permission(p_permission text)
RETURNS void LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type text := split_part(p_permission, ':', 1);
BEGIN
    IF EXISTS (SELECT FROM authz.permissions WHERE name = p_permission) THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT FROM authz.resource_types WHERE name = v_type) THEN
        RAISE EXCEPTION 'unknown permission "%"', left(p_permission, 64)
            USING ERRCODE = '22023',
                  HINT = format('Valid actions on %s: %s. authz_define_permission() adds one.', v_type,
                                (SELECT string_agg(action, ', ' ORDER BY action)
                                 FROM authz.permissions WHERE resource_type = v_type));
    END IF;
    RAISE EXCEPTION 'unknown permission "%": no resource type "%"',
                    left(p_permission, 64), left(v_type, 64)
        USING ERRCODE = '22023',
              HINT = format('Valid resource types: %s.',
                            (SELECT string_agg(name, ', ' ORDER BY name) FROM authz.resource_types));
END;
$$;

CREATE FUNCTION authz.require_known_role(p_role text)
RETURNS void LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM authz.roles WHERE name = p_role) THEN
        RAISE EXCEPTION 'unknown role "%"', left(p_role, 64)
            USING ERRCODE = '22023',
                  HINT = format('Valid roles: %s.',
                                (SELECT string_agg(name, ', ' ORDER BY rank) FROM authz.roles));
    END IF;
END;
$$;

-- Raises 22023 for an expiry that is not in the future; NULL (no expiry) passes.
CREATE FUNCTION authz.require_future(p_expires_at timestamptz)
RETURNS void LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_expires_at <= statement_timestamp() THEN
        RAISE EXCEPTION 'expires_at is already past'
            USING ERRCODE = '22023', HINT = 'Give a time in the future, or NULL for no expiry.';
    END IF;
END;
$$;

-- Role defaults -------------------------------------------------------------------------

-- The permissions a role holds by default: its own rows and those of every lower role
-- (less removed seeds), or every permission for a role with all_permissions. No rows for an
-- unknown role. This and check_facts are on the path of every check: they have no SET
-- clause and no scalar sub-function (either would stop PostgreSQL from inlining them into
-- the check's prepared plan), so every operator is spelled schema-qualified instead.
CREATE FUNCTION authz.role_defaults(p_role text)
RETURNS TABLE (permission text) LANGUAGE sql STABLE
AS $$
    SELECT p.name
    FROM authz.roles r
    JOIN authz.permissions p
      ON r.all_permissions
         OR EXISTS (SELECT FROM authz.roles lower_role
                    JOIN authz.role_permissions rp ON rp.role OPERATOR(pg_catalog.=) lower_role.name
                    WHERE lower_role.rank OPERATOR(pg_catalog.<=) r.rank
                      AND rp.permission OPERATOR(pg_catalog.=) p.name
                      AND NOT EXISTS (SELECT FROM authz.role_permission_removals x
                                      WHERE x.role OPERATOR(pg_catalog.=) rp.role
                                        AND x.permission OPERATOR(pg_catalog.=) rp.permission))
    WHERE r.name OPERATOR(pg_catalog.=) p_role
    ORDER BY p.name;
$$;

-- Everything checks of (user, permission) need, read in one query (src/pg/cache.rs and
-- checks.rs apply the rules): whether the permission exists, the user's role and whether it
-- grants it, and one row per override of the user for the permission on p_resource (none
-- when NULL) and at the type level; one row without an override if there is none. (With
-- the decision cache trusted, src/pg/cache.rs reads the same by direct index reads.)
CREATE FUNCTION authz.check_facts(p_user text, p_permission text, p_resource text)
RETURNS TABLE (known boolean, role text, role_allows boolean, grant_id bigint,
               resource_id text, effect text, expires_at timestamptz)
LANGUAGE sql STABLE
AS $$
    SELECT EXISTS (SELECT FROM authz.permissions p WHERE p.name OPERATOR(pg_catalog.=) p_permission),
           ur.role,
           EXISTS (SELECT FROM authz.role_defaults(ur.role) d
                   WHERE d.permission OPERATOR(pg_catalog.=) p_permission),
           g.id, g.resource_id, g.effect, g.expires_at
    FROM (SELECT) AS one
    LEFT JOIN authz.user_roles ur ON ur.user_id OPERATOR(pg_catalog.=) p_user
    LEFT JOIN LATERAL (
        -- Each arm matches a partial unique index, so that even a generic plan made
        -- without statistics reads only the rows it needs.
        SELECT g1.id, g1.resource_id, g1.effect, g1.expires_at FROM authz.grants g1
        WHERE g1.user_id OPERATOR(pg_catalog.=) p_user
          AND g1.permission OPERATOR(pg_catalog.=) p_permission
          AND g1.resource_id OPERATOR(pg_catalog.=) p_resource
        UNION ALL
        SELECT g2.id, g2.resource_id, g2.effect, g2.expires_at FROM authz.grants g2
        WHERE g2.user_id OPERATOR(pg_catalog.=) p_user
          AND g2.permission OPERATOR(pg_catalog.=) p_permission
          AND g2.resource_id IS NULL
    ) AS g ON true;
$$;

CREATE FUNCTION authz.role_permission_add(p_role text, p_permission text,
                                          p_actor text, p_db_role text)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_changed boolean;
BEGIN
    PERFORM authz.require_known_role(p_role);
    PERFORM authz.require_known_permission(p_permission);
    DELETE FROM authz.role_permission_removals WHERE role = p_role AND permission = p_permission;
    v_changed := FOUND;
    INSERT INTO authz.role_permissions (role, permission) VALUES (p_role, p_permission)
    ON CONFLICT DO NOTHING;
    v_changed := v_changed OR FOUND;
    PERFORM authz.write_audit('authz_role_permission_add',
                              jsonb_build_object('role', p_role, 'permission', p_permission),
                              NULL, jsonb_build_object('changed', v_changed), p_actor, p_db_role);
END;
$$;

CREATE FUNCTION authz.role_permission_remove(p_role text, p_permission text,
                                             p_actor text, p_db_role text)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_seeded boolean;
    v_changed boolean := false;
BEGIN
    PERFORM authz.require_known_role(p_role);
    PERFORM authz.require_known_permission(p_permission);
    IF (SELECT all_permissions FROM authz.roles WHERE name = p_role) THEN
        RAISE EXCEPTION 'role "%" holds every permission; its defaults cannot be removed', p_role
            USING ERRCODE = '22023',
                  HINT = 'Use a deny override (authz_grant(..., effect => ''deny'')) for one user.';
    END IF;
    SELECT seeded INTO v_seeded FROM authz.role_permissions
    WHERE role = p_role AND permission = p_permission;
    IF v_seeded THEN
        -- Kept and marked removed, so that pg_restore (which re-seeds) keeps it removed.
        INSERT INTO authz.role_permission_removals (role, permission) VALUES (p_role, p_permission)
        ON CONFLICT DO NOTHING;
        v_changed := FOUND;
    ELSIF v_seeded IS NOT NULL THEN
        DELETE FROM authz.role_permissions WHERE role = p_role AND permission = p_permission;
        v_changed := true;
    END IF;
    PERFORM authz.write_audit('authz_role_permission_remove',
                              jsonb_build_object('role', p_role, 'permission', p_permission),
                              NULL, jsonb_build_object('changed', v_changed), p_actor, p_db_role);
END;
$$;

-- Brings back every seeded role default (removed or deleted); added defaults stay.
CREATE FUNCTION authz.init_role_permissions(p_actor text, p_db_role text)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_restored bigint;
BEGIN
    DELETE FROM authz.role_permission_removals;
    GET DIAGNOSTICS v_restored = ROW_COUNT;
    INSERT INTO authz.role_permissions (role, permission, seeded)
    SELECT role, permission, true FROM authz.seeded_role_permissions()
    ON CONFLICT (role, permission) DO UPDATE SET seeded = true
    WHERE NOT authz.role_permissions.seeded;
    PERFORM authz.write_audit('authz_init_role_permissions', '{}'::jsonb, NULL,
                              jsonb_build_object('removals_cleared', v_restored),
                              p_actor, p_db_role);
END;
$$;

-- Catalog ---------------------------------------------------------------------------------

CREATE FUNCTION authz.define_permission(p_resource_type text, p_action text,
                                        p_actor text, p_db_role text)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name text := p_resource_type || ':' || p_action;
BEGIN
    IF p_resource_type !~ '^[a-z][a-z0-9_]{0,62}$' OR p_action !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'invalid permission "%"', left(v_name, 130)
            USING ERRCODE = '22023',
                  HINT = 'Resource types and actions are lower-case identifiers: a letter, then letters, digits or _ (at most 63).';
    END IF;
    INSERT INTO authz.resource_types (name) VALUES (p_resource_type) ON CONFLICT DO NOTHING;
    INSERT INTO authz.permissions (name, resource_type, action)
    VALUES (v_name, p_resource_type, p_action) ON CONFLICT DO NOTHING;
    PERFORM authz.write_audit('authz_define_permission', jsonb_build_object('permission', v_name),
                              NULL, jsonb_build_object('created', FOUND), p_actor, p_db_role);
END;
$$;

-- Users' roles ------------------------------------------------------------------------------

-- Sets the user's role; a NULL role removes it.
CREATE FUNCTION authz.set_role(p_user text, p_role text, p_actor text, p_db_role text)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_old text;
BEGIN
    -- The old value goes into the audit log, so it must be the row actually replaced, also
    -- when a concurrent transaction inserts one between our read and our write.
    IF p_role IS NULL THEN
        DELETE FROM authz.user_roles WHERE user_id = p_user RETURNING role INTO v_old;
    ELSE
        PERFORM authz.require_known_role(p_role);
        LOOP
            SELECT role INTO v_old FROM authz.user_roles WHERE user_id = p_user FOR UPDATE;
            IF FOUND THEN
                UPDATE authz.user_roles SET role = p_role, assigned_by = p_actor, assigned_at = now()
                WHERE user_id = p_user;
                EXIT;
            END IF;
            -- No row: insert one, unless a concurrent transaction just did (then lock that one).
            INSERT INTO authz.user_roles (user_id, role, assigned_by) VALUES (p_user, p_role, p_actor)
            ON CONFLICT DO NOTHING;
            EXIT WHEN FOUND;
        END LOOP;
    END IF;
    PERFORM authz.write_audit('authz_set_role', jsonb_build_object('user_id', p_user),
                              CASE WHEN v_old IS NOT NULL THEN jsonb_build_object('role', v_old) END,
                              CASE WHEN p_role IS NOT NULL THEN jsonb_build_object('role', p_role) END,
                              p_actor, p_db_role);
END;
$$;

-- Overrides -----------------------------------------------------------------------------------

CREATE FUNCTION authz.grant_override(p_user text, p_permission text, p_resource text,
                                     p_expires_at timestamptz, p_effect text, p_granted_by text,
                                     p_db_role text)
RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_old jsonb;
    v_row authz.grants;
BEGIN
    PERFORM authz.require_known_permission(p_permission);
    IF p_effect NOT IN ('allow', 'deny') THEN
        RAISE EXCEPTION 'invalid effect "%"', left(p_effect, 64)
            USING ERRCODE = '22023', HINT = 'The effect is ''allow'' or ''deny''.';
    END IF;
    PERFORM authz.require_future(p_expires_at);

    -- As in set_role: the audited old value is the row actually replaced.
    LOOP
        -- Two statements, not `resource_id IS NOT DISTINCT FROM p_resource`, which no
        -- index serves: each is an equality on one of the partial unique indexes.
        IF p_resource IS NULL THEN
            SELECT * INTO v_row FROM authz.grants g
            WHERE g.user_id = p_user AND g.permission = p_permission AND g.resource_id IS NULL
            FOR UPDATE;
        ELSE
            SELECT * INTO v_row FROM authz.grants g
            WHERE g.user_id = p_user AND g.permission = p_permission AND g.resource_id = p_resource
            FOR UPDATE;
        END IF;
        IF FOUND THEN
            v_old := to_jsonb(v_row);
            UPDATE authz.grants g
            SET effect = p_effect, expires_at = p_expires_at, granted_by = p_granted_by
            WHERE g.id = v_row.id
            RETURNING g.* INTO v_row;
            EXIT;
        END IF;
        -- No row: insert one, unless a concurrent transaction just did (then lock that one).
        -- (Under REPEATABLE READ that conflict is a serialization failure instead.)
        INSERT INTO authz.grants AS g (user_id, permission, resource_id, effect, expires_at, granted_by)
        VALUES (p_user, p_permission, p_resource, p_effect, p_expires_at, p_granted_by)
        ON CONFLICT DO NOTHING
        RETURNING g.* INTO v_row;
        EXIT WHEN FOUND;
    END LOOP;

    PERFORM authz.write_audit('authz_grant',
                              jsonb_build_object('user_id', p_user, 'permission', p_permission,
                                                 'resource_id', p_resource),
                              v_old, to_jsonb(v_row), p_granted_by, p_db_role);
    RETURN v_row.id;
END;
$$;

-- Many overrides in one call, all or nothing, audited in one row (the argument, and the
-- values it replaced). p_grants is a JSON array of objects {user_id, permission,
-- resource_id?, expires_at?, effect?}; ids are strings or integers. Every element is
-- checked before anything is written; the first bad one is named (22023). Other writers
-- of grants wait for the end of this transaction (the lock makes the audited old values
-- exact).
CREATE FUNCTION authz.grant_bulk(p_grants jsonb, p_granted_by text, p_db_role text)
RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    v_bad text;
    v_users text[];
    v_permissions text[];
    v_resources text[];
    v_effects text[];
    v_expiry_texts text[];
    v_expiries timestamptz[];
    v_repeated bigint;
    v_problem record;
    v_old jsonb;
    v_count bigint;
BEGIN
    IF jsonb_typeof(p_grants) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'grants must be a JSON array'
            USING ERRCODE = '22023',
                  HINT = 'Pass [{"user_id": ..., "permission": ..., "resource_id": ..., "expires_at": ..., "effect": ...}, ...].';
    END IF;
    -- One reading of the array: the first bad element, and the columns as arrays (one
    -- aggregation, so their positions agree).
    SELECT (array_agg(n || ': ' || problem ORDER BY n) FILTER (WHERE problem IS NOT NULL))[1],
           array_agg(e ->> 'user_id'), array_agg(e ->> 'permission'), array_agg(e ->> 'resource_id'),
           array_agg(coalesce(e ->> 'effect', 'allow')), array_agg(e ->> 'expires_at')
    INTO v_bad, v_users, v_permissions, v_resources, v_effects, v_expiry_texts
    FROM (SELECT n, e, CASE
            WHEN jsonb_typeof(e) <> 'object' THEN 'not an object'
            WHEN e - '{user_id,permission,resource_id,expires_at,effect}'::text[] <> '{}'
                THEN 'a key other than user_id, permission, resource_id, expires_at, effect'
            WHEN NOT CASE jsonb_typeof(e -> 'user_id')
                     WHEN 'number' THEN scale((e -> 'user_id')::numeric) = 0
                     WHEN 'string' THEN octet_length(e ->> 'user_id') BETWEEN 1 AND 1024
                     ELSE false END
                THEN 'user_id must be an integer or a string of 1 to 1024 bytes'
            WHEN NOT CASE coalesce(jsonb_typeof(e -> 'resource_id'), 'null')
                     WHEN 'null' THEN true
                     WHEN 'number' THEN scale((e -> 'resource_id')::numeric) = 0
                     WHEN 'string' THEN octet_length(e ->> 'resource_id') BETWEEN 1 AND 1024
                     ELSE false END
                THEN 'resource_id must be null, an integer or a string of 1 to 1024 bytes'
            WHEN jsonb_typeof(e -> 'permission') IS DISTINCT FROM 'string' THEN 'permission must be a string'
            WHEN coalesce(jsonb_typeof(e -> 'expires_at'), 'null') NOT IN ('string', 'null')
                THEN 'expires_at must be null or a timestamp string'
            WHEN coalesce(e -> 'effect', '"allow"') NOT IN ('"allow"', '"deny"') THEN 'effect must be "allow" or "deny"'
          END AS problem
          FROM jsonb_array_elements(p_grants) WITH ORDINALITY AS t(e, n)) elements;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'grants element %', v_bad
            USING ERRCODE = '22023', HINT = 'Nothing was written. Elements are counted from 1.';
    END IF;
    v_expiries := v_expiry_texts;  -- PostgreSQL's own error (22007, 22008) for a bad timestamp

    IF v_users IS NULL THEN
        RETURN 0;  -- an empty array: nothing to write or audit
    END IF;

    LOCK TABLE authz.grants IN SHARE ROW EXCLUSIVE MODE;
    SELECT (SELECT b.permission FROM unnest(v_permissions) WITH ORDINALITY AS b(permission, n)
            WHERE b.permission IN (SELECT p FROM (SELECT DISTINCT p FROM unnest(v_permissions) AS p) d
                                   WHERE NOT EXISTS (SELECT FROM authz.permissions WHERE name = p))
            ORDER BY b.n LIMIT 1) AS unknown_permission,
           (SELECT min(x) FROM unnest(v_expiries) AS x) AS earliest_expiry
    INTO v_problem;
    -- The catalog's own errors for an unknown permission and for past expiry.
    IF v_problem.unknown_permission IS NOT NULL THEN
        PERFORM authz.require_known_permission(v_problem.unknown_permission);
    END IF;
    PERFORM authz.require_future(v_problem.earliest_expiry);

    -- Under the lock nobody else inserts. Most imports write new overrides: insert them
    -- all; if one exists already (or the argument repeats one), the unique indexes say so,
    -- the insert is undone, and the rows that exist are updated instead.
    BEGIN
        INSERT INTO authz.grants (user_id, permission, resource_id, effect, expires_at, granted_by)
        SELECT *, p_granted_by FROM unnest(v_users, v_permissions, v_resources, v_effects, v_expiries);
        GET DIAGNOSTICS v_count = ROW_COUNT;
    EXCEPTION WHEN unique_violation THEN
        SELECT min(n) INTO v_repeated
        FROM (SELECT min(n) AS n FROM unnest(v_users, v_permissions, v_resources) WITH ORDINALITY AS b(u, p, r, n)
              GROUP BY u, p, r HAVING count(*) > 1) repeated;
        IF v_repeated IS NOT NULL THEN
            RAISE EXCEPTION 'grants element %: the same (user_id, permission, resource_id) as a later one', v_repeated
                USING ERRCODE = '22023', HINT = 'Nothing was written. Give each override once.';
        END IF;
        WITH input AS MATERIALIZED (
            SELECT * FROM unnest(v_users, v_permissions, v_resources, v_effects, v_expiries)
                WITH ORDINALITY AS b(user_id, permission, resource_id, effect, expires_at, n)
        ), existing AS MATERIALIZED (  -- one probe of a unique index per element
            SELECT b.n, g.id, to_jsonb(g) AS old
            FROM input b, LATERAL (
                SELECT * FROM authz.grants g
                WHERE g.user_id = b.user_id AND g.permission = b.permission AND g.resource_id = b.resource_id
                UNION ALL
                SELECT * FROM authz.grants g
                WHERE b.resource_id IS NULL AND g.user_id = b.user_id AND g.permission = b.permission
                  AND g.resource_id IS NULL) g
        ), updated AS (
            UPDATE authz.grants g
            SET effect = b.effect, expires_at = b.expires_at, granted_by = p_granted_by
            FROM existing e JOIN input b ON b.n = e.n
            WHERE g.id = e.id
            RETURNING e.n, e.old
        ), inserted AS (
            INSERT INTO authz.grants (user_id, permission, resource_id, effect, expires_at, granted_by)
            SELECT b.user_id, b.permission, b.resource_id, b.effect, b.expires_at, p_granted_by
            FROM input b WHERE NOT EXISTS (SELECT FROM existing e WHERE e.n = b.n)
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM updated) + (SELECT count(*) FROM inserted),
               (SELECT jsonb_agg(old ORDER BY n) FROM updated)
        INTO v_count, v_old;
    END;
    PERFORM authz.write_audit('authz_grant_bulk', jsonb_build_object('grants', v_count), v_old, p_grants,
                              p_granted_by, p_db_role);
    RETURN v_count;
END;
$$;


CREATE FUNCTION authz.revoke_override(p_user text, p_permission text, p_resource text,
                                      p_actor text, p_db_role text)
RETURNS boolean LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_old jsonb;
BEGIN
    PERFORM authz.require_known_permission(p_permission);
    -- Two statements for the two partial unique indexes, as in grant_override.
    IF p_resource IS NULL THEN
        DELETE FROM authz.grants g
        WHERE g.user_id = p_user AND g.permission = p_permission AND g.resource_id IS NULL
        RETURNING to_jsonb(g) INTO v_old;
    ELSE
        DELETE FROM authz.grants g
        WHERE g.user_id = p_user AND g.permission = p_permission AND g.resource_id = p_resource
        RETURNING to_jsonb(g) INTO v_old;
    END IF;
    PERFORM authz.write_audit('authz_revoke',
                              jsonb_build_object('user_id', p_user, 'permission', p_permission,
                                                 'resource_id', p_resource),
                              v_old, NULL, p_actor, p_db_role);
    RETURN v_old IS NOT NULL;
END;
$$;

CREATE FUNCTION authz.cleanup_expired(p_actor text, p_db_role text)
RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    DELETE FROM authz.grants WHERE expires_at <= statement_timestamp();
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    PERFORM authz.write_audit('authz_cleanup_expired', '{}'::jsonb, NULL,
                              jsonb_build_object('deleted', v_deleted), p_actor, p_db_role);
    RETURN v_deleted;
END;
$$;

-- Listings ------------------------------------------------------------------------------------

-- Where a user's permissions come from: role defaults and live overrides.
CREATE FUNCTION authz.user_permissions(p_user text)
RETURNS TABLE (permission text, resource_id text, effect text, source text,
               expires_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT d.permission, NULL::text, 'allow', 'role', NULL::timestamptz
    FROM authz.user_roles ur, authz.role_defaults(ur.role) AS d (permission)
    WHERE ur.user_id = p_user
    UNION ALL
    SELECT g.permission, g.resource_id, g.effect,
           CASE WHEN g.resource_id IS NULL THEN 'resource_type' ELSE 'resource' END, g.expires_at
    FROM authz.grants g
    WHERE g.user_id = p_user AND (g.expires_at IS NULL OR g.expires_at > statement_timestamp())
    ORDER BY 1, 2 NULLS FIRST, 4;
$$;

-- For benches/checks.sh: the cost of calling a Rust function with authz_check's arguments.
CREATE FUNCTION authz.noop_check(user_id "any", permission text, resource_id "any")
RETURNS boolean LANGUAGE c STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'authz_noop_check_wrapper';

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA authz FROM PUBLIC;
