#!/usr/bin/env bash
# Runs every test tier on every supported PostgreSQL major (15 and 18), printing each
# runner's summary; exits non-zero if any tier fails.
#   (a) pure-Rust unit tests of src/core      cargo test                      (once)
#   (b) in-backend tests (#[pg_test])         cargo pgrx test, its own cluster
#   (c) SQL regression files, tests/regress   pg_regress against a cluster started here,
#                                             with the decision cache on, then off
#   (d) integration, tests/integration        pytest + psycopg against the same cluster and
#                                             a hot standby of it (pg_basebackup -R); with
#                                             it the driver scenario through node-postgres
#                                             and tokio-postgres (tests/drivers); tests
#                                             whose answer depends on the cache run twice
#   (e) OpenFGA's conformance suite           scripts/openfga-conformance.sh on
#                                             consolidated_1_1_tests.yaml (from
#                                             $AUTHZ_OPENFGA_SUITES, else ../shared/openfga),
#                                             against the same cluster
#   (f) the package                           scripts/package.sh's tarball, installed by its
#                                             install.sh into a fresh cluster, smoke-checked
# AUTHZ_TEST_MAJORS="15" (say) limits the run to some majors; CI runs them all.
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
  local data="$RUN/pgrx-test-pg$PG_MAJOR"
  mkdir -p "$data" && chown postgres:postgres "$data"
  set_installed_library_aside
  cargo pgrx test "pg$PG_MAJOR" --runas postgres --pgdata "$data/data" --no-default-features
}

regression_tests() {
  local tests cache rc=0
  tests=$(cd tests/regress/sql && ls ./*.sql | sed 's|^\./||; s|\.sql$||' | sort)
  for cache in on off; do
    echo "--- authz.cache = $cache"
    rm -rf "$RUN/regress" && mkdir -p "$RUN/regress"
    # libpq passes PGOPTIONS to every connection psql opens.
    PGOPTIONS="-c authz.cache=$cache" "$($PG_CONFIG --pkglibdir)/pgxs/src/test/regress/pg_regress" \
      --bindir="$PG_BIN" --host="$PGHOST_USED" --port="$PGPORT_USED" --user=postgres \
      --inputdir=tests/regress --outputdir="$RUN/regress" --dbname=authz_regress $tests || rc=1
    [ $rc -ne 0 ] && [ -f "$RUN/regress/regression.diffs" ] && head -n 200 "$RUN/regress/regression.diffs" && break
  done
  return $rc
}

# What the driver scenario runs on: node-postgres from npm, the tokio-postgres client built.
driver_clients() {
  (cd tests/drivers/node && { [ -d node_modules/pg ] || npm ci --silent --no-audit --no-fund; }) &&
    cargo build --quiet --manifest-path tests/drivers/rust/Cargo.toml
}

integration_tests() {
  ensure_venv && driver_clients || return 1
  AUTHZ_TEST_HOST="$PGHOST_USED" AUTHZ_TEST_PORT="$PGPORT_USED" \
    AUTHZ_TEST_STANDBY_HOST="$STANDBY_HOST" AUTHZ_TEST_STANDBY_PORT="$STANDBY_PORT" AUTHZ_TEST_PG_BIN="$PG_BIN" \
    AUTHZ_TEST_SCRATCH="$RUN/scratch-pg$PG_MAJOR" \
    "$ROOT/.venv/bin/pytest" -q -p no:cacheprovider tests/integration
}

conformance_tests() {
  local suites=${AUTHZ_OPENFGA_SUITES:-$ROOT/../shared/openfga}
  PGHOST="$PGHOST_USED" PGPORT="$PGPORT_USED" PGUSER=postgres PGDATABASE=postgres \
    "$ROOT/scripts/openfga-conformance.sh" "$suites/consolidated_1_1_tests.yaml"
}

# The artefact of scripts/package.sh, installed by its own install.sh (over the build the
# other tiers used) into a fresh cluster, then INSTALL.md's smoke check.
package_test() {
  local tarball dir
  tarball=$(AUTHZ_PG_MAJOR=$PG_MAJOR "$ROOT/scripts/package.sh" 2>/dev/null | tail -n 1) && [ -f "$tarball" ] || return 1
  dir="$RUN/package" && rm -rf "$dir" && mkdir -p "$dir" && tar -C "$dir" -xzf "$tarball" || return 1
  # Only the package's files: remove what `cargo pgrx install` put there first.
  rm -f "$($PG_CONFIG --pkglibdir)/authz_ext.so" "$($PG_CONFIG --sharedir)"/extension/authz_ext*
  "$dir"/authz_ext-*/install.sh "$PG_CONFIG" || return 1
  cluster_stop package-check; rm -rf "$RUN/$(cluster_dir_name package-check)"
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
  cluster_stop package-check; rm -rf "$RUN/$(cluster_dir_name package-check)"
  echo "package smoke check: $(basename "$tarball"): $(echo "$result" | tail -n 1)"
  [ "$(echo "$result" | tail -n 1)" = t ]
}

started=$SECONDS
tier "a: unit" unit_tests
for major in ${AUTHZ_TEST_MAJORS:-$SUPPORTED_MAJORS}; do
  use_major "$major" || { failed+=("PostgreSQL $major"); continue; }
  tier "b: pg_test, PostgreSQL $major" pg_tests
  echo
  echo "=== installing authz_ext (release) into PostgreSQL $major, starting the test cluster and a standby"
  if install_extension release >/dev/null && cluster_start test 55500 && standby_start test-standby 55510; then
    mkdir -p "$RUN/scratch-pg$major" && chown postgres:postgres "$RUN/scratch-pg$major"
    tier "c: regression, PostgreSQL $major" regression_tests
    tier "d: integration and drivers, PostgreSQL $major" integration_tests
    tier "e: OpenFGA conformance, PostgreSQL $major" conformance_tests
    cluster_stop test-standby
    cluster_stop test
  else
    failed+=("install, PostgreSQL $major")
  fi
  tier "f: package, PostgreSQL $major" package_test
done

echo
[ ${#failed[@]} -gt 0 ] && echo "failed tiers: ${failed[*]}"
echo "tiers: $passed passed, ${#failed[@]} failed ($(( (SECONDS - started) / 60 )) min $(( (SECONDS - started) % 60 )) s)"
[ ${#failed[@]} -eq 0 ]
