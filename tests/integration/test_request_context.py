"""The request context through a driver that reuses one connection for many transactions,
as a transaction-pooling proxy or an application pool does."""
import psycopg
import pytest

# Each test runs with the decision cache on and off (conftest.py, `cache`).
pytestmark = pytest.mark.usefixtures("cache")


@pytest.fixture
def key(sessions):
    admin = sessions(autocommit=True)
    admin.execute("SELECT authz_set_role('ctx-user', 'viewer')")
    return admin.execute(
        "SELECT token FROM api_key_create('ctx-user', 'pool', ARRAY['documents:read'])"
    ).fetchone()[0]


def principal(conn):
    return conn.execute("SELECT authz_current_user()").fetchone()[0]


def test_a_principal_never_reaches_the_next_transaction(sessions, key):
    conn = sessions()  # one connection, used like a pool hands it out
    for _ in range(3):
        with conn.transaction():
            assert principal(conn) is None
            assert conn.execute("SELECT authz_authenticate(%s)", (key,)).fetchone()[0] == "ctx-user"
            assert conn.execute("SELECT authz_can('document:read', 1)").fetchone()[0] is True
        assert principal(conn) is None
        conn.commit()

        conn.execute("SELECT authz_set_user('someone')")
        assert principal(conn) == "someone"
        conn.rollback()
        assert principal(conn) is None
        conn.rollback()


def test_no_principal_survives_an_error(sessions, key):
    conn = sessions()
    conn.execute("SELECT authz_authenticate(%s)", (key,))
    with pytest.raises(psycopg.errors.DivisionByZero):
        conn.execute("SELECT 1 / 0")
    conn.rollback()
    assert principal(conn) is None
    conn.rollback()
    # A rejected key is 28000 and leaves no principal either.
    with pytest.raises(psycopg.errors.InvalidAuthorizationSpecification) as rejected:
        conn.execute("SELECT authz_authenticate(%s)", (key[:-1] + ("A" if key[-1] != "A" else "B"),))
    assert key[4:] not in str(rejected.value)
    assert rejected.value.diag.message_primary == "API key rejected: malformed"
    conn.rollback()
    assert principal(conn) is None


def test_autocommit_statements_each_start_without_a_principal(sessions, key):
    conn = sessions(autocommit=True)
    assert conn.execute("SELECT authz_authenticate(%s), authz_current_user()", (key,)).fetchone() == (
        "ctx-user",
        "ctx-user",
    )
    assert principal(conn) is None


def test_an_ordinary_role_authenticates_but_cannot_set_a_user(ordinary_session, key):
    with ordinary_session.transaction():
        assert ordinary_session.execute("SELECT authz_authenticate(%s)", (key,)).fetchone()[0] == "ctx-user"
        assert ordinary_session.execute("SELECT authz_can('document:read', 1)").fetchone()[0] is True
        assert ordinary_session.execute("SELECT authz_can('document:update', 1)").fetchone()[0] is False
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        ordinary_session.execute("SELECT authz_set_user('admin')")
