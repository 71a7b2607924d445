-- The baseline of benches/checks.sh: the resolution of docs/guide.md (Permissions) written the
-- straightforward way in PL/pgSQL over authz_ext's own tables, as a user without the
-- extension would (index lookups, no cache). Loaded into the benchmark database only.
CREATE OR REPLACE FUNCTION bench_plpgsql_check(p_user text, p_permission text, p_resource text)
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_effects text[];
BEGIN
    IF p_resource IS NOT NULL THEN
        SELECT array_agg(effect) INTO v_effects FROM authz.grants
        WHERE user_id = p_user AND permission = p_permission AND resource_id = p_resource
          AND (expires_at IS NULL OR expires_at > statement_timestamp());
        IF v_effects IS NOT NULL THEN
            RETURN NOT 'deny' = ANY (v_effects);
        END IF;
    END IF;
    SELECT array_agg(effect) INTO v_effects FROM authz.grants
    WHERE user_id = p_user AND permission = p_permission AND resource_id IS NULL
      AND (expires_at IS NULL OR expires_at > statement_timestamp());
    IF v_effects IS NOT NULL THEN
        RETURN NOT 'deny' = ANY (v_effects);
    END IF;
    RETURN EXISTS (
        SELECT FROM authz.user_roles ur JOIN authz.roles r ON r.name = ur.role
        WHERE ur.user_id = p_user
          AND (r.all_permissions
               OR EXISTS (SELECT FROM authz.role_permissions rp JOIN authz.roles lr ON lr.name = rp.role
                          WHERE lr.rank <= r.rank AND rp.permission = p_permission
                            AND NOT EXISTS (SELECT FROM authz.role_permission_removals x
                                            WHERE x.role = rp.role AND x.permission = rp.permission))));
END;
$$;
