-- authz_ext: what keeps the decision cache exact (src/pg/cache.rs). Every statement that
-- changes a table a check reads — through the functions or directly, COPY and pg_restore
-- included — calls authz.note_change(), which takes the writers' advisory lock to the end
-- of the transaction and queues a cache invalidation (of the changed table) for every
-- backend.

CREATE FUNCTION authz.note_change(changed_table oid)
RETURNS void LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'authz_note_change_wrapper';

CREATE FUNCTION authz.note_change_trigger()
RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM authz.note_change(TG_RELID);
    RETURN NULL;
END;
$$;

DO $$
DECLARE
    v_table text;
BEGIN
    FOREACH v_table IN ARRAY ARRAY['resource_types', 'permissions', 'roles', 'role_permissions',
                                   'role_permission_removals', 'user_roles', 'grants']
    LOOP
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER note_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON authz.%I
             FOR EACH STATEMENT EXECUTE FUNCTION authz.note_change_trigger()', v_table);
    END LOOP;
END;
$$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA authz FROM PUBLIC;
