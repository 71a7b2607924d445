"""The API keys every backend shares (authz.shared_key_memory, docs/ARCHITECTURE.md): a key
read by one session is found by the next without reading the tables, and nothing found
there is ever staler than the tables: a revoke seen by the next statement of sessions old
and new, a transaction's own uncommitted keys never shared, DDL and a dropped extension
honoured, a prepared revoke honoured once committed."""
import pytest

from conftest import connect, create_database, drop_database, end_prepared, stats, unique, with_cache

VALIDATE = "SELECT status FROM api_key_validate(%s)"


def new_key(conn, scopes=("documents:read",)):
    """A new key of a new user, committed: (key id, token)."""
    return conn.execute("SELECT key_id, token FROM api_key_create(%s::text, 'shared', %s)",
                        (unique("shared"), list(scopes))).fetchone()


def validated(conn, token):
    """The status, and how this session found the key: 'read' (from the tables), 'shared'
    or 'remembered' (by this backend)."""
    before = stats(conn)
    status = conn.execute(VALIDATE, (token,)).fetchone()[0]
    after = stats(conn)
    if after["cache_key_reads"] > before["cache_key_reads"]:
        return status, "read"
    if after["cache_key_shared_hits"] > before["cache_key_shared_hits"]:
        return status, "shared"
    return status, "remembered"


def test_a_key_one_session_read_is_found_by_the_next_without_reading(sessions):
    admin = sessions(autocommit=True)
    _, token = new_key(admin)
    first = sessions(autocommit=True, **with_cache("on"))
    assert validated(first, token) == ("valid", "read")
    assert validated(first, token) == ("valid", "remembered")
    assert validated(sessions(autocommit=True, **with_cache("on")), token) == ("valid", "shared")
    # With the cache off, every validation reads.
    assert validated(sessions(autocommit=True, **with_cache("off")), token) == ("valid", "read")


def test_the_same_scopes_user_and_expiry_come_back_from_shared_memory(sessions):
    admin = sessions(autocommit=True)
    key_id, token = admin.execute(
        "SELECT key_id, token FROM api_key_create(%s::text, 'shared', ARRAY['documents:read', 'documents:write'],"
        " now() + interval '1 day')", (unique("shared-ü"),)).fetchone()
    row = "SELECT valid, status, key_id, user_id, scopes, expires_at FROM api_key_validate(%s)"
    read = sessions(autocommit=True).execute(row, (token,)).fetchone()
    reader = sessions(autocommit=True)
    before = stats(reader)
    assert reader.execute(row, (token,)).fetchone() == read
    assert stats(reader)["cache_key_shared_hits"] == before["cache_key_shared_hits"] + 1
    assert read[2] == key_id and read[4] == ["documents:read", "documents:write"]


def test_a_revoke_is_seen_by_the_next_statement_of_old_and_new_sessions(sessions):
    admin = sessions(autocommit=True)
    key_id, token = new_key(admin)
    old = sessions(autocommit=True)
    assert validated(old, token)[0] == "valid"
    assert validated(sessions(autocommit=True), token) == ("valid", "shared")
    in_transaction = sessions()
    assert validated(in_transaction, token)[0] == "valid"
    admin.execute("SELECT api_key_revoke(%s)", (key_id,))
    assert validated(in_transaction, token)[0] == "revoked"  # same transaction, next statement
    assert validated(old, token)[0] == "revoked"
    assert validated(sessions(autocommit=True), token)[0] == "revoked"


def test_a_transactions_own_key_changes_are_never_shared(sessions):
    admin = sessions(autocommit=True)
    key_id, token = new_key(admin)
    assert validated(sessions(autocommit=True), token)[0] == "valid"
    writer = sessions()
    # A revoke not committed: the writer sees it, no one else does, before or after it ends.
    writer.execute("SELECT api_key_revoke(%s)", (key_id,))
    assert validated(writer, token) == ("revoked", "read")
    assert validated(sessions(autocommit=True), token)[0] == "valid"
    assert validated(sessions(autocommit=True), token)[0] == "valid"
    writer.rollback()
    assert validated(sessions(autocommit=True), token)[0] == "valid"
    # A key created and validated in a transaction that rolls back is unknown to everyone.
    _, rolled_back = new_key(writer)
    assert validated(writer, rolled_back) == ("valid", "read")
    writer.rollback()
    assert validated(sessions(autocommit=True), rolled_back)[0] == "unknown"
    assert validated(writer, rolled_back)[0] == "unknown"


@pytest.mark.parametrize("separately", [False, True])
def test_a_revoke_with_the_triggers_disabled_is_seen_by_new_sessions(sessions, separately):
    """As pg_restore --disable-triggers writes: no note_change fires; the DDL around it
    must still make the shared key stale, for sessions that never saw the DDL too."""
    admin = sessions(autocommit=True)
    key_id, token = new_key(admin)
    warm = sessions(autocommit=True)
    assert validated(warm, token)[0] == "valid"
    statements = ["ALTER TABLE authz.api_keys DISABLE TRIGGER ALL",
                  "UPDATE authz.api_keys SET revoked_at = now() WHERE id = %s",
                  "ALTER TABLE authz.api_keys ENABLE TRIGGER ALL"]
    ddl = sessions(autocommit=separately)
    for sql in statements:
        ddl.execute(sql, (key_id,) if "%s" in sql else None)
    if not separately:
        ddl.commit()
    assert validated(sessions(autocommit=True), token)[0] == "revoked"
    assert validated(warm, token)[0] == "revoked"


def test_a_key_is_not_found_after_its_extension_was_dropped_and_created_again():
    name = "authz_shared_keys_drop"
    create_database(name)
    try:
        with connect(name, autocommit=True) as admin:
            _, token = new_key(admin)
            with connect(name, autocommit=True) as other:
                assert other.execute(VALIDATE, (token,)).fetchone()[0] == "valid"
            admin.execute("DROP EXTENSION authz_ext")
            admin.execute("CREATE EXTENSION authz_ext")
        with connect(name, autocommit=True) as fresh:
            assert fresh.execute(VALIDATE, (token,)).fetchone()[0] == "unknown"
    finally:
        drop_database(name)


def test_a_revoke_prepared_then_committed_elsewhere_is_seen_by_new_sessions(sessions):
    admin = sessions(autocommit=True)
    key_id, token = new_key(admin)
    writer = sessions()
    writer.execute("SELECT api_key_revoke(%s)", (key_id,))
    gid = unique("gid")
    writer.execute(f"PREPARE TRANSACTION '{gid}'")
    try:
        assert validated(sessions(autocommit=True), token)[0] == "valid"
        assert validated(sessions(autocommit=True), token) == ("valid", "shared")
        # COMMIT PREPARED runs none of the extension's code in the writer's backend.
        end_prepared(sessions, gid, "COMMIT")
        assert validated(sessions(autocommit=True), token)[0] == "revoked"
    finally:
        end_prepared(sessions, gid, "ROLLBACK")


def test_a_last_use_written_by_one_session_is_not_written_again_by_the_next(sessions):
    admin = sessions(autocommit=True)
    key_id, token = new_key(admin)
    usage = "SELECT last_used_at FROM authz.api_key_usage WHERE key_id = %s"
    first = sessions(autocommit=True, options="-c authz.key_last_used_interval=3600")
    assert validated(first, token)[0] == "valid"
    written = admin.execute(usage, (key_id,)).fetchone()[0]
    assert written is not None
    second = sessions(autocommit=True, options="-c authz.key_last_used_interval=3600")
    assert validated(second, token) == ("valid", "shared")
    assert admin.execute(usage, (key_id,)).fetchone()[0] == written


def test_a_full_memo_keeps_its_keys_while_the_keys_are_shared(sessions):
    # 64 kB of cache memory: the memo of validated keys holds an eighth, a few dozen keys.
    # Validating 200 keys in turn, twice: a memo emptied whenever it filled would hold
    # none of the first keys by the second round, and every one would come from shared
    # memory again; a full memo that keeps what it has answers its first keys itself.
    admin = sessions(autocommit=True)
    tokens = [new_key(admin)[1] for _ in range(200)]
    reader = sessions(autocommit=True, options="-c authz.cache_memory=64kB -c authz.key_last_used_interval=3600")
    for token in tokens:
        reader.execute(VALIDATE, (token,))
    before = stats(reader)
    assert all(reader.execute(VALIDATE, (token,)).fetchone()[0] == "valid" for token in tokens)
    after = stats(reader)
    shared = after["cache_key_shared_hits"] - before["cache_key_shared_hits"]
    assert after["cache_key_reads"] == before["cache_key_reads"]
    assert 0 < shared < 190, shared
