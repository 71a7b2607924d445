-- authz_ext: internal functions for API keys (docs/guide.md, API keys), owner-only like those of
-- internal.sql. The token itself never reaches SQL: src/pg/keys.rs generates it, hashes
-- it and passes only the SHA-256 and the preview. Validation is in Rust too (an index
-- lookup by hash); what is here changes keys and writes their audit rows.

-- Sorted, distinct scopes; 22023 for an empty list, a NULL element or an unknown scope.
CREATE FUNCTION authz.normalize_scopes(p_scopes text[])
RETURNS text[] LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_unknown text;
    v_problem text;
BEGIN
    IF cardinality(p_scopes) = 0 THEN
        v_problem := 'scopes must not be empty';
    ELSE
        SELECT s INTO v_unknown FROM unnest(p_scopes) AS s
        WHERE s IS NULL OR NOT EXISTS (SELECT FROM authz.scopes WHERE name = s)
        LIMIT 1;
        IF FOUND THEN
            v_problem := 'unknown scope ' || coalesce(quote_literal(left(v_unknown, 64)), 'NULL');
        END IF;
    END IF;
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION '%', v_problem
            USING ERRCODE = '22023',
                  HINT = format('Valid scopes: %s.', (SELECT string_agg(name, ', ' ORDER BY name) FROM authz.scopes));
    END IF;
    RETURN ARRAY(SELECT DISTINCT s FROM unnest(p_scopes) AS s ORDER BY s);
END;
$$;

CREATE FUNCTION authz.create_key(p_user text, p_name text, p_scopes text[], p_expires_at timestamptz,
                                 p_hash bytea, p_preview text, p_actor text, p_db_role text)
RETURNS uuid LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key authz.api_keys;
BEGIN
    IF btrim(p_name) = '' OR length(p_name) > 200 THEN
        RAISE EXCEPTION 'invalid key name'
            USING ERRCODE = '22023', HINT = 'A key name is 1 to 200 characters, not only spaces.';
    END IF;
    PERFORM authz.require_future(p_expires_at);
    INSERT INTO authz.api_keys (id, user_id, name, key_hash, preview, scopes, expires_at, created_by)
    VALUES (gen_random_uuid(), p_user, p_name, p_hash, p_preview, authz.normalize_scopes(p_scopes),
            p_expires_at, p_actor)
    RETURNING * INTO v_key;
    INSERT INTO authz.api_key_usage (key_id) VALUES (v_key.id);
    PERFORM authz.write_audit('api_key_create',
                              jsonb_build_object('key_id', v_key.id, 'user_id', p_user), NULL,
                              jsonb_build_object('name', v_key.name, 'preview', v_key.preview,
                                                 'scopes', v_key.scopes, 'expires_at', v_key.expires_at),
                              p_actor, p_db_role);
    RETURN v_key.id;
END;
$$;

-- Soft delete: the row stays, with who revoked it and when. False if already revoked or unknown.
CREATE FUNCTION authz.revoke_key(p_key_id uuid, p_actor text, p_db_role text)
RETURNS boolean LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key authz.api_keys;
BEGIN
    UPDATE authz.api_keys SET revoked_at = statement_timestamp(), revoked_by = p_actor
    WHERE id = p_key_id AND revoked_at IS NULL
    RETURNING * INTO v_key;
    PERFORM authz.write_audit('api_key_revoke', jsonb_build_object('key_id', p_key_id, 'user_id', v_key.user_id),
                              NULL,
                              CASE WHEN v_key.id IS NOT NULL
                                   THEN jsonb_build_object('revoked_at', v_key.revoked_at, 'revoked_by', v_key.revoked_by)
                              END,
                              p_actor, p_db_role);
    RETURN v_key.id IS NOT NULL;
END;
$$;

-- One user's keys, or one of them (p_key_id); never a hash.
CREATE FUNCTION authz.list_keys(p_user text, p_key_id uuid)
RETURNS TABLE (key_id uuid, name text, preview text, scopes text[], created_at timestamptz,
               expires_at timestamptz, last_used_at timestamptz, revoked_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT k.id, k.name, k.preview, k.scopes, k.created_at, k.expires_at, u.last_used_at, k.revoked_at
    FROM authz.api_keys k
    LEFT JOIN authz.api_key_usage u ON u.key_id = k.id
    WHERE k.user_id = p_user AND (p_key_id IS NULL OR k.id = p_key_id)
    ORDER BY k.created_at, k.id;
$$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA authz FROM PUBLIC;
