"""Hostile input: random calls of every public function with ids of every type, random and
near-miss permission strings, random and mutated tokens, huge strings, odd timestamps and
NULLs; and of the relationship functions with random and mutated models, object and subject
strings, jsonb of every shape and model ids. Only documented SQLSTATEs may come back; an
internal error (XX000) or a lost backend fails the run. A short run here; benches/fuzz.sh
runs a long one (AUTHZ_FUZZ_CALLS, AUTHZ_FUZZ_SEED)."""
import json
import os
import random
import string
import time
import uuid

import psycopg
import pytest
from psycopg.types.string import TextLoader

from conftest import ScratchCluster, connect, create_database, drop_database, with_cache

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

# The relationship functions document fewer (sql/api.sql): bad input is 22023, a NULL
# 22004, an unknown type 42704 or relation 42703, a resolution too deep 54001 (OpenFGA's
# code in the message); a bulk element's expires_at is parsed by PostgreSQL (22007, 22008).
RELATIONSHIP_DOCUMENTED = {"22023", "22004", "42704", "42703", "54001", "22007", "22008"}

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


# Relationships -------------------------------------------------------------------------

# Valid models sharing their type names, so that tuples of one often fit the next; the
# chain of groups resolves deeper than 25 (54001); a condition makes tuples that never hold.
FGA_MODELS = ["""
model
  schema 1.1
type user
type team
  relations
    define member: [user, team#member]
type document
  relations
    define owner: [user]
    define parent: [document]
    define blocked: [user]
    define viewer: ([user, user:*, team#member] or owner or viewer from parent) but not blocked
    define editor: [user with in_hours] and viewer
condition in_hours(hour: int) {
  hour >= 9 && hour < 17
}
""", """
model
  schema 1.1
type user
type group
  relations
    define member: [user, user:*, group#member]
type document
  relations
    define viewer: [user, group#member] or member from parent
    define parent: [group]
    define member: [user]
""", """
model
  schema 1.1
type user
type team
  relations
    define member: [user]
type document
  relations
    define viewer: [user, team#member]
"""]
FGA_TYPES = ["user", "team", "group", "document"]
FGA_RELATIONS = ["member", "owner", "parent", "blocked", "viewer", "editor"]
DSL_TOKENS = ["model", "schema", "1.1", "1.0", "type", "relations", "define", "condition", "or", "and", "but not",
              "from", "with", "[", "]", "(", ")", "#", ":", "*", ",", "{", "}", "\n", "\n  ", "\n    ", "user",
              "viewer", "x", "# comment", "\t", "é"]


def random_dsl(rng):
    """Model text: valid, a valid one mutated, a token soup, random or huge. Never deeply
    nested: that crashes the server (test_a_deeply_nested_model_does_not_crash_the_server)."""
    kind = rng.randrange(6)
    if kind == 0:
        return rng.choice(FGA_MODELS)
    if kind in (1, 2):
        text = rng.choice(FGA_MODELS)
        for _ in range(rng.randrange(1, 6)):
            i, j = sorted(rng.randrange(len(text) + 1) for _ in range(2))
            edit = rng.randrange(4)
            if edit == 0:
                text = text[:i] + text[j:]
            elif edit == 1:
                text = text[:i] + rng.choice(DSL_TOKENS + [random_text(rng)[:50]]) + text[i:]
            elif edit == 2:
                text = text[:i] + text[i:j] * rng.randrange(2, 4) + text[j:]
            else:
                lines = text.split("\n")
                rng.shuffle(lines)
                text = "\n".join(lines)
        # (Kept short: an unclosed definition over many lines parses slowly,
        # test_model_parsing_time_grows_linearly.)
        return text[:4000]
    if kind == 3:
        return " ".join(rng.choice(DSL_TOKENS) for _ in range(rng.randrange(1, 60)))
    if kind == 4:  # around the 256 kB limit: many more types, or a long line (the first model's types kept)
        return FGA_MODELS[0] + rng.choice(["".join(f"type t{i}\n" for i in range(rng.choice([1000, 30000]))),
                                           "type " + "u" * rng.choice([1000, 262144])])
    return random_text(rng)


# Tuples the models allow (each under one model or more), as {"object", "relation", "user"}.
GOOD_TUPLES = [("team:eng", "member", "user:anne"), ("team:eng", "member", "team:ops#member"),
               ("team:ops", "member", "user:bob"), ("document:1", "viewer", "team:eng#member"),
               ("document:1", "viewer", "user:*"), ("document:2", "parent", "document:1"),
               ("document:1", "blocked", "user:bob"), ("document:1", "owner", "user:carl"),
               ("document:3", "viewer", "group:eng#member"), ("group:eng", "member", "user:*"),
               ("group:eng", "member", "group:1#member"), ("document:3", "parent", "group:eng")]


def small_text(rng):
    """random_text, but at most a few kB: tuple arrays hold many of them."""
    return random_text(rng)[:rng.choice([10, 257, 5000])]


def random_ref(rng, userset=True):
    """An object or subject string: mostly well-formed for the models, or broken in every way
    one can break type:id and type:id#relation."""
    kind = rng.randrange(16)
    type_name = rng.choice(FGA_TYPES) if rng.random() < 0.9 else small_text(rng)
    if kind <= 7:
        return f"{type_name}:{rng.choice(['1', '2', '3', 'anne', 'bob', 'eng', 'ops', 'a/b.c|d', 'x-y_z'])}"
    if kind == 8:
        return f"{type_name}:*"
    if kind in (9, 10) and userset:
        return f"{type_name}:{rng.choice(['eng', 'ops', '1'])}#{rng.choice(FGA_RELATIONS + [small_text(rng)])}"
    if kind == 11:  # ids at and over 256 bytes, with unicode
        return f"{type_name}:" + rng.choice(["x" * 256, "x" * 257, "é" * 128, "é" * 129, "𝄞" * 70])
    if kind == 12:
        return rng.choice(["", ":", "#", "*", ":*", "user:", ":1", "user:1#", "user:*#member", "user:a#b#c",
                           "user:a b", "user:\t", "user:#", "user::", "user:1:2", "user:a#viewer:x", "user*",
                           "9user:1", "user:1 ", " user:1", "user:\u00a0", "user:\u200b", "USER:1"])
    if kind == 13:
        return random_text(rng)  # sometimes huge (1 MB)
    return f"{type_name}:{small_text(rng)}" + (f"#{small_text(rng)}" if rng.random() < 0.2 else "")


def random_relation(rng):
    return rng.choice(FGA_RELATIONS) if rng.random() < 0.85 else random_text(rng)


def random_expires(rng):
    """An expires_at as bulk elements carry it: a string PostgreSQL parses, or not."""
    return rng.choice(["2999-01-01", "2999-01-01T00:00:00Z", "infinity", "-infinity", "2000-01-01", "soon", "",
                       "294276-12-31", "294277-01-01", "4713-01-01 BC", "10000-99-99", "now", "epoch", 5, None,
                       small_text(rng)])


def random_tuple_json(rng):
    """One element of contextual_tuples, writes or deletes: mostly one the models allow,
    else with fields broken, missing, of the wrong type or unknown, conditions of every
    shape, expiries of every kind."""
    if rng.random() < 0.6:
        obj, relation, user = rng.choice(GOOD_TUPLES)
        e = {"object": obj, "relation": relation, "user": user}
        if rng.random() < 0.2:
            e["expires_at"] = random_expires(rng)
        return e
    if rng.random() < 0.05:
        return random_json_value(rng, 1)
    e = {"object": random_ref(rng, userset=False), "relation": random_relation(rng), "user": random_ref(rng)}
    for key in list(e):
        if rng.random() < 0.05:
            del e[key]
        elif rng.random() < 0.05:
            e[key] = random_json_value(rng, 2)
    if rng.random() < 0.2:
        e["condition"] = rng.choice(["in_hours", "nope", "", small_text(rng), {"name": "in_hours"},
                                     {"name": "in_hours", "context": {"hour": 10}}, {"name": 5}, {"context": 1},
                                     {"name": "in_hours", "context": [1]}, {"name": "x", "other": 1}, 7, None])
    if rng.random() < 0.2:
        e["expires_at"] = random_expires(rng)
    if rng.random() < 0.03:
        e[small_text(rng)] = random_json_value(rng, 2)
    return e


def random_tuples(rng):
    """A jsonb argument of tuples, as text: NULL, an array (sometimes past OpenFGA's 100
    contextual tuples), or any other JSON."""
    kind = rng.randrange(12)
    if kind <= 4:
        return None
    if kind == 5:
        return json.dumps(random_json_value(rng))
    if kind == 6:  # nested deep, but within what any JSON reader takes
        depth = rng.randrange(2, 60)
        return "[" * depth + json.dumps(random_tuple_json(rng)) + "]" * depth
    if kind == 7:  # many: the same few, so duplicates too
        return json.dumps([{"object": f"document:{i % 150}", "relation": "viewer", "user": "user:anne"}
                           for i in range(rng.choice([100, 101, 500]))])
    return json.dumps([random_tuple_json(rng) for _ in range(rng.randrange(0, 4))])


def random_context(rng):
    return rng.choice([None, None, None, json.dumps({"hour": rng.randrange(24)}), json.dumps(random_json_value(rng))])


def random_model_id(rng, models):
    if rng.random() < 0.7:
        return None
    return rng.choice([rng.choice(models) if models else "1", "1", "0", "-1", "x", "", "99999999999999999999",
                       "9223372036854775807", "1.5", " 1", "1e3", random_text(rng)])


def random_filters(rng):
    if rng.random() < 0.1:
        return rng.choice([None, [], [None]])
    return [rng.choice(["user", "user", "team#member", "group#member", "document", "user:*", "", "#", "user#",
                        "#member", "user#member#x", None, random_text(rng)]) for _ in range(rng.randrange(1, 4))]


def random_relationship_call(rng, models):
    """One random call of a relationship function: (sql, params). Half the calls are sane
    (objects, subjects and tuples the models know, no options), so that they get past the
    argument checks and into the evaluation; the others take any argument."""
    sane = rng.random() < 0.5
    good = rng.choice(GOOD_TUPLES)
    obj = good[0] if sane else random_ref(rng, userset=False)
    relation = rng.choice(FGA_RELATIONS) if sane else random_relation(rng)
    subject = rng.choice(GOOD_TUPLES)[2] if sane else random_ref(rng)
    options = [random_tuples(rng), random_context(rng), random_model_id(rng, models)]
    if sane:
        options = [rng.choice([None, json.dumps([dict(zip(("object", "relation", "user"), good))])]), None, None]
    choice = rng.randrange(12)
    if choice == 0:
        return "SELECT authz_model_write(%s)", [random_dsl(rng)]
    if choice in (1, 2):
        condition = None if sane else rng.choice([None, None, "in_hours", "nope", "", random_text(rng)])
        expires_at = rng.choice([None, None, random_timestamp(rng)])
        return ("SELECT authz_tuple_write(%s, %s, %s, %s, %s::jsonb, %s::timestamptz)",
                [*(good if sane else (obj, relation, subject)), condition, options[1], expires_at])
    if choice == 3:
        return ("SELECT authz_tuple_delete(%s, %s, %s)",
                list(good) if sane else [obj, relation, rng.choice([subject] * 5 + [None])])
    if choice == 4:
        return "SELECT authz_tuple_write_bulk(%s::jsonb, %s::jsonb)", [random_tuples(rng), random_tuples(rng)]
    if choice in (5, 6, 7):
        return "SELECT authz_relation_check(%s, %s, %s, %s::jsonb, %s::jsonb, %s)", [subject, relation, obj, *options]
    if choice in (8, 9):
        type_name = rng.choice(FGA_TYPES) if sane or rng.random() < 0.8 else random_text(rng)
        return ("SELECT count(*) FROM authz_list_objects(%s, %s, %s, %s::jsonb, %s::jsonb, %s)",
                [subject, type_name, relation, *options])
    filters = [rng.choice(["user", "team#member", "group#member"])] if sane else random_filters(rng)
    return ("SELECT count(*) FROM authz_list_users(%s, %s, %s::text[], %s::jsonb, %s::jsonb, %s)",
            [obj, relation, filters, *options])


@pytest.fixture(scope="module")
def fuzz_database():
    create_database(DBNAME)
    yield DBNAME
    drop_database(DBNAME)


def fuzz(conn, rng, make_call, documented, keep, secret):
    """Makes CALLS random calls in `conn` (some inside a transaction, some in a savepoint,
    committed now and then): each must succeed or fail with a documented SQLSTATE and
    leave the backend alive. `keep(sql, rows)` picks values of a successful call that
    later calls may reuse (make_call(rng, kept)); if `secret`, no message may show one.
    Returns the outcomes' counts."""
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    kept, seen = [], {}
    for i in range(CALLS):
        sql, params = make_call(rng, kept)
        # Some calls inside a transaction (principals live there), some with a savepoint.
        nested = rng.random() < 0.2
        try:
            if nested:
                conn.execute("SAVEPOINT f")
            kept.extend(keep(sql, conn.execute(sql, params).fetchall()))
            outcome = "ok"
        except psycopg.Error as e:
            if conn.broken or e.sqlstate is None:
                pytest.fail(f"call {i} lost the backend: {sql} {params!r:.200}: {e}")
            outcome = e.sqlstate
            assert outcome in documented, f"call {i}: {sql} {params!r:.200} gave {outcome}: {e}"
            text = " ".join(filter(None, [e.diag.message_primary, e.diag.message_detail, e.diag.message_hint]))
            assert not (secret and any(t in text for t in kept)), f"call {i}: a token in the message: {text:.200}"
            if nested:
                conn.execute("ROLLBACK TO SAVEPOINT f")
            else:
                conn.rollback()
        if rng.random() < 0.3:
            conn.commit()
        seen[outcome] = seen.get(outcome, 0) + 1
    conn.commit()
    assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] == pid, "the backend was replaced"
    return seen


def test_random_calls_give_only_documented_errors(fuzz_database, cache):
    rng = random.Random(SEED)
    conn = connect(fuzz_database, **with_cache(cache))
    # Results are read as text: Python's datetime cannot hold 'infinity', which is a valid
    # expiry (the fuzz creates such keys).
    for name in ("timestamptz", "timestamp", "date"):
        conn.adapters.register_loader(name, TextLoader)
    seen = fuzz(conn, rng, random_call, DOCUMENTED, secret=True,
                keep=lambda sql, rows: [row[1] for row in rows] if sql.startswith("SELECT key_id, token") else [])
    print(f"fuzz: {CALLS} calls, seed {SEED}, outcomes {dict(sorted(seen.items()))}")
    assert seen.get("ok", 0) > CALLS // 10 and len(seen) > 3, seen
    conn.close()


def test_random_relationship_calls_give_only_documented_errors(fuzz_database):
    rng = random.Random(SEED)
    conn = connect(fuzz_database)
    # A current model and a few tuples to start from, a chain of groups deeper than 25
    # among them; the random calls change both.
    conn.execute("SELECT authz_model_write(%s)", (FGA_MODELS[1],))
    conn.execute("""SELECT authz_tuple_write_bulk(jsonb_agg(jsonb_build_object(
                        'object', 'group:' || i, 'relation', 'member', 'user', 'group:' || (i + 1) || '#member')))
                    FROM generate_series(1, 30) i""")
    conn.execute("SELECT authz_tuple_write('group:31', 'member', 'user:anne')")
    conn.execute("SELECT authz_model_write(%s)", (FGA_MODELS[0],))
    conn.commit()
    seen = fuzz(conn, rng, random_relationship_call, RELATIONSHIP_DOCUMENTED, secret=False,
                keep=lambda sql, rows: [row[0] for row in rows] if sql.startswith("SELECT authz_model_write") else [])
    print(f"fuzz: {CALLS} relationship calls, seed {SEED}, outcomes {dict(sorted(seen.items()))}")
    assert seen.get("ok", 0) > CALLS // 10 and len(seen) > 4, seen
    conn.close()


# Valid jsonb that serde_json refuses — nested deeper than 128 levels, or holding a number
# beyond a double's range (1e400) — once failed with XX000 ("a text version of jsonb must be
# a valid json"): pgrx converted jsonb arguments before the functions' own checks ran. The
# relationship functions now read their jsonb themselves, and authz_grant_bulk hands its on
# to SQL untouched: 22023.
def test_any_valid_jsonb_gives_a_documented_error(fuzz_database):
    values = {"deep array": "[" * 200 + "]" * 200, "deep object": '{"a": ' * 200 + "1" + "}" * 200,
              "1e400 in an array": "[1e400]", "1e400 in an object": '{"hour": 1e400}'}
    calls = {"check's contextual_tuples": "SELECT authz_relation_check('user:anne', 'viewer', 'document:1', %s::jsonb)",
             "check's context": "SELECT authz_relation_check('user:anne', 'viewer', 'document:1', NULL, %s::jsonb)",
             "list_objects' contextual_tuples":
                 "SELECT count(*) FROM authz_list_objects('user:anne', 'document', 'viewer', %s::jsonb)",
             "bulk writes": "SELECT authz_tuple_write_bulk(%s::jsonb)",
             "bulk deletes": "SELECT authz_tuple_write_bulk('[]', %s::jsonb)",
             "tuple_write's context": "SELECT authz_tuple_write('document:1', 'viewer', 'user:anne', NULL, %s::jsonb)",
             "grant_bulk's grants": "SELECT authz_grant_bulk(%s::jsonb)"}
    bad = []
    with connect(fuzz_database, autocommit=True) as conn:
        conn.execute("SELECT authz_model_write(%s)", (FGA_MODELS[0],))
        for value_name, value in values.items():
            for call_name, sql in calls.items():
                try:
                    conn.execute(sql, (value,))
                except psycopg.Error as e:
                    assert not conn.broken
                    if e.sqlstate not in RELATIONSHIP_DOCUMENTED:
                        bad.append(f"{call_name}, {value_name}: {e.sqlstate} {e.diag.message_primary:.90}")
    assert not bad, "\n".join(bad)


# A model nested deeply — 100,000 parentheses, or 20,000 nested "or"s, both under the
# 256 kB limit — once overflowed the stack of the recursive-descent DSL parser: the backend
# died with SIGSEGV and the postmaster restarted every backend of the
# cluster. Run in a cluster of the test's own.
def test_a_deeply_nested_model_does_not_crash_the_server():
    head = "model\n  schema 1.1\ntype user\ntype document\n  relations\n    define owner: [user]\n    define viewer: "
    models = {"parentheses": head + "(" * 100_000 + "[user]" + ")" * 100_000 + "\n",
              "nested unions": head + "[user] or " + "(owner or " * 20_000 + "owner" + ")" * 20_000 + "\n"}
    cluster = ScratchCluster("authz_fuzz_nested")
    cluster.start()
    try:
        with cluster.connect(autocommit=True) as conn:
            conn.execute("CREATE EXTENSION authz_ext")
        outcomes = {}
        for name, dsl in models.items():
            deadline = time.monotonic() + 60
            while True:  # (after a crash, the server takes a moment to be back)
                try:
                    conn = cluster.connect(autocommit=True)
                    break
                except psycopg.OperationalError:
                    assert time.monotonic() < deadline, "the scratch cluster did not come back"
                    time.sleep(0.1)
            with conn:
                try:
                    conn.execute("SELECT authz_model_write(%s)", (dsl,))
                    outcomes[name] = "ok"
                except psycopg.Error as e:
                    outcomes[name] = "lost the backend" if conn.broken else e.sqlstate
        assert all(o in ("ok", "22023", "54001") for o in outcomes.values()), outcomes
    finally:
        cluster.destroy()


# An unclosed "define" (or condition block) followed by many lines once made the DSL
# parser quadratic — it recounts the open brackets of the whole
# definition gathered so far at each line — in code that never checks for interrupts:
# 256 kB of "x\n" after "define viewer: [user" takes over 20 s and ignores
# statement_timeout and pg_cancel_backend. Measured on a smaller input: doubling it must
# not quadruple the time.
def test_model_parsing_time_grows_linearly(fuzz_database):
    head = "model\n  schema 1.1\ntype user\ntype document\n  relations\n    define viewer: [user\n"
    with connect(fuzz_database, autocommit=True) as conn:
        took = []
        for lines in (5_000, 10_000):
            start = time.monotonic()
            with pytest.raises(psycopg.errors.InvalidParameterValue, match="unclosed"):
                conn.execute("SELECT authz_model_write(%s)", (head + "x\n" * lines,))
            took.append(time.monotonic() - start)
    # (Below 0.2 s, both are fast enough and the ratio is noise.)
    assert took[1] < 0.2 or took[1] / took[0] < 3, f"{took[0]:.2f} s, then {took[1]:.2f} s for twice the lines"
