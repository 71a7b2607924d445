"""Permission changes as other sessions see them (docs/guide.md, Freshness)."""
import uuid

import psycopg
import pytest

# Each test runs with the decision cache on and off (conftest.py, `cache`).
pytestmark = pytest.mark.usefixtures("cache")


def check(conn, user, permission, resource):
    return conn.execute("SELECT authz_check(%s::text, %s, %s)", (user, permission, resource)).fetchone()[0]


@pytest.fixture
def user():
    """A user id of its own for each test, so tests do not see each other's grants."""
    return str(uuid.uuid4())


def test_grant_and_revoke_are_seen_by_another_session_after_commit(sessions, user):
    admin, app = sessions(), sessions(autocommit=True)
    admin.execute("SELECT authz_grant(%s::text, 'document:read', 7)", (user,))
    assert check(app, user, "document:read", 7) is False, "uncommitted grant leaked"
    admin.commit()
    assert check(app, user, "document:read", 7) is True
    admin.execute("SELECT authz_revoke(%s::text, 'document:read', 7)", (user,))
    assert check(app, user, "document:read", 7) is True, "uncommitted revoke leaked"
    admin.commit()
    assert check(app, user, "document:read", 7) is False


def test_own_uncommitted_changes_are_visible_and_rollback_undoes_them(sessions, user):
    conn = sessions()
    conn.execute("SELECT authz_set_role(%s::text, 'developer')", (user,))
    assert check(conn, user, "document:update", 1) is True
    conn.execute("SAVEPOINT s")
    conn.execute("SELECT authz_grant(%s::text, 'document:update', 1, NULL, 'deny')", (user,))
    assert check(conn, user, "document:update", 1) is False
    conn.execute("ROLLBACK TO SAVEPOINT s")
    assert check(conn, user, "document:update", 1) is True
    conn.rollback()
    assert check(conn, user, "document:update", 1) is False


@pytest.mark.parametrize("isolation", ["REPEATABLE READ", "SERIALIZABLE"])
def test_open_snapshot_transaction_sees_a_revoke_committed_after_it_began(sessions, user, isolation):
    admin, app = sessions(autocommit=True), sessions()
    admin.execute("SELECT authz_set_role(%s::text, 'manager')", (user,))
    app.execute(f"BEGIN ISOLATION LEVEL {isolation}")
    assert check(app, user, "project:delete", 3) is True  # the snapshot is now taken
    admin.execute("SELECT authz_set_role(%s::text, 'viewer')", (user,))
    assert check(app, user, "project:delete", 3) is False
    app.rollback()


def test_mutators_are_refused_to_ordinary_roles(ordinary_session):
    assert check(ordinary_session, "1", "document:read", 1) is False
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        ordinary_session.execute("SELECT authz_grant(1, 'document:read', 1)")
