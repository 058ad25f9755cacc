#!/usr/bin/env bash
# The project's test command: formatting, lints, and every test of the workspace.
# Needs a Rust toolchain. It starts the services the tests need on loopback: the tansu broker
# (a Kafka-protocol stand-in, installed into ~/.cache/roomflow on first use, about 8 minutes)
# on KAFKA_PORT (default 19092, away from a Kafka you may run yourself), stopped again at the end.
# With KAFKA_BROKERS set, the tests use that broker instead and nothing is started.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${KAFKA_BROKERS:-}" ]]; then
  export KAFKA_PORT="${KAFKA_PORT:-19092}"
  export KAFKA_STATE="target/kafka-test"
  # A fresh store per run: topic names are unique anyway, this only keeps the store small.
  scripts/kafka.sh stop >/dev/null 2>&1 || true
  rm -rf "$KAFKA_STATE"
  scripts/kafka.sh start
  trap 'scripts/kafka.sh stop' EXIT
  export KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  # nextest does not run doctests.
  cargo test --workspace --locked --doc
else
  cargo test --workspace --locked --no-fail-fast
fi
