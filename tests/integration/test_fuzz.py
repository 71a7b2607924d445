"""Hostile input: random calls of every public function with ids of every type, random and
near-miss permission strings, random and mutated tokens, huge strings, odd timestamps and
NULLs. Only documented SQLSTATEs may come back; an internal error (XX000) or a lost
backend fails the run. A short run here; benches/fuzz.sh runs a long one
(AUTHZ_FUZZ_CALLS, AUTHZ_FUZZ_SEED)."""
import json
import os
import random
import string
import uuid

import psycopg
import pytest
from psycopg.types.string import TextLoader

from conftest import connect, create_database, drop_database, with_cache

CALLS = int(os.environ.get("AUTHZ_FUZZ_CALLS", "1500"))
SEED = int(os.environ.get("AUTHZ_FUZZ_SEED", "20261126"))
DBNAME = "authz_fuzz"

# The SQLSTATEs the interface documents for bad input (docs/guide.md, "Errors").
DOCUMENTED = {
    "22023",  # invalid_parameter_value: unknown permission, role, scope; bad id; past expiry
    "22004",  # null_value_not_allowed
    "22P02",  # invalid_text_representation (a malformed uuid, before our code runs)
    "22001",  # string_data_right_truncation (an over-long name)
    "42501",  # insufficient_privilege: authz_require's denial
    "28000",  # invalid_authorization_specification: authz_authenticate's rejection
    "22008",  # datetime_field_overflow (a timestamp PostgreSQL itself cannot compute)
    "22007",  # invalid_datetime_format (a bulk element's expires_at, parsed by PostgreSQL)
}

PERMISSIONS = ["document:read", "document:update", "project:delete", "api_key:create", "report:export"]
ROLES = ["viewer", "developer", "manager", "admin"]
SCOPES = ["documents:read", "documents:write", "projects:admin"]


def random_text(rng):
    kind = rng.randrange(8)
    if kind == 0:
        return ""
    if kind == 1:
        return "".join(rng.choice(string.printable) for _ in range(rng.randrange(1, 40)))
    if kind == 2:  # non-ASCII, combining marks, right-to-left, emoji, surrogate-free
        return "".join(chr(rng.choice([rng.randrange(0x80, 0x800), rng.randrange(0x800, 0xD800),
                                       rng.randrange(0x10000, 0x10FFFF)])) for _ in range(rng.randrange(1, 20)))
    if kind == 3:  # huge
        return rng.choice("ax:é") * rng.choice([1025, 70_000, 1_000_000])
    if kind == 4:
        return rng.choice(["'; DROP TABLE authz.grants; --", "%s%n%x", "\\x00", "$1", "::", ":", "a:b:c",
                           "document:", ":read", " document:read", "DOCUMENT:READ", "document:read\n"])
    return "".join(rng.choice(string.ascii_lowercase + ":_0123456789") for _ in range(rng.randrange(1, 30)))


def random_permission(rng):
    return rng.choice(PERMISSIONS) if rng.random() < 0.5 else random_text(rng)


def random_id(rng):
    """A value and the SQL type to send it as, for an "any" id parameter."""
    kind = rng.randrange(12)
    if kind == 0:
        return None, "text"
    if kind == 1:
        return rng.choice([0, 1, -1, 2**31 - 1, -(2**31)]), "int4"
    if kind == 2:
        return rng.choice([2**63 - 1, -(2**63), 42, rng.randrange(-10**6, 10**6)]), "int8"
    if kind == 3:
        return rng.randrange(-32768, 32767), "int2"
    if kind == 4:
        return str(uuid.UUID(int=rng.getrandbits(128))), "uuid"
    if kind == 5:
        return rng.choice(["1.5", "NaN", "1e100", "-0"]), "numeric"
    if kind == 6:
        return rng.choice(["1.5", "NaN", "Infinity"]), "float8"
    if kind == 7:
        return rng.choice([True, False]), "bool"
    if kind == 8:
        return b"\x00\xff" * rng.randrange(0, 10), "bytea"
    if kind == 9:
        return "2026-01-01", "date"
    return random_text(rng), "text"


def random_timestamp(rng):
    return rng.choice([None, "infinity", "-infinity", "now", "2000-01-01", "294276-12-31", "4713-01-01 BC",
                       "2999-01-01"])


def random_token(rng, tokens):
    kind = rng.randrange(5)
    if kind == 0 and tokens:
        token = rng.choice(tokens)
        i = rng.randrange(len(token))
        return token[:i] + rng.choice(string.ascii_letters + string.digits + "_") + token[i + 1:]
    if kind == 1 and tokens:
        return rng.choice(tokens)
    if kind == 2:
        return "azk_" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(rng.randrange(0, 80)))
    return random_text(rng) if rng.random() < 0.8 else None


def random_json_value(rng, depth=0):
    kind = rng.randrange(9 if depth < 2 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([0, -1, 2**63 - 1, 2**64, 1.5, 1e300])
    if kind == 2:
        return rng.choice([True, False])
    if kind == 3:
        return rng.choice(PERMISSIONS + ["allow", "deny", "2999-01-01", "soon", "294276-12-31"])
    if kind in (4, 5):
        return random_text(rng)
    if kind == 6:
        return [random_json_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    keys = ["user_id", "permission", "resource_id", "expires_at", "effect", random_text(rng)]
    return {rng.choice(keys): random_json_value(rng, depth + 1) for _ in range(rng.randrange(6))}


def random_grants(rng):
    """A bulk argument: mostly well-formed elements, some of them broken."""
    def element():
        if rng.random() < 0.2:
            return random_json_value(rng, 1)
        e = {"user_id": rng.choice([rng.randrange(-5, 5), random_text(rng)]), "permission": random_permission(rng)}
        for key, value in [("resource_id", rng.randrange(100)), ("expires_at", rng.choice(["2999-01-01", "soon"])),
                           ("effect", rng.choice(["allow", "deny", "maybe"]))]:
            if rng.random() < 0.3:
                e[key] = value
        return e
    if rng.random() < 0.1:
        return json.dumps(random_json_value(rng))
    return json.dumps([element() for _ in range(rng.randrange(0, 6))])


def random_call(rng, tokens):
    """One random call: (sql, params)."""
    def id_arg():
        value, sql_type = random_id(rng)
        return f"%s::{sql_type}", value

    choice = rng.randrange(19)
    u, uv = id_arg()
    r, rv = id_arg()
    p = random_permission(rng)
    if choice == 0:
        return f"SELECT authz_check({u}, %s, {r})", [uv, p, rv]
    if choice == 1:
        return f"SELECT authz_check({u}, %s)", [uv, p]
    if choice == 2:
        return f"SELECT * FROM authz_explain({u}, %s, {r})", [uv, p, rv]
    if choice == 3:
        return f"SELECT authz_require({u}, %s, {r})", [uv, p, rv]
    if choice == 4:
        return f"SELECT count(*) FROM authz_resources({u}, %s)", [uv, p]
    if choice == 5:
        effect = rng.choice(["allow", "deny", random_text(rng), None])
        return (f"SELECT authz_grant({u}, %s, {r}, %s::timestamptz, %s)",
                [uv, p, rv, random_timestamp(rng), effect])
    if choice == 6:
        return f"SELECT authz_revoke({u}, %s, {r})", [uv, p, rv]
    if choice == 7:
        role = rng.choice(ROLES + [None, random_text(rng)])
        return f"SELECT authz_set_role({u}, %s)", [uv, role]
    if choice == 8:
        return f"SELECT authz_user_role({u}), (SELECT count(*) FROM authz_user_permissions({u}))", [uv, uv]
    if choice == 9:
        role = rng.choice(ROLES + [random_text(rng)])
        fn = rng.choice(["authz_role_permission_add", "authz_role_permission_remove"])
        return f"SELECT {fn}(%s, %s)", [role, p]
    if choice == 10:
        return "SELECT authz_define_permission(%s, %s)", [random_text(rng), random_text(rng)]
    if choice == 11:
        scopes = rng.choice([None, [], [rng.choice(SCOPES)], [random_text(rng)], [None], SCOPES * 3])
        return (f"SELECT key_id, token FROM api_key_create({u}, %s, %s::text[], %s::timestamptz)",
                [uv, random_text(rng) if rng.random() < 0.3 else "k", scopes, random_timestamp(rng)])
    if choice == 12:
        return "SELECT * FROM api_key_validate(%s)", [random_token(rng, tokens)]
    if choice == 13:
        key = rng.choice([None, str(uuid.uuid4())])
        return f"SELECT api_key_revoke(%s::uuid, {u})", [key, uv]
    if choice == 14:
        return f"SELECT count(*) FROM api_key_list({u}), api_key_get({u}, %s::uuid)", [uv, uv, str(uuid.uuid4())]
    if choice == 15:
        return "SELECT authz_authenticate(%s), authz_current_user()", [random_token(rng, tokens)]
    if choice == 16:
        return f"SELECT authz_set_user({u}), authz_can(%s, {r})", [uv, p, rv]
    if choice == 17:
        return f"SELECT authz_grant_bulk(%s::jsonb, {u})", [random_grants(rng), uv]
    return rng.choice(["SELECT authz_init_role_permissions()", "SELECT authz_cleanup_expired()",
                       "SELECT authz_current_user()"]), []


@pytest.fixture(scope="module")
def fuzz_database():
    create_database(DBNAME)
    yield DBNAME
    drop_database(DBNAME)


def test_random_calls_give_only_documented_errors(fuzz_database, cache):
    rng = random.Random(SEED)
    conn = connect(fuzz_database, **with_cache(cache))
    # Results are read as text: Python's datetime cannot hold 'infinity', which is a valid
    # expiry (the fuzz creates such keys).
    for name in ("timestamptz", "timestamp", "date"):
        conn.adapters.register_loader(name, TextLoader)
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    tokens, seen = [], {}
    for i in range(CALLS):
        sql, params = random_call(rng, tokens)
        # Some calls inside a transaction (principals live there), some with a savepoint.
        nested = rng.random() < 0.2
        try:
            if nested:
                conn.execute("SAVEPOINT f")
            rows = conn.execute(sql, params).fetchall()
            outcome = "ok"
            if sql.startswith("SELECT key_id, token"):
                tokens.extend(row[1] for row in rows)
        except psycopg.Error as e:
            if conn.broken or e.sqlstate is None:
                pytest.fail(f"call {i} lost the backend: {sql} {params!r:.200}: {e}")
            outcome = e.sqlstate
            assert outcome in DOCUMENTED, f"call {i}: {sql} {params!r:.200} gave {outcome}: {e}"
            text = " ".join(filter(None, [e.diag.message_primary, e.diag.message_detail, e.diag.message_hint]))
            assert not any(t in text for t in tokens), f"call {i}: a token in the message: {text:.200}"
            if nested:
                conn.execute("ROLLBACK TO SAVEPOINT f")
            else:
                conn.rollback()
        if rng.random() < 0.3:
            conn.commit()
        seen[outcome] = seen.get(outcome, 0) + 1
    conn.commit()
    assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] == pid, "the backend was replaced"
    print(f"fuzz: {CALLS} calls, seed {SEED}, outcomes {dict(sorted(seen.items()))}")
    assert seen.get("ok", 0) > CALLS // 10 and len(seen) > 3, seen
    conn.close()
