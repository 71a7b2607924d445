"""The freshness promise (docs/guide.md, Freshness) where a backend-local cache is most easily
fooled, each through real sessions: several statements in one message, statements inside
functions and procedures, expiry there, writes in replica mode or with triggers disabled,
parallel plans under REPEATABLE READ, and logical replication; and the cache staying in
use beside an open writer, a prepared transaction or a huge user. Each case runs with the
decision cache on and off (the `cache` fixture)."""
import contextlib
import threading
import time

import psycopg
import pytest

from conftest import (CACHE_SETTINGS, HOST, PORT, ScratchCluster, connect, create_database, drop_database, end_prepared,
                      stats, unique, with_cache)

PAUSE = 1.5  # seconds a reader sleeps while another session commits
CHECK = "SELECT authz_check(%s::text, 'document:read', 5)"
VALIDATE = "SELECT status FROM api_key_validate(%s)"
RELATED = "SELECT authz_relation_check('user:1', 'viewer', 'doc:1')"


def later(seconds, sql, *params):
    """Runs `sql` in a session of its own after `seconds`, in a thread; join() it."""
    def run():
        time.sleep(seconds)
        with connect(autocommit=True) as conn:
            conn.execute(sql, params)
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def results(cursor):
    """Every result of a multi-statement message, in order."""
    out = []
    while True:
        out.append(cursor.fetchall())
        if not cursor.nextset():
            return out


def warm(reader, user):
    """Checks a few times, in statements of their own, so that a cache that is on holds the user."""
    for _ in range(3):
        assert reader.execute(CHECK, (user,)).fetchone()[0] is True


@pytest.fixture
def granted(sessions):
    """A user allowed document:read on resource 5 by an override, committed."""
    user = unique("fresh")
    sessions(autocommit=True).execute("SELECT authz_grant(%s::text, 'document:read', 5)", (user,))
    return user


def test_each_statement_of_a_message_sees_a_revoke_committed_before_it(sessions, granted, cache):
    reader = sessions(autocommit=True)
    check = f"SELECT authz_check('{granted}'::text, 'document:read', 5)"
    assert reader.execute(check).fetchone()[0] is True
    revoke = later(PAUSE / 3, "SELECT authz_revoke(%s::text, 'document:read', 5)", granted)
    # One simple-Query message: the revoke commits while the second statement sleeps.
    answers = results(reader.execute(f"{check}; SELECT pg_sleep({PAUSE}); {check}"))
    revoke.join()
    assert answers[0] == [(True,)] and answers[2] == [(False,)]


def test_each_statement_inside_a_function_sees_a_revoke_committed_before_it(sessions, granted, cache):
    reader = sessions(autocommit=True)
    warm(reader, granted)
    reader.execute(f"""
        CREATE OR REPLACE FUNCTION pg_temp.check_sleep_check(u text) RETURNS boolean[] LANGUAGE plpgsql AS $$
        DECLARE first boolean;
        BEGIN
            first := authz_check(u, 'document:read', 5);
            PERFORM pg_sleep({PAUSE});
            RETURN ARRAY[first, authz_check(u, 'document:read', 5)];
        END $$""")
    revoke = later(PAUSE / 3, "SELECT authz_revoke(%s::text, 'document:read', 5)", granted)
    answers = reader.execute("SELECT pg_temp.check_sleep_check(%s)", (granted,)).fetchone()[0]
    revoke.join()
    assert answers == [True, False]


def test_a_procedure_that_commits_sees_a_revoke_committed_meanwhile(sessions, granted, cache):
    reader = sessions(autocommit=True)
    warm(reader, granted)
    procedure = unique("proc").replace("-", "_")
    reader.execute(f"""
        CREATE PROCEDURE {procedure}(u text, INOUT first boolean, INOUT second boolean) LANGUAGE plpgsql AS $$
        BEGIN
            first := authz_check(u, 'document:read', 5);
            COMMIT;
            PERFORM pg_sleep({PAUSE});
            second := authz_check(u, 'document:read', 5);
        END $$""")
    try:
        revoke = later(PAUSE / 3, "SELECT authz_revoke(%s::text, 'document:read', 5)", granted)
        answers = reader.execute(f"CALL {procedure}(%s, NULL, NULL)", (granted,)).fetchone()
        revoke.join()
        assert answers == (True, False)
    finally:
        reader.execute(f"DROP PROCEDURE {procedure}")


def test_expiry_inside_a_function_is_judged_when_each_statement_runs(sessions, cache):
    user = unique("expiring")
    admin = sessions(autocommit=True)
    admin.execute("SELECT authz_grant(%s::text, 'document:read', 7, now() + interval '1 second')", (user,))
    token = admin.execute("SELECT token FROM api_key_create(%s::text, 'short', ARRAY['documents:read'],"
                          " now() + interval '1 second')", (user,)).fetchone()[0]
    reader = sessions(autocommit=True)
    reader.execute("""
        CREATE OR REPLACE FUNCTION pg_temp.after_expiry(tok text, u text)
        RETURNS TABLE (before_status text, after_status text, authenticated boolean, honoured boolean)
        LANGUAGE plpgsql AS $$
        BEGIN
            before_status := (SELECT v.status FROM api_key_validate(tok) v);
            PERFORM authz_check(u, 'document:read', 7);  -- cached from here, with the cache on
            PERFORM pg_sleep(1.3);
            after_status := (SELECT v.status FROM api_key_validate(tok) v);
            BEGIN
                PERFORM authz_authenticate(tok);
                authenticated := true;
            EXCEPTION WHEN invalid_authorization_specification THEN
                authenticated := false;
            END;
            honoured := authz_check(u, 'document:read', 7);
            RETURN NEXT;
        END $$""")
    row = reader.execute("SELECT * FROM pg_temp.after_expiry(%s, %s)", (token, user)).fetchone()
    assert row == ("valid", "expired", False, False)


def test_a_procedure_stops_authenticating_a_key_that_expires_during_the_call(sessions):
    user = unique("expiring-proc")
    admin = sessions(autocommit=True)
    token = admin.execute("SELECT token FROM api_key_create(%s::text, 'short', ARRAY['documents:read'],"
                          " now() + interval '1 second')", (user,)).fetchone()[0]
    procedure = unique("authloop").replace("-", "_")
    admin.execute(f"""
        CREATE PROCEDURE {procedure}(tok text, INOUT rounds int) LANGUAGE plpgsql AS $$
        BEGIN
            rounds := 0;
            FOR i IN 1..8 LOOP
                BEGIN
                    PERFORM authz_authenticate(tok);
                EXCEPTION WHEN invalid_authorization_specification THEN
                    RETURN;
                END;
                rounds := rounds + 1;
                COMMIT;
                PERFORM pg_sleep(0.25);
            END LOOP;
        END $$""")
    try:
        rounds = admin.execute(f"CALL {procedure}(%s, NULL)", (token,)).fetchone()[0]
        assert 1 <= rounds <= 5, f"authenticated {rounds} times in 2 s with a key valid for 1 s"
    finally:
        admin.execute(f"DROP PROCEDURE {procedure}")


def test_writes_in_replica_mode_count(sessions, granted, cache):
    reader = sessions(autocommit=True)
    check = "SELECT authz_check(%s::text, 'document:read', 5)"
    assert reader.execute(check, (granted,)).fetchone()[0] is True
    assert reader.execute(check, (granted,)).fetchone()[0] is True
    # As a logical-replication apply worker or a bulk loader writes: triggers off, except
    # those enabled ALWAYS or REPLICA.
    writer = sessions(autocommit=True)
    writer.execute("SET session_replication_role = replica")
    writer.execute("DELETE FROM authz.grants WHERE user_id = %s", (granted,))
    assert reader.execute(check, (granted,)).fetchone()[0] is False
    writer.execute("INSERT INTO authz.grants (user_id, permission, resource_id, effect)"
                   " VALUES (%s, 'document:read', '5', 'allow')", (granted,))
    assert reader.execute(check, (granted,)).fetchone()[0] is True


def test_writes_with_the_triggers_disabled_count(sessions, granted, cache):
    reader = sessions(autocommit=True)
    check = "SELECT authz_check(%s::text, 'document:read', 5)"
    admin = sessions(autocommit=True)
    # As pg_restore --disable-triggers does, statement by statement.
    admin.execute("ALTER TABLE authz.grants DISABLE TRIGGER ALL")
    try:
        assert reader.execute(check, (granted,)).fetchone()[0] is True
        assert reader.execute(check, (granted,)).fetchone()[0] is True
        admin.execute("DELETE FROM authz.grants WHERE user_id = %s", (granted,))
        assert reader.execute(check, (granted,)).fetchone()[0] is False
    finally:
        admin.execute("ALTER TABLE authz.grants ENABLE TRIGGER ALL")
    # ENABLE TRIGGER ALL makes every trigger fire in origin mode only; the extension's
    # event trigger puts its own back to ALWAYS, and the cache is used again.
    assert admin.execute("""SELECT string_agg(tgenabled::text, '' ORDER BY tgname) FROM pg_trigger
                            WHERE tgrelid = 'authz.grants'::regclass AND tgname LIKE 'note_change%'"""
                         ).fetchone()[0] == "AA"
    assert reader.execute(check, (granted,)).fetchone()[0] is False
    if cache == "on":
        before = stats(reader)
        for _ in range(3):
            reader.execute(check, (granted,))
        assert stats(reader)["cache_hits"] > before["cache_hits"]


def test_triggers_disabled_around_a_write_in_one_transaction_count(sessions, granted, cache):
    """DISABLE TRIGGER, a delete, ENABLE TRIGGER, committed together: no reader ever sees
    the triggers off, and the delete names no user; the warm cache must still drop it."""
    reader = sessions(autocommit=True)
    warm(reader, granted)
    admin = sessions(autocommit=True)
    with admin.transaction():
        admin.execute("ALTER TABLE authz.grants DISABLE TRIGGER ALL")
        admin.execute("DELETE FROM authz.grants WHERE user_id = %s", (granted,))
        admin.execute("ALTER TABLE authz.grants ENABLE TRIGGER ALL")
    assert reader.execute("SELECT authz_check(%s::text, 'document:read', 5)", (granted,)).fetchone()[0] is False


def test_a_commit_drops_only_the_users_it_changed(sessions, granted):
    """With the cache on: a warm user's entry survives other users' grants (no misses), and
    a change to that user is still seen by the next statement."""
    reader = sessions(autocommit=True, **with_cache("on"))
    warm(reader, granted)
    writer = sessions(autocommit=True)
    check = "SELECT authz_check(%s::text, 'document:read', 5)"
    before = stats(reader)
    for n in range(20):
        writer.execute("SELECT authz_grant(%s::text, 'document:read', %s)", (unique("bystander"), n))
        assert reader.execute(check, (granted,)).fetchone()[0] is True
    after = stats(reader)
    assert after["cache_misses"] == before["cache_misses"], (before, after)
    assert after["cache_hits"] - before["cache_hits"] >= 20, (before, after)
    writer.execute("SELECT authz_revoke(%s::text, 'document:read', 5)", (granted,))
    assert reader.execute(check, (granted,)).fetchone()[0] is False
    # A role change drops the user too.
    writer.execute("SELECT authz_set_role(%s::text, 'viewer')", (granted,))
    assert reader.execute(check, (granted,)).fetchone()[0] is True


@pytest.fixture
def parallel_table(sessions):
    admin = sessions(autocommit=True)
    table = unique("par").replace("-", "_")
    admin.execute(f"CREATE TABLE {table} AS SELECT g AS id FROM generate_series(1, 2000) g")
    admin.execute(f"ANALYZE {table}")
    yield table
    admin.execute(f"DROP TABLE {table}")


@pytest.mark.parametrize("isolation", ["REPEATABLE READ", "SERIALIZABLE"])
def test_a_parallel_plan_in_an_old_transaction_sees_a_revoke(sessions, granted, parallel_table, cache, isolation):
    reader = sessions(autocommit=True)
    for setting in ("parallel_setup_cost = 0", "parallel_tuple_cost = 0", "min_parallel_table_scan_size = 0",
                    "max_parallel_workers_per_gather = 2"):
        reader.execute(f"SET {setting}")
    query = f"SELECT bool_and(authz_check(%s::text, 'document:read', 5)) FROM {parallel_table} WHERE id > 0"
    plan = "\n".join(r[0] for r in reader.execute("EXPLAIN (VERBOSE) " + query, (granted,)))
    assert "Gather" in plan, plan
    assert reader.execute(query, (granted,)).fetchone()[0] is True  # warms the cache, if on
    reader.execute(f"BEGIN ISOLATION LEVEL {isolation}")
    try:
        reader.execute("SELECT count(*) FROM pg_class")  # the transaction's snapshot is taken here
        sessions(autocommit=True).execute("SELECT authz_revoke(%s::text, 'document:read', 5)", (granted,))
        assert reader.execute(query, (granted,)).fetchone()[0] is False
    finally:
        reader.execute("ROLLBACK")


@pytest.mark.parametrize("open_writer", ["idle in transaction", "prepared"])
def test_an_open_writer_elsewhere_leaves_the_cache_in_use(sessions, granted, open_writer):
    writer = sessions()
    writer.execute("SELECT authz_grant(%s::text, 'document:read', 1)", (unique("other"),))
    gid = unique("gid")
    if open_writer == "prepared":
        writer.execute(f"PREPARE TRANSACTION '{gid}'")
    try:
        reader = sessions(autocommit=True, **with_cache("on"))
        scan = ("SELECT count(*) FILTER (WHERE authz_check(%s::text, 'document:read', r))"
                " FROM generate_series(1, 2000) r")
        assert reader.execute(scan, (granted,)).fetchone()[0] == 1
        before = stats(reader)
        assert reader.execute(scan, (granted,)).fetchone()[0] == 1
        after = stats(reader)
        assert after["cache_bypasses"] - before["cache_bypasses"] == 0
        assert after["cache_hits"] - before["cache_hits"] == 2000
    finally:
        if open_writer == "prepared":
            end_prepared(sessions, gid, "ROLLBACK")
        else:
            writer.rollback()


def test_a_revoke_prepared_then_committed_is_honoured_by_a_warm_cache(sessions, granted):
    reader = sessions(autocommit=True, **with_cache("on"))
    check = "SELECT authz_check(%s::text, 'document:read', 5)"
    writer = sessions()
    writer.execute("SELECT authz_revoke(%s::text, 'document:read', 5)", (granted,))
    gid = unique("gid")
    writer.execute(f"PREPARE TRANSACTION '{gid}'")
    try:
        warm(reader, granted)
        before = stats(reader)
        assert reader.execute(check, (granted,)).fetchone()[0] is True  # prepared, not committed
        assert stats(reader)["cache_hits"] > before["cache_hits"]
        # COMMIT PREPARED from a session that never used authz_ext.
        end_prepared(sessions, gid, "COMMIT")
        assert reader.execute(check, (granted,)).fetchone()[0] is False
    finally:
        end_prepared(sessions, gid, "ROLLBACK")


def test_a_scan_over_a_user_larger_than_the_cache_reads_each_row_once(sessions):
    user = unique("huge")
    admin = sessions(autocommit=True)
    admin.execute("""INSERT INTO authz.grants (user_id, permission, resource_id, effect)
                     SELECT %s, 'document:read', g::text, 'allow' FROM generate_series(1, 3000) g""", (user,))
    for budget in ("64kB", "0"):
        reader = sessions(**with_cache("on"))
        reader.execute(f"SET authz.cache_memory = '{budget}'")
        allowed = reader.execute("SELECT count(*) FILTER (WHERE authz_check(%s::text, 'document:read', r))"
                                 " FROM generate_series(1, 500) r", (user,)).fetchone()[0]
        fetched = reader.execute("SELECT idx_tup_fetch FROM pg_stat_xact_all_tables"
                                 " WHERE relid = 'authz.grants'::regclass").fetchone()[0]
        reader.rollback()
        assert allowed == 500
        # A point read per row, plus at most one whole load that stopped at the budget.
        assert fetched <= 2 * 500 + 3000, f"{fetched} grant rows read for 500 checks (budget {budget})"
    admin.execute("DELETE FROM authz.grants WHERE user_id = %s", (user,))


def test_a_user_too_large_for_a_repeats_load_is_still_loaded_by_a_scan(sessions):
    """A user with more overrides than a repeat in a later statement loads (1,000), checked in
    two statements of their own, is loaded whole by the next scan: one miss for the scan, not
    one per row (the failed repeat used to mark the user too large for the budget, and
    every scan of the session then read row by row)."""
    user = unique("large")
    admin = sessions(autocommit=True)
    admin.execute("""INSERT INTO authz.grants (user_id, permission, resource_id, effect)
                     SELECT %s, 'document:read', g::text, 'allow' FROM generate_series(1, 1500) g""", (user,))
    reader = sessions(autocommit=True, **with_cache("on"))
    check = "SELECT authz_check(%s::text, 'document:read', 1)"
    for _ in range(2):  # a first sighting, then a repeat whose whole load stops at 1,000
        assert reader.execute(check, (user,)).fetchone()[0] is True
    scan = "SELECT count(*) FROM generate_series(1, 3000) r WHERE authz_check(%s::text, 'document:read', r)"
    before = stats(reader)
    assert reader.execute(scan, (user,)).fetchone()[0] == 1500
    after = stats(reader)
    misses = after["cache_misses"] - before["cache_misses"]
    assert misses <= 2, f"{misses} misses for a scan of 3,000 rows"
    assert after["cache_hits"] - before["cache_hits"] >= 2998, (before, after)
    admin.execute("DELETE FROM authz.grants WHERE user_id = %s", (user,))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_huge_ids_are_never_remembered(sessions):
    conn = sessions(autocommit=True, **with_cache("on"))
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    huge = "SELECT authz_check(repeat('y', 5000000) || %s, 'document:read', 1), " \
           "authz_check(repeat('z', 5000000) || %s, 'document:read', 1)"
    for n in range(10):  # the allocator's transient peak (two 5 MB ids, their copies) is reached here
        conn.execute(huge, (str(n), str(n)))
    settled = rss_kb(pid)
    for n in range(10, 30):
        conn.execute(huge, (str(n), str(n)))
    grown = rss_kb(pid) - settled
    counters = stats(conn)
    print(f"memory: 40 more checks of 5 MB ids grew the backend by {grown} kB; "
          f"the extension holds {counters['heap_bytes']} bytes")
    assert grown < 40_000, "remembering them would have grown it by 200 MB"
    assert counters["heap_bytes"] < 1_000_000 and counters["cache_bytes"] < 1_000_000


def test_the_cache_budget_is_for_superusers_only(ordinary_session):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        ordinary_session.execute("SET authz.cache_memory = '1GB'")
    assert "cache_bytes" in stats(ordinary_session)


def tables_read_by_checks(conn):
    """The authz tables whose counters a check moves, in a fresh backend (so the catalog is
    read too), with the cache on and with it off."""
    read = set()
    for cache in CACHE_SETTINGS:
        with connect(autocommit=False, **with_cache(cache)) as fresh:
            fresh.execute("SELECT authz_check('tables-probe'::text, 'document:read', 1),"
                          "       authz_check('tables-probe'::text, 'document:read')")
            read |= {r[0] for r in fresh.execute(
                """SELECT relname FROM pg_stat_xact_all_tables
                   WHERE schemaname = 'authz' AND seq_scan + coalesce(idx_scan, 0) > 0""")}
    return read


def test_every_table_a_check_reads_invalidates_the_cache(sessions):
    conn = sessions(autocommit=True)
    triggers = {(r[0], r[1], r[2], r[3]) for r in conn.execute(
        """SELECT c.relname, t.tgname, t.tgenabled, pg_catalog.encode(t.tgargs, 'escape')
           FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
           WHERE t.tgfoid = 'authz.note_change()'::regprocedure""")}
    read = tables_read_by_checks(conn)
    assert {"grants", "user_roles", "permissions"} <= read, read
    for table in read:
        kind = {"grants": "facts", "user_roles": "facts", "api_keys": "keys", "scopes": "keys",
                "scope_permissions": "keys"}.get(table, "catalog")
        assert (table, "note_change", "A", kind + "\\000") in triggers, (table, triggers)
        assert (table, "note_change_row", "A", kind + "\\000") in triggers, (table, triggers)


@contextlib.contextmanager
def own_database(name):
    """A new database with the extension, an admin and a reader session on it; dropped after."""
    create_database(name)
    try:
        with connect(name, autocommit=True) as admin, connect(name, autocommit=True) as reader:
            yield name, admin, reader
    finally:
        drop_database(name)


def remembered_key(admin, reader, user):
    """A new key of `user`, validated twice by `reader` (so remembered): its id and token."""
    key_id, token = admin.execute("SELECT key_id, token FROM api_key_create(%s::text, 'k', ARRAY['documents:read'])",
                                  (user,)).fetchone()
    assert [reader.execute(VALIDATE, (token,)).fetchone()[0] for _ in range(2)] == ["valid", "valid"]
    return key_id, token


def remembered_relation(admin, reader):
    """user:1 a viewer of doc:1 in a new model, checked twice by `reader` (RELATED)."""
    admin.execute("SELECT authz_model_write(%s)", ("model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user]",))
    admin.execute("SELECT authz_tuple_write('doc:1', 'viewer', 'user:1')")
    assert [reader.execute(RELATED).fetchone()[0] for _ in range(2)] == [True, True]


def test_without_the_signal_tables_writes_still_invalidate(sessions):
    # A write invalidates its kind's signal table (sql/cache.sql). A database whose install
    # script has none invalidates the table written instead, as before them; a reader that
    # knew the signal tables honours that too.
    with own_database("authz_no_signal_tables") as (name, admin, reader):
        user = unique("nosignal")
        admin.execute("SELECT authz_grant(%s::text, 'document:read', 5)", (user,))
        warm(reader, user)
        for kind in ("facts", "keys", "relations", "catalog"):
            admin.execute(f"ALTER EXTENSION authz_ext DROP TABLE authz.signal_{kind}")
            admin.execute(f"DROP TABLE authz.signal_{kind}")
        admin.execute("SELECT authz_revoke(%s::text, 'document:read', 5)", (user,))
        assert reader.execute(CHECK, (user,)).fetchone()[0] is False
        admin.execute("SELECT authz_grant(%s::text, 'document:read', 5)", (user,))
        assert reader.execute(CHECK, (user,)).fetchone()[0] is True
        with connect(name, autocommit=True) as fresh:
            warm(fresh, user)
            admin.execute("SELECT authz_revoke(%s::text, 'document:read', 5)", (user,))
            assert fresh.execute(CHECK, (user,)).fetchone()[0] is False
        # Kinds that no list of changed users covers: a key, a relationship.
        key_id, token = remembered_key(admin, reader, user)
        admin.execute("SELECT api_key_revoke(%s)", (key_id,))
        assert reader.execute(VALIDATE, (token,)).fetchone()[0] == "revoked"
        remembered_relation(admin, reader)
        admin.execute("SELECT authz_tuple_delete('doc:1', 'viewer', 'user:1')")
        assert reader.execute(RELATED).fetchone()[0] is False


def test_a_signal_table_made_again_is_found_by_every_reader(sessions):
    # Readers find the signal tables once, and writers look theirs up by name at every
    # statement: a signal table renamed, dropped or created (as an upgrade script may)
    # must be found again by a reader that trusts its cache, or its writes go unseen.
    with own_database("authz_signal_tables_again") as (_, admin, reader):
        user = unique("resignal")
        admin.execute("SELECT authz_grant(%s::text, 'document:read', 5)", (user,))
        warm(reader, user)
        # Renamed away and made again in one transaction.
        with admin.transaction():
            admin.execute("ALTER EXTENSION authz_ext DROP TABLE authz.signal_facts")
            admin.execute("ALTER TABLE authz.signal_facts RENAME TO signal_facts_old")
            admin.execute("CREATE TABLE authz.signal_facts ()")
        warm(reader, user)
        admin.execute("SELECT authz_revoke(%s::text, 'document:read', 5)", (user,))
        assert reader.execute(CHECK, (user,)).fetchone()[0] is False
        # Dropped, written without it (the reader looks again), then made again.
        admin.execute("SELECT authz_grant(%s::text, 'document:read', 5)", (user,))
        warm(reader, user)
        admin.execute("DROP TABLE authz.signal_facts")
        warm(reader, user)
        admin.execute("SELECT authz_grant(%s::text, 'document:update', 5)", (user,))
        warm(reader, user)
        admin.execute("CREATE TABLE authz.signal_facts ()")
        warm(reader, user)
        admin.execute("SELECT authz_revoke(%s::text, 'document:read', 5)", (user,))
        assert reader.execute(CHECK, (user,)).fetchone()[0] is False
        # The same for keys, whose memo no list of changed users covers.
        key_id, token = remembered_key(admin, reader, user)
        with admin.transaction():
            admin.execute("ALTER TABLE authz.signal_keys RENAME TO signal_keys_old")
            admin.execute("CREATE TABLE authz.signal_keys ()")
        assert reader.execute(VALIDATE, (token,)).fetchone()[0] == "valid"
        admin.execute("SELECT api_key_revoke(%s)", (key_id,))
        assert reader.execute(VALIDATE, (token,)).fetchone()[0] == "revoked"
        # And relationships, dropped and made again between two writes.
        remembered_relation(admin, reader)
        admin.execute("ALTER EXTENSION authz_ext DROP TABLE authz.signal_relations")
        admin.execute("DROP TABLE authz.signal_relations")
        admin.execute("CREATE TABLE authz.signal_relations ()")
        assert reader.execute(RELATED).fetchone()[0] is True
        admin.execute("SELECT authz_tuple_delete('doc:1', 'viewer', 'user:1')")
        assert reader.execute(RELATED).fetchone()[0] is False


def test_a_key_principal_sees_its_key_revoked_by_the_next_statement(sessions, cache):
    """authz_can for a principal from an API key reads the key once while nothing changes;
    a revoke committed elsewhere counts from the next statement, mid-transaction."""
    user = unique("keyed")
    admin = sessions(autocommit=True)
    admin.execute("SELECT authz_set_role(%s::text, 'viewer')", (user,))
    key_id, token = admin.execute(
        "SELECT key_id, token FROM api_key_create(%s::text, 'scan', ARRAY['documents:read'])", (user,)).fetchone()
    reader = sessions(autocommit=True)
    scan = "SELECT count(*) FROM generate_series(1, 1000) AS id WHERE authz_can('document:read', id)"
    with reader.transaction():
        reader.execute("SELECT authz_authenticate(%s)", (token,))
        assert reader.execute(scan).fetchone()[0] == 1000
        assert reader.execute(scan).fetchone()[0] == 1000
        admin.execute("SELECT api_key_revoke(%s)", (key_id,))
        assert reader.execute(scan).fetchone()[0] == 0
    assert reader.execute("SELECT status FROM api_key_validate(%s)", (token,)).fetchone()[0] == "revoked"


def test_without_preloading_everything_works_from_the_tables(sessions):
    """The cache needs shared_preload_libraries; without it every path still answers exactly
    (reading the tables), and says so in authz_stats."""
    cluster = ScratchCluster("authz_not_preloaded")
    cluster.start(preload=False)
    try:
        with cluster.connect(autocommit=True) as admin, cluster.connect(autocommit=True) as reader:
            admin.execute("CREATE EXTENSION authz_ext")
            admin.execute("""SELECT authz_grant_bulk(
                                 (SELECT jsonb_agg(jsonb_build_object('user_id', 'u', 'permission', 'document:read',
                                                                      'resource_id', n))
                                  FROM generate_series(1, 100) n))""")
            token = admin.execute("SELECT token FROM api_key_create('u', 'k', ARRAY['documents:read'])").fetchone()[0]
            scan = "SELECT count(*) FROM generate_series(1, 500) AS id WHERE authz_check('u'::text, 'document:read', id)"
            assert reader.execute(scan).fetchone()[0] == 100
            assert reader.execute(scan).fetchone()[0] == 100
            admin.execute("SELECT authz_revoke('u'::text, 'document:read', 7)")
            assert reader.execute(scan).fetchone()[0] == 99
            assert reader.execute("SELECT status FROM api_key_validate(%s)", (token,)).fetchone()[0] == "valid"
            with reader.transaction():
                reader.execute("SELECT authz_authenticate(%s)", (token,))
                can = "SELECT count(*) FROM generate_series(1, 500) AS id WHERE authz_can('document:read', id)"
                assert reader.execute(can).fetchone()[0] == 99
            counters = dict(reader.execute("SELECT counter, value FROM authz_stats()").fetchall())
            assert counters["cache_hits"] == 0 and counters["cache_bypasses"] >= 1500, counters
    finally:
        cluster.destroy()


def test_a_subscriber_honours_a_revoke_once_applied(sessions, database):
    """The pattern of docs: a second cluster keeps a local copy of the authz tables by native
    logical replication, and its warm caches follow the publisher's changes."""
    user = unique("subscribed")
    admin = sessions(autocommit=True)
    admin.execute("SELECT authz_grant(%s::text, 'document:read', 5)", (user,))
    publication = unique("authz_pub").replace("-", "_")
    admin.execute(f"CREATE PUBLICATION {publication} FOR TABLES IN SCHEMA authz")
    subscriber = ScratchCluster("authz_subscriber")
    try:
        subscriber.start()
        with subscriber.connect(autocommit=True) as conn:
            conn.execute("CREATE EXTENSION authz_ext")
            # The publisher's rows, seed rows included, arrive with the initial copy.
            conn.execute("TRUNCATE " + ", ".join(
                "authz." + r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'authz'")))
            conn.execute(f"CREATE SUBSCRIPTION authz_copy CONNECTION 'host={HOST} port={PORT} user=postgres"
                         f" dbname={database}' PUBLICATION {publication}")
            wait_until(lambda: conn.execute("SELECT bool_and(srsubstate = 'r') FROM pg_subscription_rel"
                                            ).fetchone()[0], "the initial copy")
        with subscriber.connect(autocommit=True, **with_cache("on")) as reader:
            check = "SELECT authz_check(%s::text, 'document:read', 5)"
            assert reader.execute(check, (user,)).fetchone()[0] is True
            assert reader.execute(check, (user,)).fetchone()[0] is True
            before = stats(reader)
            assert reader.execute(check, (user,)).fetchone()[0] is True
            assert stats(reader)["cache_hits"] > before["cache_hits"], "the subscriber's cache is not in use"
            admin.execute("SELECT authz_revoke(%s::text, 'document:read', 5)", (user,))
            with subscriber.connect(autocommit=True) as plain:
                wait_until(lambda: plain.execute("SELECT count(*) FROM authz.grants WHERE user_id = %s",
                                                 (user,)).fetchone()[0] == 0, "the revoke to be applied")
            assert reader.execute(check, (user,)).fetchone()[0] is False
        with subscriber.connect(autocommit=True) as conn:
            conn.execute("DROP SUBSCRIPTION authz_copy")
    finally:
        subscriber.destroy()
        admin.execute(f"DROP PUBLICATION {publication}")
        admin.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                      " WHERE slot_name = 'authz_copy'")


def wait_until(condition, what, seconds=60):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.05)
