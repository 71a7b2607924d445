#!/usr/bin/env bash
# Benchmark (not a test): the cost of a permission check against baselines measured in the
# same run, on one cluster. Builds and installs the release library, starts the cluster
# "bench", builds the data, and prints one table:
#   - ns per check over a 1,000,000-row scan (minus the scan alone): authz_check for a user
#     with a role default and for a grants-only user holding 10,000 grants; the same through
#     authz_can, with the principal from authz_set_user and from an API key; the built-in
#     int8eq and the trivial pgrx function authz.noop_check with the check's arguments (the
#     floors); the PL/pgSQL resolver of benches/plpgsql_baseline.sql and authz_check with the
#     cache off (both over 100,000 rows, they are slow);
#   - a write stream: the cached scan while another session commits 100 authz_grants per
#     second to other users, against the quiet scan, with the scanning session's hit rate;
#   - heap bytes per cached override (authz_stats' heap_bytes, a user with 10,000 loaded), and
#     per cached user of about 68 overrides, everything included (1,000 such users loaded);
#   - authz_grant and authz_revoke of 500 new users at each flatness point (all grants are
#     of one permission), and authz_grant_bulk of 100,000 overrides against a plain INSERT
#     of the same rows (best of three interleaved runs, each rolled back);
#   - pgbench TPS (-M prepared, 2 and 32 clients, best of two interleaved rounds) of one
#     random check against SELECT 1; and (2 clients) of one check per statement of the user
#     with 10,000 grants on a random resource (a busy user an API server asks about);
#   - with no writes, the share of checks that bypass the cache at 2, 8, 32 and 64 clients
#     (benches/concurrency.py, one process per client);
#   - a cached 100,000-row scan, quiet and beside another session's open transaction that
#     changed grants: idle in transaction, and prepared and left;
#   - the selective-access policy (docs/guide.md) on a 1,000,000-row table for a user with 100
#     grants, against the same query written by hand with id = ANY(<the ids>);
#   - per-row and uncached check cost at 1k, 100k, 1M and 10M grants in total (for a user
#     whose 10 overrides and role stay the same throughout);
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

# Best of five runs of a statement, in ms, after optional setup statements in the same
# session (e.g. a principal): timed <setup-sql> <statement>
timed() {
  local setup=$1 statement=$2
  { echo "SET max_parallel_workers_per_gather = 0;"; echo "$setup"; echo '\timing on'
    for _ in 1 2 3 4 5; do echo "$statement"; done; } \
    | sql -f - | awk '/^Time: / { t = $2; if (best == "" || t < best) best = t } END { print best }'
}

# The ns per row of psql's timings of scans marked "<side>_bare" and "<side>_with" (\echo),
# over N rows: for each side, in the order they first appear, the best "with" minus the
# best "bare". Timings after no mark (setup statements) are left out.
ns_per_row() {
  awk -v n="$1" '/^[a-z]+_(bare|with)$/ { k = $1; side = substr(k, 1, index(k, "_") - 1)
                                          if (!(side in seen)) { seen[side] = 1; order[++sides] = side } }
                 /^Time: / && k != "" { if (!(k in best) || $2 < best[k]) best[k] = $2; k = "" }
                 END { for (i = 1; i <= sides; i++)
                         printf "%s%.0f", (i > 1 ? " " : ""), (best[order[i] "_with"] - best[order[i] "_bare"]) * 1e6 / n }'
}

# ns per row of an expression over the first N rows of bench_rows: the best of five scans
# with it minus the best of five without, alternating in one session (after a scan that
# warms the cache). The expression is tested IS NOT NULL, so that every row passes whatever
# it answers: rows it filtered out would skip the aggregate and make it look cheaper.
per_row() {
  local rows=$1 expr=$2 setup=${3:-}
  { echo "SET max_parallel_workers_per_gather = 0;"; echo "$setup"
    echo "SELECT count(*) FROM bench_rows WHERE id <= $rows AND ($expr) IS NOT NULL;"
    echo '\timing on'
    for _ in 1 2 3 4 5; do
      echo '\echo a_bare'; echo "SELECT count(*) FROM bench_rows WHERE id <= $rows AND true;"
      echo '\echo a_with'; echo "SELECT count(*) FROM bench_rows WHERE id <= $rows AND ($expr) IS NOT NULL;"
    done; } \
    | sql -f - | ns_per_row "$rows"
}

# per_row of one expression under two setups that each open a transaction (two
# principals), measured in turn in one session, five rounds of: setup A, scans, COMMIT;
# setup B, scans, COMMIT. Measured one after the other, the second of two such figures
# tended to read slower on this machine; in turn, a slow spell hits both. Prints "A B".
per_row_pair() {
  local rows=$1 expr=$2 setup_a=$3 setup_b=$4
  { echo "SET max_parallel_workers_per_gather = 0;"
    echo '\timing on'
    for _ in 1 2 3 4 5; do
      for side in a b; do
        if [ $side = a ]; then echo "$setup_a"; else echo "$setup_b"; fi
        echo "SELECT count(*) FROM bench_rows WHERE id <= $rows AND ($expr) IS NOT NULL;"  # warms up
        echo "\\echo ${side}_bare"; echo "SELECT count(*) FROM bench_rows WHERE id <= $rows AND true;"
        echo "\\echo ${side}_with"; echo "SELECT count(*) FROM bench_rows WHERE id <= $rows AND ($expr) IS NOT NULL;"
        echo "COMMIT;"
      done
    done; } \
    | sql -f - | ns_per_row "$rows"
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
             ON CONFLICT DO NOTHING" -c "VACUUM ANALYZE authz.grants" -c "CHECKPOINT"  # no autovacuum or checkpoint writes mid-measurement
}
grants_total() { sql -c "SELECT count(*) FROM authz.grants"; }
declare -A FLAT_CACHED FLAT_UNCACHED GRANT_MS REVOKE_MS
# ms per call of 500 authz_grant (then authz_revoke) calls for new users, in one statement.
per_write() {
  timed "" "SELECT count($1('write-$2-' || g, 'document:read', g)) FROM generate_series(1, 500) g;" |
    awk '{ printf "%.3f", $1 / 500 }'
}
# The flatness user, 1050, holds the same 10 overrides of document:read (and its role) at
# every point, so only the table's size changes between them. (Until 2026-12-02 it was
# user 9, whose role alone decided at the 1k and 100k points and who held 10,000 overrides
# from the 1M point on: the ratio compared two kinds of check.)
flat_point() {
  local total; total=$(grants_total)
  FLAT_CACHED[$1]=$(per_row 100000 "authz_check(1050, 'document:read', id)")
  FLAT_UNCACHED[$1]=$(per_row 10000 "authz_check(1050, 'document:read', id)" "SET authz.cache = off;")
  GRANT_MS[$1]=$(per_write authz_grant "$1")
  REVOKE_MS[$1]=$(per_write authz_revoke "$1")
  echo "  $1: $total grants: cached ${FLAT_CACHED[$1]} ns, uncached ${FLAT_UNCACHED[$1]} ns per check;" \
       "authz_grant ${GRANT_MS[$1]} ms, authz_revoke ${REVOKE_MS[$1]} ms"
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
INT8EQ=$(per_row 1000000 "int8eq(id, id)")
FLOOR=$(per_row 1000000 "authz.noop_check(1, 'document:read', id)")
ROLE_USER=$(per_row 1000000 "authz_check(1, 'document:read', id)")
GRANTS_USER=$(per_row 1000000 "authz_check(2, 'document:read', id)")
KEY_ROLE=$(sql -c "SELECT token FROM api_key_create(1, 'bench', ARRAY['documents:read'])")
KEY_GRANTS=$(sql -c "SELECT token FROM api_key_create(2, 'bench', ARRAY['documents:read'])")
# Each user principal in turn with the key principal of the same user.
read -r CAN_ROLE CAN_KEY_ROLE <<<"$(per_row_pair 1000000 "authz_can('document:read', id)" \
  "BEGIN; SELECT authz_set_user(1);" "BEGIN; SELECT authz_authenticate('$KEY_ROLE');")"
read -r CAN_GRANTS CAN_KEY_GRANTS <<<"$(per_row_pair 1000000 "authz_can('document:read', id)" \
  "BEGIN; SELECT authz_set_user(2);" "BEGIN; SELECT authz_authenticate('$KEY_GRANTS');")"
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

echo "memory: heap bytes per cached override (user 2: 10,000 overrides, loaded by a scan)"
BYTES_PER_OVERRIDE=$(sql <<'SQL' | tail -n 1
SELECT authz_check(1, 'document:read', 1) IS NOT NULL;
SELECT value AS before FROM authz_stats() WHERE counter = 'heap_bytes' \gset
SELECT count(*) FROM bench_rows WHERE id <= 1000 AND authz_check(2, 'document:read', id);
SELECT round(((SELECT value FROM authz_stats() WHERE counter = 'heap_bytes') - :before) / 10000.0)
SQL
)
echo "memory: heap bytes per cached user, all in (1,000 users with about 68 overrides each, loaded by two checks)"
BYTES_PER_USER=$(sql <<'SQL' | tail -n 1
SELECT authz_check(1, 'document:read', 1) IS NOT NULL;
SELECT value AS before FROM authz_stats() WHERE counter = 'heap_bytes' \gset
SELECT count(*) FROM generate_series(1100, 2099) u, generate_series(1, 2) k WHERE authz_check(u, 'document:read', k);
SELECT round(((SELECT value FROM authz_stats() WHERE counter = 'heap_bytes') - :before) / 1000.0)
SQL
)

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

echo "a write stream: 100 authz_grant commits per second to other users, beside a cached scan"
sql -q <<'SQL'
-- One commit every 10 ms, paced by the clock (each commit takes some of the 10 ms).
CREATE PROCEDURE bench_grant_stream(seconds int) LANGUAGE plpgsql AS $$
DECLARE
    started float8 := extract(epoch FROM clock_timestamp());
BEGIN
    FOR i IN 1 .. seconds * 100 LOOP
        PERFORM authz_grant('stream-' || i, 'document:read', i);
        COMMIT;
        PERFORM pg_sleep(greatest(0, started + i * 0.01 - extract(epoch FROM clock_timestamp())));
    END LOOP;
END $$;
SQL
STREAM_SCAN="SELECT count(*) FROM bench_rows WHERE authz_check(2, 'document:read', id) IS NOT NULL;"
BARE_SCAN="SELECT count(*) FROM bench_rows WHERE true;"
# ns per check over the 1M-row scan (best of 10, minus the best bare scan of 10 in the same
# session), and the session's cache hit rate over those scans.
stream_scan() {
  { echo "SET max_parallel_workers_per_gather = 0;"; echo "$STREAM_SCAN"
    echo "SELECT value AS h0 FROM authz_stats() WHERE counter = 'cache_hits' \\gset"
    echo "SELECT value AS m0 FROM authz_stats() WHERE counter = 'cache_misses' \\gset"
    echo '\timing on'
    for _ in 1 2 3 4 5 6 7 8 9 10; do echo '\echo bare'; echo "$BARE_SCAN"; echo '\echo check'; echo "$STREAM_SCAN"; done
    echo '\timing off'
    echo "SELECT 'hit_rate', round(100.0 * (h.value - :h0) / nullif(h.value - :h0 + m.value - :m0, 0), 3)
          FROM authz_stats() h, authz_stats() m WHERE h.counter = 'cache_hits' AND m.counter = 'cache_misses';"
  } | sql -f - | awk '/^bare$/ { k = "bare" } /^check$/ { k = "check" }
                      /^Time: / && k != "" { if (!(k in best) || $2 < best[k]) best[k] = $2; k = "" }
                      /^hit_rate/ { split($0, f, "|"); r = f[2] }
                      END { printf "%.0f %s\n", (best["check"] - best["bare"]) * 1e6 / 1000000, r }'
}
read -r STREAM_QUIET_NS STREAM_QUIET_HITS < <(stream_scan)
cluster_psql -d "$DB" -q -c "CALL bench_grant_stream(60)" >/dev/null 2>&1 &
STREAM=$!
sleep 2
# The rate over the scans (a second or two: whole seconds would misstate it by half), each
# count's snapshot taken about when its clock reading is.
STREAM_STARTED=$EPOCHREALTIME; GRANTS_BEFORE=$(grants_total)
read -r STREAM_BUSY_NS STREAM_BUSY_HITS < <(stream_scan)
STREAM_ENDED=$EPOCHREALTIME; GRANTS_AFTER=$(grants_total)
STREAM_RATE=$(awk -v n="$((GRANTS_AFTER - GRANTS_BEFORE))" -v a="$STREAM_STARTED" -v b="$STREAM_ENDED" \
  'BEGIN { printf "%.0f", n / (b - a) }')
kill "$STREAM" 2>/dev/null; wait "$STREAM" 2>/dev/null || true
sql -q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'CALL bench_grant_stream%'" >/dev/null
echo "  quiet $STREAM_QUIET_NS ns/check (hits $STREAM_QUIET_HITS %), during the stream $STREAM_BUSY_NS ns/check" \
     "(hits $STREAM_BUSY_HITS %), about $STREAM_RATE grants committed per second"

echo "bulk import: authz_grant_bulk of 100,000 overrides, and a plain INSERT of the same rows"
# ms of one run of a statement: once <setup-sql> <statement> <teardown-sql>
once() {
  { echo "$1"; echo '\timing on'; echo "$2"; echo '\timing off'; echo "$3"; } \
    | sql -f - | awk '/^Time: / { print $2 }'
}
BULK_ARGUMENT="(SELECT jsonb_agg(jsonb_build_object('user_id', 'bulk-' || g, 'permission', 'document:read', 'resource_id', g)) FROM generate_series(1, 100000) g)"
# Each side three times, rolled back, interleaved; the best counts (a single run moved by
# a third between runs of the same code).
BULK_RUNS=() PLAIN_RUNS=()
for _ in 1 2 3; do
  BULK_RUNS+=("$(once "BEGIN;" "SELECT authz_grant_bulk($BULK_ARGUMENT);" "ROLLBACK;")")
  PLAIN_RUNS+=("$(once "BEGIN;" "INSERT INTO authz.grants (user_id, permission, resource_id, effect)
    SELECT 'plain-' || g, 'document:read', g::text, 'allow' FROM generate_series(1, 100000) g;" "ROLLBACK;")")
done
BULK_MS=$(printf '%s\n' "${BULK_RUNS[@]}" | sort -n | head -1)
PLAIN_INSERT_MS=$(printf '%s\n' "${PLAIN_RUNS[@]}" | sort -n | head -1)
BULK_JSON_MS=$(timed "" "SELECT length($BULK_ARGUMENT::text);")
BULK_RATE=$(awk -v t="$BULK_MS" -v j="$BULK_JSON_MS" 'BEGIN { printf "%.0f", 100000 / ((t - j) / 1000) }')
PLAIN_RATE=$(awk -v t="$PLAIN_INSERT_MS" 'BEGIN { printf "%.0f", 100000 / (t / 1000) }')
echo "  authz_grant_bulk: $BULK_MS ms ($BULK_JSON_MS ms of it building the argument): $BULK_RATE overrides/s;" \
     "plain INSERT: $PLAIN_RATE rows/s"

echo "pgbench"
DIR="$CLUSTER_DIR/pgbench"; mkdir -p "$DIR"
printf 'SELECT 1;\n' > "$DIR/select1.sql"
# The permission comes in as a variable (-D): pgbench would read ":read" in a literal as one.
printf '\\set u random(1, 10000)\n\\set r random(1, 1000000)\nSELECT authz_check(:u::bigint, :perm, :r::bigint);\n' > "$DIR/check.sql"
printf '\\set r random(1, 1000000)\nSELECT authz_check(2::bigint, :perm, :r::bigint);\n' > "$DIR/busy.sql"
chown -R postgres:postgres "$DIR"
# The best of two interleaved rounds, by script and clients.
declare -A TPS
for _ in 1 2; do
  for run in "select1 2" "check 2" "busy 2" "select1 32" "check 32"; do
    read -r script clients <<<"$run"
    tps=$(pgbench_tps "$DIR/$script.sql" "$DB" "$clients" "$PGBENCH_SECONDS" "" -D perm=document:read) || exit 1
    keep_best TPS "$run" "$tps"
  done
done
whole() { printf '%.0f' "$1"; }
TPS_SELECT1=$(whole "${TPS[select1 2]}"); TPS_CHECK=$(whole "${TPS[check 2]}"); TPS_BUSY=$(whole "${TPS[busy 2]}")
TPS32_SELECT1=$(whole "${TPS[select1 32]}"); TPS32_CHECK=$(whole "${TPS[check 32]}")

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
rm -f "$CLUSTER_DIR/stop_writer"
{ printf "BEGIN;\nSELECT authz_grant('bench-bystander', 'document:read', 1);\n"
  until [ -e "$CLUSTER_DIR/stop_writer" ]; do sleep 0.2; done; } \
  | PGAPPNAME=bench_open_writer cluster_psql -d "$DB" >/dev/null 2>&1 &
WRITER=$!
until [ "$(sql -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'bench_open_writer'
                   AND state = 'idle in transaction'")" = 1 ]; do sleep 0.1; done
SCAN_IDLE_WRITER=$(timed "" "$SCAN")
touch "$CLUSTER_DIR/stop_writer"; wait "$WRITER" 2>/dev/null || true  # psql reads the end of its input, rolls back
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
| int8eq(id, id), built-in (ns/row)                               | $INT8EQ | 1.00x int8eq |
| authz.noop_check, pgrx floor (ns/row)                           | $FLOOR | 1.00x floor, $(ratio "$FLOOR" "$INT8EQ")x int8eq |
| authz_check, role-default user (ns/row)                         | $ROLE_USER | $(ratio "$ROLE_USER" "$FLOOR")x floor, $(ratio "$ROLE_USER" "$INT8EQ")x int8eq |
| authz_check, grants-only user, 10,000 grants (ns/row)           | $GRANTS_USER | $(ratio "$GRANTS_USER" "$FLOOR")x floor, $(ratio "$GRANTS_USER" "$INT8EQ")x int8eq |
| authz_can, role-default principal (ns/row)                      | $CAN_ROLE | $(ratio "$CAN_ROLE" "$FLOOR")x floor, $(ratio "$CAN_ROLE" "$INT8EQ")x int8eq |
| authz_can, grants-only principal (ns/row)                       | $CAN_GRANTS | $(ratio "$CAN_GRANTS" "$FLOOR")x floor, $(ratio "$CAN_GRANTS" "$INT8EQ")x int8eq |
| authz_can, role-default principal from an API key (ns/row)      | $CAN_KEY_ROLE | $(ratio "$CAN_KEY_ROLE" "$CAN_ROLE")x the user principal |
| authz_can, grants-only principal from an API key (ns/row)       | $CAN_KEY_GRANTS | $(ratio "$CAN_KEY_GRANTS" "$CAN_GRANTS")x the user principal |
| PL/pgSQL resolver, grants-only user (ns/row)                    | $PLPGSQL | $(ratio "$PLPGSQL" "$GRANTS_USER")x authz_check |
| authz_check with authz.cache = off, grants-only user (ns/row)   | $UNCACHED | $(ratio "$UNCACHED" "$GRANTS_USER")x cached |
| pgbench TPS, SELECT 1                                           | $TPS_SELECT1 | 1.00 |
| pgbench TPS, one random authz_check                             | $TPS_CHECK | $(ratio "$TPS_CHECK" "$TPS_SELECT1") of SELECT 1 |
| pgbench TPS, one check of the user with 10,000 grants          | $TPS_BUSY | $(ratio "$TPS_BUSY" "$TPS_SELECT1") of SELECT 1 |
| pgbench TPS at 32 clients, SELECT 1                             | $TPS32_SELECT1 | 1.00 |
| pgbench TPS at 32 clients, one random authz_check               | $TPS32_CHECK | $(ratio "$TPS32_CHECK" "$TPS32_SELECT1") of SELECT 1 |
| checks bypassing the cache, no writes, 2 / 8 / 32 / 64 clients (%) | ${BYPASS[2]} / ${BYPASS[8]} / ${BYPASS[32]} / ${BYPASS[64]} | |
| cached scan, 100,000 rows, quiet (ms)                           | $SCAN_QUIET | 1.00 |
| the same, beside a session idle in a transaction that granted (ms) | $SCAN_IDLE_WRITER | $(ratio "$SCAN_IDLE_WRITER" "$SCAN_QUIET")x quiet |
| the same, beside a prepared transaction that granted (ms)       | $SCAN_PREPARED | $(ratio "$SCAN_PREPARED" "$SCAN_QUIET")x quiet |
| cached check over 1M rows, quiet (ns/row; hit rate %)           | $STREAM_QUIET_NS; $STREAM_QUIET_HITS | 1.00 |
| the same while grants commit to other users (ns/row; hit rate %) | $STREAM_BUSY_NS; $STREAM_BUSY_HITS | $(ratio "$STREAM_BUSY_NS" "$STREAM_QUIET_NS")x quiet, at $STREAM_RATE grants/s |
| selective policy, 100 grants, 1M rows, under RLS (ms)           | $SEL_RLS | $(ratio "$SEL_RLS" "$SEL_HAND")x by hand |
| the same by hand, id = ANY(ids), no RLS (ms)                    | $SEL_HAND | 1.00 |
| cached check at 1k / 100k / 1M / 10M grants (ns/row)            | ${FLAT_CACHED[1k]} / ${FLAT_CACHED[100k]} / ${FLAT_CACHED[1M]} / ${FLAT_CACHED[10M]} | $(ratio "${FLAT_CACHED[10M]}" "${FLAT_CACHED[1k]}")x 10M vs 1k |
| uncached check at 1k / 100k / 1M / 10M grants (ns/row)          | ${FLAT_UNCACHED[1k]} / ${FLAT_UNCACHED[100k]} / ${FLAT_UNCACHED[1M]} / ${FLAT_UNCACHED[10M]} | $(ratio "${FLAT_UNCACHED[10M]}" "${FLAT_UNCACHED[1k]}")x 10M vs 1k |
| first check, fresh backend, 10,000 grants (ms)                  | $COLD_MS | |
| backend memory grown by that first check (kB RSS)               | $COLD_KB | |
| heap bytes per cached override (10,000 loaded)                  | $BYTES_PER_OVERRIDE | |
| heap bytes per cached user of ~68 overrides, all in (1,000 loaded) | $BYTES_PER_USER | $(ratio "$BYTES_PER_USER" 68) per override |
| authz_grant at 1k / 100k / 1M / 10M grants of it (ms/call)      | ${GRANT_MS[1k]} / ${GRANT_MS[100k]} / ${GRANT_MS[1M]} / ${GRANT_MS[10M]} | $(ratio "${GRANT_MS[10M]}" "${GRANT_MS[1k]}")x 10M vs 1k |
| authz_revoke at 1k / 100k / 1M / 10M grants of it (ms/call)     | ${REVOKE_MS[1k]} / ${REVOKE_MS[100k]} / ${REVOKE_MS[1M]} / ${REVOKE_MS[10M]} | $(ratio "${REVOKE_MS[10M]}" "${REVOKE_MS[1k]}")x 10M vs 1k |
| authz_grant_bulk, 100,000 overrides (overrides/s)               | $BULK_RATE | $(ratio "$BULK_RATE" "$PLAIN_RATE")x a plain INSERT ($PLAIN_RATE rows/s) |
TABLE
# The figures behind the chart (benches/chart.py draws docs/bench.svg from this file and
# api_keys.txt).
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
python3 "$ROOT/benches/chart.py" "$ROOT/docs/bench.svg" "$ROOT"/benches/results/{checks,api_keys}.txt
cluster_stop bench
