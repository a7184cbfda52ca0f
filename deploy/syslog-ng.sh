#!/usr/bin/env bash
# Starts and stops a syslog-ng receiver on loopback, in a folder of its own: the far end of a
# `syslog+tls://` (or `syslog+tcp://`) alert destination, for tests and for trying forwarding
# on one machine. Installs the Debian package (syslog-ng-core) when syslog-ng is missing.
#
#   deploy/syslog-ng.sh start DIR [PORT]      prints PORT
#   deploy/syslog-ng.sh stop DIR
#
# It receives RFC 5424 messages with octet-counted framing (RFC 5425 over TLS, RFC 6587 over
# TCP), as syslog-ng's syslog() source does, and writes one line per message to
# DIR/messages.log: `RECEIVED ISODATE HOST PROGRAM MSGID MESSAGE`, RECEIVED being the receive
# time (Unix seconds, microseconds) and the rest the header as syslog-ng parsed it.
#
# TLS_DIR=DIR serves TLS with DIR/server.crt and DIR/server.key; with DIR/ca.crt there,
# senders must present a certificate that CA signed. Without TLS_DIR: plain TCP.
# `start` waits for the port (at most 30 s); `stop` waits for the process to exit (at most
# 30 s, then kills it). A stopped receiver started again keeps appending to messages.log.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

usage() {
  echo "usage: $0 start DIR [PORT] | stop DIR" >&2
  exit 2
}
[ $# -ge 2 ] || usage
cmd=$1 dir=$2

stop() {
  stop_pidfile "$dir/server.pid"
}

case $cmd in
stop)
  stop
  ;;
start)
  if ! command -v syslog-ng >/dev/null; then
    echo "syslog-ng.sh: installing syslog-ng-core (Debian package)" >&2
    apt_install syslog-ng-core
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  port=${3:-$(free_port)}
  stop
  if [ -n "${TLS_DIR:-}" ]; then
    tls_dir=$(cd "$TLS_DIR" && pwd)
    verify="optional-untrusted"
    ca=""
    if [ -f "$tls_dir/ca.crt" ]; then
      verify="required-trusted"
      ca="ca-file(\"$tls_dir/ca.crt\")"
    fi
    transport="transport(\"tls\") tls(key-file(\"$tls_dir/server.key\") cert-file(\"$tls_dir/server.crt\") $ca peer-verify($verify))"
  else
    transport='transport("tcp")'
  fi
  cat >"$dir/syslog-ng.conf" <<CONF
@version: 3.38
options { keep_hostname(yes); use_dns(no); dns_cache(no); stats_freq(0); flush_lines(0); frac_digits(6); };
source s_net { syslog(ip(127.0.0.1) port($port) $transport max-connections(64)); };
destination d_file { file("$dir/messages.log" template("\${R_UNIXTIME} \${ISODATE} \${HOST} \${PROGRAM} \${MSGID} \${MESSAGE}\n")); };
log { source(s_net); destination(d_file); };
CONF
  syslog-ng -F --no-caps -f "$dir/syslog-ng.conf" -p "$dir/syslog-ng.pid" -R "$dir/syslog-ng.persist" \
    -c "$dir/syslog-ng.ctl" >>"$dir/syslog-ng.log" 2>&1 </dev/null &
  echo $! >"$dir/server.pid"
  if wait_port "$port" "$dir/server.pid"; then
    echo "$port"
    exit 0
  fi
  echo "syslog-ng.sh: syslog-ng did not listen on $port:" >&2
  cat "$dir/syslog-ng.log" >&2
  stop
  exit 1
  ;;
*)
  usage
  ;;
esac
