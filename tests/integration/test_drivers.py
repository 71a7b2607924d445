"""One application scenario through three drivers, as an application would write it: ids
passed as parameters, as numbers or as strings, with no casts in the SQL — grants, checks,
explain, an API key created and validated, then authenticated with and an RLS query with a
parameter, and a revoke. psycopg 3 runs it here (Python ints are typed, strings are not);
node-postgres (every parameter untyped) and tokio-postgres (the server names the types;
also typed and mixed) run tests/drivers/node/scenario.mjs and tests/drivers/rust."""
import os
import subprocess
from pathlib import Path

import pytest

from conftest import HOST, PORT, connect, create_database, drop_database

DRIVERS = Path(__file__).resolve().parent.parent / "drivers"

SETUP = """
CREATE TABLE documents (id bigint PRIMARY KEY, title text);
INSERT INTO documents VALUES (1, 'Roadmap'), (2, 'Budget'), (3, 'Salaries');
ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
CREATE POLICY documents_read ON documents FOR SELECT USING (authz_can('document:read', id));
DO $$ BEGIN CREATE ROLE driver_app LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
GRANT SELECT ON documents TO driver_app;
"""


@pytest.fixture
def app_database(request):
    name = f"authz_drivers_{request.node.name.removeprefix('test_')}"
    create_database(name)
    with connect(name, autocommit=True) as admin:
        admin.execute(SETUP)
    yield name
    drop_database(name)


def test_psycopg(app_database):
    with connect(app_database, autocommit=True) as admin, \
            connect(app_database, user="driver_app", autocommit=True) as app:
        def one(conn, sql, params):
            return conn.execute(sql, params).fetchone()

        assert one(admin, "SELECT authz_grant(%s, %s, %s)", (42, "document:read", 1))[0] > 0
        one(admin, "SELECT authz_grant(%s, %s, %s)", ("alice", "document:read", "2"))
        one(admin, "SELECT authz_grant(%s, %s, %s, %s, %s)", (42, "document:read", "3", None, "deny"))
        check = "SELECT authz_check(%s, %s, %s)"
        assert one(app, check, (42, "document:read", 1)) == (True,)
        assert one(app, check, ("42", "document:read", "1")) == (True,), "the same id as a string"
        assert one(app, check, (42, "document:read", "3")) == (False,), "int user, str resource"
        assert one(app, check, ("alice", "document:read", 2)) == (True,), "str user, int resource"
        assert one(app, "SELECT allowed, decided_by FROM authz_explain(%s, %s, %s)",
                   (42, "document:read", 3)) == (False, "resource")
        token = one(admin, "SELECT token FROM api_key_create(%s, %s, %s)", (42, "psycopg key", ["documents:read"]))[0]
        assert one(app, "SELECT valid, status, user_id FROM api_key_validate(%s)", (token,)) == (True, "valid", "42")
        with app.transaction():
            assert one(app, "SELECT authz_authenticate(%s)", (token,)) == ("42",)
            rows = app.execute("SELECT id FROM documents WHERE id = ANY(%s) ORDER BY id", ([1, 2, 3],)).fetchall()
            assert rows == [(1,)], "RLS shows document 1 only"
        assert one(admin, "SELECT authz_revoke(%s, %s, %s)", (42, "document:read", 1)) == (True,)
        assert one(app, check, (42, "document:read", 1)) == (False,)


def run_scenario(command, database, cwd):
    env = {**os.environ, "AUTHZ_DRIVER_HOST": HOST, "AUTHZ_DRIVER_PORT": PORT, "AUTHZ_DRIVER_DB": database}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    print(done.stdout, done.stderr)
    assert done.returncode == 0, done.stderr


def test_node_postgres(app_database):
    run_scenario(["node", "scenario.mjs"], app_database, DRIVERS / "node")


def test_tokio_postgres(app_database):
    client = os.environ.get("AUTHZ_TEST_RUST_CLIENT", str(DRIVERS / "rust" / "target" / "debug" / "authz_ext_driver_test"))
    run_scenario([client], app_database, DRIVERS / "rust")
