#!/usr/bin/env bash
# Starts and stops a TAXII 2.1 server on loopback, in a folder of its own: the OASIS reference
# server medallion (PyPI, memory backend), the far end of a `taxii+http(s)://` alert
# destination, for tests and for trying forwarding on one machine. Installs medallion 3.0 (and
# gunicorn for TLS) with pip when missing.
#
#   deploy/taxii.sh start DIR [PORT]     prints PORT COLLECTION_ID
#   deploy/taxii.sh stop DIR
#
# The server has one API root, /api1/, with one writable collection; its objects are kept in
# memory (a restart empties it). Users: $TAXII_USER:$TAXII_PASSWORD (default canh:canh-secret).
# MAX_CONTENT_LENGTH sets the API root's limit on a request (default 10485760 bytes).
# TLS_DIR=DIR serves HTTPS through gunicorn with DIR/server.crt and DIR/server.key, and with
# DIR/ca.crt requires client certificates that CA signed (mutual TLS). Without it, medallion's
# own runner serves plain HTTP.
# `start` waits for the discovery endpoint (at most 30 s); `stop` waits for the process to exit
# (at most 30 s, then kills it).
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
  python3 -c 'import medallion' 2>/dev/null || pip_install 'medallion==3.0.0'
  if [ -n "${TLS_DIR:-}" ]; then
    python3 -c 'import gunicorn' 2>/dev/null || pip_install gunicorn
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  port=${3:-$(free_port)}
  stop
  scheme=http
  [ -n "${TLS_DIR:-}" ] && scheme=https
  collection=${COLLECTION_ID:-365fed99-08fa-fdcd-a1b3-fb247eb41d01}
  user=${TAXII_USER:-canh}
  password=${TAXII_PASSWORD:-canh-secret}
  max=${MAX_CONTENT_LENGTH:-10485760}
  python3 - "$dir" "$scheme://127.0.0.1:$port" "$collection" "$user" "$password" "$max" <<'PY'
import json, sys
d, base, coll, user, pw, mx = sys.argv[1:]
data = {
    "/discovery": {
        "title": "Canh test TAXII server",
        "description": "medallion, memory backend",
        "default": f"{base}/api1/",
        "api_roots": [f"{base}/api1/"],
    },
    "api1": {
        "information": {
            "title": "Alerts",
            "description": "Alerts forwarded by Canh",
            "versions": ["application/taxii+json;version=2.1"],
            "max_content_length": int(mx),
        },
        "status": [],
        "collections": [{
            "id": coll,
            "title": "Canh alerts",
            "description": "",
            "can_read": True,
            "can_write": True,
            "media_types": ["application/stix+json;version=2.1"],
            "objects": [],
            "manifest": [],
        }],
    },
}
json.dump(data, open(f"{d}/data.json", "w"), indent=1)
config = {
    "backend": {
        "module": "medallion.backends.memory_backend",
        "module_class": "MemoryBackend",
        "filename": f"{d}/data.json",
    },
    "users": {user: pw},
    "taxii": {"max_page_size": 100000},
}
json.dump(config, open(f"{d}/config.json", "w"), indent=1)
PY
  if [ -n "${TLS_DIR:-}" ]; then
    tls_dir=$(cd "$TLS_DIR" && pwd)
    client=()
    if [ -f "$tls_dir/ca.crt" ]; then
      # ssl.CERT_REQUIRED: no client certificate, no connection.
      client=(--ca-certs "$tls_dir/ca.crt" --cert-reqs 2)
    fi
    (cd "$dir" && exec python3 -m gunicorn --workers 1 --bind "127.0.0.1:$port" \
      --certfile "$tls_dir/server.crt" --keyfile "$tls_dir/server.key" "${client[@]}" \
      "medallion:load_app('$dir/config.json')") >>"$dir/server.log" 2>&1 </dev/null &
  else
    (cd "$dir" && exec medallion --host 127.0.0.1 --port "$port" "$dir/config.json") \
      >>"$dir/server.log" 2>&1 </dev/null &
  fi
  echo $! >"$dir/server.pid"
  if wait_port "$port" "$dir/server.pid"; then
    echo "$port $collection"
    exit 0
  fi
  echo "taxii.sh: the TAXII server did not start on $port:" >&2
  cat "$dir/server.log" >&2
  stop
  exit 1
  ;;
*)
  usage
  ;;
esac
