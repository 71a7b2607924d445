-- authz_ext: relationships (docs/guide.md, Relationships) — OpenFGA models and the tuples
-- they are evaluated over. The functions of sql/api.sql check their input against the
-- model (src/pg/relationships.rs) and call the internal functions below, which write and
-- audit. Checks read the tables by their indexes, under the latest snapshot.

-- Models: immutable, one row per authz_model_write; the highest id is the current one.
CREATE SEQUENCE authz.relation_models_id_seq;
CREATE TABLE authz.relation_models (
    id         bigint PRIMARY KEY
               DEFAULT pg_catalog.nextval('authz.relation_models_id_seq'::pg_catalog.regclass),
    dsl        text NOT NULL,
    created_by text,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
ALTER SEQUENCE authz.relation_models_id_seq OWNED BY authz.relation_models.id;
COMMENT ON TABLE authz.relation_models IS
    'Relationship models in OpenFGA''s DSL (schema 1.1), as written by authz_model_write; the highest id is current.';

-- Tuples: object (type:id) relation subject, where the subject is an object
-- (subject_relation ''), every object of a type (subject_id '*') or a userset
-- (type:id#subject_relation). The primary key serves object -> subjects (a check walks
-- it); relation_tuples_subject serves subject -> objects. Each index holds every column
-- the evaluation reads through it (INCLUDE), so it reads the table only for index entries
-- on pages not yet marked all-visible (src/pg/latest.rs, index-only scans).
CREATE TABLE authz.relation_tuples (
    object_type      text COLLATE "C" NOT NULL,
    object_id        text COLLATE "C" NOT NULL,
    relation         text COLLATE "C" NOT NULL,
    subject_type     text COLLATE "C" NOT NULL,
    subject_id       text COLLATE "C" NOT NULL,
    subject_relation text COLLATE "C" NOT NULL DEFAULT '',
    condition        text,
    context          jsonb,
    expires_at       timestamptz,
    created_by       text,
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT relation_tuples_pkey
        PRIMARY KEY (object_type, object_id, relation, subject_type, subject_id, subject_relation)
        INCLUDE (condition, expires_at)
);
-- Keyed by one 64-bit hash of the subject, the object type and the relation (none of them
-- holds a space), so a lookup compares one integer per entry; the entries found are then
-- compared column by column (src/pg/relationships.rs, Stored::objects), so a collision
-- costs a comparison, never a wrong answer.
CREATE INDEX relation_tuples_subject
    ON authz.relation_tuples (pg_catalog.hashtextextended(
        subject_type OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) subject_id
        OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) subject_relation
        OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) object_type
        OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) relation, 0))
    INCLUDE (subject_type, subject_id, subject_relation, object_type, relation, object_id, condition, expires_at);
COMMENT ON TABLE authz.relation_tuples IS
    'Relationship tuples: object (object_type:object_id) is related by relation to the subject subject_type:subject_id (''*'': every one of the type), or to the userset subject_type:subject_id#subject_relation.';

SELECT pg_catalog.pg_extension_config_dump('authz.relation_models', '');
SELECT pg_catalog.pg_extension_config_dump('authz.relation_models_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('authz.relation_tuples', '');

CREATE FUNCTION authz.model_write(p_dsl text, p_actor text, p_db_role text)
RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    INSERT INTO authz.relation_models (dsl, created_by) VALUES (p_dsl, p_actor) RETURNING id INTO v_id;
    PERFORM authz.write_audit('authz_model_write', jsonb_build_object('model_id', v_id::text), NULL,
                              jsonb_build_object('bytes', octet_length(p_dsl)), p_actor, p_db_role);
    RETURN v_id;
END;
$$;

-- The audit target of a tuple: {"object", "relation", "user"} as OpenFGA writes them.
CREATE FUNCTION authz.tuple_target(p_object_type text, p_object_id text, p_relation text,
                                   p_subject_type text, p_subject_id text, p_subject_relation text)
RETURNS jsonb LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object('object', p_object_type || ':' || p_object_id, 'relation', p_relation,
                              'user', p_subject_type || ':' || p_subject_id
                                      || CASE WHEN p_subject_relation = '' THEN '' ELSE '#' || p_subject_relation END);
$$;

-- A write's expiry: the text given in a bulk write (read in the session's settings, as any
-- timestamptz input), or authz_tuple_write's timestamptz as microseconds since 2000-01-01
-- UTC (PostgreSQL's own count, so no text round trip can shift it).
CREATE FUNCTION authz.tuple_expiry(p_text timestamptz, p_microseconds bigint)
RETURNS timestamptz LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(p_text, timestamptz '2000-01-01 00:00:00+00' + p_microseconds * interval '1 microsecond');
$$;

-- Deletes, then writes (upserts) tuples, each audited, all or nothing; returns how many
-- tuples were added or removed. The caller (src/pg/relationships.rs) has checked every
-- tuple against the model and that none appears twice, and has locked them (lock_tuples:
-- no other writer of these tuples is between here and the end of the transaction, so the
-- rows read below as replaced are exact). Elements are flat objects with the
-- table's columns; writes also carry n (their position), condition, context, and expires_at
-- or expires_at_us.
CREATE FUNCTION authz.tuples_change(p_writes jsonb, p_deletes jsonb, p_actor text, p_db_role text)
RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_trace text := nullif(current_setting('authz.trace_id', true), '');
    v_earliest timestamptz;
    v_old jsonb;
    v_deleted bigint;
    v_inserted bigint;
BEGIN
    SELECT min(authz.tuple_expiry(expires_at, expires_at_us)) INTO v_earliest
    FROM jsonb_to_recordset(p_writes) AS w(expires_at timestamptz, expires_at_us bigint);
    PERFORM authz.require_future(v_earliest);

    WITH gone AS (
        DELETE FROM authz.relation_tuples t
        USING jsonb_to_recordset(p_deletes) AS d(object_type text, object_id text, relation text,
                                                  subject_type text, subject_id text, subject_relation text)
        WHERE t.object_type = d.object_type AND t.object_id = d.object_id AND t.relation = d.relation
          AND t.subject_type = d.subject_type AND t.subject_id = d.subject_id
          AND t.subject_relation = d.subject_relation
        RETURNING t.*
    ), audited AS (
        INSERT INTO authz.audit_log (actor, db_role, action, target, old_value, new_value, trace_id)
        SELECT p_actor, p_db_role, 'authz_tuple_delete',
               authz.tuple_target(g.object_type, g.object_id, g.relation, g.subject_type, g.subject_id, g.subject_relation),
               to_jsonb(g), NULL, v_trace
        FROM gone g
        RETURNING 1
    )
    SELECT count(*) INTO v_deleted FROM audited;

    -- The rows writes replace, by the writes' positions.
    SELECT jsonb_object_agg(n, old) INTO v_old FROM (
        SELECT w.n, to_jsonb(t) AS old
        FROM jsonb_to_recordset(p_writes) AS w(n int, object_type text, object_id text, relation text,
                                               subject_type text, subject_id text, subject_relation text)
        JOIN authz.relation_tuples t
          ON t.object_type = w.object_type AND t.object_id = w.object_id AND t.relation = w.relation
         AND t.subject_type = w.subject_type AND t.subject_id = w.subject_id
         AND t.subject_relation = w.subject_relation
    ) replaced;

    WITH w AS (
        SELECT * FROM jsonb_to_recordset(p_writes)
            AS w(n int, object_type text, object_id text, relation text, subject_type text,
                 subject_id text, subject_relation text, condition text, context jsonb,
                 expires_at timestamptz, expires_at_us bigint)
    ), written AS (
        INSERT INTO authz.relation_tuples AS t
            (object_type, object_id, relation, subject_type, subject_id, subject_relation,
             condition, context, expires_at, created_by)
        SELECT object_type, object_id, relation, subject_type, subject_id, subject_relation,
               condition, context, authz.tuple_expiry(expires_at, expires_at_us), p_actor
        FROM w
        ON CONFLICT ON CONSTRAINT relation_tuples_pkey DO UPDATE
            SET condition = excluded.condition, context = excluded.context, expires_at = excluded.expires_at
        RETURNING t.*, t.xmax = 0 AS inserted
    ), audited AS (
        INSERT INTO authz.audit_log (actor, db_role, action, target, old_value, new_value, trace_id)
        SELECT p_actor, p_db_role, 'authz_tuple_write',
               authz.tuple_target(r.object_type, r.object_id, r.relation, r.subject_type, r.subject_id, r.subject_relation),
               v_old -> w.n::text, to_jsonb(r) - 'inserted', v_trace
        FROM written r
        JOIN w ON w.object_type = r.object_type AND w.object_id = r.object_id AND w.relation = r.relation
              AND w.subject_type = r.subject_type AND w.subject_id = r.subject_id
              AND w.subject_relation = r.subject_relation
        RETURNING 1
    )
    -- (audited runs whether read or not, as every data-modifying WITH does.)
    SELECT count(*) FILTER (WHERE inserted) INTO v_inserted FROM written;

    RETURN v_deleted + v_inserted;
END;
$$;
