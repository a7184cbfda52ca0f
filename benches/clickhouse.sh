#!/usr/bin/env bash
# Event rows per second into ClickHouse from one Canh instance, and bytes per event on disk in
# ClickHouse and in Parquet: starts a ClickHouse server on loopback (deploy/clickhouse.sh, in a
# temporary folder), runs benches/benches/clickhouse.rs against it (release build), stops it.
#
# usage: benches/clickhouse.sh   (CARGO_TARGET_DIR is honoured)
#   BENCH_BIN   a bench binary built before (`cargo bench -p canh-benches --bench clickhouse
#               --no-run` prints its path), run instead of building: to compare builds
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
trap 'bash "$ROOT/deploy/clickhouse.sh" stop "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
read -r http _ < <(bash "$ROOT/deploy/clickhouse.sh" start "$dir")
if [ -n "${BENCH_BIN:-}" ]; then
  cd "$ROOT/benches"
  CANH_CLICKHOUSE_URL="http://127.0.0.1:$http" "$BENCH_BIN" --bench
else
  cd "$ROOT"
  CANH_CLICKHOUSE_URL="http://127.0.0.1:$http" cargo bench -p canh-benches --bench clickhouse
fi
