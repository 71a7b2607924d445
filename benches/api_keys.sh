#!/usr/bin/env bash
# Benchmark (not a test): API key validation throughput against baselines measured in the
# same run, on one cluster. Builds and installs the release build, starts the cluster
# "bench", creates 100,000 keys, then runs pgbench (-M prepared, 2 clients, 2 threads) on:
#   SELECT 1                the floor: a round trip and nothing else
#   token fetch             SELECT token FROM bench_tokens WHERE i = random: how the
#                           validating scripts pick a random real token (pgbench has no
#                           string variables), so its cost is inside the next two rows
#   api_key_validate valid  a random valid token (fetched as above) validated, in steady
#                           state (the keys in shared memory, authz.shared_key_memory, as
#                           the warm-up left them; printed with the results)
#                           state: every key was used within authz.key_last_used_interval
#                           (set to 1 hour here), so no call writes last_used_at
#   ... writing last_used   the same with the interval 0: every call writes last_used_at,
#                           so every transaction commits a WAL record and waits for its flush
#   plain SQL digest        the same token hashed with pgcrypto's digest() and looked up by
#                           index in plain SQL (superuser): what a user would write
#                           without the extension (the goal: validation >= 1.2x this)
#   ... cache off           the same with authz.cache = off: every key read from the tables
#                           (what a key costs the first time any backend validates it)
#   ... 1,000 keys / plain SQL, 1,000 keys   the two above drawn from 1,000 keys: each
#                           connection's memo is warm after its first 1,000 validations
#                           (an API server's long-lived connections and active keys)
#   api_key_validate malformed   a random 42-character string with a wrong checksum
#   ... fetched, malformed  a fetched token made malformed ('x' || token): the validating
#                           statement with no lookup at all, the most any lookup behind
#                           this signature (a set-returning function) could reach here
#   bcrypt cost 10          pgcrypto crypt(token, hash) verification, the seed system's way
# Each runs SECONDS (default 10) per round, in ROUNDS (default 2) interleaved rounds; the
# best round counts. Usage: benches/api_keys.sh [SECONDS] [ROUNDS]
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
SECONDS_PER_RUN=${1:-10}
ROUNDS=${2:-2}
KEYS=100000

"$ROOT/scripts/setup.sh" >/dev/null
echo "building and installing authz_ext (release)"
install_extension release >/dev/null 2>&1
cluster_start bench 55700
DIR="$CLUSTER_DIR/pgbench"
mkdir -p "$DIR"

echo "creating $KEYS keys and 200 bcrypt hashes"
cluster_psql -d postgres -c "DROP DATABASE IF EXISTS authz_bench" -c "CREATE DATABASE authz_bench"
cluster_psql -d authz_bench <<SQL
CREATE EXTENSION authz_ext;
CREATE EXTENSION pgcrypto;
CREATE TABLE bench_tokens (i int PRIMARY KEY, token text NOT NULL);
INSERT INTO bench_tokens
SELECT i, k.token FROM generate_series(1, $KEYS) AS i,
     LATERAL api_key_create(i, 'bench', ARRAY['documents:read']) AS k;
CREATE TABLE bench_bcrypt (i int PRIMARY KEY, token text NOT NULL, hash text NOT NULL);
INSERT INTO bench_bcrypt SELECT i, token, crypt(token, gen_salt('bf', 10)) FROM bench_tokens WHERE i <= 200;
VACUUM ANALYZE;
-- Steady state for the "valid" row: every key used once, within the interval.
ALTER DATABASE authz_bench SET authz.key_last_used_interval = 3600;
SET authz.key_last_used_interval = 3600;
SELECT count(*) AS warmed_up FROM bench_tokens, LATERAL api_key_validate(token) v WHERE v.valid;
-- The warm-up updated every key's last_used_at: vacuum now rather than have autovacuum
-- do it during the first round.
VACUUM ANALYZE authz.api_key_usage;
CHECKPOINT;
SQL

write() { printf '%s\n' "$2" > "$DIR/$1.sql"; }
write select1 'SELECT 1;'
write fetch "\\set i random(1, $KEYS)
SELECT token FROM bench_tokens WHERE i = :i;"
write valid "\\set i random(1, $KEYS)
SELECT status FROM api_key_validate((SELECT token FROM bench_tokens WHERE i = :i));"
cp "$DIR/valid.sql" "$DIR/valid_writing.sql"
write plain_digest "\\set i random(1, $KEYS)
SELECT id FROM authz.api_keys
WHERE key_hash = digest((SELECT token FROM bench_tokens WHERE i = :i), 'sha256');"
sed "s/random(1, $KEYS)/random(1, 1000)/" "$DIR/valid.sql" > "$DIR/valid_hot.sql"
sed "s/random(1, $KEYS)/random(1, 1000)/" "$DIR/plain_digest.sql" > "$DIR/plain_hot.sql"
cp "$DIR/valid.sql" "$DIR/valid_read.sql"
write malformed "\\set i random(1, $KEYS)
SELECT status FROM api_key_validate('azk_' || lpad(:i::text, 38, '0'));"
write fetched_malformed "\\set i random(1, $KEYS)
SELECT status FROM api_key_validate((SELECT 'x' || token FROM bench_tokens WHERE i = :i));"
write bcrypt '\set i random(1, 200)
SELECT hash = crypt(token, hash) FROM bench_bcrypt WHERE i = :i;'
chown -R postgres:postgres "$DIR"

NAMES=(select1 fetch valid plain_digest valid_writing valid_read valid_hot plain_hot malformed fetched_malformed bcrypt)
declare -A BEST
RATIOS=()  # valid / plain_digest, round by round
for round in $(seq "$ROUNDS"); do
  for name in "${NAMES[@]}"; do
    options=""
    [ "$name" = valid_writing ] && options="-c authz.key_last_used_interval=0"
    [ "$name" = valid_read ] && options="-c authz.cache=off"
    tps=$(pgbench_tps "$DIR/$name.sql" authz_bench 2 "$SECONDS_PER_RUN" "$options")
    echo "round $round: $name $tps TPS"
    keep_best BEST "$name" "$tps"
    [ "$name" = valid ] && valid_tps=$tps
    [ "$name" = plain_digest ] && RATIOS+=("$(awk -v v="$valid_tps" -v p="$tps" 'BEGIN { printf "%.2fx", v / p }')")
  done
done

label() {
  case $1 in
    select1) echo "SELECT 1" ;;
    fetch) echo "token fetch only" ;;
    valid) echo "api_key_validate, valid token" ;;
    valid_writing) echo "... writing last_used each call" ;;
    valid_read) echo "... cache off: every key read" ;;
    plain_digest) echo "plain SQL digest() + lookup" ;;
    valid_hot) echo "api_key_validate, 1,000 keys" ;;
    plain_hot) echo "plain SQL, 1,000 keys" ;;
    malformed) echo "api_key_validate, malformed" ;;
    fetched_malformed) echo "... fetched, malformed: no lookup" ;;
    bcrypt) echo "pgcrypto bcrypt cost 10" ;;
  esac
}
echo
shared=$(cluster_psql -d authz_bench -At -c "SHOW authz.shared_key_memory")
echo "pgbench -M prepared -c 2 -j 2, ${SECONDS_PER_RUN}s x $ROUNDS rounds (best), $KEYS keys, authz.shared_key_memory = $shared"
printf '| %-31s | %10s | %11s | %14s |\n' "statement" "TPS" "vs SELECT 1" "vs token fetch"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..33})" "$(printf -- '-%.0s' {1..12})" "$(printf -- '-%.0s' {1..13})" "$(printf -- '-%.0s' {1..16})"
for name in "${NAMES[@]}"; do
  awk -v l="$(label "$name")" -v t="${BEST[$name]}" -v s="${BEST[select1]}" -v f="${BEST[fetch]}" \
    'BEGIN { printf "| %-31s | %10.0f | %10.2fx | %13.2fx |\n", l, t, t / s, t / f }'
done
# The validating statements also fetch their token; "SELECT 1 + validation" adds only the
# validation's own time per transaction (1/valid - 1/fetch) to SELECT 1's.
awk -v v="${BEST[valid]}" -v b="${BEST[bcrypt]}" -v s="${BEST[select1]}" -v f="${BEST[fetch]}" \
    -v m="${BEST[malformed]}" -v p="${BEST[plain_digest]}" -v vr="${BEST[valid_read]}" \
    -v vh="${BEST[valid_hot]}" -v ph="${BEST[plain_hot]}" -v c="${BEST[fetched_malformed]}" -v rounds="${RATIOS[*]}" '
function added(t, f) { return t < f ? sprintf("%.1f us", 1e6 * (2 / t - 2 / f)) : "below the noise" }
BEGIN {
  own = 1 / v - 1 / f; derived = 1 / (1 / s + own)
  printf "\nvalid validation: %.2fx the plain SQL digest() lookup (goal >= 1.2x)\n", v / p
  printf "  the same statement with no lookup (a fetched token made malformed): %.2fx the plain lookup\n", c / p
  printf "  cache off (every key read): %.2fx; 1,000 keys: %.2fx the plain SQL lookup of the same keys\n", vr / p, vh / ph
  printf "  round by round (each valid run followed by its plain one): %s\n", rounds
  # Per client, a transaction takes 2/TPS; less the token fetch, what the lookup adds (a
  # best round faster than the best fetch alone is this machine noise, not a cost).
  printf "  what each adds to the token fetch, per transaction: %s vs %s plain; 1,000 keys: %s vs %s\n", \
    added(v, f), added(p, f), added(vh, f), added(ph, f)
  printf "valid validation: %.0fx bcrypt (goal >= 1000x)\n", v / b
  printf "valid validation: %.0f%% of SELECT 1 as measured, token fetch included\n", 100 * v / s
  if (own > 0) printf "derived: SELECT 1 + validation without the fetch = %.0f TPS, %.0f%% of SELECT 1 (goal >= 80%%)\n", derived, 100 * derived / s
  else printf "derived: SELECT 1 + validation without the fetch: the validation is below the noise\n"
  printf "malformed validation: %.0f%% of SELECT 1\n", 100 * m / s }'
# The figures behind the chart (benches/chart.py draws docs/bench.svg from this file and
# checks.txt).
mkdir -p "$ROOT/benches/results"
cat > "$ROOT/benches/results/api_keys.txt" <<FIGURES
validate_tps ${BEST[valid]}
sha256_tps ${BEST[plain_digest]}
bcrypt_tps ${BEST[bcrypt]}
keys_select1_tps ${BEST[select1]}
FIGURES
python3 "$ROOT/benches/chart.py" "$ROOT/docs/bench.svg" "$ROOT"/benches/results/{checks,api_keys}.txt
cluster_stop bench
