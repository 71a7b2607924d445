#!/usr/bin/env bash
# The long hostile-input run (not part of the tests): tests/integration/test_fuzz.py with
# many more calls than the test command's 1,500, against a cluster started here, with the
# decision cache on and off. Usage: benches/fuzz.sh [CALLS] [SEED]
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
CALLS=${1:-100000}
SEED=${2:-$(date +%s)}

"$ROOT/scripts/setup.sh" >/dev/null
ensure_venv
install_extension debug >/dev/null 2>&1
cluster_start fuzz 55800
for cache in on off; do
  start=$(date +%s)
  PGOPTIONS="-c authz.cache=$cache" AUTHZ_FUZZ_CALLS=$CALLS AUTHZ_FUZZ_SEED=$SEED \
    AUTHZ_TEST_HOST="$PGHOST_USED" AUTHZ_TEST_PORT="$PGPORT_USED" \
    "$ROOT/.venv/bin/pytest" -q -s -p no:cacheprovider "$ROOT/tests/integration/test_fuzz.py" | grep -oE "fuzz: .*|[0-9]+ (passed|failed).*"
  echo "cache $cache: $(( $(date +%s) - start )) s"
done
cluster_stop fuzz
