#!/usr/bin/env bash
# Builds the installable artefacts: dist/authz_ext-<version>-pg<major>-<arch>.tar.gz, one
# per supported PostgreSQL major (or only AUTHZ_PG_MAJOR's, when set), each with the
# release library, the control file and install script (from `cargo pgrx package`),
# packaging/install.sh and packaging/INSTALL.md. Prints each tarball's path as it is made.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
"$ROOT/scripts/setup.sh" >/dev/null
version=$(extension_version)

for major in ${AUTHZ_PG_MAJOR:-$SUPPORTED_MAJORS}; do
  use_major "$major"
  name="authz_ext-$version-pg$PG_MAJOR-$(uname -m)"
  build="$ROOT/target/package/pg$PG_MAJOR"
  rm -rf "$build" && mkdir -p "$build/$name/lib" "$build/$name/extension" "$ROOT/dist"
  (cd "$ROOT" && cargo pgrx package --pg-config "$PG_CONFIG" --no-default-features --features "pg$PG_MAJOR" \
    --out-dir "$build/pgrx") >/dev/null
  cp "$build/pgrx$($PG_CONFIG --pkglibdir)/authz_ext.so" "$build/$name/lib/"
  cp "$build/pgrx$($PG_CONFIG --sharedir)/extension/"authz_ext* "$build/$name/extension/"
  cp "$ROOT/packaging/install.sh" "$ROOT/packaging/INSTALL.md" "$build/$name/"
  echo "$PG_MAJOR" > "$build/$name/PG_MAJOR"
  tar -C "$build" -czf "$ROOT/dist/$name.tar.gz" "$name"
  echo "$ROOT/dist/$name.tar.gz"
done
