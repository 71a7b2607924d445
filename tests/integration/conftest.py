"""Integration tests through a real driver (psycopg 3) against the cluster that
scripts/test.sh starts; it passes the socket directory and port in the environment."""
import os

import psycopg
import pytest

HOST = os.environ["AUTHZ_TEST_HOST"]
PORT = os.environ["AUTHZ_TEST_PORT"]
DBNAME = "authz_integration"


def connect(dbname=DBNAME, user="postgres", **kwargs):
    return psycopg.connect(host=HOST, port=PORT, user=user, dbname=dbname, **kwargs)


def create_database(name, extension=True):
    """A new database (dropped first if it exists), with authz_ext installed unless told."""
    with connect("postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    if extension:
        with connect(name, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION authz_ext")


def drop_database(name):
    with connect("postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def database():
    """A fresh database with authz_ext installed, shared by the whole run."""
    create_database(DBNAME)
    yield DBNAME


@pytest.fixture
def sessions(database):
    """Opens sessions on demand and closes them all at the end of the test."""
    opened = []

    def open_session(**kwargs):
        conn = connect(database, **kwargs)
        opened.append(conn)
        return conn

    yield open_session
    for conn in opened:
        conn.close()


@pytest.fixture
def ordinary_session(sessions):
    """A session as a freshly created login role with no privileges of its own."""
    admin = sessions(autocommit=True)
    admin.execute("DROP ROLE IF EXISTS authz_it_plain")
    admin.execute("CREATE ROLE authz_it_plain LOGIN")
    conn = sessions(user="authz_it_plain", autocommit=True)
    yield conn
    conn.close()
    admin.execute("DROP ROLE authz_it_plain")
