#!/usr/bin/env bash
# The main job: build authz_ext (release), install it into the system PostgreSQL 15, start
# a throwaway cluster as the postgres OS user, load a demo database, print how to connect.
#   scripts/demo.sh          build, install, (re)start and (re)load the demo
#   scripts/demo.sh --stop   stop the demo cluster
set -euo pipefail
source "$(dirname "$0")/lib.sh"

if [ "${1:-}" = "--stop" ]; then
  cluster_stop demo
  echo "demo cluster stopped"
  exit 0
fi

"$ROOT/scripts/setup.sh"
echo "demo: building and installing authz_ext (release)"
install_extension release 2>&1 | tail -n 3
cluster_start demo 55432
cluster_psql -d postgres -c "DROP DATABASE IF EXISTS authz_demo" -c "DROP ROLE IF EXISTS demo_app" \
  -c "CREATE DATABASE authz_demo"
cluster_psql -d authz_demo -f "$ROOT/examples/demo.sql"

cat <<MSG

authz_ext is running in a local PostgreSQL $PG_MAJOR (data: $PGDATA_DIR).
  psql:  psql -h $PGHOST_USED -p $PGPORT_USED -U postgres authz_demo
  URL:   postgresql://postgres:$PG_PASSWORD@127.0.0.1:$PGPORT_USED/authz_demo
  stop:  $ROOT/scripts/demo.sh --stop
Try, as the application role (RLS on documents asks authz_can about the principal):
  psql -h $PGHOST_USED -p $PGPORT_USED -U demo_app authz_demo
  BEGIN; SELECT authz_set_user(1); SELECT * FROM documents; COMMIT;   -- 2 of 3 documents
MSG
