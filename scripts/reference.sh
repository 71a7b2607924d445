#!/usr/bin/env bash
# Writes docs/reference.md from the installed extension's catalog (scripts/reference.py);
# tests/integration/test_reference.py fails while the committed file is out of date.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
"$ROOT/scripts/setup.sh" >/dev/null
ensure_venv
install_extension debug >/dev/null
cluster_start dev 55600
cluster_psql -d postgres -c "DROP DATABASE IF EXISTS authz_reference" -c "CREATE DATABASE authz_reference"
cluster_psql -d authz_reference -c "CREATE EXTENSION authz_ext"
"$ROOT/.venv/bin/python" "$ROOT/scripts/reference.py" "$PGHOST_USED" "$PGPORT_USED" authz_reference \
  "$ROOT/docs/reference.md"
cluster_psql -d postgres -c "DROP DATABASE authz_reference"
echo "wrote docs/reference.md"
