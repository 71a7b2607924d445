"""Versioning: the install script of the current version is committed under sql/ and must
be what the build generates (scripts/install-script.sh rewrites it); every upgrade script
sql/authz_ext--A--B.sql is tested by installing version A from its committed script,
filling data, running ALTER EXTENSION authz_ext UPDATE and finding the data intact."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import connect, create_database, drop_database

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = os.environ.get("AUTHZ_TEST_PG_BIN", "/usr/lib/postgresql/15/bin")
VERSION = re.search(r"^default_version = '(.+)'$", (ROOT / "authz_ext.control").read_text(), re.M).group(1)
UPGRADES = sorted(p.name for p in (ROOT / "sql").glob("authz_ext--*--*.sql"))


def extension_dir():
    sharedir = subprocess.run([f"{PG_BIN}/pg_config", "--sharedir"], capture_output=True, text=True,
                              check=True).stdout.strip()
    return Path(sharedir) / "extension"


def test_committed_install_script_is_what_the_build_generates():
    committed = ROOT / "sql" / f"authz_ext--{VERSION}.sql"
    assert committed.exists(), f"run scripts/install-script.sh and commit {committed.name}"
    installed = extension_dir() / f"authz_ext--{VERSION}.sql"
    assert installed.read_text() == committed.read_text(), (
        f"sql/{committed.name} differs from the build's: run scripts/install-script.sh")


@pytest.mark.skipif(not UPGRADES, reason=f"no upgrade script yet: {VERSION} is the first version")
@pytest.mark.parametrize("script", UPGRADES)
def test_upgrade_keeps_the_data(script):
    old = re.match(r"authz_ext--(.+)--(.+)\.sql$", script).group(1)
    shutil.copy(ROOT / "sql" / f"authz_ext--{old}.sql", extension_dir() / f"authz_ext--{old}.sql")
    dbname = "authz_upgrade"
    create_database(dbname, extension=False)
    with connect(dbname, autocommit=True) as conn:
        conn.execute(f"CREATE EXTENSION authz_ext VERSION '{old}'")
        conn.execute("SELECT authz_set_role('up_alice', 'viewer')")
        conn.execute("SELECT authz_grant('up_alice'::text, 'document:update', 7::bigint)")
        token = conn.execute("SELECT token FROM api_key_create('up_alice'::text, 'k', ARRAY['documents:read'])"
                             ).fetchone()[0]
        before = conn.execute("SELECT count(*) FROM authz.audit_log").fetchone()[0]
        conn.execute("ALTER EXTENSION authz_ext UPDATE")
        assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'authz_ext'").fetchone()[0] == VERSION
        assert conn.execute("SELECT authz_check('up_alice'::text, 'document:update', 7::bigint)").fetchone()[0]
        assert conn.execute("SELECT authz_check('up_alice'::text, 'document:read', 1::bigint)").fetchone()[0]
        assert conn.execute("SELECT status FROM api_key_validate(%s)", (token,)).fetchone()[0] == "valid"
        assert conn.execute("SELECT count(*) FROM authz.audit_log").fetchone()[0] == before
    drop_database(dbname)
