"""pg_dump / pg_restore (docs/guide.md, Privileges): a database with roles, grants, custom
catalog entries, removed role defaults, keys, audit rows, relationship models (two
versions) and tuples, dumped with pg_dump -Fc and restored into a fresh database, answers
every check (relationship checks and lists too, under either model) the same, validates
every key the same way, keeps the audit log intact, and goes on issuing ids without
collisions."""
import os
import subprocess

from conftest import HOST, PORT, connect, create_database, drop_database

PG_BIN = os.environ.get("AUTHZ_TEST_PG_BIN", "/usr/lib/postgresql/15/bin")
SOURCE, TARGET = "authz_dump_source", "authz_dump_target"
USERS = ["d_alice", "d_bob", "d_carol", "d_dave"]
PERMISSIONS = ["document:read", "document:update", "document:delete", "invoice:approve", "project:read"]
RESOURCES = [None, "1", "2", "3"]

# Relationship models: the second adds doc#editor, who views too.
MODEL_V1 = """
model
  schema 1.1
type user
type team
  relations
    define member: [user, team#member]
type folder
  relations
    define viewer: [user, user:*, team#member]
type doc
  relations
    define parent: [folder]
    define viewer: [user] or viewer from parent
"""
MODEL_V2 = MODEL_V1.replace("define viewer: [user] or viewer from parent",
                            "define editor: [user]\n    define viewer: [user] or editor or viewer from parent")
SUBJECTS = ["user:d_alice", "user:d_bob", "user:d_carol", "user:d_dave", "user:d_zed", "team:eng#member"]
OBJECTS = ["doc:1", "doc:2", "doc:3", "doc:4", "folder:f1", "folder:f2"]


def fill(conn):
    conn.execute("SELECT authz_define_permission('invoice', 'approve')")
    conn.execute("SELECT authz_role_permission_add('viewer', 'invoice:approve')")
    conn.execute("SELECT authz_role_permission_remove('viewer', 'project:read')")      # a seeded default
    conn.execute("SELECT authz_set_role('d_alice', 'viewer')")
    conn.execute("SELECT authz_set_role('d_bob', 'manager')")
    conn.execute("SELECT authz_set_role('d_carol', 'admin')")
    conn.execute("SELECT authz_grant('d_alice'::text, 'document:update', 2::bigint)")
    conn.execute("SELECT authz_grant('d_bob'::text, 'document:delete', NULL::bigint, NULL, 'deny')")
    conn.execute("SELECT authz_grant('d_carol'::text, 'document:read', 3::bigint, NULL, 'deny')")
    conn.execute("SELECT authz_grant('d_dave'::text, 'document:read', 1::bigint, now() + interval '1 day')")
    conn.execute("SELECT authz_grant('d_dave'::text, 'invoice:approve')")
    tokens = {}
    for name, user, scopes in [("live", "d_alice", ["documents:read"]), ("revoked", "d_bob", ["documents:write"])]:
        key_id, token = conn.execute(
            "SELECT key_id, token FROM api_key_create(%s::text, %s, %s)", (user, name, scopes)).fetchone()
        tokens[name] = token
        if name == "revoked":
            conn.execute("SELECT api_key_revoke(%s, 'd_carol'::text)", (key_id,))
    conn.execute("SELECT api_key_validate(%s)", (tokens["live"],))       # sets last_used_at
    return tokens


def fill_relationships(conn):
    """Two model versions and tuples of every kind of subject: nested usersets, a wildcard,
    expiring ones (one through bulk); returns the model ids."""
    models = [conn.execute("SELECT authz_model_write(%s)", (m,)).fetchone()[0] for m in (MODEL_V1, MODEL_V2)]
    for obj, relation, subject in [("team:eng", "member", "user:d_alice"), ("team:eng", "member", "team:ops#member"),
                                   ("team:ops", "member", "user:d_bob"), ("folder:f1", "viewer", "team:eng#member"),
                                   ("folder:f2", "viewer", "user:*"), ("doc:1", "parent", "folder:f1"),
                                   ("doc:2", "parent", "folder:f2"), ("doc:3", "editor", "user:d_dave")]:
        conn.execute("SELECT authz_tuple_write(%s, %s, %s)", (obj, relation, subject))
    conn.execute("SELECT authz_tuple_write('doc:3', 'viewer', 'user:d_carol', expires_at => now() + interval '1 day')")
    conn.execute("""SELECT authz_tuple_write_bulk('[{"object": "doc:4", "relation": "viewer", "user": "user:d_zed",
                                                     "expires_at": "2999-01-01T00:00:00Z"}]')""")
    return models


def relationship_snapshot(conn, models):
    """Every relationship answer: checks under the current model and each one named, lists."""
    checks = {
        (s, o, model): conn.execute("SELECT authz_relation_check(%s, 'viewer', %s, model_id => %s)",
                                    (s, o, model)).fetchone()[0]
        for s in SUBJECTS for o in OBJECTS for model in [None, *models]
    }
    checks.update({(s, "doc:3 editor", None): conn.execute(
        "SELECT authz_relation_check(%s, 'editor', 'doc:3')", (s,)).fetchone()[0] for s in SUBJECTS})
    objects = {s: sorted(r[0] for r in conn.execute("SELECT * FROM authz_list_objects(%s, 'doc', 'viewer')", (s,)))
               for s in SUBJECTS}
    users = {o: sorted(r[0] for r in conn.execute(
        "SELECT * FROM authz_list_users(%s, 'viewer', '{user,team#member}')", (o,))) for o in OBJECTS}
    return checks, objects, users


def snapshot(conn, tokens):
    """Everything that must survive: decisions, key validations, tables' contents."""
    decisions = {
        (u, p, r): conn.execute("SELECT authz_check(%s::text, %s, %s::text)", (u, p, r)).fetchone()[0]
        for u in USERS for p in PERMISSIONS for r in RESOURCES
    }
    keys = {name: conn.execute("SELECT valid, status, user_id, scopes FROM api_key_validate(%s)", (t,)).fetchone()
            for name, t in tokens.items()}
    # Whole rows, except the install time of seed rows (CREATE EXTENSION re-creates those).
    tables = {
        table: conn.execute(f"SELECT {columns} FROM authz.{table} ORDER BY 1, 2").fetchall()
        for table, columns in [
            ("grants", "*"), ("user_roles", "*"), ("role_permissions", "*"), ("role_permission_removals", "*"),
            ("api_keys", "*"), ("api_key_usage", "*"), ("audit_log", "*"),
            ("permissions", "name, resource_type, action, seeded, CASE WHEN NOT seeded THEN created_at END"),
            ("resource_types", "name, seeded"), ("relation_models", "*"),
            # (Its key first, as text, for the order.)
            ("relation_tuples",
             "(object_type, object_id, relation, subject_type, subject_id, subject_relation)::text, *"),
        ]
    }
    return decisions, keys, tables


def test_dump_and_restore_keep_everything(database, tmp_path):
    create_database(SOURCE)
    with connect(SOURCE, autocommit=True) as conn:
        tokens = fill(conn)
        models = fill_relationships(conn)
        before = snapshot(conn, tokens)
        relationships_before = relationship_snapshot(conn, models)
    assert sum(before[0].values()) > 10 and not all(before[0].values())
    assert before[1]["live"][1] == "valid" and before[1]["revoked"][1] == "revoked"
    # The answers exercise every tuple: usersets (nested), the wildcard, expiring tuples,
    # and the two models' difference (dave edits doc:3, so views it under the second only).
    checks = relationships_before[0]
    assert checks[("user:d_bob", "doc:1", None)] and checks[("team:eng#member", "doc:1", None)]
    assert checks[("user:d_zed", "doc:2", None)] and checks[("user:d_carol", "doc:3", None)]
    assert checks[("user:d_zed", "doc:4", None)] and not checks[("user:d_zed", "doc:1", None)]
    assert checks[("user:d_dave", "doc:3", None)] and not checks[("user:d_dave", "doc:3", models[0])]

    dump = tmp_path / "authz.dump"
    common = ["-h", HOST, "-p", str(PORT), "-U", "postgres"]
    subprocess.run([f"{PG_BIN}/pg_dump", *common, "-Fc", "-f", str(dump), SOURCE], check=True)
    create_database(TARGET, extension=False)  # pg_restore creates it
    restore = subprocess.run([f"{PG_BIN}/pg_restore", *common, "--exit-on-error", "-d", TARGET, str(dump)],
                             capture_output=True, text=True)
    assert restore.returncode == 0, restore.stderr

    with connect(TARGET, autocommit=True) as conn:
        after = snapshot(conn, tokens)
        for table, rows in before[2].items():
            assert after[2][table] == rows, table
        assert after[0] == before[0]
        assert after[1] == before[1]
        assert relationship_snapshot(conn, models) == relationships_before
        # Sequences were restored too: new rows get fresh ids, the audit log goes on.
        grant_id = conn.execute("SELECT authz_grant('d_erin'::text, 'document:read', 9::bigint)").fetchone()[0]
        assert grant_id > max(row[0] for row in before[2]["grants"])
        assert conn.execute("SELECT count(*) FROM authz.audit_log").fetchone()[0] == len(before[2]["audit_log"]) + 1
        # The restored extension is fully working: a revoke is honoured at once.
        assert conn.execute("SELECT authz_revoke('d_alice'::text, 'document:update', 2::bigint)").fetchone()[0]
        assert conn.execute("SELECT authz_check('d_alice'::text, 'document:update', 2::bigint)").fetchone()[0] is False
        # Relationships too: a new model gets the next id, a tuple deletion is honoured.
        newer = conn.execute("SELECT authz_model_write(%s)", (MODEL_V2,)).fetchone()[0]
        assert int(newer) > max(int(m) for m in models)
        assert conn.execute("SELECT authz_tuple_delete('team:ops', 'member', 'user:d_bob')").fetchone()[0] is True
        assert conn.execute("SELECT authz_relation_check('user:d_bob', 'viewer', 'doc:1')").fetchone()[0] is False
    drop_database(SOURCE)
    drop_database(TARGET)
