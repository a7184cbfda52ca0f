#!/bin/bash
# End-to-end NetFlow throughput of the real `canh serve` (release build): the peers' own sender
# (../shared/peers/nf_send.py: max-rate v5 with 30 records per packet, or v9 with a template
# and 20 records per packet) over loopback into the Parquet archive's flows table, measured
# like ../shared/peers/nfcapd.sh so the figures are comparable: CPU time of the server process
# from /proc, end = the archive's flow-row counter quiet for 1.5 s, peak RSS from VmHWM.
#
# usage: benches/e2e_flows.sh [v5|v9] [seconds]
#   CANH_BIN   binary (default target/release/canh; `cargo build --release -p canh`)
#   SOCKETS    NetFlow listener sockets (SO_REUSEPORT), default 1
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/peers}
. "$PEERS/lib.sh"
VER=${1:-v5}; DUR=${2:-10}
BIN=${CANH_BIN:-$ROOT/target/release/canh}
D=$PEERS_DIR/canh-flows; PORT=22055; HTTP=29301
mkdir -p "$D"; rm -rf "$D/data"
cat > "$D/canh.toml" <<CONF
data_dir = "$D/data"
[http]
listen = "127.0.0.1:$HTTP"
[[syslog.udp]]
name = "udp"
listen = "127.0.0.1:0"
[[syslog.tcp]]
name = "tcp"
listen = "127.0.0.1:0"
[[netflow.udp]]
name = "netflow"
listen = "127.0.0.1:$PORT"
sockets = ${SOCKETS:-1}
receive_buffer = "32 MiB"
CONF
"$BIN" serve --config "$D/canh.toml" 2>"$D/canh.stderr" &
PID=$!
wait_port udp $PORT || { kill $PID; cat "$D/canh.stderr"; exit 1; }; sleep 0.3
metric() { curl -s "127.0.0.1:$HTTP/metrics" | awk -v m="$1" 'index($0, m) == 1 {s+=$2} END{printf "%d", s}'; }
rows() { metric 'canh_sink_rows_total{sink="parquet",table="flows"}'; }
C0=$(cpu_ticks $PID); T0=$(now)
SENT=$(python3 "$PEERS/nf_send.py" "$VER" "$DUR" 127.0.0.1 $PORT)
# Wait until the archive has stopped growing for 1.5 s.
last=-1; tl=$(now)
while :; do r=$(rows); if [ "$r" != "$last" ]; then last=$r; tl=$(now); fi
  awk -v a="$(now)" -v b="$tl" 'BEGIN{exit !(a-b>1.5)}' && break; sleep 0.1; done
T1=$tl; C1=$(cpu_ticks $PID); RSS=$(peak_rss_kb $PID); N=$last
DECODED=$(metric canh_flows_total)
DROPS=$(curl -s "127.0.0.1:$HTTP/metrics" | awk '/^canh_collector_dropped_messages_total\{listener="netflow"/{print $1"="$2}' | tr '\n' ' ')
ERRORS=$(metric canh_flow_decode_errors_total); GAPS=$(metric canh_flow_sequence_gap_total)
kill -TERM $PID; wait $PID; RC=$?
BYTES=$(du -sb "$D/data/archive/flows" 2>/dev/null | cut -f1)
EL=$(calc "$T1-$T0" 2); CPU=$(calc "($C1-$C0)/$CLK_TCK" 2)
echo "peer=canh load=netflow-$VER sent_${SENT// /_} stored_flows=$N decoded_flows=$DECODED elapsed_s=$EL flows_per_s=$(calc "$N/$EL" 0) cpu_s=$CPU flows_per_cpu_s=$(calc "$N/($CPU>0?$CPU:1)" 0) peak_rss_mb=$(calc "$RSS/1024" 1) archive_mb=$(calc "${BYTES:-0}/1048576" 1) decode_errors=$ERRORS sequence_gaps=$GAPS exit=$RC drops: ${DROPS:-none}"
