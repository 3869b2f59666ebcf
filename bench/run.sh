#!/usr/bin/env bash
# Runs the API load benchmark on SQLite and PostgreSQL (see docs/BENCHMARKS.md).
# Seeding 1,000,000 alerts happens once per store; later runs reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/rampart-target}"
cargo build --release -p rampart -p rampart-bench
BIN="$CARGO_TARGET_DIR/release"
ALERTS="${ALERTS:-1000000}"
SECONDS_PER_PHASE="${SECONDS_PER_PHASE:-15}"
BENCH_DIR="${BENCH_DIR:-/var/tmp/rampart-bench}"
mkdir -p "$BENCH_DIR"
echo "== $(date -u +%F) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== SQLite"
"$BIN/api-bench" --rampart "$BIN/rampart" --alerts "$ALERTS" --seconds "$SECONDS_PER_PHASE" \
  --database-url "sqlite://$BENCH_DIR/sqlite.db"
echo "== PostgreSQL"
PG="${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
psql "$PG" -qc 'CREATE SCHEMA IF NOT EXISTS rampart_bench' >/dev/null
"$BIN/api-bench" --rampart "$BIN/rampart" --alerts "$ALERTS" --seconds "$SECONDS_PER_PHASE" \
  --database-url "$PG?options=-c%20search_path%3Drampart_bench"
