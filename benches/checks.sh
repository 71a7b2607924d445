#!/usr/bin/env bash
# Benchmark (not a test): the cost of a permission check against baselines measured in the
# same run, on one cluster. Builds and installs the release library, starts the cluster
# "bench", builds the data, and prints one table:
#   - ns per check over a 1,000,000-row scan (minus the scan alone): authz_check for a user
#     with a role default and for a grants-only user holding 10,000 grants; the same through
#     authz_can; the trivial pgrx function authz.noop_check with the same arguments (the
#     floor); the PL/pgSQL resolver of benches/plpgsql_baseline.sql and authz_check with the
#     cache off (both over 100,000 rows, they are slow);
#   - pgbench TPS (-M prepared, 2 and 32 clients) of one random check against SELECT 1;
#   - with no writes, the share of checks that bypass the cache at 2, 8, 32 and 64 clients
#     (benches/concurrency.py, one process per client);
#   - a cached 100,000-row scan, quiet and beside another session's open transaction that
#     changed grants: idle in transaction, and prepared and left;
#   - the selective-access policy (docs/guide.md) on a 1,000,000-row table for a user with 100
#     grants, against the same query written by hand with id = ANY(<the ids>);
#   - per-row and uncached check cost at 1k, 100k, 1M and 10M grants in total;
#   - the first check in a fresh backend for the user with 10,000 grants, and the memory
#     the backend grew by;
# and writes benches/results/checks.txt and the chart docs/bench.svg (benches/chart.py).
# Data: 10,000 users; 1,000,000 resource-level grants (50 users with 10,000 each, the rest
# spread); 1,000 type-level grants; 9,000,000 more grants for the last flatness point.
# Takes about 20 minutes here. Usage: benches/checks.sh [PGBENCH_SECONDS]
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
PGBENCH_SECONDS=${1:-10}
DB=authz_checks_bench

"$ROOT/scripts/setup.sh" >/dev/null
echo "building and installing authz_ext (release)"
install_extension release >/dev/null 2>&1
cluster_start bench 55700
cluster_psql -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
sql() { cluster_psql -d "$DB" -At "$@"; }

# Best of three runs of a statement, in ms, after optional setup statements in the same
# session (e.g. a principal): timed <setup-sql> <statement>
timed() {
  local setup=$1 statement=$2
  { echo "SET max_parallel_workers_per_gather = 0;"; echo "$setup"; echo '\timing on'
    for _ in 1 2 3; do echo "$statement"; done; } \
    | sql -f - | awk '/^Time: / { t = $2; if (best == "" || t < best) best = t } END { print best }'
}
# ns per row of an expression over the first N rows of bench_rows, the scan subtracted.
per_row() {
  local rows=$1 expr=$2 setup=${3:-}
  local scan with
  scan=$(timed "$setup" "SELECT count(*) FROM bench_rows WHERE id <= $rows AND true;")
  with=$(timed "$setup" "SELECT count(*) FROM bench_rows WHERE id <= $rows AND $expr;")
  awk -v a="$with" -v b="$scan" -v n="$rows" 'BEGIN { printf "%.0f", (a - b) * 1e6 / n }'
}

echo "building data"
sql -q <<'SQL'
CREATE EXTENSION authz_ext;
CREATE TABLE bench_rows (id bigint PRIMARY KEY);
INSERT INTO bench_rows SELECT generate_series(1, 1000000);
-- users 1..10000; user 1 a viewer with no grants; user 2 holds 10,000 grants and no role.
INSERT INTO authz.user_roles (user_id, role)
SELECT u::text, (ARRAY['viewer', 'developer', 'manager', 'admin'])[u % 4 + 1]
FROM generate_series(1, 10000) AS u WHERE u <> 2;
UPDATE authz.user_roles SET role = 'viewer' WHERE user_id = '1';
SQL
sql -f "$ROOT/benches/plpgsql_baseline.sql" >/dev/null

# Total resource-level grants, grown in stages: (users 2..51 x 10,000 for the 1M stage).
add_grants() {  # add_grants FIRST_USER LAST_USER PER_USER
  sql -q -c "INSERT INTO authz.grants (user_id, permission, resource_id, effect)
             SELECT u::text, 'document:read', ((u * 7919 + g * 104729) % 1000000 + 1)::text,
                    CASE WHEN g % 10 = 0 THEN 'deny' ELSE 'allow' END
             FROM generate_series($1, $2) AS u, generate_series(1, $3) AS g
             ON CONFLICT DO NOTHING" -c "VACUUM ANALYZE authz.grants"  # no autovacuum mid-measurement
}
grants_total() { sql -c "SELECT count(*) FROM authz.grants"; }
declare -A FLAT_CACHED FLAT_UNCACHED
flat_point() {
  local total; total=$(grants_total)
  FLAT_CACHED[$1]=$(per_row 100000 "authz_check(9, 'document:read', id)")
  FLAT_UNCACHED[$1]=$(per_row 10000 "authz_check(9, 'document:read', id)" "SET authz.cache = off;")
  echo "  $1: $total grants: cached ${FLAT_CACHED[$1]} ns, uncached ${FLAT_UNCACHED[$1]} ns per check"
}

echo "flatness: 1k grants"
add_grants 1000 1099 10 >/dev/null; flat_point 1k
echo "flatness: 100k grants"
add_grants 1100 9999 11 >/dev/null; flat_point 100k

echo "the 1M stage: 50 users with 10,000 grants each, the rest spread; 1,000 type-level grants"
add_grants 2 51 10000 >/dev/null
add_grants 1100 9999 57 >/dev/null
sql -q -c "INSERT INTO authz.grants (user_id, permission, resource_id, effect)
           SELECT u::text, p.name, NULL, CASE WHEN u % 2 = 0 THEN 'allow' ELSE 'deny' END
           FROM generate_series(9001, 10000) AS u,
                LATERAL (SELECT name FROM authz.permissions ORDER BY name OFFSET u % 40 LIMIT 1) AS p
           ON CONFLICT DO NOTHING" -c "ANALYZE authz.grants"
flat_point 1M
sql -q -c "VACUUM ANALYZE bench_rows"

echo "per-row costs over 1,000,000 rows"
FLOOR=$(per_row 1000000 "authz.noop_check(1, 'document:read', id)")
ROLE_USER=$(per_row 1000000 "authz_check(1, 'document:read', id)")
GRANTS_USER=$(per_row 1000000 "authz_check(2, 'document:read', id)")
CAN_ROLE=$(per_row 1000000 "authz_can('document:read', id)" "BEGIN; SELECT authz_set_user(1);")
CAN_GRANTS=$(per_row 1000000 "authz_can('document:read', id)" "BEGIN; SELECT authz_set_user(2);")
PLPGSQL=$(per_row 100000 "bench_plpgsql_check('2', 'document:read', id::text)")
UNCACHED=$(per_row 100000 "authz_check(2, 'document:read', id)" "SET authz.cache = off;")

echo "cold cache: first check for the user with 10,000 grants in a fresh backend"
COLD=$(sql <<'SQL' | awk -F'[:[:space:]]+' '/^Time: / { t = $2 } /^VmRSS/ { r[++n] = $2 } END { printf "%s %d", t, r[2] - r[1] }'
SELECT pg_backend_pid() AS pid \gset
\setenv BPID :pid
SELECT authz_check(1, 'document:read', 1);
\! grep VmRSS /proc/$BPID/status
\timing on
SELECT authz_check(2, 'document:read', 1);
\timing off
\! grep VmRSS /proc/$BPID/status
SQL
)
COLD_MS=${COLD% *}; COLD_KB=${COLD#* }

echo "selective access under RLS"
sql -q <<'SQL'
CREATE TABLE docs (id bigint PRIMARY KEY, title text);
INSERT INTO docs SELECT i, 'doc ' || i FROM generate_series(1, 1000000) i;
VACUUM ANALYZE docs;
INSERT INTO authz.grants (user_id, permission, resource_id, effect)
SELECT 'sel', 'document:read', (i * 9973 % 1000000 + 1)::text, 'allow' FROM generate_series(1, 100) i;
ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY docs_select ON docs FOR SELECT USING (
    (id = ANY (ARRAY(SELECT r::bigint FROM authz_resources((SELECT authz_current_user()), 'document:read') AS r))
     OR id >= (SELECT CASE WHEN authz_can('document:read') THEN -9223372036854775808 END))
    AND authz_can('document:read', id));
DO $$ BEGIN CREATE ROLE authz_bench_app; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
GRANT SELECT ON docs TO authz_bench_app;
SELECT authz_grant_execute('authz_bench_app', 'authz_resources', 'authz_set_user');
SQL
IDS=$(sql -c "SELECT array_agg(r::bigint) FROM authz_resources('sel', 'document:read') r")
SEL_RLS=$(timed "BEGIN; SET LOCAL ROLE authz_bench_app; SELECT authz_set_user('sel');" "SELECT count(*) FROM docs;")
SEL_HAND=$(timed "" "SELECT count(*) FROM docs WHERE id = ANY ('$IDS'::bigint[]);")

echo "pgbench"
DIR="$CLUSTER_DIR/pgbench"; mkdir -p "$DIR"
printf 'SELECT 1;\n' > "$DIR/select1.sql"
# The permission comes in as a variable (-D): pgbench would read ":read" in a literal as one.
printf '\\set u random(1, 10000)\n\\set r random(1, 1000000)\nSELECT authz_check(:u::bigint, :perm, :r::bigint);\n' > "$DIR/check.sql"
chown -R postgres:postgres "$DIR"
tps() {  # tps SCRIPT [CLIENTS]
  as_postgres "$PG_BIN/pgbench" -h "$PGHOST_USED" -p "$PGPORT_USED" -U postgres -n -M prepared -c "${2:-2}" -j 2 \
    -T "$PGBENCH_SECONDS" -D perm=document:read -f "$DIR/$1.sql" "$DB" 2>/dev/null | awk '/^tps = / { printf "%.0f", $3 }'
}
TPS_SELECT1=$(tps select1); TPS_CHECK=$(tps check)
TPS32_SELECT1=$(tps select1 32); TPS32_CHECK=$(tps check 32)

echo "concurrency: cache bypasses with no writes"
ensure_venv
declare -A BYPASS
for clients in 2 8 32 64; do
  read -r statements bypasses < <("$ROOT/.venv/bin/python" "$ROOT/benches/concurrency.py" \
    "$PGHOST_USED" "$PGPORT_USED" "$DB" "$clients" 1000)
  BYPASS[$clients]=$(awk -v b="$bypasses" -v n="$statements" 'BEGIN { printf "%.3f", 100 * b / n }')
  echo "  $clients clients: $bypasses of $statements checks bypassed the cache"
done

echo "a cached scan beside an open writer"
SCAN="SELECT count(*) FROM bench_rows WHERE id <= 100000 AND authz_check(2, 'document:read', id);"
SCAN_QUIET=$(timed "" "$SCAN")
# A session idle in a transaction that changed grants: psql waits for more input.
{ printf "BEGIN;\nSELECT authz_grant('bench-bystander', 'document:read', 1);\n"; sleep 600; } \
  | PGAPPNAME=bench_open_writer cluster_psql -d "$DB" >/dev/null 2>&1 &
WRITER=$!
until [ "$(sql -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'bench_open_writer'
                   AND state = 'idle in transaction'")" = 1 ]; do sleep 0.1; done
SCAN_IDLE_WRITER=$(timed "" "$SCAN")
kill "$WRITER" 2>/dev/null; wait "$WRITER" 2>/dev/null || true
sql -q -c "BEGIN" -c "SELECT authz_grant('bench-bystander', 'document:read', 1)" \
  -c "PREPARE TRANSACTION 'bench_open_writer'" >/dev/null
SCAN_PREPARED=$(timed "" "$SCAN")
sql -q -c "ROLLBACK PREPARED 'bench_open_writer'"
# Quiet again, and the better of the two as the baseline (the machine is noisy).
SCAN_QUIET=$(printf '%s\n%s\n' "$SCAN_QUIET" "$(timed "" "$SCAN")" | sort -g | head -n 1)

echo "flatness: 10M grants (adding 9,000,000)"
add_grants 10001 19000 1000 >/dev/null; flat_point 10M

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo
echo "benches/checks.sh, one run on $(nproc) cores, $(date -u +%Y-%m-%d)"
cat <<TABLE
| measure                                                         | value        | ratio                          |
|-----------------------------------------------------------------|--------------|--------------------------------|
| authz.noop_check, pgrx floor (ns/row)                           | $FLOOR | 1.00x floor |
| authz_check, role-default user (ns/row)                         | $ROLE_USER | $(ratio "$ROLE_USER" "$FLOOR")x floor |
| authz_check, grants-only user, 10,000 grants (ns/row)           | $GRANTS_USER | $(ratio "$GRANTS_USER" "$FLOOR")x floor |
| authz_can, role-default principal (ns/row)                      | $CAN_ROLE | $(ratio "$CAN_ROLE" "$FLOOR")x floor |
| authz_can, grants-only principal (ns/row)                       | $CAN_GRANTS | $(ratio "$CAN_GRANTS" "$FLOOR")x floor |
| PL/pgSQL resolver, grants-only user (ns/row)                    | $PLPGSQL | $(ratio "$PLPGSQL" "$GRANTS_USER")x authz_check |
| authz_check with authz.cache = off, grants-only user (ns/row)   | $UNCACHED | $(ratio "$UNCACHED" "$GRANTS_USER")x cached |
| pgbench TPS, SELECT 1                                           | $TPS_SELECT1 | 1.00 |
| pgbench TPS, one random authz_check                             | $TPS_CHECK | $(ratio "$TPS_CHECK" "$TPS_SELECT1") of SELECT 1 |
| pgbench TPS at 32 clients, SELECT 1                             | $TPS32_SELECT1 | 1.00 |
| pgbench TPS at 32 clients, one random authz_check               | $TPS32_CHECK | $(ratio "$TPS32_CHECK" "$TPS32_SELECT1") of SELECT 1 |
| checks bypassing the cache, no writes, 2 / 8 / 32 / 64 clients (%) | ${BYPASS[2]} / ${BYPASS[8]} / ${BYPASS[32]} / ${BYPASS[64]} | |
| cached scan, 100,000 rows, quiet (ms)                           | $SCAN_QUIET | 1.00 |
| the same, beside a session idle in a transaction that granted (ms) | $SCAN_IDLE_WRITER | $(ratio "$SCAN_IDLE_WRITER" "$SCAN_QUIET")x quiet |
| the same, beside a prepared transaction that granted (ms)       | $SCAN_PREPARED | $(ratio "$SCAN_PREPARED" "$SCAN_QUIET")x quiet |
| selective policy, 100 grants, 1M rows, under RLS (ms)           | $SEL_RLS | $(ratio "$SEL_RLS" "$SEL_HAND")x by hand |
| the same by hand, id = ANY(ids), no RLS (ms)                    | $SEL_HAND | 1.00 |
| cached check at 1k / 100k / 1M / 10M grants (ns/row)            | ${FLAT_CACHED[1k]} / ${FLAT_CACHED[100k]} / ${FLAT_CACHED[1M]} / ${FLAT_CACHED[10M]} | $(ratio "${FLAT_CACHED[10M]}" "${FLAT_CACHED[1k]}")x 10M vs 1k |
| uncached check at 1k / 100k / 1M / 10M grants (ns/row)          | ${FLAT_UNCACHED[1k]} / ${FLAT_UNCACHED[100k]} / ${FLAT_UNCACHED[1M]} / ${FLAT_UNCACHED[10M]} | $(ratio "${FLAT_UNCACHED[10M]}" "${FLAT_UNCACHED[1k]}")x 10M vs 1k |
| first check, fresh backend, 10,000 grants (ms)                  | $COLD_MS | |
| backend memory grown by that first check (kB RSS)               | $COLD_KB | |
TABLE
# The figures behind the chart (benches/chart.py draws docs/bench.svg from every results file).
mkdir -p "$ROOT/benches/results"
cat > "$ROOT/benches/results/checks.txt" <<FIGURES
floor_ns $FLOOR
role_user_ns $ROLE_USER
grants_user_ns $GRANTS_USER
can_role_ns $CAN_ROLE
cache_off_ns $UNCACHED
plpgsql_ns $PLPGSQL
select1_tps $TPS_SELECT1
check_tps $TPS_CHECK
FIGURES
python3 "$ROOT/benches/chart.py" "$ROOT/docs/bench.svg" "$ROOT"/benches/results/*.txt
cluster_stop bench
