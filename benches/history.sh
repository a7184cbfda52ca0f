#!/usr/bin/env bash
# Queries and hunts over history: `canh serve` (release build, detection off) stores LINES lines of
# the built-in syslog mix into the Parquet archive and a local ClickHouse (deploy/clickhouse.sh);
# then, with nothing else running:
#   * `canh hunt` with the starter rule pack over the archive, and over ClickHouse;
#   * `canh query` for the day's top talkers over the archive (DataFusion), and on ClickHouse.
# Each prints wall time and the CPU time of the canh process (user+sys, from `time`), and hunts
# their events per CPU-second.
#
# usage: benches/history.sh [LINES]   (default 2000000; KEEP=1 keeps the data folder;
#        CLICKHOUSE=off: the archive only, no ClickHouse server and no ClickHouse measures)
#   CANH_BIN / LOADGEN_BIN   binaries (default: target/release/…; build with
#                            `cargo build --release -p canh -p canh-benches`)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LINES=${1:-2000000}
BIN=${CANH_BIN:-$ROOT/target/release/canh}; LG=${LOADGEN_BIN:-$ROOT/target/release/canh-loadgen}
D=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port); HTTP=$(free_port)
cleanup() {
  [ -n "${KEEP:-}" ] && { echo "kept $D"; return; }
  [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  if [ "$USE_CH" = on ]; then bash "$ROOT/deploy/clickhouse.sh" stop "$D/ch" >/dev/null 2>&1 || true; fi
  rm -rf "$D"
}
USE_CH=${CLICKHOUSE:-on}
trap cleanup EXIT
if [ "$USE_CH" = on ]; then
  read -r CH_HTTP _ < <(bash "$ROOT/deploy/clickhouse.sh" start "$D/ch")
  CH=http://127.0.0.1:$CH_HTTP
fi
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
CONF
if [ "$USE_CH" = on ]; then printf '[clickhouse]\nurl = "%s"\n' "$CH" >>"$D/canh.toml"; fi
(cd "$D" && exec "$BIN" serve --config "$D/canh.toml" 2>"$D/canh.stderr") &
PID=$!
for _ in $(seq 100); do curl -fs "127.0.0.1:$HTTP/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
"$LG" --target "127.0.0.1:$PORT" --proto tcp --count "$LINES" --connections 4 --seed 11
for _ in $(seq 600); do
  if [ "$USE_CH" = on ]; then
    n=$(curl -s -m 10 "$CH/" --data-binary "SELECT count() FROM canh.events" || echo 0)
  else
    n=$(curl -s "127.0.0.1:$HTTP/metrics" | awk '/^canh_sink_rows_total\{.*table="events"/{s+=$2} END{printf "%d", s}')
  fi
  [ "${n:-0}" -ge "$LINES" ] && break
  sleep 1
done
kill -TERM $PID; wait $PID || true; PID=
echo "stored: $(du -sh "$D/data/archive/events" | cut -f1) of Parquet, $n rows ($([ "$USE_CH" = on ] && echo "counted in ClickHouse" || echo "archived"))"

measure() { # label, command…
  local label=$1; shift
  /usr/bin/time -o "$D/time" -f '%e %U %S' "$@" >"$D/out" 2>"$D/err"
  read -r wall user sys <"$D/time"
  echo "$label: wall=${wall}s cpu=$(python3 -c "print(round($user + $sys, 2))")s lines_out=$(wc -l <"$D/out")"
  tail -n 3 "$D/err" | sed 's/^/    /'
}
WINDOW=(--from 2000-01-01T00:00:00Z --to 2100-01-01T00:00:00Z)
measure "hunt over the archive" "$BIN" hunt --rules "$ROOT/rules" --data-dir "$D/data" "${WINDOW[@]}"
if [ "$USE_CH" = on ]; then
  measure "hunt over ClickHouse" "$BIN" hunt --rules "$ROOT/rules" --clickhouse-url "$CH" "${WINDOW[@]}"
fi
DAY=$(ls "$D/data/archive/events" | head -1 | cut -d= -f2)
measure "query top talkers, archive (DataFusion)" "$BIN" query --data-dir "$D/data" --format csv \
  "SELECT source_ip, count(*) AS n FROM events WHERE date = '$DAY' AND source_ip IS NOT NULL GROUP BY source_ip ORDER BY n DESC LIMIT 10"
if [ "$USE_CH" = on ]; then
  measure "query top talkers, ClickHouse 18.16" "$BIN" query --clickhouse-url "$CH" --format csv \
    "SELECT source_ip, count() AS n FROM events WHERE toYYYYMMDD(event_created_time) = ${DAY//-/} AND source_ip IS NOT NULL GROUP BY source_ip ORDER BY n DESC LIMIT 10"
fi
