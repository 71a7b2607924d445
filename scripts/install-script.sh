#!/usr/bin/env bash
# Writes sql/authz_ext--<version>.sql: the install script the build generates (pgrx joins
# the files of sql/ and the function definitions). Commit it with every change to them;
# tests/integration/test_versioning.py fails while the committed copy differs from the
# build's. Upgrades between released versions go in sql/authz_ext--<from>--<to>.sql.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
"$ROOT/scripts/setup.sh" >/dev/null
install_extension debug >/dev/null
version=$(extension_version)
cp "$($PG_CONFIG --sharedir)/extension/authz_ext--$version.sql" "$ROOT/sql/authz_ext--$version.sql"
echo "wrote sql/authz_ext--$version.sql"
