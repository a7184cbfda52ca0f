#!/usr/bin/env bash
# Fuzzes one parser target (or all of them) with cargo-fuzz on nightly.
#
#   bash scripts/fuzz.sh TARGET [SECONDS]     # e.g. scripts/fuzz.sh fortigate 600
#   bash scripts/fuzz.sh all [SECONDS]        # every target in turn
#
# The corpus of each target starts from every line of fixtures/parsers (one file per line) and
# grows in fuzz/corpus/TARGET; crashes land in fuzz/artifacts/TARGET.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?target name or "all"}
secs=${2:-600}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal

seed() {
  local dir=fuzz/corpus/$1
  mkdir -p "$dir"
  local n=0
  for f in fixtures/parsers/*/*.log; do
    while IFS= read -r line; do
      n=$((n + 1))
      printf '%s' "$line" >"$dir/seed-$n"
    done <"$f"
  done
}

run() {
  seed "$1"
  (cd fuzz && cargo +nightly fuzz run "$1" "corpus/$1" -- -max_total_time="$secs" -max_len=4096 -rss_limit_mb=2048)
}

if [ "$target" = all ]; then
  for t in fuzz/fuzz_targets/*.rs; do run "$(basename "$t" .rs)"; done
else
  run "$target"
fi
