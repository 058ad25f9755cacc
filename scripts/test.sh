#!/usr/bin/env bash
# The project's test command: formatting, lints, and every test of the workspace.
# Needs a Rust toolchain, a JDK 17+ and Maven (for Kafka), Python 3 (for the MongoDB stand-in), and
# Node.js with npm plus Chromium for the dashboard's browser test (scripts/browser-test.sh installs
# Chromium with apt-get when it can, and says so when it skips).
# It starts the services the tests need on loopback, on ports away from any you may run yourself:
# Apache Kafka (assembled from Maven Central into ~/.cache/roomflow on first use, seconds; see
# scripts/kafka.sh) on KAFKA_PORT (default 19092), and the nx-27017 server (a MongoDB-protocol
# stand-in, installed into the same cache from PyPI) on MONGO_PORT (default 27117), both fresh and
# both stopped again at the end. With KAFKA_BROKERS or ROOMFLOW_TEST_MONGO set, the tests use
# those instead and nothing is started for them.
set -euo pipefail
cd "$(dirname "$0")/.."

# A fresh clone's build and the tests' services take a few GB; on a fuller disk cargo fails in the
# middle of compiling librdkafka with a message that hides why, so say it first.
free_kib=$(df -Pk . | awk 'NR == 2 { print $4 }')
if (( free_kib < 6 * 1024 * 1024 )); then
  echo "test.sh: warning: only $((free_kib / 1024)) MiB free on this disk; building and testing needs about 6 GiB" >&2
fi

# The services this script started, stopped again on exit.
started=()
trap 'for service in "${started[@]}"; do scripts/$service.sh stop; done' EXIT

if [[ -z "${KAFKA_BROKERS:-}" ]]; then
  export KAFKA_PORT="${KAFKA_PORT:-19092}"
  export KAFKA_STATE="target/kafka-test"
  # A fresh broker per run: no topic, group or offset of an earlier run can leak into this one.
  scripts/kafka.sh stop >/dev/null 2>&1 || true
  rm -rf "$KAFKA_STATE"
  scripts/kafka.sh start
  started+=(kafka)
  export KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"
fi

if [[ -z "${ROOMFLOW_TEST_MONGO:-}" ]]; then
  export MONGO_PORT="${MONGO_PORT:-27117}"
  export MONGO_STATE="target/mongo-test"
  scripts/mongo.sh stop >/dev/null 2>&1 || true
  scripts/mongo.sh start
  started+=(mongo)
  export ROOMFLOW_TEST_MONGO="mongodb://127.0.0.1:$MONGO_PORT"
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

# The dashboard in a real browser (installs Chromium and Playwright when it can; says so when not).
scripts/browser-test.sh
