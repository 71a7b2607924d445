"""Least privilege (docs/guide.md, Privileges): what an unprivileged login role may and may not
do, through a driver, and the documented way to delegate administration to a role."""
import psycopg
import pytest

from conftest import connect

# What PUBLIC may execute; every other function of the extension is refused.
PUBLIC_FUNCTIONS = {
    "api_key_validate", "authz_authenticate", "authz_can", "authz_check",
    "authz_current_user", "authz_explain", "authz_relation_check", "authz_require", "authz_stats",
}
# The functions docs/guide.md ("Privileges, and delegating administration") grants to an admin role.
ADMIN_GRANTS = """
SELECT authz_grant_execute('{role}', 'authz_grant', 'authz_revoke', 'authz_set_role', 'authz_user_role',
                           'authz_user_permissions', 'authz_role_permissions', 'api_key_create',
                           'api_key_revoke', 'api_key_list', 'api_key_get')
"""


@pytest.fixture
def owner(sessions):
    conn = sessions(autocommit=True)
    conn.execute("SELECT authz_set_role('lp_alice', 'viewer')")
    conn.execute("SELECT authz_grant('lp_alice', 'document:update', 7)")
    conn.execute("SELECT authz_model_write('model\n  schema 1.1\ntype user\ntype document\n  relations\n"
                 "    define viewer: [user]\n')")
    conn.execute("SELECT authz_tuple_write('document:7', 'viewer', 'user:lp_alice')")
    return conn


def token_for(owner, user, scopes):
    return owner.execute("SELECT token FROM api_key_create(%s::text, 'lp', %s)", (user, scopes)).fetchone()[0]


def test_public_functions_work_for_an_unprivileged_role(owner, ordinary_session):
    conn = ordinary_session
    token = token_for(owner, "lp_alice", ["documents:read", "documents:write"])
    row = conn.execute("SELECT valid, status, user_id FROM api_key_validate(%s)", (token,)).fetchone()
    assert row == (True, "valid", "lp_alice")
    assert conn.execute("SELECT authz_check('lp_alice'::text, 'document:read', 1::bigint)").fetchone()[0] is True
    assert conn.execute("SELECT authz_check('lp_alice'::text, 'document:delete', 1::bigint)").fetchone()[0] is False
    assert conn.execute("SELECT allowed FROM authz_explain('lp_alice'::text, 'document:update', 7::bigint)").fetchone()[0]
    with conn.transaction():
        assert conn.execute("SELECT authz_authenticate(%s)", (token,)).fetchone()[0] == "lp_alice"
        assert conn.execute("SELECT authz_current_user()").fetchone()[0] == "lp_alice"
        assert conn.execute("SELECT authz_can('document:update', 7::bigint)").fetchone()[0] is True
        assert conn.execute("SELECT authz_can('document:update', 8::bigint)").fetchone()[0] is False
        conn.execute("SELECT authz_require('lp_alice'::text, 'document:update', 7::bigint)")
    assert conn.execute("SELECT authz_relation_check('user:lp_alice', 'viewer', 'document:7')").fetchone()[0] is True
    assert conn.execute("SELECT authz_relation_check('user:lp_bob', 'viewer', 'document:7')").fetchone()[0] is False


def test_every_table_and_every_other_function_is_refused(owner, ordinary_session):
    conn = ordinary_session
    tables = [r[0] for r in owner.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = 'authz'::regnamespace AND relkind IN ('r', 'S')")]
    assert len(tables) >= 13
    for table in tables:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"SELECT * FROM authz.{table} LIMIT 1")
    # No way to the key hashes: not the table, not a column grant, not a listing.
    for sql in ("SELECT key_hash FROM authz.api_keys", "SELECT key_hash FROM authz.api_keys WHERE false"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(sql)

    functions = owner.execute(
        """SELECT p.oid::regprocedure::text, p.proname
           FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
           WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'authz_ext')
             AND p.pronamespace = 'public'::regnamespace""").fetchall()
    role = conn.info.user
    allowed = {name for signature, name in functions if owner.execute(
        "SELECT has_function_privilege(%s, %s, 'EXECUTE')", (role, signature)).fetchone()[0]}
    assert allowed == PUBLIC_FUNCTIONS
    # And calling them really fails (not only the catalog saying so).
    refused = [
        "SELECT authz_grant('lp_mallory'::text, 'document:delete', 1::bigint)",
        "SELECT authz_revoke('lp_alice'::text, 'document:update', 7::bigint)",
        "SELECT authz_set_role('lp_mallory'::text, 'admin')",
        "SELECT authz_set_user('lp_alice'::text)",
        "SELECT authz_define_permission('document', 'steal')",
        "SELECT authz_role_permission_add('viewer', 'document:delete')",
        "SELECT authz_init_role_permissions()",
        "SELECT authz_cleanup_expired()",
        "SELECT * FROM authz_user_permissions('lp_alice'::text)",
        "SELECT * FROM authz_resources('lp_alice'::text, 'document:update')",
        "SELECT * FROM api_key_create('lp_mallory'::text, 'x', ARRAY['documents:read'])",
        "SELECT * FROM api_key_list('lp_alice'::text)",
        "SELECT api_key_revoke(gen_random_uuid())",
    ]
    for sql in refused:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(sql)
    assert owner.execute("SELECT authz_user_role('lp_mallory'::text)").fetchone()[0] is None


def test_delegated_administration(owner, sessions):
    owner.execute("DROP ROLE IF EXISTS authz_it_admin_member")
    owner.execute("DROP ROLE IF EXISTS authz_it_admins")
    owner.execute("CREATE ROLE authz_it_admins NOLOGIN")
    owner.execute(ADMIN_GRANTS.format(role="authz_it_admins"))
    owner.execute("CREATE ROLE authz_it_admin_member LOGIN IN ROLE authz_it_admins")
    try:
        admin = connect(user="authz_it_admin_member", autocommit=True)
        with admin:
            admin.execute("SELECT authz_grant('lp_bob'::text, 'document:read', 3::bigint)")
            admin.execute("SELECT authz_set_role('lp_bob'::text, 'developer')")
            assert admin.execute("SELECT authz_user_role('lp_bob'::text)").fetchone()[0] == "developer"
            key_id = admin.execute(
                "SELECT key_id FROM api_key_create('lp_bob'::text, 'svc', ARRAY['documents:read'])").fetchone()[0]
            assert [r[0] for r in admin.execute("SELECT key_id FROM api_key_list('lp_bob'::text)")] == [key_id]
            assert admin.execute("SELECT api_key_revoke(%s)", (key_id,)).fetchone()[0] is True
            # The audit log names the delegated role as the database role.
            assert owner.execute(
                "SELECT db_role FROM authz.audit_log WHERE action = 'authz_grant' ORDER BY id DESC LIMIT 1"
            ).fetchone()[0] == "authz_it_admin_member"
            # Delegation does not open the tables or the catalog administration.
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                admin.execute("SELECT key_hash FROM authz.api_keys")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                admin.execute("SELECT authz_define_permission('document', 'x')")
    finally:
        owner.execute("DROP OWNED BY authz_it_admins")
        owner.execute("DROP ROLE authz_it_admin_member")
        owner.execute("DROP ROLE authz_it_admins")
