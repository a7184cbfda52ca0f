#!/usr/bin/env bash
# ClickHouse stopped during sustained load: `canh serve` (release build) stores into the Parquet
# archive and a local ClickHouse (deploy/clickhouse.sh); canh-loadgen sends RATE lines/s over
# TCP for DURATION s; ClickHouse is stopped at OUTAGE_AT s for OUTAGE s and started again on
# the same ports. Every 5 s a line of the metrics: events archived, rows inserted / spooled /
# replayed into ClickHouse, spool bytes, files and oldest age, and whether ClickHouse is up.
# After the load, it waits (at most 15 min) for the spool to drain, then compares the lines
# sent, the archive's rows and ClickHouse's rows (each line counted once: uniqExact).
#
# usage: benches/clickhouse_outage.sh [RATE [DURATION [OUTAGE_AT [OUTAGE]]]]
#        (defaults 200000 150 30 60)
#   CANH_BIN / LOADGEN_BIN   binaries (default: target/release/…; build with
#                            `cargo build --release -p canh -p canh-benches`)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RATE=${1:-200000}; DUR=${2:-150}; OUTAGE_AT=${3:-30}; OUTAGE=${4:-60}
BIN=${CANH_BIN:-$ROOT/target/release/canh}; LG=${LOADGEN_BIN:-$ROOT/target/release/canh-loadgen}
D=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port); HTTP=$(free_port)
cleanup() {
  [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  bash "$ROOT/deploy/clickhouse.sh" stop "$D/ch" >/dev/null 2>&1 || true
  rm -rf "$D"
}
trap cleanup EXIT
read -r CH_HTTP CH_TCP < <(bash "$ROOT/deploy/clickhouse.sh" start "$D/ch")
chq() { curl -s -m 30 "http://127.0.0.1:$CH_HTTP/" --data-binary "$1"; }
cat >"$D/canh.toml" <<CONF
data_dir = "$D/data"
[http]
listen = "127.0.0.1:$HTTP"
[[syslog.tcp]]
name = "tcp"
listen = "127.0.0.1:$PORT"
[[syslog.udp]]
name = "udp"
listen = "127.0.0.1:0"
[[netflow.udp]]
name = "netflow"
listen = "127.0.0.1:0"
[clickhouse]
url = "http://127.0.0.1:$CH_HTTP"
CONF
# From an empty folder: no ./rules, so detection is off (this measures storage only).
(cd "$D" && exec "$BIN" serve --config "$D/canh.toml" 2>"$D/canh.stderr") &
PID=$!
for _ in $(seq 100); do curl -fs "127.0.0.1:$HTTP/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
metric() { curl -s "127.0.0.1:$HTTP/metrics" | awk -v m="$1" 'index($0, m) == 1 {s += $NF} END {printf "%.0f", s}'; }
line() {
  printf '%4ss archived=%s inserted=%s spooled=%s replayed=%s spool_bytes=%s spool_files=%s oldest_s=%s up=%s\n' \
    "$1" "$(metric 'canh_sink_rows_total{sink="parquet",table="events"')" \
    "$(metric 'canh_clickhouse_rows_total{kind="inserted",table="events"')" \
    "$(metric 'canh_clickhouse_rows_total{kind="spooled",table="events"')" \
    "$(metric 'canh_clickhouse_rows_total{kind="replayed",table="events"')" \
    "$(metric 'canh_clickhouse_state{kind="spool_bytes"')" \
    "$(metric 'canh_clickhouse_state{kind="spool_files"')" \
    "$(metric 'canh_clickhouse_state{kind="spool_oldest_age_seconds"')" \
    "$(metric 'canh_clickhouse_state{kind="up"')"
}
"$LG" --target "127.0.0.1:$PORT" --proto tcp --duration "$DUR" --rate "$RATE" --connections 4 \
  --seq --seed 7 >"$D/gen.out" &
GEN=$!
start=$(date +%s)
stopped=0 restarted=0
while kill -0 $GEN 2>/dev/null; do
  t=$(( $(date +%s) - start ))
  if [ $stopped = 0 ] && [ "$t" -ge "$OUTAGE_AT" ]; then
    bash "$ROOT/deploy/clickhouse.sh" stop "$D/ch"; stopped=1; echo "$t s: ClickHouse stopped"
  fi
  if [ $stopped = 1 ] && [ $restarted = 0 ] && [ "$t" -ge $((OUTAGE_AT + OUTAGE)) ]; then
    bash "$ROOT/deploy/clickhouse.sh" start "$D/ch" "$CH_HTTP" "$CH_TCP" >/dev/null
    restarted=1; echo "$t s: ClickHouse started"
  fi
  line "$t"; sleep 5
done
wait $GEN
cat "$D/gen.out"
SENT=$(grep -o 'sent=[0-9]*' "$D/gen.out" | cut -d= -f2)
if [ $restarted = 0 ]; then
  bash "$ROOT/deploy/clickhouse.sh" start "$D/ch" "$CH_HTTP" "$CH_TCP" >/dev/null; echo "ClickHouse started"
fi
end_load=$(date +%s)
for _ in $(seq 900); do
  ch=$(chq "SELECT count() FROM canh.events" 2>/dev/null || echo 0)
  files=$(metric 'canh_clickhouse_state{kind="spool_files"')
  [ "${ch:-0}" -ge "$SENT" ] && [ "$files" = 0 ] && break
  t=$(( $(date +%s) - start )); [ $(( t % 10 )) = 0 ] && line "$t"
  sleep 1
done
line "$(( $(date +%s) - start ))"
echo "drained $(( $(date +%s) - end_load )) s after the load ended"
kill -TERM $PID; wait $PID || true; PID=
ARCHIVED=$(python3 -c "import pyarrow.dataset as d; print(d.dataset('$D/data/archive/events', partitioning='hive').count_rows())")
read -r CH_ROWS CH_UNIQ < <(chq "SELECT count(), uniqExact(log_source_address, event_original) FROM canh.events")
echo "sent=$SENT archived=$ARCHIVED clickhouse_rows=$CH_ROWS clickhouse_distinct=$CH_UNIQ"
[ "$SENT" = "$ARCHIVED" ] && [ "$SENT" = "$CH_ROWS" ] && [ "$SENT" = "$CH_UNIQ" ] && echo "EXACT" || echo "MISMATCH"
