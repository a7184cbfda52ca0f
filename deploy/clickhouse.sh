#!/usr/bin/env bash
# Starts and stops a ClickHouse server on loopback, in a folder of its own, for tests and for
# trying Canh with ClickHouse on one machine. Installs the Debian package (clickhouse-server,
# 18.16 on Debian 12) when the server is missing.
#
#   deploy/clickhouse.sh start DIR [HTTP_PORT [TCP_PORT [HTTPS_PORT]]]
#                                       prints HTTP_PORT TCP_PORT [HTTPS_PORT]
#   deploy/clickhouse.sh stop DIR
#
# DIR        holds the config, data, logs and pid file of this server (created; reused when it
#            exists, so a server stopped and started again keeps its tables)
# HTTP_PORT  the HTTP interface Canh talks to (default: a free port); TCP_PORT the native
#            interface (default: a free port; shards of a cluster talk over it)
#
# CLUSTER="NAME=TCP_PORT,TCP_PORT,…" adds a cluster NAME with one shard per native port on
# 127.0.0.1 (every server of the cluster is started with the same CLUSTER).
# TLS_DIR=DIR also serves HTTPS (printed as a third port) with DIR/server.crt and
# DIR/server.key; with DIR/ca.crt there, clients must present a certificate that CA signed.
# PASSWORD=P gives the user `default` that password.
#
# Listens on 127.0.0.1 only; user `default` without a password. `start` waits for /ping (at
# most 30 s) and fails with the server's error log if it does not answer; `stop` waits for the
# process to exit (at most 30 s, then kills it). Neither ever hangs.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

usage() {
  echo "usage: $0 start DIR [HTTP_PORT [TCP_PORT [HTTPS_PORT]]] | stop DIR" >&2
  exit 2
}
[ $# -ge 2 ] || usage
cmd=$1 dir=$2

stop() {
  stop_pidfile "$dir/server.pid"
}

install() {
  command -v clickhouse-server >/dev/null && return 0
  echo "clickhouse.sh: installing clickhouse-server (Debian package)" >&2
  apt_install clickhouse-server clickhouse-client
}

cluster_xml() {
  [ -n "${CLUSTER:-}" ] || return 0
  local name=${CLUSTER%%=*} ports=${CLUSTER#*=}
  echo "  <remote_servers>"
  echo "    <$name>"
  for p in ${ports//,/ }; do
    echo "      <shard><replica><host>127.0.0.1</host><port>$p</port></replica></shard>"
  done
  echo "    </$name>"
  echo "  </remote_servers>"
}

tls_xml() {
  [ -n "${TLS_DIR:-}" ] || return 0
  local tls
  tls=$(cd "$TLS_DIR" && pwd)
  echo "  <https_port>$1</https_port>"
  echo "  <openSSL><server>"
  echo "    <certificateFile>$tls/server.crt</certificateFile>"
  echo "    <privateKeyFile>$tls/server.key</privateKeyFile>"
  if [ -f "$tls/ca.crt" ]; then
    echo "    <verificationMode>strict</verificationMode><caConfig>$tls/ca.crt</caConfig>"
  else
    echo "    <verificationMode>none</verificationMode>"
  fi
  echo "    <loadDefaultCAFile>false</loadDefaultCAFile>"
  echo "    <disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1</disableProtocols>"
  echo "    <preferServerCiphers>true</preferServerCiphers>"
  echo "  </server></openSSL>"
}

start() {
  install
  local http=${1:-} tcp=${2:-} https=${3:-}
  mkdir -p "$dir"/{data,tmp,log,user_files,format_schemas}
  dir=$(cd "$dir" && pwd)
  stop
  [ -n "$http" ] || http=$(free_port)
  [ -n "$tcp" ] || tcp=$(free_port)
  if [ -n "${TLS_DIR:-}" ] && [ -z "$https" ]; then https=$(free_port); fi
  cat >"$dir/config.xml" <<EOF
<yandex>
  <logger>
    <level>warning</level>
    <log>$dir/log/server.log</log>
    <errorlog>$dir/log/error.log</errorlog>
    <size>100M</size>
    <count>2</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>$http</http_port>
  <tcp_port>$tcp</tcp_port>
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <user_files_path>$dir/user_files/</user_files_path>
  <format_schema_path>$dir/format_schemas/</format_schema_path>
  <users_config>$dir/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>64</max_concurrent_queries>
$(cluster_xml)
$(tls_xml "$https")
</yandex>
EOF
  cat >"$dir/users.xml" <<EOF
<yandex>
  <profiles>
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
      <load_balancing>random</load_balancing>
    </default>
  </profiles>
  <users>
    <default>
      <password>${PASSWORD:-}</password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries>
        <errors>0</errors>
        <result_rows>0</result_rows>
        <read_rows>0</read_rows>
        <execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
EOF
  clickhouse-server --config-file="$dir/config.xml" --pid-file="$dir/server.pid" --daemon \
    >"$dir/log/stdout.log" 2>&1 || true
  for _ in $(seq 300); do
    if curl -fsS -m 1 "http://127.0.0.1:$http/ping" >/dev/null 2>&1; then
      echo "$http $tcp${https:+ $https}"
      return 0
    fi
    sleep 0.1
  done
  echo "clickhouse.sh: the server did not answer on 127.0.0.1:$http within 30 s" >&2
  tail -n 20 "$dir/log/error.log" "$dir/log/stdout.log" >&2 2>/dev/null || true
  stop
  exit 1
}

case $cmd in
  start) shift 2; start "$@" ;;
  stop) stop ;;
  *) usage ;;
esac
