#!/usr/bin/env bash
# Where the streaming job's time goes while it catches up: BENCH_READINGS (default 1M) simulated
# readings of 100 rooms on 4 partitions of the local Apache Kafka (scripts/kafka.sh, fresh, on
# PROFILE_KAFKA_PORT, default 19620), read from the beginning by `roomflow run` (exactly-once,
# its default; extra arguments go to it, e.g. -w 2 --alpha-guarantee at-least-once) under
# `perf record` (cpu-clock samples, call graphs unwound
# with DWARF: the release build keeps line tables), then
# the profile's top entries: by function (self time) and by the job's stages (inclusive time
# of the functions that mark them). Needs perf (Debian's linux-perf). Work files in
# PROFILE_DIR (default target/profile-kafka); the whole profile is perf.data there.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v perf >/dev/null || { echo "perf not found (apt-get install linux-perf)" >&2; exit 1; }
READINGS="${BENCH_READINGS:-1000000}"
DIR="${PROFILE_DIR:-target/profile-kafka}"
mkdir -p "$DIR"
export KAFKA_PORT="${PROFILE_KAFKA_PORT:-19620}" KAFKA_STATE="$DIR/broker"
scripts/kafka.sh stop >/dev/null 2>&1 || true
rm -rf "$KAFKA_STATE"
scripts/kafka.sh start
trap 'scripts/kafka.sh stop >/dev/null 2>&1 || true' EXIT
export KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT" ROOMFLOW_LOG="${ROOMFLOW_LOG:-warn}"
cargo build --release --locked --quiet --bin roomflow
BIN=target/release/roomflow
INPUT="$DIR/readings-$READINGS.jsonl"
[[ -f "$INPUT" ]] || "$BIN" simulate --rooms 100 --readings "$READINGS" --seed 7 --out "$INPUT"
"$BIN" publish "$INPUT" --topic profile --partitions 4 --progress never
perf record -q -F 250 -e cpu-clock --call-graph dwarf,16384 -o "$DIR/perf.data" -- \
  "$BIN" run --topics profile --alpha-topic profile-alpha --dead-letter-topic profile-dead \
  --group profile --exit-when-idle 1s "$@" 2>"$DIR/run.log"
echo "== self time by function (top 30)"
perf report -i "$DIR/perf.data" --no-children --sort symbol --stdio -q 2>/dev/null |
  grep -E "^ +[0-9]" | head -30 || true
echo "== inclusive time of the job's stages (share of all samples, children included)"
perf report -i "$DIR/perf.data" --children --sort symbol --stdio -q 2>/dev/null |
  grep -E '^ +[0-9]' | sed 's/  */ /g' |
  grep -E 'PartitionQueue.*poll|BaseConsumer.*poll|PartitionReader::admit|parse_json|KafkaSource|exchange|Exchange|arrange|Batcher|reduce|count_total|envelopes|kafka_sink|BaseProducer.*send|rd_kafka_producev|rd_kafka_broker_serve|rd_kafka_msgset|LZ4|page_fault|_mi_malloc_generic|memmove|worker::Worker.*step' |
  head -40 || true
