"""Faults: a crash (kill -9 of the postmaster and every backend) during a stream of grants
loses no acknowledged grant and leaves no half-written one; a cancel in the middle of a
cache fill leaves nothing half-built; errors on every path leave the backend usable."""
import os
import signal
import subprocess
import threading
import time

import psycopg
import pytest

from conftest import ScratchCluster


class CrashableCluster(ScratchCluster):
    def crash(self):
        """SIGKILL to the postmaster and all its children at once, like a power cut."""
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            postmaster = int(f.readline())
        children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
        for pid in [postmaster, *map(int, children)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 30
        while any(os.path.exists(f"/proc/{pid}") for pid in [postmaster, *map(int, children)]):
            assert time.monotonic() < deadline, "the killed processes did not go away"
            time.sleep(0.05)


def test_crash_during_a_stream_of_grants_keeps_exactly_the_committed_ones():
    cluster = CrashableCluster("authz_crash")
    try:
        cluster.start()
        with cluster.connect(autocommit=True) as conn:
            conn.execute("CREATE EXTENSION authz_ext")
        acknowledged, attempted = [], []
        stop = threading.Event()

        def writer(worker):
            try:
                with cluster.connect(autocommit=True) as conn:
                    n = 0
                    while not stop.is_set():
                        resource = f"{worker}-{n}"
                        attempted.append(resource)
                        conn.execute("SELECT authz_grant('crash_user'::text, 'document:read', %s::text)",
                                     (resource,))
                        acknowledged.append(resource)
                        n += 1
            except psycopg.OperationalError:
                pass  # the crash

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 300 and time.monotonic() < deadline:
            time.sleep(0.01)
        cluster.crash()
        stop.set()
        for t in threads:
            t.join()
        assert len(acknowledged) >= 300

        cluster.start()  # crash recovery
        with cluster.connect(autocommit=True) as conn:
            stored = {r[0] for r in conn.execute(
                "SELECT resource_id FROM authz.grants WHERE user_id = 'crash_user'")}
            audited = {r[0] for r in conn.execute(
                "SELECT target ->> 'resource_id' FROM authz.audit_log WHERE action = 'authz_grant'")}
            # Every acknowledged grant is there; besides, at most the one in flight per writer
            # (committed, its acknowledgement lost in the crash); nothing was never attempted.
            print(f"crash: {len(acknowledged)} grants acknowledged, {len(stored)} stored after recovery, "
                  f"{len(attempted)} attempted")
            assert set(acknowledged) <= stored <= set(attempted)
            assert len(stored - set(acknowledged)) <= len(threads)
            # Each grant and its audit row committed together or not at all.
            assert audited == stored
            # Checks agree with the tables, for every resource attempted.
            sample = attempted[::7] + list(stored - set(acknowledged)) + list(set(attempted) - stored)
            for resource in sample:
                allowed = conn.execute("SELECT authz_check('crash_user'::text, 'document:read', %s::text)",
                                       (resource,)).fetchone()[0]
                assert allowed == (resource in stored), resource
            # And the cluster takes new grants with fresh ids.
            conn.execute("SELECT authz_grant('crash_user'::text, 'document:read', 'after')")
    finally:
        cluster.destroy()


def test_cancel_during_a_cache_fill_leaves_nothing_half_built(sessions):
    setup = sessions(autocommit=True)
    setup.execute("""INSERT INTO authz.grants (user_id, permission, resource_id, effect)
                     SELECT 'fill_user', 'document:read', g::text, CASE WHEN g % 3 = 0 THEN 'deny' ELSE 'allow' END
                     FROM generate_series(1, 60000) g ON CONFLICT DO NOTHING""")
    scan = """SELECT count(*) FROM generate_series(1, 2000) r
              WHERE authz_check('fill_user'::text, 'document:read', r::text)"""
    expected = 2000 - 2000 // 3
    conn = sessions(autocommit=True)
    cancelled = 0
    # Time-outs from short to long: some land while the 60,000 overrides are being loaded.
    for timeout_ms in (1, 2, 3, 5, 8, 12, 20, 30, 50):
        conn.execute(f"SET statement_timeout = {timeout_ms}")
        try:
            assert conn.execute(scan).fetchone()[0] == expected
        except psycopg.errors.QueryCanceled:
            cancelled += 1
        conn.execute("RESET statement_timeout")
        # Whatever was interrupted, the next answers are whole and right.
        assert conn.execute(scan).fetchone()[0] == expected
        assert conn.execute("SELECT authz_check('fill_user'::text, 'document:read', '3')").fetchone()[0] is False
        conn.execute("SELECT pg_sleep(0)")
    print(f"cancel: {cancelled} of 9 scans cancelled mid-way, every answer afterwards right")
    assert cancelled > 0, "no time-out landed: the test did not test anything"
    setup.execute("DELETE FROM authz.grants WHERE user_id = 'fill_user'")


BAD_CALLS = [
    ("SELECT authz_check(1.5::numeric, 'document:read', 1)", "22023"),
    ("SELECT authz_check('u'::text, 'nonsense', 1)", "22023"),
    ("SELECT authz_check('u'::text, 'document:fly', 1)", "22023"),
    ("SELECT authz_explain('u'::text, 'x:y:z')", "22023"),
    ("SELECT authz_require('u'::text, 'document:read', 1)", "42501"),
    ("SELECT authz_require(NULL::text, 'document:read', 1)", "22004"),
    ("SELECT authz_grant(''::text, 'document:read', 1)", "22023"),
    ("SELECT authz_grant('u'::text, 'document:read', 1, now() - interval '1 day')", "22023"),
    ("SELECT authz_grant('u'::text, 'document:read', 1, NULL, 'maybe')", "22023"),
    ("SELECT authz_revoke(repeat('x', 2000), 'document:read', 1)", "22023"),
    ("SELECT authz_set_role('u'::text, 'emperor')", "22023"),
    ("SELECT authz_role_permission_add('viewer', 'nope:nope')", "22023"),
    ("SELECT authz_role_permission_remove('admin', 'document:read')", "22023"),
    ("SELECT authz_define_permission('Bad Type', 'x')", "22023"),
    ("SELECT * FROM api_key_create('u'::text, 'k', ARRAY['no:such:scope'])", "22023"),
    ("SELECT * FROM api_key_create('u'::text, 'k', ARRAY[]::text[])", "22023"),
    ("SELECT api_key_revoke(NULL)", "22004"),
    ("SELECT api_key_revoke('not-a-uuid')", "22P02"),
    ("SELECT authz_authenticate('azk_garbage')", "28000"),
    ("SELECT authz_set_user(''::text)", "22023"),
    ("SELECT * FROM authz_resources('u'::text, 'bogus')", "22023"),
]


@pytest.mark.parametrize("sql,sqlstate", BAD_CALLS)
def test_errors_on_every_path_leave_the_backend_usable(sessions, sql, sqlstate, cache):
    conn = sessions()
    conn.execute("SELECT authz_set_role('usable', 'viewer')")
    conn.commit()
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    with pytest.raises(psycopg.Error) as raised:
        conn.execute(sql)
    assert raised.value.sqlstate == sqlstate, raised.value
    conn.rollback()
    # The same backend, in the same session, goes on working.
    assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] == pid
    assert conn.execute("SELECT authz_check('usable'::text, 'document:read', 1)").fetchone()[0] is True
    conn.execute("SAVEPOINT s")
    with pytest.raises(psycopg.Error):
        conn.execute(sql)
    conn.execute("ROLLBACK TO SAVEPOINT s")
    assert conn.execute("SELECT authz_check('usable'::text, 'document:update', 1)").fetchone()[0] is False
    conn.rollback()
