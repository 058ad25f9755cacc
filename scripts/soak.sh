#!/usr/bin/env bash
# The soak: `roomflow run` (with MongoDB checkpoints and the alpha topic) killed with SIGKILL
# SOAK_KILLS times (default 10) at random points over SOAK_READINGS readings (default 1,000,000),
# each time after a new checkpoint; every restart must resume from a checkpoint, and the
# collections and the alpha topic must end identical to an uninterrupted run's. Prints
# "soak: N SIGKILLs …, R/N restarts resumed …". Minutes long, so not part of scripts/test.sh.
#
#   scripts/soak.sh                      # 10 kills, 1M readings
#   SOAK_KILLS=20 SOAK_READINGS=1000000 scripts/soak.sh
#
# Starts its own Apache Kafka (port 19700) and MongoDB stand-in (27317), fresh, and stops them at
# the end; KAFKA_BROKERS / ROOMFLOW_TEST_MONGO set means "use those". SOAK_RELEASE=1 builds with
# --release (about 7 minutes more here, a faster job).
set -euo pipefail
cd "$(dirname "$0")/.."

started=()
trap 'for service in "${started[@]}"; do scripts/$service.sh stop; done' EXIT

if [[ -z "${KAFKA_BROKERS:-}" ]]; then
  export KAFKA_PORT=19700 KAFKA_STATE=target/kafka-soak
  scripts/kafka.sh stop >/dev/null 2>&1 || true
  rm -rf "$KAFKA_STATE"
  scripts/kafka.sh start
  started+=(kafka)
  export KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"
fi
if [[ -z "${ROOMFLOW_TEST_MONGO:-}" ]]; then
  export MONGO_PORT=27317 MONGO_STATE=target/mongo-soak
  scripts/mongo.sh stop >/dev/null 2>&1 || true
  scripts/mongo.sh start
  started+=(mongo)
  export ROOMFLOW_TEST_MONGO="mongodb://127.0.0.1:$MONGO_PORT"
fi

profile=()
[[ "${SOAK_RELEASE:-0}" == 1 ]] && profile=(--release)
export SOAK_KILLS="${SOAK_KILLS:-10}" SOAK_READINGS="${SOAK_READINGS:-1000000}"
set +e
cargo test "${profile[@]}" --locked --test mongo_job soak_ -- --ignored --nocapture 2>&1 |
  grep -E '^soak:|panicked|test result|FAILED|^---'
# The test's own status, not grep's (read before any other command replaces PIPESTATUS: with
# `|| true` after the pipeline it was true's, and a failed soak exited 0).
status=${PIPESTATUS[0]}
set -e
exit "$status"
