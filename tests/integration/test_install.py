"""The installed extension as applications see it through a driver."""
import os
import threading

import psycopg
import pytest


def scalar(conn, sql, params=None):
    return conn.execute(sql, params).fetchone()[0]


def test_seed_catalog_is_visible_to_concurrent_sessions(sessions):
    conns = [sessions(autocommit=True) for _ in range(4)]
    results = {}

    def read(i, conn):
        results[i] = scalar(conn, "SELECT count(*) FROM authz.role_permissions")

    threads = [threading.Thread(target=read, args=(i, c)) for i, c in enumerate(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {0: 105, 1: 105, 2: 105, 3: 105}


def test_uncommitted_catalog_change_stays_private(sessions):
    writer, reader = sessions(), sessions(autocommit=True)
    writer.execute(
        "INSERT INTO authz.resource_types (name) VALUES ('invoice')")
    assert scalar(writer, "SELECT count(*) FROM authz.resource_types") == 9
    assert scalar(reader, "SELECT count(*) FROM authz.resource_types") == 8
    writer.rollback()
    assert scalar(reader, "SELECT count(*) FROM authz.resource_types") == 8


def test_ordinary_role_cannot_read_authz_tables(ordinary_session):
    for table in ("grants", "api_keys", "audit_log", "role_permissions"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            ordinary_session.execute(f"SELECT * FROM authz.{table}")


def test_the_cache_setting_the_test_command_chose_is_in_effect(sessions):
    """scripts/test.sh runs this suite with authz.cache on and off through PGOPTIONS."""
    expected = os.environ.get("AUTHZ_TEST_CACHE")
    if expected is None:
        pytest.skip("not run by scripts/test.sh")
    conn = sessions(autocommit=True)
    conn.execute("SELECT authz_check(1, 'document:read', 1)")  # loads the library
    assert conn.execute("SHOW authz.cache").fetchone()[0] == expected
