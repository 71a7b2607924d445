-- authz_ext: tables and indexes (runs first; see src/lib.rs for the order of the SQL files).
--
-- Following "Security Considerations for Extensions": every object is schema-qualified,
-- operators are spelled OPERATOR(pg_catalog.x), and CREATE SCHEMA fails (rather than
-- adopting an attacker's schema) if `authz` already exists.
--
-- Ids of users and resources belong to the application and are stored as canonical text
-- (decimal for integers, lower-case hyphenated uuid, text as given); see src/core/ids.rs.
--
-- Rows that this script inserts (the seed catalog) carry `seeded = true`; the
-- pg_extension_config_dump filters at the end dump only the rows deployers add, because
-- CREATE EXTENSION re-creates the seeds on restore.

-- Ids and names are handled as UTF-8 text (src/pg): other encodings are refused here, with
-- a clear error, rather than failing on the first non-ASCII id.
DO $$
BEGIN
    IF pg_catalog.getdatabaseencoding() OPERATOR(pg_catalog.<>) 'UTF8' THEN
        RAISE EXCEPTION 'authz_ext needs a UTF8 database; this one is encoded %', pg_catalog.getdatabaseencoding()
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Create the database with ENCODING ''UTF8'' (and TEMPLATE template0) and install authz_ext there.';
    END IF;
END;
$$;

CREATE SCHEMA authz;
REVOKE ALL ON SCHEMA authz FROM PUBLIC;
COMMENT ON SCHEMA authz IS 'authz_ext data: permission catalog, roles, grants, API keys, audit log. Owner only.';

-- Permission catalog ---------------------------------------------------------------

CREATE TABLE authz.resource_types (
    name       text PRIMARY KEY
               CHECK (name OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]{0,62}$'),
    seeded     boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE authz.resource_types IS 'Kinds of resource that permissions are about (organization, project, ...).';

CREATE TABLE authz.permissions (
    name          text PRIMARY KEY,
    resource_type text NOT NULL REFERENCES authz.resource_types (name),
    action        text NOT NULL
                  CHECK (action OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]{0,62}$'),
    seeded        boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    UNIQUE (resource_type, action),
    CHECK (name OPERATOR(pg_catalog.=)
           (resource_type OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) action))
);
COMMENT ON TABLE authz.permissions IS 'Permission catalog: one row per <resource_type>:<action>.';

-- Roles ----------------------------------------------------------------------------

CREATE TABLE authz.roles (
    name            text PRIMARY KEY,
    rank            integer NOT NULL UNIQUE,
    all_permissions boolean NOT NULL DEFAULT false,
    seeded          boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE authz.roles IS
    'Global roles. A role includes every permission of the roles of lower rank; all_permissions means every permission in the catalog, present and future.';

CREATE TABLE authz.role_permissions (
    role       text NOT NULL REFERENCES authz.roles (name),
    permission text NOT NULL REFERENCES authz.permissions (name),
    seeded     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (role, permission)
);
COMMENT ON TABLE authz.role_permissions IS
    'Role defaults: the seeded rows plus the ones deployers add. Seeded rows a deployer removed are listed in authz.role_permission_removals.';

-- A removed seeded default is recorded here instead of being deleted: CREATE EXTENSION
-- re-inserts every seed row on pg_restore, and this table (dumped whole) keeps it removed.
CREATE TABLE authz.role_permission_removals (
    role       text NOT NULL,
    permission text NOT NULL,
    removed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (role, permission),
    FOREIGN KEY (role, permission) REFERENCES authz.role_permissions (role, permission)
);
COMMENT ON TABLE authz.role_permission_removals IS 'Seeded role defaults that deployers removed.';

-- Ids are opaque: every user_id and resource_id, and grants.permission, use the "C"
-- collation (byte order), which lets a check's index lookups compare bytes instead of
-- calling the locale's collation (about a quarter of an uncached check's time otherwise).
CREATE TABLE authz.user_roles (
    user_id     text COLLATE "C" PRIMARY KEY,
    role        text NOT NULL REFERENCES authz.roles (name),
    assigned_by text,
    assigned_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE authz.user_roles IS 'Each user''s global role (at most one).';

-- Overrides ("grants") -------------------------------------------------------------

CREATE SEQUENCE authz.grants_id_seq;
CREATE TABLE authz.grants (
    id          bigint PRIMARY KEY
                DEFAULT pg_catalog.nextval('authz.grants_id_seq'::pg_catalog.regclass),
    user_id     text COLLATE "C" NOT NULL,
    permission  text COLLATE "C" NOT NULL REFERENCES authz.permissions (name),
    resource_id text COLLATE "C",    -- NULL: the grant covers every resource of the type
    effect      text NOT NULL CHECK (effect OPERATOR(pg_catalog.=) ANY (ARRAY['allow', 'deny'])),
    expires_at  timestamptz,
    granted_by  text,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
ALTER SEQUENCE authz.grants_id_seq OWNED BY authz.grants.id;
COMMENT ON TABLE authz.grants IS
    'Per-user overrides: allow or deny a permission on one resource (resource_id) or on every resource of its type (resource_id NULL).';

-- One override per (user, permission, resource); the two partial indexes are the upsert
-- arbiters and serve the lookups of a check (resource level and type level).
CREATE UNIQUE INDEX grants_resource_key ON authz.grants (user_id, permission, resource_id)
    WHERE resource_id IS NOT NULL;
CREATE UNIQUE INDEX grants_type_key ON authz.grants (user_id, permission)
    WHERE resource_id IS NULL;
CREATE INDEX grants_expires_at ON authz.grants (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX grants_permission_resource ON authz.grants (permission, resource_id);

-- API keys -------------------------------------------------------------------------

CREATE TABLE authz.scopes (
    name            text PRIMARY KEY,
    all_permissions boolean NOT NULL DEFAULT false,
    seeded          boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE authz.scopes IS 'API key scopes; all_permissions means every permission in the catalog.';

CREATE TABLE authz.scope_permissions (
    scope      text NOT NULL REFERENCES authz.scopes (name),
    permission text NOT NULL REFERENCES authz.permissions (name),
    seeded     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (scope, permission)
);
COMMENT ON TABLE authz.scope_permissions IS 'Which permissions each API key scope covers.';

CREATE TABLE authz.api_keys (
    id           uuid PRIMARY KEY,
    user_id      text NOT NULL,
    name         text NOT NULL,
    key_hash     bytea NOT NULL CONSTRAINT api_keys_key_hash_key UNIQUE  -- read by src/pg/keys.rs
                 CHECK (pg_catalog.length(key_hash) OPERATOR(pg_catalog.=) 32),
    preview      text NOT NULL,
    scopes       text[] NOT NULL,
    expires_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by   text,
    revoked_at   timestamptz,
    revoked_by   text
);
CREATE INDEX api_keys_user_id ON authz.api_keys (user_id, created_at);
COMMENT ON TABLE authz.api_keys IS
    'API keys: SHA-256 of the token (never the token), owner, scopes, expiry, soft revocation.';

-- last_used_at lives apart from the key: validation writes it inside the caller's
-- transaction, and the row lock that takes must never make a revocation wait behind an
-- open transaction that used the key. One row per key, created with it (so validation only
-- updates, SKIP LOCKED, and never waits on a concurrent insert). No foreign key: keys are
-- never deleted, and the two tables are dumped independently.
CREATE TABLE authz.api_key_usage (
    key_id       uuid PRIMARY KEY,
    last_used_at timestamptz
);
COMMENT ON TABLE authz.api_key_usage IS
    'When each API key was last validated, at most once per authz.key_last_used_interval.';

-- Audit log ------------------------------------------------------------------------

CREATE SEQUENCE authz.audit_log_id_seq;
CREATE TABLE authz.audit_log (
    id        bigint PRIMARY KEY
              DEFAULT pg_catalog.nextval('authz.audit_log_id_seq'::pg_catalog.regclass),
    logged_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    actor     text,             -- the application user responsible (granted_by or the principal)
    db_role   text NOT NULL,    -- the database role that called the function
    action    text NOT NULL,    -- the function, e.g. 'authz_grant'
    target    jsonb NOT NULL,
    old_value jsonb,
    new_value jsonb,
    trace_id  text              -- SET LOCAL authz.trace_id = '...'
);
ALTER SEQUENCE authz.audit_log_id_seq OWNED BY authz.audit_log.id;
CREATE INDEX audit_log_logged_at ON authz.audit_log (logged_at);
COMMENT ON TABLE authz.audit_log IS 'One row per change made through the authz_ext functions, written in the same transaction.';

-- pg_dump: keep what deployers and applications wrote ------------------------------

SELECT pg_catalog.pg_extension_config_dump('authz.resource_types', 'WHERE NOT seeded');
SELECT pg_catalog.pg_extension_config_dump('authz.permissions', 'WHERE NOT seeded');
SELECT pg_catalog.pg_extension_config_dump('authz.roles', 'WHERE NOT seeded');
SELECT pg_catalog.pg_extension_config_dump('authz.role_permissions', 'WHERE NOT seeded');
SELECT pg_catalog.pg_extension_config_dump('authz.role_permission_removals', '');
SELECT pg_catalog.pg_extension_config_dump('authz.user_roles', '');
SELECT pg_catalog.pg_extension_config_dump('authz.grants', '');
SELECT pg_catalog.pg_extension_config_dump('authz.grants_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('authz.scopes', 'WHERE NOT seeded');
SELECT pg_catalog.pg_extension_config_dump('authz.scope_permissions', 'WHERE NOT seeded');
SELECT pg_catalog.pg_extension_config_dump('authz.api_keys', '');
SELECT pg_catalog.pg_extension_config_dump('authz.api_key_usage', '');
SELECT pg_catalog.pg_extension_config_dump('authz.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('authz.audit_log_id_seq', '');
