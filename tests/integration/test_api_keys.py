"""API keys across sessions: revocation freshness, and last_used_at writes that never
block or fail a validation (docs/guide.md: API keys, Freshness)."""
import uuid

import pytest


def create_key(conn, scopes=("documents:read",)):
    user = str(uuid.uuid4())
    key_id, token, _ = conn.execute(
        "SELECT * FROM api_key_create(%s::text, 'it', %s)", (user, list(scopes))
    ).fetchone()
    return user, key_id, token


def validate(conn, token):
    # The token is sent as an ordinary untyped string parameter: no cast is needed.
    return conn.execute("SELECT status, user_id FROM api_key_validate(%s)", (token,)).fetchone()


def last_used(conn, key_id):
    return conn.execute("SELECT last_used_at FROM authz.api_key_usage WHERE key_id = %s", (key_id,)).fetchone()[0]


def test_revocation_is_seen_by_another_session_after_commit(sessions):
    admin, app = sessions(), sessions(autocommit=True)
    user, key_id, token = create_key(admin)
    assert validate(app, token)[0] == "unknown", "uncommitted key leaked"
    admin.commit()
    assert validate(app, token) == ("valid", user)
    admin.execute("SELECT api_key_revoke(%s)", (key_id,))
    assert validate(app, token)[0] == "valid", "uncommitted revoke leaked"
    admin.commit()
    assert validate(app, token) == ("revoked", None)


@pytest.mark.parametrize("isolation", ["REPEATABLE READ", "SERIALIZABLE"])
def test_open_snapshot_transaction_sees_a_revocation_committed_after_it_began(sessions, isolation):
    admin, app = sessions(autocommit=True), sessions()
    _, key_id, token = create_key(admin)
    app.execute(f"BEGIN ISOLATION LEVEL {isolation}")
    assert validate(app, token)[0] == "valid"  # the snapshot is now taken
    admin.execute("SELECT api_key_revoke(%s)", (key_id,))
    assert validate(app, token)[0] == "revoked"
    app.rollback()


def test_validation_skips_a_key_row_another_transaction_holds(sessions):
    admin, holder, app = sessions(autocommit=True), sessions(), sessions(autocommit=True)
    _, key_id, token = create_key(admin)
    holder.execute("SELECT 1 FROM authz.api_key_usage WHERE key_id = %s FOR UPDATE", (key_id,))
    # Were validation to wait for the row lock, the timeout would fail this call.
    app.execute("SET authz.key_last_used_interval = 0")
    app.execute("SET statement_timeout = '3s'")
    assert validate(app, token)[0] == "valid"
    assert last_used(app, key_id) is None
    holder.rollback()
    assert validate(app, token)[0] == "valid"
    assert last_used(app, key_id) is not None


def test_revocation_does_not_wait_for_a_transaction_that_used_the_key(sessions):
    admin, app = sessions(autocommit=True), sessions()
    _, key_id, token = create_key(admin)
    app.execute("SET authz.key_last_used_interval = 0")
    assert validate(app, token)[0] == "valid"  # wrote last_used_at; the transaction stays open
    admin.execute("SET statement_timeout = '3s'")
    assert admin.execute("SELECT api_key_revoke(%s)", (key_id,)).fetchone()[0] is True
    assert validate(app, token)[0] == "revoked"
    app.commit()


def test_a_failed_last_used_write_leaves_the_transaction_usable(sessions):
    """Under REPEATABLE READ, writing a row that another session updated after the snapshot
    is a serialization failure; validation swallows it in a subtransaction."""
    admin, app = sessions(autocommit=True), sessions()
    _, key_id, token = create_key(admin)
    admin.execute("SET authz.key_last_used_interval = 0")
    app.execute("SET authz.key_last_used_interval = 0")
    app.execute("SET client_min_messages = debug1")
    app.commit()
    notices = []
    app.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    app.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    app.execute("SELECT count(*) FROM pg_class")  # the snapshot is now taken
    assert validate(admin, token)[0] == "valid"  # another session writes last_used_at
    written_by_admin = last_used(admin, key_id)
    assert validate(app, token)[0] == "valid"
    assert app.execute("SELECT 42").fetchone()[0] == 42
    assert any("could not serialize" in n for n in notices), notices
    app.commit()
    assert last_used(admin, key_id) == written_by_admin


def test_an_ordinary_role_validates_but_cannot_read_keys(sessions, ordinary_session):
    admin = sessions(autocommit=True)
    user, _, token = create_key(admin)
    assert validate(ordinary_session, token) == ("valid", user)
    assert validate(ordinary_session, token[:-1] + ("A" if token[-1] != "A" else "B"))[0] == "malformed"
