#!/bin/sh
# Installs authz_ext from this unpacked package into a PostgreSQL installation.
# Usage: ./install.sh [PATH_TO_PG_CONFIG]   (default: pg_config on PATH)
# Needs write access to PostgreSQL's library and extension directories (usually root).
set -eu
PG_CONFIG=${1:-pg_config}
HERE=$(cd "$(dirname "$0")" && pwd)
MAJOR=$("$PG_CONFIG" --version | sed 's/^PostgreSQL \([0-9]*\).*/\1/')
BUILT_FOR=$(cat "$HERE/PG_MAJOR")
if [ "$MAJOR" != "$BUILT_FOR" ]; then
  echo "install.sh: this package is built for PostgreSQL $BUILT_FOR, $PG_CONFIG is $MAJOR" >&2
  exit 1
fi
LIBDIR=$("$PG_CONFIG" --pkglibdir)
EXTDIR=$("$PG_CONFIG" --sharedir)/extension
install -m 755 "$HERE/lib/authz_ext.so" "$LIBDIR/"
install -m 644 "$HERE"/extension/* "$EXTDIR/"
echo "installed authz_ext into $LIBDIR and $EXTDIR; next: CREATE EXTENSION authz_ext;"
