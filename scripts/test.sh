#!/usr/bin/env bash
# Runs every test tier, printing each runner's summary; exits non-zero if any tier fails.
#   (a) pure-Rust unit tests of src/core      cargo test
#   (b) in-backend tests (#[pg_test])         cargo pgrx test, its own cluster
#   (c) SQL regression files, tests/regress   pg_regress against a cluster started here
#   (d) driver integration, tests/integration pytest + psycopg against the same cluster and
#                                             a hot standby of it (pg_basebackup -R)
#   (e) the package                           scripts/package.sh's tarball, installed by its
#                                             install.sh into a fresh cluster, smoke-checked
# Tiers (c) and (d) run twice: with the decision cache on and with it off (authz.cache).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

"$ROOT/scripts/setup.sh" || exit 1
RUN=$(run_dir)
passed=0
failed=()

tier() {
  local name=$1; shift
  echo
  echo "=== tier $name"
  if "$@"; then passed=$((passed + 1)); else failed+=("$name"); fi
}

unit_tests() { cargo test --lib --quiet -- core::; }

pg_tests() {
  mkdir -p "$RUN/pgrx-test" && chown postgres:postgres "$RUN/pgrx-test"
  set_installed_library_aside
  cargo pgrx test pg$PG_MAJOR --runas postgres --pgdata "$RUN/pgrx-test/data"
}

regression_tests() {
  local tests
  tests=$(cd tests/regress/sql && ls ./*.sql | sed 's|^\./||; s|\.sql$||' | sort)
  rm -rf "$RUN/regress" && mkdir -p "$RUN/regress"
  "$($PG_CONFIG --pkglibdir)/pgxs/src/test/regress/pg_regress" \
    --bindir="$PG_BIN" --host="$PGHOST_USED" --port="$PGPORT_USED" --user=postgres \
    --inputdir=tests/regress --outputdir="$RUN/regress" --dbname=authz_regress $tests
  local rc=$?
  [ $rc -ne 0 ] && [ -f "$RUN/regress/regression.diffs" ] && head -n 200 "$RUN/regress/regression.diffs"
  return $rc
}

integration_tests() {
  ensure_venv || return 1
  AUTHZ_TEST_HOST="$PGHOST_USED" AUTHZ_TEST_PORT="$PGPORT_USED" \
    "$ROOT/.venv/bin/pytest" -q -p no:cacheprovider tests/integration
}

# The artefact of scripts/package.sh, installed by its own install.sh (over the build the
# other tiers used) into a fresh cluster, then INSTALL.md's smoke check.
package_test() {
  local tarball dir
  tarball=$("$ROOT/scripts/package.sh" 2>/dev/null | tail -n 1) && [ -f "$tarball" ] || return 1
  dir="$RUN/package" && rm -rf "$dir" && mkdir -p "$dir" && tar -C "$dir" -xzf "$tarball" || return 1
  # Only the package's files: remove what `cargo pgrx install` put there first.
  rm -f "$($PG_CONFIG --pkglibdir)/authz_ext.so" "$($PG_CONFIG --sharedir)"/extension/authz_ext*
  "$dir"/authz_ext-*/install.sh "$PG_CONFIG" || return 1
  cluster_stop package-check; rm -rf "$RUN/package-check"
  cluster_start package-check 55530 || return 1
  local result
  result=$(cluster_psql -d postgres -At <<'SQL'
CREATE EXTENSION authz_ext;
SELECT authz_set_role(42, 'viewer') IS NULL;
SELECT token FROM api_key_create(42, 'first key', ARRAY['documents:read']) \gset
SELECT authz_check(42, 'document:read', 7) AND NOT authz_check(42, 'document:delete', 7)
       AND (SELECT status = 'valid' AND user_id = '42' FROM api_key_validate(:'token'))
       AND (SELECT extversion FROM pg_extension WHERE extname = 'authz_ext') = '0.1.0';
SQL
  )
  cluster_stop package-check; rm -rf "$RUN/package-check"
  echo "package smoke check: $(basename "$tarball"): $(echo "$result" | tail -n 1)"
  [ "$(echo "$result" | tail -n 1)" = t ]
}

tier "a: unit" unit_tests
tier "b: pg_test" pg_tests

echo
echo "=== installing authz_ext (debug build) and starting the test cluster"
if install_extension debug >/dev/null && cluster_start test 55500 && standby_start test-standby 55510; then
  export AUTHZ_TEST_STANDBY_HOST="$STANDBY_HOST" AUTHZ_TEST_STANDBY_PORT="$STANDBY_PORT" AUTHZ_TEST_PG_BIN="$PG_BIN"
  # Where tests make clusters of their own (to crash them, say): writable by postgres.
  export AUTHZ_TEST_SCRATCH="$RUN/scratch"
  mkdir -p "$AUTHZ_TEST_SCRATCH" && chown postgres:postgres "$AUTHZ_TEST_SCRATCH"
  for cache in on off; do
    # libpq passes PGOPTIONS to every connection that psql and psycopg open.
    export PGOPTIONS="-c authz.cache=$cache" AUTHZ_TEST_CACHE=$cache
    tier "c: regression, cache $cache" regression_tests
    tier "d: integration, cache $cache" integration_tests
  done
  unset PGOPTIONS AUTHZ_TEST_CACHE
  cluster_stop test-standby
  cluster_stop test
else
  failed+=("install")
fi
tier "e: package" package_test

echo
[ ${#failed[@]} -gt 0 ] && echo "failed tiers: ${failed[*]}"
echo "tiers: $passed passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
