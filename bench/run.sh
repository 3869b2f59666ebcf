#!/usr/bin/env bash
# Runs the load benchmarks on SQLite and PostgreSQL (see docs/BENCHMARKS.md).
# BENCHES picks which: "alerts indicators telemetry hunting retrohunt ioc channel" (the default),
# or some.
# Alert listing: seeding 1,000,000 alerts happens once per store; later runs reuse it.
# Indicator import: every run imports INDICATORS into a fresh SQLite file / PostgreSQL schema.
# Hunting: generates 10M+10M simulated rows into an event store once (minutes), reuses them after;
# HUNTING_SCALE=0.05 for a quick check.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/rampart-target}"
cargo build --release -p rampart -p rampart-bench
BIN="$CARGO_TARGET_DIR/release"
ALERTS="${ALERTS:-1000000}"
SECONDS_PER_PHASE="${SECONDS_PER_PHASE:-15}"
BENCH_DIR="${BENCH_DIR:-/var/tmp/rampart-bench}"
mkdir -p "$BENCH_DIR"
BENCHES="${BENCHES:-alerts indicators telemetry hunting retrohunt ioc channel}"
PG="${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
echo "== $(date -u +%F) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
if [[ " $BENCHES " == *" alerts "* ]]; then
echo "== SQLite"
"$BIN/api-bench" --rampart "$BIN/rampart" --alerts "$ALERTS" --seconds "$SECONDS_PER_PHASE" \
  --database-url "sqlite://$BENCH_DIR/sqlite.db"
echo "== PostgreSQL (shared_buffers $(psql "$PG" -Atc 'show shared_buffers'); docs/BENCHMARKS.md used 4GB)"
psql "$PG" -qc 'CREATE SCHEMA IF NOT EXISTS rampart_bench' >/dev/null
"$BIN/api-bench" --rampart "$BIN/rampart" --alerts "$ALERTS" --seconds "$SECONDS_PER_PHASE" \
  --database-url "$PG?options=-c%20search_path%3Drampart_bench"
fi

if [[ " $BENCHES " == *" telemetry "* ]]; then
echo "== Telemetry ingestion (baseline: DuckDB, pip install duckdb)"
"$BIN/telemetry-bench" --rampart "$BIN/rampart" --devices "${DEVICES:-200}" --hours "${HOURS:-12}" \
  --dir "$BENCH_DIR/telemetry" --indicators "${MATCH_INDICATORS:-1000000}"
fi

if [[ " $BENCHES " == *" hunting "* ]]; then
echo "== Hunting queries (baseline: DuckDB over the same Parquet files, pip install duckdb)"
"$BIN/hunting-bench" --dir "$BENCH_DIR/hunting" --scale "${HUNTING_SCALE:-1}"
fi

if [[ " $BENCHES " == *" retrohunt "* ]]; then
echo "== Retro-hunt of one new hash over the hunting data (baseline: DuckDB counting its rows)"
"$BIN/hunting-bench" --dir "$BENCH_DIR/hunting" --scale "${HUNTING_SCALE:-1}" --retrohunt-only
fi

if [[ " $BENCHES " == *" ioc "* ]]; then
echo "== Indicator matcher (IOC_INDICATORS=${IOC_INDICATORS:-10000000})"
"$BIN/ioc-bench" --indicators "${IOC_INDICATORS:-10000000}"
fi

if [[ " $BENCHES " == *" channel "* ]]; then
AGENTS="${AGENTS:-10000}"
echo "== Command channel: rampart simulate --agents $AGENTS against a release server (SQLite)"
CHANNEL_DIR="$BENCH_DIR/channel"
rm -rf "$CHANNEL_DIR" && mkdir -p "$CHANNEL_DIR"
APP="$("$BIN/rampart" --data-dir "$CHANNEL_DIR" apps create --name channel-bench \
  --roles Machine.Isolate,SecurityConfiguration.ReadWrite.All --json)"
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])" <<<"$APP"; }
ulimit -n "$(ulimit -Hn)"
"$BIN/rampart" --data-dir "$CHANNEL_DIR" serve --no-rate-limits --listen 127.0.0.1:8097 \
  2>"$CHANNEL_DIR/serve.log" &
SERVER=$!
until curl -sf http://127.0.0.1:8097/healthz >/dev/null; do sleep 0.2; done
"$BIN/rampart" simulate --agents "$AGENTS" --commands "${COMMANDS:-2000}" --rate 100 \
  --idle-seconds 20 --server http://127.0.0.1:8097 --tenant "$(field tenantId)" \
  --client-id "$(field clientId)" --client-secret "$(field clientSecret)" || status=$?
kill "$SERVER" && wait "$SERVER" || true
[[ -z "${status:-}" ]] || exit "$status"
fi

if [[ " $BENCHES " == *" indicators "* ]]; then
INDICATORS="${INDICATORS:-1000000}"
RUN="ind_$(date +%s)"
echo "== Indicator import, SQLite"
rm -f "$BENCH_DIR/indicators.db" "$BENCH_DIR/indicators.db-wal" "$BENCH_DIR/indicators.db-shm"
"$BIN/indicators-bench" --rampart "$BIN/rampart" --indicators "$INDICATORS" \
  --database-url "sqlite://$BENCH_DIR/indicators.db"
echo "== Indicator import, PostgreSQL"
psql "$PG" -qc "CREATE SCHEMA rampart_$RUN" >/dev/null
"$BIN/indicators-bench" --rampart "$BIN/rampart" --indicators "$INDICATORS" --no-baseline \
  --database-url "$PG?options=-c%20search_path%3Drampart_$RUN" || status=$?
psql "$PG" -qc "DROP SCHEMA rampart_$RUN CASCADE" >/dev/null
exit "${status:-0}"
fi
