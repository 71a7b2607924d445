#!/usr/bin/env bash
# Runs files of OpenFGA's conformance suites (its YAML test format) through authz_ext's SQL
# functions, as OpenFGA's own harness runs them (tests/openfga/conformance.py says how).
#   scripts/openfga-conformance.sh FILE...
# Uses the cluster the libpq variables name (PGHOST, PGPORT, PGUSER, PGDATABASE), creating
# a database there; with none of them set, builds and installs authz_ext into PostgreSQL
# ${AUTHZ_PG_MAJOR:-15} and starts a cluster of its own. Prints, per file and assertion
# kind, "N passed, M failed" and the failing assertions; fails on any failure that
# tests/openfga/known-gaps.txt does not list.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

if [ $# -eq 0 ]; then
  echo "usage: $0 FILE..." >&2
  exit 2
fi
"$ROOT/scripts/setup.sh" >/dev/null
ensure_venv
if [ -z "${PGHOST:-}${PGPORT:-}${PGUSER:-}${PGDATABASE:-}" ]; then
  echo "openfga-conformance: building and installing authz_ext (release) into PostgreSQL $PG_MAJOR"
  install_extension release >/dev/null 2>&1
  cluster_start openfga 55520
  trap 'cluster_stop openfga' EXIT
  export PGHOST=$PGHOST_USED PGPORT=$PGPORT_USED PGUSER=postgres PGDATABASE=postgres
fi
"$ROOT/.venv/bin/python" "$ROOT/tests/openfga/conformance.py" --known-gaps "$ROOT/tests/openfga/known-gaps.txt" "$@"
