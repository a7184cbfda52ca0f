#!/usr/bin/env bash
# Fuzzes one parser target (or all of them) with cargo-fuzz on nightly.
#
#   bash scripts/fuzz.sh TARGET [SECONDS]     # e.g. scripts/fuzz.sh fortigate 600
#   bash scripts/fuzz.sh all [SECONDS]        # every target in turn
#
# The corpus of each syslog target starts from every line of fixtures/parsers (one file per
# line), of each NetFlow target (netflow_v5, netflow_v9, ipfix) from the logstash-codec-netflow
# cases; it grows in fuzz/corpus/TARGET; crashes land in fuzz/artifacts/TARGET.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?target name or "all"}
secs=${2:-600}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal

seed() {
  local dir=fuzz/corpus/$1
  mkdir -p "$dir"
  case $1 in
    netflow_v5|netflow_v9|ipfix) seed_flows "$dir"; return ;;
  esac
  local n=0
  for f in fixtures/parsers/*/*.log; do
    while IFS= read -r line; do
      n=$((n + 1))
      printf '%s' "$line" >"$dir/seed-$n"
    done <"$f"
  done
}

# NetFlow targets: each case of the logstash-codec-netflow corpus (its packets in order,
# joined by the targets' "FUZZ" separator), where ../shared is present.
seed_flows() {
  local corpus=../shared/corpora/logstash-codec-netflow
  [ -d "$corpus" ] || return 0
  python3 - "$corpus" "$1" <<'PY'
import json, sys, pathlib
corpus, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for i, line in enumerate(open(corpus / "spec_cases.jsonl")):
    case = json.loads(line)
    packets = [(corpus / "spec/codecs" / f).read_bytes() for f in case["dat_files_in_order"]]
    (out / f"seed-{i}").write_bytes(b"FUZZ".join(packets))
PY
}

run() {
  seed "$1"
  local max_len=4096
  case $1 in netflow_v5|netflow_v9|ipfix) max_len=16384 ;; esac
  (cd fuzz && cargo +nightly fuzz run "$1" "corpus/$1" -- -max_total_time="$secs" -max_len="$max_len" -rss_limit_mb=2048)
}

if [ "$target" = all ]; then
  for t in fuzz/fuzz_targets/*.rs; do run "$(basename "$t" .rs)"; done
else
  run "$target"
fi
