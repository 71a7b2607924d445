-- authz_ext: the public SQL interface (DESIGN.md section 3) and its privileges. Runs last.
--
-- Each function is a Rust C function (src/pg). Id parameters are declared "any": each one
-- independently takes bigint, integer, smallint, uuid or text (or an untyped literal)
-- without casts, stored as canonical text. None is SECURITY DEFINER or has a SET clause:
-- table access switches to the extension owner inside (src/pg/owner.rs), so a per-row
-- check pays no GUC save/restore.
--
-- PUBLIC may call the checks, api_key_validate, authz_authenticate, authz_current_user and
-- authz_can; everything that changes or lists, and authz_set_user, is for the extension
-- owner and the roles it grants EXECUTE to.

-- Checks ---------------------------------------------------------------------------------
-- PARALLEL RESTRICTED: a check reads through the leader's decision cache and takes fresh
-- snapshots, neither of which a parallel worker can do.

CREATE FUNCTION @extschema@.authz_check(user_id "any", permission text, resource_id "any")
RETURNS boolean LANGUAGE c STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'authz_check_wrapper';
COMMENT ON FUNCTION @extschema@.authz_check(user_id "any", permission text, resource_id "any") IS
    'Whether the user holds the permission on the resource: resource override, then resource-type override, then role default, else false. NULL resource: the resource-type level.';

CREATE FUNCTION @extschema@.authz_check(user_id "any", permission text)
RETURNS boolean LANGUAGE c STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'authz_check_type_wrapper';
COMMENT ON FUNCTION @extschema@.authz_check(user_id "any", permission text) IS
    'Whether the user holds the permission on every resource of its type (resource-type override, then role default).';

CREATE FUNCTION @extschema@.authz_explain(user_id "any", permission text, resource_id "any" DEFAULT NULL)
RETURNS TABLE (allowed boolean, decided_by text, role text, grant_id bigint,
               expires_at timestamptz, reason text)
LANGUAGE c STABLE PARALLEL RESTRICTED ROWS 1
AS 'MODULE_PATHNAME', 'authz_explain_wrapper';
COMMENT ON FUNCTION @extschema@.authz_explain(user_id "any", permission text, resource_id "any") IS
    'authz_check with its reasons: which level decided (resource, resource_type, role, default), the role, the deciding grant and its expiry.';

CREATE FUNCTION @extschema@.authz_require(user_id "any", permission text, resource_id "any" DEFAULT NULL)
RETURNS void LANGUAGE c STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'authz_require_wrapper';
COMMENT ON FUNCTION @extschema@.authz_require(user_id "any", permission text, resource_id "any") IS
    'Raises insufficient_privilege (42501), naming user, permission and resource, unless authz_check allows.';

CREATE FUNCTION @extschema@.authz_resources(user_id "any", permission text)
RETURNS SETOF text LANGUAGE c STABLE PARALLEL RESTRICTED ROWS 100
AS 'MODULE_PATHNAME', 'authz_resources_wrapper';
COMMENT ON FUNCTION @extschema@.authz_resources(user_id "any", permission text) IS
    'The resource ids the user holds a live allow override for (not those reached through the role or a resource-type override): for RLS policies that find a selective user''s rows by index. A listing: not executable by PUBLIC.';

-- Overrides and roles ------------------------------------------------------------------------

CREATE FUNCTION @extschema@.authz_grant(user_id "any", permission text, resource_id "any" DEFAULT NULL,
                                        expires_at timestamptz DEFAULT NULL, effect text DEFAULT 'allow',
                                        granted_by "any" DEFAULT NULL)
RETURNS bigint LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'authz_grant_wrapper';
COMMENT ON FUNCTION @extschema@.authz_grant(user_id "any", permission text, resource_id "any", expires_at timestamptz, effect text, granted_by "any") IS
    'Creates or replaces the override for (user, permission, resource); NULL resource: every resource of the type. Returns the grant id.';

CREATE FUNCTION @extschema@.authz_revoke(user_id "any", permission text, resource_id "any" DEFAULT NULL)
RETURNS boolean LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'authz_revoke_wrapper';
COMMENT ON FUNCTION @extschema@.authz_revoke(user_id "any", permission text, resource_id "any") IS
    'Deletes the override for (user, permission, resource); true if there was one.';

CREATE FUNCTION @extschema@.authz_set_role(user_id "any", role text)
RETURNS void LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'authz_set_role_wrapper';
COMMENT ON FUNCTION @extschema@.authz_set_role(user_id "any", role text) IS
    'Sets the user''s global role (viewer, developer, manager, admin); NULL removes it.';

CREATE FUNCTION @extschema@.authz_user_role(user_id "any")
RETURNS text LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'authz_user_role_wrapper';
COMMENT ON FUNCTION @extschema@.authz_user_role(user_id "any") IS 'The user''s global role, or NULL.';

CREATE FUNCTION @extschema@.authz_user_permissions(user_id "any")
RETURNS TABLE (permission text, resource_id text, effect text, source text, expires_at timestamptz)
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'authz_user_permissions_wrapper';
COMMENT ON FUNCTION @extschema@.authz_user_permissions(user_id "any") IS
    'Where the user''s permissions come from: role defaults (source role) and live overrides (source resource or resource_type).';

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

CREATE FUNCTION @extschema@.api_key_create(user_id "any", name text, scopes text[],
                                           expires_at timestamptz DEFAULT NULL)
RETURNS TABLE (key_id uuid, token text, preview text)
LANGUAGE c VOLATILE ROWS 1
AS 'MODULE_PATHNAME', 'api_key_create_wrapper';
COMMENT ON FUNCTION @extschema@.api_key_create(user_id "any", name text, scopes text[], expires_at timestamptz) IS
    'Creates an API key for the user with the given scopes; the token is returned here once and stored only as its SHA-256.';

CREATE FUNCTION @extschema@.api_key_validate(token text)
RETURNS TABLE (valid boolean, status text, key_id uuid, user_id text, scopes text[],
               expires_at timestamptz)
LANGUAGE c VOLATILE ROWS 1
AS 'MODULE_PATHNAME', 'api_key_validate_wrapper';
COMMENT ON FUNCTION @extschema@.api_key_validate(token text) IS
    'One row: status valid, malformed, unknown, expired or revoked; key, owner, scopes and expiry when valid. Volatile: it refreshes last_used_at (see authz.key_last_used_interval).';

CREATE FUNCTION @extschema@.api_key_revoke(key_id uuid, revoked_by "any" DEFAULT NULL)
RETURNS boolean LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'api_key_revoke_wrapper';
COMMENT ON FUNCTION @extschema@.api_key_revoke(key_id uuid, revoked_by "any") IS
    'Revokes the key (soft delete: it stays listed with revoked_at). False if it was already revoked or does not exist.';

CREATE FUNCTION @extschema@.api_key_list(user_id "any")
RETURNS TABLE (key_id uuid, name text, preview text, scopes text[], created_at timestamptz,
               expires_at timestamptz, last_used_at timestamptz, revoked_at timestamptz)
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'api_key_list_wrapper';
COMMENT ON FUNCTION @extschema@.api_key_list(user_id "any") IS
    'The user''s keys, revoked and expired ones included, oldest first; never a token or hash.';

CREATE FUNCTION @extschema@.api_key_get(user_id "any", key_id uuid)
RETURNS TABLE (key_id uuid, name text, preview text, scopes text[], created_at timestamptz,
               expires_at timestamptz, last_used_at timestamptz, revoked_at timestamptz)
LANGUAGE c STABLE ROWS 1
AS 'MODULE_PATHNAME', 'api_key_get_wrapper';
COMMENT ON FUNCTION @extschema@.api_key_get(user_id "any", key_id uuid) IS
    'One key, as api_key_list shows it, only if it belongs to the user; otherwise no row.';

-- Request context ------------------------------------------------------------------------------
-- The principal is backend memory that ends with the transaction (src/pg/context.rs), so
-- the two functions that read it are PARALLEL RESTRICTED: a parallel worker has no copy.

CREATE FUNCTION @extschema@.authz_authenticate(token text)
RETURNS text LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'authz_authenticate_wrapper';
COMMENT ON FUNCTION @extschema@.authz_authenticate(token text) IS
    'Validates the API key and makes its owner the principal of the current transaction, limited to the key''s scopes; returns the user id. Raises 28000 for a token that is not a valid key.';

CREATE FUNCTION @extschema@.authz_set_user(user_id "any")
RETURNS void LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'authz_set_user_wrapper';
COMMENT ON FUNCTION @extschema@.authz_set_user(user_id "any") IS
    'Makes the user the principal of the current transaction (NULL clears it), for applications that authenticate elsewhere. Not executable by PUBLIC.';

CREATE FUNCTION @extschema@.authz_current_user()
RETURNS text LANGUAGE c STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'authz_current_user_wrapper';
COMMENT ON FUNCTION @extschema@.authz_current_user() IS
    'The principal of the current transaction, or NULL.';

CREATE FUNCTION @extschema@.authz_can(permission text, resource_id "any" DEFAULT NULL)
RETURNS boolean LANGUAGE c STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'authz_can_wrapper';
COMMENT ON FUNCTION @extschema@.authz_can(permission text, resource_id "any") IS
    'authz_check for the principal of the current transaction, and, when it authenticated with an API key, only if a scope of that (still valid) key covers the permission. False without a principal.';

-- Observability ----------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.authz_stats()
RETURNS TABLE (counter text, value bigint, description text)
LANGUAGE c VOLATILE PARALLEL RESTRICTED ROWS 12
AS 'MODULE_PATHNAME', 'authz_stats_wrapper';
COMMENT ON FUNCTION @extschema@.authz_stats() IS
    'This backend''s counters since it started: checks, allows, denies, decision-cache hits, misses, bypasses and invalidations, key validations by status.';

-- Privileges -----------------------------------------------------------------------------------

REVOKE ALL ON FUNCTION
    @extschema@.authz_grant(user_id "any", permission text, resource_id "any", expires_at timestamptz, effect text, granted_by "any"),
    @extschema@.authz_revoke(user_id "any", permission text, resource_id "any"),
    @extschema@.authz_set_role(user_id "any", role text),
    @extschema@.authz_user_role(user_id "any"),
    @extschema@.authz_user_permissions(user_id "any"),
    @extschema@.authz_resources(user_id "any", permission text),
    @extschema@.authz_role_permissions(role text),
    @extschema@.authz_init_role_permissions(),
    @extschema@.authz_role_permission_add(role text, permission text),
    @extschema@.authz_role_permission_remove(role text, permission text),
    @extschema@.authz_define_permission(resource_type text, action text),
    @extschema@.authz_cleanup_expired(),
    @extschema@.api_key_create(user_id "any", name text, scopes text[], expires_at timestamptz),
    @extschema@.api_key_revoke(key_id uuid, revoked_by "any"),
    @extschema@.api_key_list(user_id "any"),
    @extschema@.api_key_get(user_id "any", key_id uuid),
    @extschema@.authz_set_user(user_id "any")
FROM PUBLIC;
