"""Integration tests through a real driver (psycopg 3) against the cluster that
scripts/test.sh starts; it passes the socket directory and port in the environment."""
import os
import shutil
import socket
import subprocess
import time
import uuid

import psycopg
import pytest

HOST = os.environ["AUTHZ_TEST_HOST"]
PORT = os.environ["AUTHZ_TEST_PORT"]
DBNAME = "authz_integration"
PG_BIN = os.environ.get("AUTHZ_TEST_PG_BIN", "/usr/lib/postgresql/15/bin")
SCRATCH = os.environ.get("AUTHZ_TEST_SCRATCH", "/tmp")
CACHE_SETTINGS = ["on", "off"]


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


@pytest.fixture(params=CACHE_SETTINGS)
def cache(request):
    """A test that takes this runs twice: its sessions with authz.cache on, then off."""
    return request.param


@pytest.fixture
def sessions(database, request):
    """Opens sessions on demand and closes them all at the end of the test; with the test's
    authz.cache setting when it takes the `cache` fixture (or parameter)."""
    opened = []
    setting = request.getfixturevalue("cache") if "cache" in request.fixturenames else None

    def open_session(**kwargs):
        if setting is not None:
            kwargs = {**with_cache(setting), **kwargs}
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


def unique(prefix):
    """An id no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def stats(conn):
    """This backend's authz_stats() counters, by name."""
    return dict(conn.execute("SELECT counter, value FROM authz_stats()").fetchall())


def end_prepared(sessions, gid, how):
    """COMMIT or ROLLBACK PREPARED, from a new session, unless it already ended."""
    conn = sessions(autocommit=True)
    if conn.execute("SELECT count(*) FROM pg_prepared_xacts WHERE gid = %s", (gid,)).fetchone()[0]:
        conn.execute(f"{how} PREPARED '{gid}'")


def with_cache(setting):
    """Connection options that set authz.cache for the session, whatever PGOPTIONS says."""
    return {"options": f"-c authz.cache={setting}"}


def run_for(seconds, threads, stop, join_timeout):
    """Starts the threads, lets them run for `seconds`, sets `stop`, joins them; returns
    those still running after `join_timeout` (hung)."""
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=join_timeout)
    return [t for t in threads if t.is_alive()]


def as_postgres(*cmd, check=True):
    """Runs a PostgreSQL program as the postgres OS user (the tests run as root in CI)."""
    prefix = ["sudo", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *cmd], check=check, capture_output=True, text=True, cwd="/")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ScratchCluster:
    """A throwaway cluster of the test's own (to crash it, or to subscribe with it), set up
    as scripts/lib.sh sets up every cluster: authz_ext preloaded."""

    def __init__(self, name, port=None):
        self.dir = os.path.join(SCRATCH, name)
        self.data = os.path.join(self.dir, "data")
        self.port = port or free_port()
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        as_postgres(f"{PG_BIN}/initdb", "-D", self.data, "-U", "postgres", "--auth-local=trust",
                    "-E", "UTF8", "--locale=C.UTF-8")

    def start(self, preload=True):
        libraries = "authz_ext" if preload else ""
        as_postgres(f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "server.log"), "-w",
                    "-t", "120", "start", "-o",
                    f"-p {self.port} -k {self.dir} -c listen_addresses='' -c shared_preload_libraries='{libraries}'")

    def connect(self, dbname="postgres", **kwargs):
        return psycopg.connect(host=self.dir, port=self.port, user="postgres", dbname=dbname, **kwargs)

    def destroy(self):
        as_postgres(f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
