"""Relationships (OpenFGA models and tuples) through real, concurrent sessions: the
freshness promise — a query honours no tuple whose removal committed before its statement
began, in every isolation level; it sees its own transaction's uncommitted changes
(savepoints included) and never rolled-back ones; a model committed elsewhere is current
for the next statement — for checks and both lists alike, with the cache on (answers remembered) and off; audit
rows live and die with the change they record; concurrent writers of one tuple both
succeed."""
import threading
import time

import psycopg
import pytest
from psycopg.types.json import Jsonb

from conftest import connect, create_database, drop_database, run_for, unique

MODEL = """
model
  schema 1.1
type user
type team
  relations
    define member: [user, team#member]
type doc
  relations
    define viewer: [user, user:*, team#member]
"""

# The same types, plus doc#editor: a second version of the model.
MODEL_WITH_EDITOR = MODEL + """    define editor: [user]
"""


@pytest.fixture
def model(sessions):
    """MODEL written and committed as the current model; returns its id. Each test writes
    its own (the current model is the database's, shared with other tests)."""
    return sessions(autocommit=True).execute("SELECT authz_model_write(%s)", (MODEL,)).fetchone()[0]


@pytest.fixture
def names():
    """Fresh ids for this test: a document, a team and two users."""
    return {"doc": f"doc:{unique('d')}", "team": f"team:{unique('t')}", "anne": f"user:{unique('anne')}",
            "bob": f"user:{unique('bob')}"}


def check(conn, subject, obj, relation="viewer", **options):
    args = ", ".join(f"{k} => %({k})s" for k in options)
    sql = f"SELECT authz_relation_check(%(s)s, %(r)s, %(o)s{', ' + args if args else ''})"
    return conn.execute(sql, {"s": subject, "r": relation, "o": obj, **options}).fetchone()[0]


def listed(conn, subject, obj, relation="viewer"):
    """Whether authz_list_objects lists `obj` (other tests' objects may be listed too)."""
    return obj in {r[0] for r in conn.execute("SELECT * FROM authz_list_objects(%s, 'doc', %s)", (subject, relation))}


def users(conn, obj, filters=("user",)):
    return {r[0] for r in conn.execute("SELECT * FROM authz_list_users(%s, 'viewer', %s)", (obj, list(filters)))}


def write(conn, obj, relation, subject):
    return conn.execute("SELECT authz_tuple_write(%s, %s, %s)", (obj, relation, subject)).fetchone()[0]


def delete(conn, obj, relation, subject):
    return conn.execute("SELECT authz_tuple_delete(%s, %s, %s)", (obj, relation, subject)).fetchone()[0]


def audit(conn, action, obj):
    """The audit rows of `action` whose target is `obj` (old_value, new_value), oldest first."""
    return conn.execute("SELECT old_value, new_value FROM authz.audit_log WHERE action = %s"
                        " AND target ->> 'object' = %s ORDER BY id", (action, obj)).fetchall()


def vacuumed(conn, n):
    """VACUUMs the tuples so that the test's are read from their index entries alone: their
    pages are then marked all-visible (checked with pg_visibility). A snapshot older than
    the tuples, held for a moment elsewhere (an autovacuum's ANALYZE), keeps VACUUM from
    marking them: VACUUM again, for up to 10 s."""
    conn.execute("CREATE EXTENSION IF NOT EXISTS pg_visibility")
    ids = [n["doc"].split(":", 1)[1], n["team"].split(":", 1)[1]]
    for _ in range(50):
        conn.execute("VACUUM authz.relation_tuples")
        marked = conn.execute("SELECT bool_and(v.all_visible) FROM authz.relation_tuples t,"
                              " pg_visibility_map('authz.relation_tuples', (t.ctid::text::point)[0]::bigint) v"
                              " WHERE t.object_id = ANY(%s)", (ids,)).fetchone()[0]
        if marked:
            break
        time.sleep(0.2)
    assert marked is True


@pytest.fixture
def shared(sessions, model, names):
    """Committed: anne views the document directly, bob through the team."""
    writer = sessions(autocommit=True)
    write(writer, names["doc"], "viewer", names["anne"])
    write(writer, names["team"], "member", names["bob"])
    write(writer, names["doc"], "viewer", names["team"] + "#member")
    return names


@pytest.mark.parametrize("pages", ["fresh", "all-visible"])
@pytest.mark.parametrize("isolation", [None, "READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"])
def test_a_delete_committed_elsewhere_is_honoured_by_the_next_statement(sessions, shared, isolation, pages, cache):
    n = shared
    reader, writer = sessions(autocommit=True), sessions(autocommit=True)
    if pages == "all-visible":
        vacuumed(writer, n)
    if isolation:
        reader.execute(f"BEGIN ISOLATION LEVEL {isolation}")
    assert check(reader, n["anne"], n["doc"]) and check(reader, n["bob"], n["doc"])
    assert listed(reader, n["bob"], n["doc"])
    assert users(reader, n["doc"]) == {n["anne"], n["bob"]}
    # Committed by another session while the reader's transaction (and snapshot) is open:
    # a direct tuple, and the membership bob's access goes through.
    assert delete(writer, n["doc"], "viewer", n["anne"]) is True
    assert delete(writer, n["team"], "member", n["bob"]) is True
    assert check(reader, n["anne"], n["doc"]) is False
    assert check(reader, n["bob"], n["doc"]) is False
    assert not listed(reader, n["anne"], n["doc"]) and not listed(reader, n["bob"], n["doc"])
    assert users(reader, n["doc"]) == set()
    assert users(reader, n["doc"], ["team#member"]) == {n["team"] + "#member"}  # that tuple stays
    # Writes committed meanwhile count too: authorization reads the latest committed state.
    write(writer, n["doc"], "viewer", n["bob"])
    assert check(reader, n["bob"], n["doc"]) is True and users(reader, n["doc"]) == {n["bob"]}
    if isolation in ("REPEATABLE READ", "SERIALIZABLE"):
        # ...while the transaction's own snapshot, for plain queries, is still the old one.
        assert reader.execute("SELECT count(*) FROM authz.relation_tuples WHERE object_id = %s",
                              (n["doc"].split(":", 1)[1],)).fetchone()[0] == 2
    if isolation:
        reader.execute("ROLLBACK")


def test_the_deletion_of_a_wildcard_is_honoured_inside_an_old_transaction(sessions, model, names, cache):
    writer, reader = sessions(autocommit=True), sessions(autocommit=True)
    write(writer, names["doc"], "viewer", "user:*")
    reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    assert check(reader, names["anne"], names["doc"]) is True
    assert users(reader, names["doc"]) == {"user:*"}
    delete(writer, names["doc"], "viewer", "user:*")
    assert check(reader, names["anne"], names["doc"]) is False
    assert users(reader, names["doc"]) == set()
    reader.execute("ROLLBACK")


@pytest.mark.parametrize("pages", ["fresh", "all-visible"])
@pytest.mark.parametrize("isolation", ["READ COMMITTED", "REPEATABLE READ"])
def test_own_uncommitted_changes_are_seen_by_their_transaction_only(sessions, shared, isolation, pages, cache):
    n = shared
    mine, other = sessions(autocommit=True), sessions(autocommit=True)
    if pages == "all-visible":
        vacuumed(other, n)
    mine.execute(f"BEGIN ISOLATION LEVEL {isolation}")
    assert check(mine, n["bob"], n["doc"]) is True  # the snapshot is taken
    assert write(mine, n["doc"], "viewer", n["bob"]) is True
    assert delete(mine, n["doc"], "viewer", n["anne"]) is True
    assert delete(mine, n["team"], "member", n["bob"]) is True
    # Mine: bob is now a direct viewer, anne none.
    assert check(mine, n["bob"], n["doc"]) is True and check(mine, n["anne"], n["doc"]) is False
    assert check(mine, n["bob"], n["team"], "member") is False
    assert users(mine, n["doc"]) == {n["bob"]} and not listed(mine, n["anne"], n["doc"])
    # The other session: nothing of it yet.
    assert check(other, n["anne"], n["doc"]) is True and check(other, n["bob"], n["team"], "member") is True
    assert users(other, n["doc"]) == {n["anne"], n["bob"]} and listed(other, n["anne"], n["doc"])
    mine.execute("COMMIT")
    assert check(other, n["anne"], n["doc"]) is False and check(other, n["bob"], n["team"], "member") is False
    assert check(other, n["bob"], n["doc"]) is True
    assert users(other, n["doc"]) == {n["bob"]}


def test_each_statement_inside_a_function_sees_deletes_and_expiry_since_the_previous(sessions, shared, cache):
    """Inside one call of a function, in a REPEATABLE READ transaction: a tuple deleted and
    committed elsewhere, and one that expired, while the function slept, hold no more."""
    n = shared
    reader = sessions(autocommit=True)
    carol = f"user:{unique('carol')}"
    reader.execute("SELECT authz_tuple_write(%s, 'viewer', %s, expires_at => now() + interval '1 second')",
                   (n["doc"], carol))
    reader.execute("""
        CREATE FUNCTION pg_temp.twice(d text, a text, c text) RETURNS boolean[] LANGUAGE plpgsql AS $$
        DECLARE first boolean[];
        BEGIN
            first := ARRAY[authz_relation_check(a, 'viewer', d), authz_relation_check(c, 'viewer', d)];
            PERFORM pg_sleep(1.1);
            RETURN first || ARRAY[authz_relation_check(a, 'viewer', d), authz_relation_check(c, 'viewer', d)];
        END $$""")
    writer = sessions(autocommit=True)
    reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")

    def remove():
        time.sleep(0.3)
        delete(writer, n["doc"], "viewer", n["anne"])
    thread = threading.Thread(target=remove)
    thread.start()
    answers = reader.execute("SELECT pg_temp.twice(%s, %s, %s)", (n["doc"], n["anne"], carol)).fetchone()[0]
    thread.join()
    reader.execute("ROLLBACK")
    assert answers == [True, True, False, False]


def test_a_remembered_answer_ends_when_a_tuple_it_read_expires(sessions, shared, cache):
    """With nothing written meanwhile (no invalidation), a check and both lists that read a
    tuple expiring in a second answer as before it expires, and without it after."""
    n = shared
    conn = sessions(autocommit=True)
    carol = f"user:{unique('carol')}"
    conn.execute("SELECT authz_tuple_write(%s, 'viewer', %s, expires_at => now() + interval '1 second')",
                 (n["doc"], carol))
    for _ in range(2):
        assert check(conn, carol, n["doc"]) is True and listed(conn, carol, n["doc"])
        assert users(conn, n["doc"]) == {n["anne"], n["bob"], carol}
    time.sleep(1.1)
    assert check(conn, carol, n["doc"]) is False and not listed(conn, carol, n["doc"])
    assert users(conn, n["doc"]) == {n["anne"], n["bob"]}


def test_queries_with_contextual_tuples_are_answered_for_their_tuples(sessions, shared, cache):
    """The same check with and without contextual tuples, in turn: each answers for its own."""
    n = shared
    conn = sessions(autocommit=True)
    carol = f"user:{unique('carol')}"
    extra = Jsonb([{"object": n["doc"], "relation": "viewer", "user": carol}])
    for _ in range(2):
        assert check(conn, carol, n["doc"]) is False
        assert check(conn, carol, n["doc"], contextual_tuples=extra) is True


def test_without_the_relationship_triggers_nothing_is_remembered(sessions):
    """A database whose relationship tables have no note_change triggers (as one installed
    before they existed): their writes invalidate nothing, so nothing may be remembered."""
    name = f"authz_no_tuple_trigger_{unique('db').replace('-', '_')}"
    create_database(name)
    try:
        with connect(name, autocommit=True) as reader, connect(name, autocommit=True) as writer:
            for table in ("relation_tuples", "relation_models"):
                writer.execute(f"DROP TRIGGER note_change ON authz.{table}")
                writer.execute(f"DROP TRIGGER note_change_row ON authz.{table}")
            writer.execute("SELECT authz_model_write(%s)", (MODEL,))
            for expected in (False, True):
                assert check(reader, "user:anne", "doc:1") is expected
                assert listed(reader, "user:anne", "doc:1") is expected
                writer.execute("INSERT INTO authz.relation_tuples (object_type, object_id, relation, subject_type,"
                               " subject_id) VALUES ('doc', '1', 'viewer', 'user', 'anne') ON CONFLICT DO NOTHING")
    finally:
        drop_database(name)


# authz_tuple_write once handed its expires_at on as text in the session's DateStyle, which
# PostgreSQL read back by its table of zone abbreviations: with DateStyle SQL and TimeZone
# Asia/Kolkata, "IST" came back as Israel's (+02), not India's (+05:30), and the tuple was
# stored, and honoured, 3.5 hours too long.
@pytest.mark.parametrize("datestyle", ["ISO", "SQL, DMY"])
def test_expires_at_is_kept_as_given_whatever_the_session_settings(sessions, model, names, datestyle):
    conn = sessions(autocommit=True)
    conn.execute(f"SET datestyle = '{datestyle}'")
    conn.execute("SET timezone = 'Asia/Kolkata'")
    conn.execute("SELECT authz_tuple_write(%s, 'viewer', %s, expires_at => now() + interval '1 second')",
                 (names["doc"], names["anne"]))
    # (In seconds: psycopg reads no timestamp in DateStyle SQL.)
    lifetime = conn.execute("SELECT extract(epoch FROM expires_at - created_at) FROM authz.relation_tuples"
                            " WHERE object_type = 'doc' AND object_id = %s",
                            (names["doc"].split(":", 1)[1],)).fetchone()[0]
    assert lifetime == 1
    time.sleep(1.1)
    assert check(conn, names["anne"], names["doc"]) is False


def test_a_write_earlier_in_the_same_statement_is_seen(sessions, model, names, cache):
    """A tuple written and checked in one SELECT (functions evaluated left to right) counts:
    the transaction's own changes up to the current command."""
    conn = sessions(autocommit=True)
    row = conn.execute("SELECT authz_tuple_write(%(o)s, 'viewer', %(u)s),"
                       " authz_relation_check(%(u)s, 'viewer', %(o)s)",
                       {"o": names["doc"], "u": names["anne"]}).fetchone()
    assert row == (True, True)


def test_rollback_to_savepoint_undoes_changes_for_checks_and_lists(sessions, shared, cache):
    n = shared
    conn = sessions()  # a transaction, opened by the first statement
    carol = f"user:{unique('carol')}"
    assert write(conn, n["doc"], "viewer", carol) is True
    conn.execute("SAVEPOINT s")
    assert delete(conn, n["doc"], "viewer", carol) is True
    assert delete(conn, n["team"], "member", n["bob"]) is True
    write(conn, n["doc"], "viewer", "user:*")
    assert check(conn, carol, n["doc"]) is True  # through the wildcard now
    assert users(conn, n["doc"]) == {n["anne"], "user:*"}
    assert check(conn, n["bob"], n["team"], "member") is False
    conn.execute("ROLLBACK TO SAVEPOINT s")
    # The wildcard is gone, carol's own tuple and bob's membership are back.
    assert check(conn, f"user:{unique('nobody')}", n["doc"]) is False
    assert users(conn, n["doc"]) == {n["anne"], n["bob"], carol}
    assert listed(conn, carol, n["doc"])
    # A released savepoint's change stays in the transaction; a rolled-back one never comes back.
    conn.execute("SAVEPOINT t")
    write(conn, n["doc"], "viewer", "user:*")
    conn.execute("RELEASE SAVEPOINT t")
    assert users(conn, n["doc"]) == {n["anne"], n["bob"], carol, "user:*"}
    # An error inside a savepoint (a write the model refuses) leaves the transaction usable.
    conn.execute("SAVEPOINT u")
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        write(conn, n["doc"], "viewer", "team:x")
    conn.execute("ROLLBACK TO SAVEPOINT u")
    assert check(conn, carol, n["doc"]) is True
    conn.rollback()
    assert check(conn, carol, n["doc"]) is False
    assert users(conn, n["doc"]) == {n["anne"], n["bob"]}
    conn.rollback()


def test_a_model_committed_elsewhere_is_current_for_the_next_statement(sessions, shared, model, cache):
    n = shared
    reader, writer = sessions(autocommit=True), sessions(autocommit=True)
    reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    assert check(reader, n["anne"], n["doc"]) is True
    with pytest.raises(psycopg.errors.UndefinedColumn):  # 42703: doc#editor is not in the model yet
        check(reader, n["anne"], n["doc"], "editor")
    reader.execute("ROLLBACK")
    reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    assert check(reader, n["anne"], n["doc"]) is True
    newer = writer.execute("SELECT authz_model_write(%s)", (MODEL_WITH_EDITOR,)).fetchone()[0]
    assert int(newer) > int(model)
    write(writer, n["doc"], "editor", n["anne"])
    assert check(reader, n["anne"], n["doc"], "editor") is True
    assert listed(reader, n["anne"], n["doc"], "editor")
    # The older model can still be named; it has no editor.
    assert check(reader, n["anne"], n["doc"], model_id=model) is True
    with pytest.raises(psycopg.errors.UndefinedColumn):
        check(reader, n["anne"], n["doc"], "editor", model_id=model)
    reader.execute("ROLLBACK")


def test_a_model_of_an_open_transaction_is_current_for_it_alone(sessions, shared, model, cache):
    n = shared
    mine, other = sessions(), sessions(autocommit=True)
    uncommitted = mine.execute("SELECT authz_model_write(%s)", (MODEL_WITH_EDITOR,)).fetchone()[0]
    assert write(mine, n["doc"], "editor", n["bob"]) is True
    assert check(mine, n["bob"], n["doc"], "editor") is True
    with pytest.raises(psycopg.errors.UndefinedColumn):
        check(other, n["bob"], n["doc"], "editor")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="does not exist"):
        check(other, n["bob"], n["doc"], model_id=uncommitted)
    mine.rollback()
    # Rolled back: the model is gone for its own session too, and its id names nothing.
    with pytest.raises(psycopg.errors.UndefinedColumn):
        check(mine, n["bob"], n["doc"], "editor")
    mine.rollback()
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="does not exist"):
        check(mine, n["bob"], n["doc"], model_id=uncommitted)
    mine.rollback()
    assert check(mine, n["anne"], n["doc"]) is True


def test_audit_rows_are_written_and_rolled_back_with_their_change(sessions, model, names):
    n = names
    conn, other = sessions(), sessions(autocommit=True)
    conn.execute("SET LOCAL authz.trace_id = 'rel-trace'")
    model_id = conn.execute("SELECT authz_model_write(%s)", (MODEL,)).fetchone()[0]
    write(conn, n["doc"], "viewer", n["anne"])
    conn.execute("SELECT authz_tuple_write(%s, 'viewer', %s, expires_at => '2999-01-01Z')", (n["doc"], n["anne"]))
    delete(conn, n["doc"], "viewer", n["anne"])
    conn.execute("SELECT authz_tuple_write_bulk(%s::jsonb)",
                 (f'[{{"object": "{n["doc"]}", "relation": "viewer", "user": "{n["bob"]}"}}]',))
    mine = conn.execute("SELECT action, trace_id FROM authz.audit_log WHERE target ->> 'object' = %s"
                        " OR target ->> 'model_id' = %s ORDER BY id", (n["doc"], model_id)).fetchall()
    assert mine == [("authz_model_write", "rel-trace")] + [("authz_tuple_write", "rel-trace")] * 2 + [
        ("authz_tuple_delete", "rel-trace"), ("authz_tuple_write", "rel-trace")]
    assert audit(other, "authz_tuple_write", n["doc"]) == []
    conn.rollback()
    assert audit(conn, "authz_tuple_write", n["doc"]) == [] and audit(conn, "authz_tuple_delete", n["doc"]) == []
    assert conn.execute("SELECT count(*) FROM authz.audit_log WHERE target ->> 'model_id' = %s",
                        (model_id,)).fetchone()[0] == 0
    conn.rollback()
    # Committed: the rows tell the story — new (no old value), then replaced (the old row
    # without expiry, the new one with); the delete undone by its savepoint left none.
    write(conn, n["doc"], "viewer", n["anne"])
    conn.execute("SELECT authz_tuple_write(%s, 'viewer', %s, expires_at => '2999-01-01Z')", (n["doc"], n["anne"]))
    conn.execute("SAVEPOINT s")
    delete(conn, n["doc"], "viewer", n["anne"])
    conn.execute("ROLLBACK TO SAVEPOINT s")  # this delete and its audit row are undone
    conn.commit()
    rows = audit(other, "authz_tuple_write", n["doc"])
    assert [(old is None, new["expires_at"] is None) for old, new in rows] == [(True, True), (False, False)]
    assert rows[1][0]["expires_at"] is None and rows[1][0]["subject_id"] == n["anne"].split(":", 1)[1]
    assert audit(other, "authz_tuple_delete", n["doc"]) == []


def blocked(conn, pid, seconds=10):
    """Waits until the backend `pid` waits for a lock."""
    deadline = time.monotonic() + seconds
    while conn.execute("SELECT wait_event_type IS DISTINCT FROM 'Lock' FROM pg_stat_activity WHERE pid = %s",
                       (pid,)).fetchone()[0]:
        assert time.monotonic() < deadline, f"backend {pid} never waited for a lock"
        time.sleep(0.02)


def behind(a, b, watcher, sql, params):
    """Runs `sql` in session `b` (then commits) while `a` holds its open transaction: waits
    until `b` is blocked by it, commits `a`, and returns what `sql` answered in `b`."""
    b_pid = b.execute("SELECT pg_backend_pid()").fetchone()[0]
    b.commit()
    result = {}

    def run():
        try:
            result["value"] = b.execute(sql, params).fetchone()[0]
            b.commit()
        except psycopg.Error as e:
            result["error"] = e
    thread = threading.Thread(target=run)
    thread.start()
    blocked(watcher, b_pid)
    a.commit()
    thread.join(30)
    assert "error" not in result, result["error"]
    return result["value"]


# The second writer's audit row must hold the first writer's row as old_value. (Once it
# had NULL: authz.tuples_change looked for the rows its writes replace before its INSERT
# ... ON CONFLICT waited for the first writer; it now locks the table first.)
def test_concurrent_writes_of_one_tuple_both_succeed_and_one_inserts(sessions, model, names):
    """A writes the tuple and holds its transaction open; B writes it too and waits for A;
    A commits. Both succeed; A's tuple is new, B's is a rewrite of it; one tuple exists,
    and the audit log says the same: one insertion (no old value), one replacement."""
    n = names
    a, b, watcher = sessions(), sessions(), sessions(autocommit=True)
    assert write(a, n["doc"], "viewer", n["anne"]) is True
    second = behind(a, b, watcher, "SELECT authz_tuple_write(%s, 'viewer', %s)", (n["doc"], n["anne"]))
    assert second is False  # the tuple was A's by then
    assert watcher.execute("SELECT count(*) FROM authz.relation_tuples WHERE object_id = %s",
                           (n["doc"].split(":", 1)[1],)).fetchone()[0] == 1
    rows = audit(watcher, "authz_tuple_write", n["doc"])
    assert len(rows) == 2
    assert [old is None for old, _ in rows] == [True, False], rows


def test_concurrent_deletes_of_one_tuple_both_succeed_and_one_deletes(sessions, model, names):
    n = names
    write(sessions(autocommit=True), n["doc"], "viewer", n["anne"])
    a, b, watcher = sessions(), sessions(), sessions(autocommit=True)
    assert delete(a, n["doc"], "viewer", n["anne"]) is True
    assert behind(a, b, watcher, "SELECT authz_tuple_delete(%s, 'viewer', %s)", (n["doc"], n["anne"])) is False
    assert len(audit(watcher, "authz_tuple_delete", n["doc"])) == 1
    assert check(watcher, n["anne"], n["doc"]) is False


# Two bulk changes listing the same tuples in different orders once deadlocked (40P01):
# authz.tuples_change locked the tuples in the order given. It now takes a table lock
# first, as authz_grant_bulk does (test_concurrency.py allows no deadlock).
def test_concurrent_bulk_changes_of_the_same_tuples_in_opposite_orders_never_fail(sessions, model, names):
    """Two sessions race, for a bounded time, bulk writes and deletes of the same tuples,
    each listing them in its own order: every call must succeed."""
    tuples = [{"object": names["doc"], "relation": "viewer", "user": f"user:{unique('race')}"} for _ in range(20)]
    orders = [tuples, list(reversed(tuples))]
    stop, errors, calls = threading.Event(), [], [0, 0]

    def race(conn, order, k):
        while not stop.is_set():
            writes, deletes = (order, None) if calls[k] % 2 == 0 else (order[:10], order[10:])
            try:
                conn.execute("SELECT authz_tuple_write_bulk(%s, %s)", (Jsonb(writes), deletes and Jsonb(deletes)))
            except psycopg.Error as e:
                errors.append(f"{e.sqlstate}: {e}")
            calls[k] += 1

    threads = [threading.Thread(target=race, args=(sessions(autocommit=True), order, k))
               for k, order in enumerate(orders)]
    hung = run_for(2, threads, stop, 30)
    assert not hung
    assert not errors, f"{len(errors)} of {sum(calls)} calls failed, first: {errors[0]}"
    assert min(calls) > 10, calls


# Tuple writers once took turns: authz.tuples_change locked the whole table to the end of
# the transaction, so one open transaction that had written a tuple held up every writer.
def test_writers_of_other_tuples_do_not_wait(sessions, model, names):
    """A writes a tuple and keeps its transaction open; B writes and deletes other tuples,
    one at a time and in bulk, without waiting; B waits for A only to write A's tuple."""
    n = names
    a, b = sessions(), sessions(autocommit=True)
    assert write(a, n["doc"], "viewer", n["anne"]) is True
    b.execute("SET lock_timeout = '2s'")
    assert write(b, n["doc"], "viewer", n["bob"]) is True
    assert delete(b, n["doc"], "viewer", n["bob"]) is True
    bulk = [{"object": n["doc"], "relation": "viewer", "user": f"user:{unique('other')}"} for _ in range(10)]
    assert b.execute("SELECT authz_tuple_write_bulk(%s)", (Jsonb(bulk),)).fetchone()[0] == 10
    with pytest.raises(psycopg.errors.LockNotAvailable):
        write(b, n["doc"], "viewer", n["anne"])
    a.commit()
    assert write(b, n["doc"], "viewer", n["anne"]) is False  # A's by now


def test_writers_of_the_same_tuples_in_other_orders_meet_a_detected_deadlock(sessions, model, names):
    """A writes tuple x then y, B writes y then x, each tuple in a call of its own: one of
    them gets 40P01 and loses both its writes; the other commits both."""
    n = names
    a, b, watcher = sessions(), sessions(), sessions(autocommit=True)
    a_pid = a.execute("SELECT pg_backend_pid()").fetchone()[0]
    x, y = n["anne"], n["bob"]
    write(a, n["doc"], "viewer", x)
    write(b, n["doc"], "viewer", y)
    ended = {}

    def second(conn, subject, who):
        try:
            write(conn, n["doc"], "viewer", subject)
            conn.commit()
            ended[who] = "committed"
        except psycopg.errors.DeadlockDetected:
            conn.rollback()
            ended[who] = "40P01"
    thread = threading.Thread(target=second, args=(a, y, "a"))
    thread.start()
    blocked(watcher, a_pid)
    second(b, x, "b")
    thread.join(30)
    assert sorted(ended.values()) == ["40P01", "committed"], ended
    assert {r[0] for r in watcher.execute("SELECT subject_id FROM authz.relation_tuples WHERE object_id = %s",
                                          (n["doc"].split(":", 1)[1],))} == {x.split(":", 1)[1], y.split(":", 1)[1]}
    assert len(audit(watcher, "authz_tuple_write", n["doc"])) == 2


def tuple_locks(conn, pid):
    """The tuple locks (authz_ext's advisory locks) backend `pid` holds."""
    return conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 29813 "
                        "AND pid = %s AND granted", (pid,)).fetchone()[0]


def test_a_transaction_past_64_tuple_locks_holds_the_table_instead(sessions, model, names):
    """Writing one tuple at a time, a transaction locks 64 tuples; its 65th write locks the
    table instead (to its end), so that a loop of writes cannot fill the shared lock table:
    then any other writer waits for it."""
    n = names
    a, b, watcher = sessions(), sessions(autocommit=True), sessions(autocommit=True)
    a_pid = a.execute("SELECT pg_backend_pid()").fetchone()[0]
    b.execute("SET lock_timeout = '1s'")
    for _ in range(64):
        write(a, n["doc"], "viewer", f"user:{unique('many')}")
    assert tuple_locks(watcher, a_pid) == 64
    assert write(b, n["doc"], "viewer", n["bob"]) is True
    write(a, n["doc"], "viewer", f"user:{unique('many')}")
    assert tuple_locks(watcher, a_pid) == 64
    with pytest.raises(psycopg.errors.LockNotAvailable):
        write(b, n["doc"], "viewer", n["anne"])
    a.commit()
    assert write(b, n["doc"], "viewer", n["anne"]) is True


def test_a_bulk_write_past_64_tuples_holds_the_table(sessions, model, names):
    """A bulk write of 20,000 tuples locks the table, not each tuple (they would not fit
    the shared lock table)."""
    n = names
    a, b = sessions(), sessions(autocommit=True)
    b.execute("SET lock_timeout = '1s'")
    bulk = [{"object": n["doc"], "relation": "viewer", "user": f"user:many-{i}"} for i in range(20000)]
    assert a.execute("SELECT authz_tuple_write_bulk(%s)", (Jsonb(bulk),)).fetchone()[0] == 20000
    with pytest.raises(psycopg.errors.LockNotAvailable):
        write(b, n["doc"], "viewer", n["anne"])
    a.commit()
    assert write(b, n["doc"], "viewer", n["anne"]) is True


# A list over a long chain of nested teams walks for a while (a 10,000-deep chain once took
# 15 s: the walk was quadratic in its rounds), and the walk took no notice of
# statement_timeout or a cancel: it ended with its own error (2002, deeper than 25), or,
# when it was quadratic, this test waited 30 s. The walks now stop at their next step.
def test_a_long_walk_is_stopped_by_statement_timeout(sessions, model, names):
    conn = sessions(autocommit=True)
    prefix = unique("chain")
    conn.execute("INSERT INTO authz.relation_tuples (object_type, object_id, relation, subject_type, subject_id,"
                 " subject_relation) SELECT 'team', %(p)s || i, 'member', 'team', %(p)s || (i + 1), 'member'"
                 " FROM generate_series(1, 50000) i", {"p": prefix})
    write(conn, f"team:{prefix}50001", "member", names["anne"])
    conn.execute("SET statement_timeout = '50ms'")  # the walk takes about 200 ms here
    started = time.monotonic()
    with pytest.raises(psycopg.errors.QueryCanceled):
        conn.execute("SELECT count(*) FROM authz_list_objects(%s, 'team', 'member')", (names["anne"],))
    assert time.monotonic() - started < 5
    conn.execute("RESET statement_timeout")
    assert check(conn, names["anne"], f"team:{prefix}49990", "member") is True
