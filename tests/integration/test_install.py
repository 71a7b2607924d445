"""The installed extension as applications see it through a driver."""
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


def test_the_cache_fixture_sets_the_sessions(sessions, cache):
    """Tests that take the `cache` fixture run twice, their sessions with authz.cache on and off."""
    conn = sessions(autocommit=True)
    assert conn.execute("SHOW authz.cache").fetchone()[0] == cache
