#!/usr/bin/env bash
# Runs Canh on the embedded default: syslog on UDP and TCP port 5514, Parquet archive in
# ./data, metrics on http://127.0.0.1:9300/metrics. Extra arguments go to `canh serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
exec cargo run --release --locked --bin canh -- serve "$@"
