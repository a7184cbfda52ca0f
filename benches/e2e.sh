#!/bin/bash
# End-to-end throughput of the real `canh serve` (release build): load over loopback into the
# Parquet archive, measured like ../shared/peers/*.sh so the figures are comparable:
# same data file (the peers' gen_syslog.py mix), CPU time of the server process from /proc,
# end = the archive's row counter quiet for 1.5 s, peak RSS from VmHWM.
#
# usage: benches/e2e.sh [tcp|udp] [seconds] [connections]
#   CANH_BIN / LOADGEN_BIN   binaries (default: target/release/…; build with
#                            `cargo build --release -p canh -p canh-benches`)
#   GEN=loggen               drive with syslog-ng's loggen, exactly as the peer scripts do
#   DETECT=off               no rules (the peers only parse and write); default: ./rules runs
#   WRITERS=N                archive writer threads (default: Canh's, half the cores)
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/peers}
. "$PEERS/lib.sh"
PROTO=${1:-tcp}; DUR=${2:-10}; CONNS=${3:-1}
BIN=${CANH_BIN:-$ROOT/target/release/canh}; LG=${LOADGEN_BIN:-$ROOT/target/release/canh-loadgen}
D=$PEERS_DIR/canh; DATA=$PEERS_DIR/data/syslog_mix.log; PORT=25514; HTTP=29300
mkdir -p "$D" "$(dirname "$DATA")"; rm -rf "$D/data"
[ -f "$DATA" ] || python3 "$PEERS/gen_syslog.py" "$DATA" 100000
cat > "$D/canh.toml" <<CONF
data_dir = "$D/data"
[http]
listen = "127.0.0.1:$HTTP"
[[syslog.udp]]
name = "udp"
listen = "127.0.0.1:$PORT"
receive_buffer = "32 MiB"
[[syslog.tcp]]
name = "tcp"
listen = "127.0.0.1:$PORT"
# Loopback only, and off the well-known NetFlow ports a peer may be using.
[[netflow.udp]]
name = "netflow"
listen = "127.0.0.1:0"
CONF
[ "${DETECT:-}" = off ] && printf '[detection]\nrules = []\n' >> "$D/canh.toml"
[ -n "${WRITERS:-}" ] && printf '[archive]\nwriters = %s\n' "$WRITERS" >> "$D/canh.toml"
"$BIN" serve --config "$D/canh.toml" 2>"$D/canh.stderr" &
PID=$!
wait_port tcp $PORT || { kill $PID; cat "$D/canh.stderr"; exit 1; }; sleep 0.3
# Event rows only (with detection on, the archive also gets alert rows).
rows() { curl -s "127.0.0.1:$HTTP/metrics" | awk '/^canh_sink_rows_total\{.*table="events"/{s+=$2} END{printf "%d", s}'; }
alerts() { curl -s "127.0.0.1:$HTTP/metrics" | awk '/^canh_detection_alerts_total/{s+=$2} END{printf "%d", s}'; }
C0=$(cpu_ticks $PID); T0=$(now)
if [ "${GEN:-}" = loggen ]; then
  [ "$PROTO" = udp ] && LF=--dgram || LF=--stream
  loggen --inet $LF --rate 10000000 --interval "$DUR" -R "$DATA" -l -d 127.0.0.1 $PORT >"$D/gen.out" 2>&1
  SENT=$(grep -o 'count=[0-9]*' "$D/gen.out" | tail -1 | cut -d= -f2)
else
  [ "$PROTO" = udp ] && P=udp || P=tcp
  "$LG" --target 127.0.0.1:$PORT --proto $P --duration "$DUR" --connections "$CONNS" --file "$DATA" >"$D/gen.out"
  SENT=$(grep -o 'sent=[0-9]*' "$D/gen.out" | cut -d= -f2)
fi
# Wait until the archive has stopped growing for 1.5 s (the rows counter; batches flush in 50 ms).
last=-1; tl=$(now)
while :; do r=$(rows); if [ "$r" != "$last" ]; then last=$r; tl=$(now); fi
  awk -v a="$(now)" -v b="$tl" 'BEGIN{exit !(a-b>1.5)}' && break; sleep 0.1; done
T1=$tl; C1=$(cpu_ticks $PID); RSS=$(peak_rss_kb $PID); N=$last; ALERTS=$(alerts)
DROPS=$(curl -s "127.0.0.1:$HTTP/metrics" | awk '/^canh_collector_dropped_messages_total/{print $1"="$2}' | tr '\n' ' ')
kill -TERM $PID; wait $PID; RC=$?
FILES=$(find "$D/data/archive" -name '*.parquet' | wc -l); BYTES=$(du -sb "$D/data/archive" | cut -f1)
EL=$(calc "$T1-$T0" 2); CPU=$(calc "($C1-$C0)/$CLK_TCK" 2)
echo "peer=canh proto=$PROTO gen=${GEN:-canh-loadgen} conns=$CONNS sent=${SENT:-?} written=$N alerts=$ALERTS elapsed_s=$EL msgs_per_s=$(calc "$N/$EL" 0) cpu_s=$CPU msgs_per_cpu_s=$(calc "$N/($CPU>0?$CPU:1)" 0) peak_rss_mb=$(calc "$RSS/1024" 1) parquet_files=$FILES archive_mb=$(calc "$BYTES/1048576" 1) exit=$RC drops: ${DROPS:-none}"
