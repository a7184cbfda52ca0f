#!/usr/bin/env bash
# Replays a packet capture through softflowd, a real NetFlow/IPFIX exporter, to a collector on
# loopback, and records the export traffic with dumpcap so that tshark can decode it apart
# from Canh.
#
#   deploy/flow-export.sh PCAP VERSION PORT CAPTURE_OUT
#
# PCAP         traffic for softflowd to turn into flows (softflowd -r)
# VERSION      5, 9 or 10 (IPFIX)
# PORT         the collector's UDP port on 127.0.0.1
# CAPTURE_OUT  where the export datagrams are written (pcapng)
#
# softflowd reads the whole file, then expires and exports every flow and exits. The capture
# starts before it and stops after it. Every step has a time limit; the script never hangs.
# Needs softflowd and dumpcap (Debian: softflowd, tshark; scripts/deps.sh installs them) and
# the right to capture on lo (root, or sudo).
set -euo pipefail

if [ $# -ne 4 ]; then
  echo "usage: $0 PCAP VERSION PORT CAPTURE_OUT" >&2
  exit 2
fi
pcap=$1 version=$2 port=$3 out=$4
for tool in softflowd dumpcap; do
  command -v "$tool" >/dev/null || { echo "$0: $tool not found: run scripts/deps.sh" >&2; exit 2; }
done
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo -n"; fi

work=$(mktemp -d)
dumpcap_pid=""
cleanup() {
  if [ -n "$dumpcap_pid" ]; then $SUDO kill "$dumpcap_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Start the capture and wait until it is on.
$SUDO timeout 120 dumpcap -q -i lo -f "udp and dst port $port" -w "$work/export.pcapng" \
  2>"$work/dumpcap.log" &
dumpcap_pid=$!
for _ in $(seq 100); do
  grep -q "Capturing on" "$work/dumpcap.log" && break
  kill -0 "$dumpcap_pid" 2>/dev/null || { cat "$work/dumpcap.log" >&2; exit 1; }
  sleep 0.1
done
grep -q "Capturing on" "$work/dumpcap.log" || { echo "$0: dumpcap did not start" >&2; exit 1; }

# softflowd in the foreground (-d); its statistics go to stderr. softflowd 1.1.0 never ends
# after the capture when its control socket path is long (seen here from 13 characters on:
# "softflowd.ctl" hangs, "ctl" does not), so it runs in the work folder with short names.
pcap=$(realpath "$pcap")
(cd "$work" && timeout 60 softflowd -d -r "$pcap" -v "$version" -n "127.0.0.1:$port" \
  -p pid -c ctl >&2)

# Let the last datagrams reach the capture, then stop it and wait for the file.
sleep 1
$SUDO kill -INT "$dumpcap_pid"
wait "$dumpcap_pid" || true
dumpcap_pid=""
grep -E "Packets (captured|received)" "$work/dumpcap.log" >&2 || true
cp "$work/export.pcapng" "$out"
