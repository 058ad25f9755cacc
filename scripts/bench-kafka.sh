#!/usr/bin/env bash
# Benchmarks the streaming job against the local broker (scripts/kafka.sh; started if needed).
#
# 1. Throughput: publish BENCH_READINGS (default 1M) simulated readings of 100 rooms to a topic
#    with 4 partitions, then time, from start until caught up, a bare rdkafka consumer reading
#    the topic and `roomflow run` with -w 1 and -w 2 (each into its own alpha topic).
# 2. Latency: `roomflow run -w 2` on a live topic fed by `roomflow simulate` at BENCH_RATE
#    (default 5,000) readings/s for BENCH_SECONDS (default 40); the time from each reading's
#    produce time to its temperature delta being produced to alpha: p50, p99, max (the first
#    10 s are warm-up and left out).
#
# BENCH_ONLY=throughput or BENCH_ONLY=latency runs one part; BENCH_WORKERS (default "1 2") the
# worker counts of the throughput part, BENCH_BARE=0 skips its bare consumer.
# Extra arguments go to every `roomflow run` (e.g. --tick 1s). Work files in BENCH_DIR
# (default target/bench-kafka).
#
# The local broker (tansu on SQLite) gets slower as its store grows, so each measurement starts
# from a fresh store (port BENCH_KAFKA_PORT, default 19600) and the same published input: the job
# and the bare consumer face the same broker. With KAFKA_BROKERS set, that broker is used as is.
set -euo pipefail
cd "$(dirname "$0")/.."

READINGS="${BENCH_READINGS:-1000000}"
RATE="${BENCH_RATE:-5000}"
SECONDS_LIVE="${BENCH_SECONDS:-40}"
DIR="${BENCH_DIR:-target/bench-kafka}"
export ROOMFLOW_LOG="${ROOMFLOW_LOG:-warn}"
mkdir -p "$DIR"
if [[ -n "${KAFKA_BROKERS:-}" ]]; then
  BROKERS="$KAFKA_BROKERS"
  fresh_broker() { :; }
else
  export KAFKA_PORT="${BENCH_KAFKA_PORT:-19600}" KAFKA_STATE="$DIR/broker"
  BROKERS="127.0.0.1:$KAFKA_PORT"
  fresh_broker() {
    scripts/kafka.sh stop >/dev/null 2>&1 || true
    rm -rf "$KAFKA_STATE"
    scripts/kafka.sh start 2>/dev/null
  }
fi
JOB=""
cleanup() {
  [[ -n "$JOB" ]] && kill "$JOB" 2>/dev/null
  [[ -z "${KAFKA_STATE:-}" ]] || scripts/kafka.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
export KAFKA_BROKERS="$BROKERS"
cargo build --release --locked --quiet --bin roomflow --example bare_consumer --example alpha_latency
BIN=target/release/roomflow
RUN_ID="$(date +%s)"
now_ms() { date +%s%3N; }

ONLY="${BENCH_ONLY:-all}"
if [[ "$ONLY" != latency ]]; then
echo "== throughput: $READINGS readings, 100 rooms, 4 partitions"
INPUT="$DIR/readings-$READINGS.jsonl"
[[ -f "$INPUT" ]] || "$BIN" simulate --rooms 100 --readings "$READINGS" --seed 7 --out "$INPUT"
TOPIC="bench-$RUN_ID"
publish() {
  fresh_broker
  "$BIN" publish "$INPUT" --topic "$TOPIC" --partitions 4 --progress never
}

if [[ "${BENCH_BARE:-1}" != 0 ]]; then
  publish
  target/release/examples/bare_consumer "$BROKERS" "$TOPIC"
fi

IDLE=1
for workers in ${BENCH_WORKERS:-1 2}; do
  publish
  start=$(now_ms)
  "$BIN" run --topics "$TOPIC" --alpha-topic "bench-alpha-$RUN_ID-w$workers" \
    --dead-letter-topic "bench-dead-$RUN_ID-w$workers" --group "bench-$RUN_ID-w$workers" \
    --exit-when-idle "${IDLE}s" -w "$workers" "$@"
  end=$(now_ms)
  # Start to caught up: the wall time without the idle wait at the end.
  busy=$((end - start - IDLE * 1000))
  awk -v n="$READINGS" -v ms="$busy" -v w="$workers" \
    'BEGIN { printf "roomflow run -w %d: %d messages in %.2f s to caught up: %.0f messages/s\n", w, n, ms / 1000, n / (ms / 1000) }'
done

fi

[[ "$ONLY" == throughput ]] && exit 0
echo "== latency: $RATE readings/s offered for $SECONDS_LIVE s, roomflow run -w 2"
fresh_broker
LIVE="live-$RUN_ID"
ALPHA="live-alpha-$RUN_ID"
"$BIN" run --topics "$LIVE" --alpha-topic "$ALPHA" --dead-letter-topic "live-dead-$RUN_ID" \
  --group "live-$RUN_ID" --discover-interval 1s -w 2 "$@" &
JOB=$!
sleep 2
began=$(now_ms)
"$BIN" simulate --topic "$LIVE" --partitions 4 --rooms 100 --rate "$RATE" \
  --readings $((RATE * SECONDS_LIVE)) --malformed 0 --out-of-order 0 --late 0
ended=$(now_ms)
sleep 2
kill -TERM "$JOB"
wait "$JOB"
JOB=""
target/release/examples/alpha_latency "$BROKERS" "$ALPHA" $((began + 10000)) $((ended - 1000))
