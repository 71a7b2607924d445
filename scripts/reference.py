"""Renders docs/reference.md from a database with authz_ext installed: every public
function (signature, result, markings, who may execute it, its COMMENT and an example from
EXAMPLES below), every table of schema authz with its COMMENT, and every authz.* setting
with its description. The comments are the source; this file adds only the examples.

Used by scripts/reference.sh (which writes docs/reference.md) and by
tests/integration/test_reference.py (which fails when the committed file is out of date, a
public function has no comment or no example, or a table or setting has no description).
"""

EXAMPLES = {
    "authz_check": "SELECT authz_check(42, 'document:read', 7);        -- resource level\n"
                   "SELECT authz_check(42, 'document:read');           -- every resource of the type",
    "authz_explain": "SELECT * FROM authz_explain(42, 'document:read', 7);",
    "authz_require": "SELECT authz_require(42, 'document:delete', 7);    -- 42501 unless allowed",
    "authz_resources": "SELECT * FROM authz_resources(42, 'document:read');",
    "authz_grant": "SELECT authz_grant(42, 'document:delete', 7);\n"
                   "SELECT authz_grant(42, 'project:read', NULL, now() + interval '1 day', 'deny', 'admin-7');",
    "authz_grant_bulk": "SELECT authz_grant_bulk('[{\"user_id\": 42, \"permission\": \"document:read\", \"resource_id\": 7},\n"
                        "                          {\"user_id\": \"u-9\", \"permission\": \"project:read\", \"effect\": \"deny\"}]');\n"
                        "SELECT authz_grant_bulk(jsonb_agg(jsonb_build_object('user_id', user_id, 'permission', perm,\n"
                        "                                                     'resource_id', resource_id)))\n"
                        "FROM legacy_acl;                                  -- importing from an old system",
    "authz_revoke": "SELECT authz_revoke(42, 'document:delete', 7);",
    "authz_set_role": "SELECT authz_set_role(42, 'manager');             -- NULL removes the role",
    "authz_user_role": "SELECT authz_user_role(42);",
    "authz_user_permissions": "SELECT * FROM authz_user_permissions(42);",
    "authz_role_permissions": "SELECT * FROM authz_role_permissions('viewer');",
    "authz_init_role_permissions": "SELECT authz_init_role_permissions();",
    "authz_role_permission_add": "SELECT authz_role_permission_add('viewer', 'report:export');",
    "authz_role_permission_remove": "SELECT authz_role_permission_remove('viewer', 'report:export');",
    "authz_define_permission": "SELECT authz_define_permission('invoice', 'approve');",
    "authz_cleanup_expired": "SELECT authz_cleanup_expired();",
    "api_key_create": "SELECT key_id, token FROM api_key_create(42, 'ci', ARRAY['documents:read']);",
    "api_key_validate": "SELECT * FROM api_key_validate('azk_…');",
    "api_key_revoke": "SELECT api_key_revoke('0b6c…', 7);",
    "api_key_list": "SELECT * FROM api_key_list(42);",
    "api_key_get": "SELECT * FROM api_key_get(42, '0b6c…');",
    "authz_authenticate": "BEGIN;\nSELECT authz_authenticate('azk_…');          -- 28000 for a bad key",
    "authz_set_user": "BEGIN;\nSELECT authz_set_user(42);                     -- for a trusted session",
    "authz_current_user": "SELECT authz_current_user();",
    "authz_can": "SELECT * FROM documents WHERE authz_can('document:read', id);",
    "authz_stats": "SELECT counter, value FROM authz_stats();",
    "authz_grant_execute": "SELECT authz_grant_execute('app_admin', 'authz_grant', 'authz_revoke');",
    "authz_model_write": "SELECT authz_model_write($$\nmodel\n  schema 1.1\ntype user\ntype team\n  relations\n"
                         "    define member: [user, team#member]\ntype document\n  relations\n"
                         "    define viewer: [user, team#member]\n$$);                                   -- '1'",
    "authz_tuple_write": "SELECT authz_tuple_write('team:eng', 'member', 'user:42');\n"
                         "SELECT authz_tuple_write('document:7', 'viewer', 'team:eng#member', expires_at => now() + interval '30 days');",
    "authz_tuple_delete": "SELECT authz_tuple_delete('team:eng', 'member', 'user:42');",
    "authz_tuple_write_bulk": "SELECT authz_tuple_write_bulk(\n"
                              "  '[{\"object\": \"team:eng\", \"relation\": \"member\", \"user\": \"user:43\"}]',\n"
                              "  '[{\"object\": \"team:eng\", \"relation\": \"member\", \"user\": \"user:42\"}]');",
    "authz_relation_check": "SELECT authz_relation_check('user:42', 'viewer', 'document:7');\n"
                            "SELECT authz_relation_check('user:44', 'viewer', 'document:7',\n"
                            "  '[{\"object\": \"team:eng\", \"relation\": \"member\", \"user\": \"user:44\"}]');  -- contextual tuple",
    "authz_list_objects": "SELECT * FROM authz_list_objects('user:42', 'document', 'viewer');",
    "authz_list_users": "SELECT * FROM authz_list_users('document:7', 'viewer', ARRAY['user', 'team#member']);",
}

# The declarations sql/api.sql adds for text ids (driver parameters) carry this comment;
# the reference lists the documented ("any") ones and says the others exist.
OVERLOAD = "Overload of "

FUNCTIONS = """
SELECT p.proname, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid),
       p.provolatile, p.proparallel, p.proisstrict, p.prosecdef,
       has_function_privilege('public', p.oid, 'EXECUTE'),
       coalesce(obj_description(p.oid, 'pg_proc'), '')
FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'authz_ext')
  AND p.pronamespace = (SELECT extnamespace FROM pg_extension WHERE extname = 'authz_ext')
ORDER BY p.proname, pg_get_function_arguments(p.oid)
"""

TABLES = """
SELECT c.relname, coalesce(obj_description(c.oid, 'pg_class'), '')
FROM pg_class c WHERE c.relnamespace = 'authz'::regnamespace AND c.relkind = 'r'
ORDER BY c.relname
"""

SETTINGS = """
SELECT name, coalesce(short_desc, '') || coalesce(' ' || extra_desc, ''), boot_val, unit, context
FROM pg_settings WHERE name LIKE 'authz.%' ORDER BY name
"""

VOLATILITY = {"i": "IMMUTABLE", "s": "STABLE", "v": "VOLATILE"}
PARALLEL = {"s": "PARALLEL SAFE", "r": "PARALLEL RESTRICTED", "u": "PARALLEL UNSAFE"}


def load_library(conn):
    """The authz.* settings exist in a session only once the library is loaded."""
    conn.execute("SELECT authz_current_user()")


def missing(conn):
    """What the reference cannot document: public functions without a comment or example,
    tables and settings without a description."""
    load_library(conn)
    problems = []
    for name, args, _, _, _, _, _, _, comment in conn.execute(FUNCTIONS):
        if not comment.strip():
            problems.append(f"function {name}({args}) has no COMMENT")
        if name not in EXAMPLES:
            problems.append(f"function {name} has no example in scripts/reference.py")
    problems += [f"table authz.{name} has no COMMENT" for name, comment in conn.execute(TABLES) if not comment]
    settings = conn.execute(SETTINGS).fetchall()
    problems += [f"setting {name} has no description" for name, desc, *_ in settings if not desc]
    if not settings:
        problems.append("no authz.* settings found")
    return problems


def render(conn):
    """docs/reference.md, as text."""
    load_library(conn)
    out = [
        "# authz_ext reference",
        "",
        "Generated by `scripts/reference.sh` from the installed extension's catalog: the",
        "comments come from `COMMENT ON` (also shown by `\\df+`, `\\dt+ authz.*` and",
        "`pg_settings`), the examples from `scripts/reference.py`. Do not edit by hand.",
        "",
        "## Functions",
        "",
        "Id parameters are shown as `\"any\"`: each takes bigint, integer, smallint, uuid, text,",
        "varchar, char, citext or a domain over one of them, independently. Every function with id",
        "parameters is also declared with `text` in their place (and their mixes), for driver",
        "parameters sent without a type; those declarations are not listed (`\\df` shows them).",
        "",
    ]
    for name, args, result, volatile, parallel, strict, secdef, public, comment in conn.execute(FUNCTIONS):
        if comment.startswith(OVERLOAD):
            continue
        markings = [VOLATILITY[volatile], PARALLEL[parallel]]
        if strict:
            markings.append("STRICT")
        if secdef:
            markings.append("SECURITY DEFINER")
        who = "PUBLIC" if public else "the extension owner and roles granted EXECUTE"
        out += [
            f"### `{name}({args})`",
            "",
            f"Returns `{result}`. {', '.join(markings)}. Executable by {who}.",
            "",
            comment,
            "",
            "```sql",
            EXAMPLES.get(name, "-- (no example)"),
            "```",
            "",
        ]
    out += ["## Tables (schema `authz`, readable by the owner only)", ""]
    out += [f"- `authz.{name}`: {comment}" for name, comment in conn.execute(TABLES)]
    out += ["", "## Settings", ""]
    for name, desc, boot, unit, context in conn.execute(SETTINGS):
        default = f"{boot}{unit or ''}" if boot else "empty"
        who = {"superuser": "superuser", "postmaster": "the server's configuration, at start"}.get(context, "any user")
        out.append(f"- `{name}` (default {default}; set by {who}): {desc}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    import sys

    import psycopg

    host, port, dbname, target = sys.argv[1:5]
    with psycopg.connect(host=host, port=port, user="postgres", dbname=dbname) as conn:
        problems = missing(conn)
        if problems:
            sys.exit("reference: " + "; ".join(problems))
        with open(target, "w") as f:
            f.write(render(conn))
