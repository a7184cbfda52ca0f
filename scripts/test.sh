#!/usr/bin/env bash
# The whole test suite, as CI runs it: install what is missing, check formatting and lints,
# run every test. Tests that need ../shared/corpora skip (with a note) where it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# The rule matcher without Hyperscan (the `hyperscan` feature off) must give the same answers.
cargo test -p canh-rules --no-default-features --locked
