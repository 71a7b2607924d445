-- authz_ext: what keeps the decision cache exact (src/pg/cache, docs/ARCHITECTURE.md).
--
-- The one list of the tables a check or a relationship query reads. A change to any of
-- them — through the functions or directly, COPY, TRUNCATE and pg_restore included, and in
-- session_replication_role = replica (logical replication's apply, bulk loaders) — fires
-- authz.note_change(), which queues an invalidation of its kind's signal table (below) for
-- every backend and has the transaction announce its commit. The argument says what a change
-- makes stale: 'facts' (the cached users), 'keys' (the cached API keys), 'relations' (the
-- remembered relationship answers) or 'catalog' (everything). (api_key_usage is not in
-- it: last_used_at is never cached.) Backends read this list from pg_trigger; a test
-- checks that every table a check reads is in it.
--
-- Both fire in every mode (ALWAYS). The row trigger names the changed users (for the
-- tables of kind 'facts'), so that a commit drops only their cached entries; it is also
-- what fires under logical replication's apply, which fires no statement triggers but
-- TRUNCATE's. The statement trigger covers TRUNCATE.
--
-- The signal tables stay empty and no query reads them. Invalidating the changed table
-- itself would invalidate every cached plan that reads it, in every backend: each write
-- would have the next call of every function reading the table plan its statements
-- again. The signal tables are those in the schema of authz.note_change(), for writers and
-- readers alike. Backends find them whenever they look at the triggers (after DDL on a
-- table of the list), and look again when a relation takes or leaves one of their names
-- there: a signal table dropped, renamed or made again is found by every backend.
CREATE TABLE authz.signal_facts ();
CREATE TABLE authz.signal_keys ();
CREATE TABLE authz.signal_relations ();
CREATE TABLE authz.signal_catalog ();
COMMENT ON TABLE authz.signal_facts IS 'Always empty: the relation authz.note_change() invalidates for a change of kind facts (sql/cache.sql).';
COMMENT ON TABLE authz.signal_keys IS 'Always empty: the relation authz.note_change() invalidates for a change of kind keys (sql/cache.sql).';
COMMENT ON TABLE authz.signal_relations IS 'Always empty: the relation authz.note_change() invalidates for a change of kind relations (sql/cache.sql).';
COMMENT ON TABLE authz.signal_catalog IS 'Always empty: the relation authz.note_change() invalidates for a change of kind catalog (sql/cache.sql).';

CREATE FUNCTION authz.note_change()
RETURNS trigger LANGUAGE c
AS 'MODULE_PATHNAME', 'authz_note_change_wrapper';

DO $$
DECLARE
    v_table text;
    v_kind text;
BEGIN
    FOR v_table, v_kind IN
        VALUES ('grants', 'facts'), ('user_roles', 'facts'),
               ('api_keys', 'keys'), ('scopes', 'keys'), ('scope_permissions', 'keys'),
               ('resource_types', 'catalog'), ('permissions', 'catalog'), ('roles', 'catalog'),
               ('role_permissions', 'catalog'), ('role_permission_removals', 'catalog'),
               ('relation_tuples', 'relations'), ('relation_models', 'relations')
    LOOP
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER note_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON authz.%I
             FOR EACH STATEMENT EXECUTE FUNCTION authz.note_change(%L)', v_table, v_kind);
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER note_change_row AFTER INSERT OR UPDATE OR DELETE ON authz.%I
             FOR EACH ROW EXECUTE FUNCTION authz.note_change(%L)', v_table, v_kind);
        EXECUTE pg_catalog.format('ALTER TABLE authz.%I ENABLE ALWAYS TRIGGER note_change', v_table);
        EXECUTE pg_catalog.format('ALTER TABLE authz.%I ENABLE ALWAYS TRIGGER note_change_row', v_table);
    END LOOP;
END;
$$;

-- ALTER TABLE ... ENABLE TRIGGER ALL (as pg_restore --disable-triggers ends each table)
-- makes every trigger fire in origin mode only. While that lasts the caches are not
-- trusted (src/pg/cache/tables.rs); this puts the modes back after any ALTER TABLE.
-- DISABLE is left alone: it is deliberate, and the caches are not trusted meanwhile.
CREATE FUNCTION authz.restore_trigger_modes()
RETURNS event_trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table text;
    v_trigger text;
BEGIN
    FOR v_table, v_trigger IN
        SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE t.tgfoid = 'authz.note_change()'::regprocedure AND t.tgenabled = 'O'
    LOOP
        EXECUTE format('ALTER TABLE authz.%I ENABLE ALWAYS TRIGGER %I', v_table, v_trigger);
    END LOOP;
END;
$$;
CREATE EVENT TRIGGER authz_restore_trigger_modes ON ddl_command_end WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION authz.restore_trigger_modes();
ALTER EVENT TRIGGER authz_restore_trigger_modes ENABLE ALWAYS;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA authz FROM PUBLIC;

DO $$
BEGIN
    IF pg_catalog.strpos(pg_catalog.current_setting('shared_preload_libraries'), 'authz_ext') = 0 THEN
        RAISE WARNING 'authz_ext is not in shared_preload_libraries: checks will read the tables every time (no decision cache)'
            USING HINT = 'Add authz_ext to shared_preload_libraries in postgresql.conf and restart the server.';
    END IF;
END;
$$;
