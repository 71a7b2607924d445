"""The example application (examples/app): started against the test cluster with uvicorn
and driven over HTTP — create a key, use it, a scope denial, a missing permission, revoke,
401 after revoke — with documents protected by RLS through authz_can."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import HOST, PORT, connect, create_database, drop_database

ROOT = Path(__file__).resolve().parents[2]
DBNAME = "authz_app_example"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url():
    create_database(DBNAME)
    with connect(DBNAME, autocommit=True) as conn:
        conn.execute((ROOT / "examples" / "app" / "schema.sql").read_text())
        conn.execute("INSERT INTO documents VALUES (1, 'Roadmap'), (2, 'Salaries'), (3, 'Budget')")
    port = free_port()
    env = dict(os.environ, AUTHZ_APP_DSN=f"host={HOST} port={PORT} dbname={DBNAME} user=authz_app")
    # (PGOPTIONS, with the test command's authz.cache setting, passes on to the app's connections.)
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app:app", "--app-dir", str(ROOT / "examples" / "app"),
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"], env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1)
            break
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, "the app did not start"
            time.sleep(0.1)
    yield url
    server.terminate()
    server.wait(timeout=10)
    drop_database(DBNAME)


def call(url, method, path, token=None, body=None):
    request = urllib.request.Request(f"{url}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or "null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or "null")


def bootstrap_key(user, role, scopes):
    """What an operator does once, in SQL: a user, a role, a first key."""
    with connect(DBNAME, autocommit=True) as conn:
        conn.execute("SELECT authz_set_role(%s::text, %s)", (user, role))
        return conn.execute("SELECT token FROM api_key_create(%s::text, 'bootstrap', %s)", (user, scopes)).fetchone()[0]


def test_the_api_over_http(app_url):
    url = app_url
    admin = bootstrap_key("alice", "admin", ["admin"])
    viewer = bootstrap_key("bob", "viewer", ["admin"])     # every scope, but only a viewer's permissions

    # No key, a bad key: 401.
    assert call(url, "GET", "/documents")[0] == 401
    assert call(url, "GET", "/documents", "azk_nonsense")[0] == 401

    # Create a key (for oneself), scoped to reading documents, and use it.
    status, created = call(url, "POST", "/api-keys", admin, {"name": "reader", "scopes": ["documents:read"]})
    assert status == 201 and created["token"].startswith("azk_")
    reader, reader_id = created["token"], created["key_id"]
    status, docs = call(url, "GET", "/documents", reader)
    assert status == 200 and [d["id"] for d in docs] == [1, 2, 3]
    assert call(url, "POST", "/permissions/check", reader, {"permission": "document:read", "resource_id": "2"}) == (
        200, {"allowed": True})
    assert call(url, "GET", "/api-keys", admin)[1][-1]["key_id"] == reader_id
    assert call(url, "GET", f"/api-keys/{reader_id}", admin)[1]["name"] == "reader"

    # Scope denial: the reader key may not grant, although its user (an admin) may.
    grant = {"user_id": "bob", "permission": "document:read", "resource_id": "2", "effect": "deny"}
    assert call(url, "POST", "/permissions/grant", reader, grant)[0] == 403
    assert call(url, "POST", "/permissions/check", reader, {"permission": "document:delete", "resource_id": "1"}) == (
        200, {"allowed": False})

    # Missing permission: bob's key has every scope, but a viewer may not grant.
    assert call(url, "POST", "/permissions/grant", viewer, grant)[0] == 403
    assert call(url, "GET", "/permissions/alice", viewer)[0] == 403

    # The admin's key may: a deny for bob on document 2, which RLS then hides from him.
    assert call(url, "GET", "/documents/2", viewer)[0] == 200
    status, granted = call(url, "POST", "/permissions/grant", admin, grant)
    assert status == 201 and granted["grant_id"] > 0
    assert call(url, "GET", "/documents/2", viewer)[0] == 404
    assert [d["id"] for d in call(url, "GET", "/documents", viewer)[1]] == [1, 3]
    perms = call(url, "GET", "/permissions/bob", admin)[1]
    assert {"permission": "document:read", "resource_id": "2"}.items() <= next(
        p for p in perms if p.get("resource_id") == "2").items()
    assert call(url, "GET", "/permissions/me", viewer)[0] == 200
    assert call(url, "DELETE", "/permissions/revoke", admin,
                {"user_id": "bob", "permission": "document:read", "resource_id": "2"}) == (200, {"revoked": True})
    assert call(url, "GET", "/documents/2", viewer)[0] == 200

    # Bad input: 400 with the database's message.
    status, error = call(url, "POST", "/permissions/grant", admin, {**grant, "permission": "document:fly"})
    assert status == 400 and "unknown permission" in error["detail"]

    # Revoke the reader key: 401 from then on.
    assert call(url, "DELETE", f"/api-keys/{reader_id}", admin) == (200, {"revoked": True})
    assert call(url, "GET", "/documents", reader)[0] == 401
    # Someone else's key: a viewer may not read keys at all; allowed to, bob still cannot
    # see alice's key.
    assert call(url, "GET", f"/api-keys/{reader_id}", viewer)[0] == 403
    assert call(url, "POST", "/permissions/grant", admin, {"user_id": "bob", "permission": "api_key:read"})[0] == 201
    assert call(url, "GET", f"/api-keys/{reader_id}", viewer)[0] == 404
    assert call(url, "DELETE", f"/api-keys/{reader_id}", viewer)[0] == 403     # api_key:delete
