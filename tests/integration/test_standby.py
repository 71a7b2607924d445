"""A real hot standby (scripts/test.sh starts one with pg_basebackup -R): checks, key
validation, authentication and authz_can work there without ever failing on last-used
writes, and a revoke on the primary is honoured on the standby once replayed — also by a
standby session whose decision cache was warm."""
import os
import time
import uuid

import psycopg
import pytest

from conftest import connect, with_cache

STANDBY_HOST = os.environ["AUTHZ_TEST_STANDBY_HOST"]
STANDBY_PORT = os.environ["AUTHZ_TEST_STANDBY_PORT"]


def standby_connect(dbname, cache):
    return psycopg.connect(host=STANDBY_HOST, port=STANDBY_PORT, user="postgres", dbname=dbname, autocommit=True,
                           **with_cache(cache))


def replayed(primary, standby):
    """Waits until the standby has replayed everything the primary has written so far."""
    target = primary.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if standby.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)).fetchone()[0]:
            return
        time.sleep(0.02)
    raise AssertionError(f"the standby did not replay up to {target} in 30 s")


def wait_for_database(dbname, cache):
    deadline = time.monotonic() + 30
    while True:
        try:
            return standby_connect(dbname, cache)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def pair(database, cache):
    """A primary session, and a standby session with the decision cache on, then off."""
    primary = connect(database, autocommit=True)
    standby = wait_for_database(database, cache)
    assert standby.execute("SELECT pg_is_in_recovery()").fetchone()[0]
    yield primary, standby
    primary.close()
    standby.close()


def check(conn, user, permission, resource):
    return conn.execute("SELECT authz_check(%s::text, %s, %s::text)", (user, permission, resource)).fetchone()[0]


def test_checks_keys_and_principals_work_on_the_standby(pair):
    primary, standby = pair
    primary.execute("SELECT authz_set_role('sb_alice', 'viewer')")
    primary.execute("SELECT authz_grant('sb_alice'::text, 'document:update', 7::bigint)")
    token = primary.execute(
        "SELECT token FROM api_key_create('sb_alice'::text, 'sb', ARRAY['documents:read', 'documents:write'])"
    ).fetchone()[0]
    replayed(primary, standby)

    assert check(standby, "sb_alice", "document:read", "1") is True
    assert check(standby, "sb_alice", "document:update", "7") is True
    assert check(standby, "sb_alice", "document:update", "8") is False
    # Validation wants to write last_used_at (every call, with the interval at 0): on a
    # standby it must skip the write, never fail.
    standby.execute("SET authz.key_last_used_interval = 0")
    for _ in range(3):
        assert standby.execute("SELECT valid, status, user_id FROM api_key_validate(%s)", (token,)).fetchone() == (
            True, "valid", "sb_alice")
    with standby.transaction():
        assert standby.execute("SELECT authz_authenticate(%s)", (token,)).fetchone()[0] == "sb_alice"
        assert standby.execute("SELECT authz_can('document:update', 7::bigint)").fetchone()[0] is True
        assert standby.execute("SELECT authz_can('document:delete', 7::bigint)").fetchone()[0] is False
    # Mutators are refused as on any read-only server, with the standard SQLSTATE.
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        standby.execute("SELECT authz_grant('sb_alice'::text, 'document:delete', 1::bigint)")


def test_revokes_are_honoured_on_the_standby_once_replayed(pair):
    primary, standby = pair
    primary.execute("SELECT authz_set_role('sb_bob', 'developer')")
    for resource in range(1, 6):
        primary.execute("SELECT authz_grant('sb_bob'::text, 'document:delete', %s::bigint)", (resource,))
    token = primary.execute(
        "SELECT token FROM api_key_create('sb_bob'::text, 'sb', ARRAY['documents:write'])").fetchone()[0]
    key_id = primary.execute(
        "SELECT key_id FROM api_key_validate(%s)", (token,)).fetchone()[0]
    replayed(primary, standby)

    # Warm the standby session's cache: a scan checks the same user many times.
    scan = "SELECT array_agg(r ORDER BY r) FROM generate_series(1, 10) r WHERE authz_check('sb_bob'::text, 'document:delete', r::bigint)"
    assert standby.execute(scan).fetchone()[0] == [1, 2, 3, 4, 5]

    primary.execute("SELECT authz_revoke('sb_bob'::text, 'document:delete', 3::bigint)")
    primary.execute("SELECT authz_grant('sb_bob'::text, 'document:delete', 5::bigint, NULL, 'deny')")
    replayed(primary, standby)
    assert standby.execute(scan).fetchone()[0] == [1, 2, 4]
    assert check(standby, "sb_bob", "document:delete", "3") is False

    primary.execute("SELECT authz_set_role('sb_bob', 'viewer')")
    replayed(primary, standby)
    assert check(standby, "sb_bob", "document:update", "1") is False      # developer's, not viewer's

    assert standby.execute("SELECT status FROM api_key_validate(%s)", (token,)).fetchone()[0] == "valid"
    primary.execute("SELECT api_key_revoke(%s)", (key_id,))
    replayed(primary, standby)
    assert standby.execute("SELECT status FROM api_key_validate(%s)", (token,)).fetchone()[0] == "revoked"
    with pytest.raises(psycopg.errors.InvalidAuthorizationSpecification):
        standby.execute("SELECT authz_authenticate(%s)", (token,))


RELATION_MODEL = """
model
  schema 1.1
type user
type team
  relations
    define member: [user]
type doc
  relations
    define viewer: [user, user:*, team#member]
"""


def test_tuple_deletions_are_honoured_on_the_standby_once_replayed(pair, database):
    primary, standby = pair
    suffix = uuid.uuid4().hex[:8]
    doc, team, anne, bob = f"doc:sb-{suffix}", f"team:sb-{suffix}", f"user:sb-anne-{suffix}", f"user:sb-bob-{suffix}"
    primary.execute("SELECT authz_model_write(%s)", (RELATION_MODEL,))
    for obj, relation, subject in [(doc, "viewer", anne), (team, "member", bob), (doc, "viewer", f"{team}#member")]:
        primary.execute("SELECT authz_tuple_write(%s, %s, %s)", (obj, relation, subject))
    replayed(primary, standby)

    relation_check = "SELECT authz_relation_check(%s, 'viewer', %s)"
    users = "SELECT array_agg(u ORDER BY u) FROM authz_list_users(%s, 'viewer', '{user}') u"
    assert standby.execute(relation_check, (anne, doc)).fetchone()[0] is True
    assert standby.execute(relation_check, (bob, doc)).fetchone()[0] is True
    assert standby.execute(users, (doc,)).fetchone()[0] == sorted([anne, bob])
    # A standby transaction opened before the deletions are replayed: its snapshot is old,
    # the checks read what was replayed. The primary may clean the deleted rows up at any
    # moment (pruning, VACUUM), and the replay of that would wait for the standby snapshot
    # (up to max_standby_streaming_delay, 30 s): a primary snapshot as old keeps them.
    with connect(database) as holder:
        holder.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        holder.execute("SELECT 1")
        standby.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        assert standby.execute(relation_check, (bob, doc)).fetchone()[0] is True
        primary.execute("SELECT authz_tuple_delete(%s, 'viewer', %s)", (doc, anne))
        primary.execute("SELECT authz_tuple_delete(%s, 'member', %s)", (team, bob))
        primary.execute("VACUUM authz.relation_tuples")
        replayed(primary, standby)
    assert standby.execute(relation_check, (anne, doc)).fetchone()[0] is False
    assert standby.execute(relation_check, (bob, doc)).fetchone()[0] is False
    assert standby.execute(users, (doc,)).fetchone()[0] is None
    assert standby.execute("SELECT count(*) FROM authz_list_objects(%s, 'doc', 'viewer') o WHERE o = %s",
                           (bob, doc)).fetchone()[0] == 0
    standby.execute("ROLLBACK")
    # A wildcard written on the primary counts once replayed; writes on the standby are refused.
    primary.execute("SELECT authz_tuple_write(%s, 'viewer', 'user:*')", (doc,))
    replayed(primary, standby)
    assert standby.execute(relation_check, (anne, doc)).fetchone()[0] is True
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        standby.execute("SELECT authz_tuple_delete(%s, 'viewer', 'user:*')", (doc,))
    primary.execute("SELECT authz_tuple_delete(%s, 'viewer', 'user:*')", (doc,))  # (others list docs too)
