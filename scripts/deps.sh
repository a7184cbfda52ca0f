#!/usr/bin/env bash
# Installs what building and testing Canh needs on a fresh Debian 12 machine; does nothing
# when everything is already there. Run as root (or with sudo available).
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

# Debian packages: a C toolchain for -sys crates, logger (bsdutils) for the end-to-end tests,
# python3 + pip for pyarrow, curl for health checks, softflowd (a real NetFlow/IPFIX exporter)
# with tshark and dumpcap (an independent decoder of what it exports) for the flow tests,
# Hyperscan for the rule matcher.
need=()
command -v cc >/dev/null || need+=(build-essential)
command -v logger >/dev/null || need+=(bsdutils)
command -v python3 >/dev/null || need+=(python3)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
command -v curl >/dev/null || need+=(curl)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v softflowd >/dev/null || need+=(softflowd)
command -v tshark >/dev/null || need+=(tshark)
# Hyperscan for the compiled rule matcher (the hyperscan crate links libhs via pkg-config).
pkg-config --exists libhs 2>/dev/null || need+=(libhyperscan-dev)
# ClickHouse 18.16 for the ClickHouse tests (deploy/clickhouse.sh starts it; installed here so
# that tests starting servers at once do not race for the package manager).
command -v clickhouse-server >/dev/null || need+=(clickhouse-server clickhouse-client)
# openssl: the TLS tests make their own CA and certificates.
command -v openssl >/dev/null || need+=(openssl)
# syslog-ng: the receiver of alerts forwarded as CEF over syslog-TLS (deploy/syslog-ng.sh).
command -v syslog-ng >/dev/null || need+=(syslog-ng-core)
if [ ${#need[@]} -gt 0 ]; then
  echo "deps: installing Debian packages: ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# pyarrow: an independent reader of the Parquet archive, used by the end-to-end tests.
if ! python3 -c 'import pyarrow' 2>/dev/null; then
  echo "deps: installing pyarrow" >&2
  python3 -m pip install -q pyarrow 2>/dev/null || python3 -m pip install -q --break-system-packages pyarrow
fi

# chDB (ClickHouse 26 in process): the tests check the DDL Canh generates for current ClickHouse
# releases with it (Debian's server, installed above, is 18.16).
if ! python3 -c 'import chdb' 2>/dev/null; then
  echo "deps: installing chdb" >&2
  python3 -m pip install -q chdb 2>/dev/null || python3 -m pip install -q --break-system-packages chdb
fi

# The TAXII 2.1 reference server (medallion, behind gunicorn for mutual TLS) and the OASIS STIX
# validator, for the forwarding tests (deploy/taxii.sh starts the server).
for mod in medallion:medallion==3.0.0 stix2validator:stix2-validator gunicorn:gunicorn; do
  if ! python3 -c "import ${mod%%:*}" 2>/dev/null; then
    echo "deps: installing ${mod#*:}" >&2
    python3 -m pip install -q "${mod#*:}" 2>/dev/null || python3 -m pip install -q --break-system-packages "${mod#*:}"
  fi
done

command -v cargo >/dev/null || { echo "deps: cargo (Rust toolchain) is required" >&2; exit 1; }
