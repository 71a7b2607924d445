"""Runs files of OpenFGA's conformance suites (its YAML test format) against authz_ext
through SQL, the way OpenFGA's own harness runs them: a fresh store per test (here: the
relationship tables emptied); each stage writes its model, then its tuples (which stay for
later stages); check, list-objects and list-users assertions, with their contextual tuples
and expected error codes; list results compared as sets. Each single-stage test with at
most 100 tuples runs a second time with its tuples sent as contextual tuples instead.

Usage: conformance.py [--known-gaps FILE] SUITE.yaml...   (connects with the libpq
environment: PGHOST, PGPORT, PGUSER, PGDATABASE; needs CREATE DATABASE there). Prints, per
file and assertion kind, "N passed, M failed" and the failing assertions; exits 1 when an
assertion fails that the known-gaps file does not list."""
import argparse
import json
import re
import sys

import psycopg
import yaml

DATABASE = "authz_openfga_conformance"
KINDS = ("check", "list-objects", "list-users")
MAX_CONTEXTUAL = 100


def error_code(e):
    """OpenFGA's code in our message, else the SQLSTATE and message (never equal to a code)."""
    found = re.search(r"\(OpenFGA error (\d+)\)", str(e))
    return ("error", int(found.group(1))) if found else ("error", f"{e.sqlstate}: {e}")


def as_json_tuples(tuples):
    """Tuples of the YAML as authz_ext's jsonb: {"object", "relation", "user"[, "condition"]}."""
    out = []
    for t in tuples or []:
        element = {"object": t["object"], "relation": t["relation"], "user": t["user"]}
        if t.get("condition"):
            element["condition"] = {k: v for k, v in t["condition"].items() if k in ("name", "context")}
        out.append(element)
    return out


class Runner:
    def __init__(self, conn):
        self.conn = conn

    def ask(self, sql, params):
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        except psycopg.Error as e:
            return e

    def reset(self):
        self.conn.execute("DELETE FROM authz.relation_tuples")
        self.conn.execute("DELETE FROM authz.relation_models")

    def run_test(self, test, contextual_run, tally):
        self.reset()
        for n, stage in enumerate(test["stages"], 1):
            name = f"{test['name']}/stage {n}" + (" (contextual)" if contextual_run else "")
            problem = None
            try:
                self.conn.execute("SELECT authz_model_write(%s)", (stage["model"],))
                if not contextual_run and stage.get("tuples"):
                    self.conn.execute("SELECT authz_tuple_write_bulk(%s::jsonb)",
                                      (json.dumps(as_json_tuples(stage["tuples"])),))
            except psycopg.Error as e:
                problem = f"writing the stage failed: {e.sqlstate}: {str(e).strip()}"
            extra = as_json_tuples(stage.get("tuples")) if contextual_run else []
            for kind, key in zip(KINDS, ("checkAssertions", "listObjectsAssertions", "listUsersAssertions")):
                for i, a in enumerate(stage.get(key) or [], 1):
                    want = ("error", a["errorCode"]) if a.get("errorCode") else self.expected(kind, a)
                    got = ("stage", problem) if problem else self.answer(kind, a, extra)
                    tally.record(kind, contextual_run, f"{name}/{i}", got, want)

    @staticmethod
    def expected(kind, a):
        if kind == "check":
            return ("bool", bool(a.get("expectation")))
        return ("set", sorted(set(a.get("expectation") or [])))

    def answer(self, kind, a, extra):
        contextual = as_json_tuples(a.get("contextualTuples")) + extra
        contextual = json.dumps(contextual) if contextual else None
        request = a.get("request") or a.get("tuple")
        context = a.get("context") or request.get("context")
        context = json.dumps(context) if context else None
        if kind == "check":
            t = a["tuple"]
            rows = self.ask("SELECT authz_relation_check(%s, %s, %s, %s::jsonb, %s::jsonb)",
                            (t["user"], t["relation"], t["object"], contextual, context))
        elif kind == "list-objects":
            rows = self.ask("SELECT * FROM authz_list_objects(%s, %s, %s, %s::jsonb, %s::jsonb)",
                            (request["user"], request["type"], request["relation"], contextual, context))
        else:
            rows = self.ask("SELECT * FROM authz_list_users(%s, %s, %s::text[], %s::jsonb, %s::jsonb)",
                            (request["object"], request["relation"], request["filters"], contextual, context))
        if isinstance(rows, psycopg.Error):
            return error_code(rows)
        if kind == "check":
            return ("bool", rows[0][0])
        return ("set", sorted({r[0] for r in rows}))


class Tally:
    def __init__(self):
        self.counts = {}
        self.failures = []

    def record(self, kind, contextual_run, name, got, want):
        key = (kind, contextual_run)
        passed, failed = self.counts.get(key, (0, 0))
        if got == want:
            self.counts[key] = (passed + 1, failed)
        else:
            self.counts[key] = (passed, failed + 1)
            self.failures.append(f"{kind} {name}: got {got[1]!r}, expected {want[1]!r}")


def known_gaps(path):
    """Lines "<kind> <test>/stage <n>/<i>[ (contextual)] -- reason"; # starts a comment."""
    gaps = {}
    if path:
        with open(path) as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if line:
                    assertion, _, reason = line.partition(" -- ")
                    gaps[assertion.strip()] = reason.strip()
    return gaps


def prepare_database():
    with psycopg.connect(autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        admin.execute(f"CREATE DATABASE {DATABASE}")
    conn = psycopg.connect(dbname=DATABASE, autocommit=True)
    conn.execute("SET client_min_messages = warning")
    conn.execute("CREATE EXTENSION authz_ext")
    return conn


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--known-gaps")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    gaps = known_gaps(args.known_gaps)
    conn = prepare_database()
    runner = Runner(conn)
    unexpected = 0
    for path in args.files:
        with open(path) as f:
            suite = yaml.safe_load(f)
        tally = Tally()
        for contextual_run in (False, True):
            for test in suite.get("tests") or []:
                tuples = sum(len(s.get("tuples") or []) for s in test["stages"])
                if contextual_run and (len(test["stages"]) != 1 or tuples > MAX_CONTEXTUAL):
                    continue
                runner.run_test(test, contextual_run, tally)
        print(path)
        for contextual_run in (False, True):
            for kind in KINDS:
                passed, failed = tally.counts.get((kind, contextual_run), (0, 0))
                run = "contextual tuples" if contextual_run else "stored tuples"
                print(f"  {kind:<13} ({run}): {passed} passed, {failed} failed")
        for failure in tally.failures:
            assertion = failure.split(": got ", 1)[0]
            if assertion in gaps:
                print(f"  known gap: {failure}  [{gaps[assertion]}]")
            else:
                unexpected += 1
                print(f"  FAILED: {failure}")
    conn.close()
    with psycopg.connect(autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
    print(f"{unexpected} failed assertion(s) not listed as known gaps")
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
