"""Permission changes as other sessions see them (docs/guide.md, Freshness)."""
import json
import random
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


def test_a_bulk_import_writes_what_the_same_grants_one_at_a_time_write(sessions, user):
    """authz_grant_bulk against authz_grant in a loop, over random batches that either
    replace some committed overrides (the update path) or are all new (the one-INSERT path):
    the same rows, and one audit row with the argument and exactly the rows replaced."""
    rng = random.Random(15)
    conn = sessions()
    permissions = ["document:read", "document:update", "project:read"]
    keys = [(f"{user}-{u}", p, r) for u in range(4) for p in permissions for r in [None, "1", "2", "30"]]
    base = rng.sample(keys, 20)
    conn.execute("SELECT authz_grant_bulk(%s::jsonb, 'base')", (json.dumps(
        [{"user_id": u, "permission": p, "resource_id": r} for u, p, r in base]),))
    conn.commit()

    def rows():
        return sorted(conn.execute(
            "SELECT user_id, permission, coalesce(resource_id, '-'), effect, expires_at, granted_by FROM authz.grants"
            " WHERE user_id LIKE %s", (user + "-%",)).fetchall())

    for round_ in range(12):
        pool = keys if round_ % 2 else [k for k in keys if k not in base]
        batch = [{"user_id": u, "permission": p, "resource_id": r, "effect": rng.choice(["allow", "deny"]),
                  "expires_at": rng.choice([None, "2999-01-01T00:00:00Z"])}
                 for u, p, r in rng.sample(pool, rng.randrange(1, 12))]
        written = conn.execute("SELECT authz_grant_bulk(%s::jsonb, 'importer')", (json.dumps(batch),)).fetchone()[0]
        by_bulk = rows()
        target, old, new = conn.execute("SELECT target, old_value, new_value FROM authz.audit_log"
                                        " WHERE action = 'authz_grant_bulk' ORDER BY id DESC LIMIT 1").fetchone()
        conn.rollback()
        for e in batch:
            conn.execute("SELECT authz_grant(%s::text, %s, %s::text, %s::timestamptz, %s, 'importer')",
                         (e["user_id"], e["permission"], e["resource_id"], e["expires_at"], e["effect"]))
        one_at_a_time = rows()
        conn.rollback()
        assert written == len(batch) and target == {"grants": len(batch)} and new == batch
        assert by_bulk == one_at_a_time, f"round {round_}"
        replaced = [(o["user_id"], o["permission"], o["resource_id"]) for o in old or []]
        assert len(replaced) == len(set(replaced))
        assert set(replaced) == set(base) & {(e["user_id"], e["permission"], e["resource_id"]) for e in batch}
        assert all(o["granted_by"] == "base" for o in old or [])
