"""Concurrency: several sessions run grants, revokes, role changes, key creations and
revocations and checks at once, on a few shared users and resources (so that they collide
on the same rows), for a bounded time. No call may fail (no deadlock, no unique violation
leaking from a race), nothing acknowledged may be lost, and the audit log must tell the
same story as the tables. (Stale answers are counted by an oracle in
test_freshness_stress.py; here checks run among the changes and must not fail.)"""
import random
import threading

import pytest

from conftest import run_for, unique

# Each test runs with the decision cache on and off (conftest.py, `cache`).
pytestmark = pytest.mark.usefixtures("cache")

RESOURCES = ["1", "2"]
SECONDS = 5
WORKERS = 4


def worker(conn, users, rng, stop, log, keys, keys_lock, errors):
    while not stop.is_set():
        user = rng.choice(users)
        op = rng.choice(["grant", "grant", "revoke", "set_role", "key_create", "key_revoke", "check"])
        try:
            if op == "grant":
                resource = rng.choice(RESOURCES + [None])
                effect = rng.choice(["allow", "deny"])
                conn.execute("SELECT authz_grant(%s::text, 'document:read', %s::text, NULL, %s)",
                             (user, resource, effect))
            elif op == "revoke":
                conn.execute("SELECT authz_revoke(%s::text, 'document:read', %s::text)",
                             (user, rng.choice(RESOURCES + [None])))
            elif op == "set_role":
                conn.execute("SELECT authz_set_role(%s::text, %s)", (user, rng.choice(["viewer", "admin", None])))
            elif op == "key_create":
                key_id = conn.execute("SELECT key_id FROM api_key_create(%s::text, 'cc', ARRAY['documents:read'])",
                                      (user,)).fetchone()[0]
                with keys_lock:
                    keys[key_id] = False
            elif op == "key_revoke":
                with keys_lock:
                    candidates = list(keys)
                if candidates:
                    key_id = rng.choice(candidates)
                    if conn.execute("SELECT api_key_revoke(%s)", (key_id,)).fetchone()[0]:
                        with keys_lock:
                            assert keys[key_id] is False, "a key was revoked twice"
                            keys[key_id] = True
            else:
                conn.execute("SELECT authz_check(%s::text, 'document:read', %s::text)", (user, rng.choice(RESOURCES)))
            log.append(op)
        except Exception as e:  # noqa: BLE001 - every failure is reported, with its SQLSTATE
            errors.append(f"{op}: {getattr(e, 'sqlstate', None)}: {e}")


def test_concurrent_changes_lose_nothing_and_fail_nothing(sessions):
    stop = threading.Event()
    logs, keys, keys_lock, errors = [[] for _ in range(WORKERS)], {}, threading.Lock(), []
    run = unique("cc")  # users of this run's own
    users = [f"{run}-u{i}" for i in range(3)]
    threads = [threading.Thread(target=worker, args=(sessions(autocommit=True), users, random.Random(seed), stop,
                                                     logs[seed], keys, keys_lock, errors))
               for seed in range(WORKERS)]
    assert run_for(SECONDS, threads, stop, join_timeout=60) == [], "a session hung (deadlock?)"
    assert errors == []
    ops = [op for log in logs for op in log]
    print(f"concurrency: {len(ops)} calls by {WORKERS} sessions, {len(keys)} keys, "
          f"{sum(keys.values())} revoked")
    assert len(ops) > 200

    conn = sessions(autocommit=True)
    # Every acknowledged change has exactly one audit row (mutators audit even a no-op).
    audited = conn.execute(
        """SELECT action, count(*) FROM authz.audit_log
           WHERE target ->> 'user_id' = ANY(%s) GROUP BY action""", (users,)).fetchall()
    counts = dict(audited)
    assert counts.get("authz_grant", 0) == ops.count("grant")
    assert counts.get("authz_revoke", 0) == ops.count("revoke")
    assert counts.get("authz_set_role", 0) == ops.count("set_role")
    # Every key created exists, and is revoked exactly when a revoke said it revoked it.
    stored = dict(conn.execute("SELECT id, revoked_at IS NOT NULL FROM authz.api_keys WHERE user_id = ANY(%s)",
                               (users,)).fetchall())
    assert stored == keys
    # For each grant and role, the audit trail is one unbroken chain — each change's old value
    # is the previous change's new value — ending in what the table holds now.
    for user in users:
        for resource in RESOURCES + [None]:
            trail = conn.execute(
                """SELECT old_value ->> 'effect', new_value ->> 'effect' FROM authz.audit_log
                   WHERE action IN ('authz_grant', 'authz_revoke') AND target ->> 'user_id' = %s
                     AND target ->> 'permission' = 'document:read'
                     AND target ->> 'resource_id' IS NOT DISTINCT FROM %s
                   ORDER BY id""", (user, resource)).fetchall()
            assert_chain(trail, conn.execute(
                """SELECT effect FROM authz.grants WHERE user_id = %s AND permission = 'document:read'
                   AND resource_id IS NOT DISTINCT FROM %s""", (user, resource)).fetchone(), (user, resource))
        trail = conn.execute(
            """SELECT old_value ->> 'role', new_value ->> 'role' FROM authz.audit_log
               WHERE action = 'authz_set_role' AND target ->> 'user_id' = %s ORDER BY id""", (user,)).fetchall()
        assert_chain(trail, conn.execute("SELECT role FROM authz.user_roles WHERE user_id = %s", (user,)).fetchone(),
                     user)


def assert_chain(trail, final_row, what):
    """A no-op (a revoke or role removal that found nothing) changes nothing and takes no
    lock, so its audit id may fall anywhere among concurrent changes; it is left out. Real
    changes take the row lock before writing their audit row, so their ids follow commit
    order."""
    value = None
    for old, new in trail:
        if old is None and new is None:
            continue
        assert old == value, f"{what}: audit chain broken: old {old!r}, expected {value!r}"
        value = new
    assert (final_row[0] if final_row else None) == value, f"{what}: table and audit disagree"
