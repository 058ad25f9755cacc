#!/usr/bin/env bash
# Benchmarks the MongoDB sink and restarts against the local stand-ins (scripts/mongo.sh and
# scripts/kafka.sh, each started fresh on its own port; MONGO_URI / KAFKA_BROKERS use yours).
#
# 1. Sink throughput: replay BENCH_READINGS (default 1M) simulated readings of 100 rooms (4
#    shard files) with `--out` and with `--mongo`, -w 2, best of BENCH_RUNS (default 3) each;
#    readings/s of both, their ratio, and MongoDB round trips per 1,000 changes (changes counted
#    with --changes).
# 2. Restart after a kill: publish the same readings to a topic, run the job over them with
#    --mongo until it has caught up and written a checkpoint after that, kill it (SIGKILL, at a
#    random point up to a second later), publish BENCH_MORE (default 10k) more readings, and
#    time the restart: from start until those are processed, written to MongoDB and the job is
#    idle (the idle wait is subtracted), with its CPU and the broker's.
#
# 3. CPU: the sink's own cost, BENCH_SINK_CHANGES (default 200k) changes made in memory and
#    written through the job's MongoDB sink operator by examples/sink_cost: roomflow's CPU
#    (user+system, all threads) per document written, BENCH_RUNS times.
#
# BENCH_ONLY=sink, cpu or restart runs one part. Work files in BENCH_DIR (default
# target/bench-mongo).
set -euo pipefail
cd "$(dirname "$0")/.."

READINGS="${BENCH_READINGS:-1000000}"
MORE="${BENCH_MORE:-10000}"
RUNS="${BENCH_RUNS:-3}"
DIR="${BENCH_DIR:-target/bench-mongo}"
export ROOMFLOW_LOG="${ROOMFLOW_LOG:-warn}"
mkdir -p "$DIR"

started=()
cleanup() { for service in "${started[@]}"; do scripts/$service.sh stop >/dev/null 2>&1 || true; done; }
trap cleanup EXIT
if [[ -z "${MONGO_URI:-}" ]]; then
  export MONGO_PORT="${BENCH_MONGO_PORT:-27600}" MONGO_STATE="$DIR/mongo"
  scripts/mongo.sh stop >/dev/null 2>&1 || true
  scripts/mongo.sh start 2>/dev/null
  started+=(mongo)
  MONGO_URI="mongodb://127.0.0.1:$MONGO_PORT"
fi
cargo build --release --locked --quiet --bin roomflow --example sink_cost
BIN=target/release/roomflow
RUN_ID="$(date +%s)"

input="$DIR/input-$READINGS"
if [[ ! -f "$input/.done" ]]; then
  rm -rf "$input"
  "$BIN" simulate --rooms 100 --readings "$READINGS" --shards 4 --seed 7 --out "$input" 2>/dev/null
  touch "$input/.done"
fi

# "<readings/s> <log>" of one replay with the given flags.
replay() {
  local log="$DIR/replay.log"
  "$BIN" replay "$input" -w 2 --progress never "$@" 2>"$log" >/dev/null
  echo "$(grep -o '[0-9]* readings/s' "$log" | cut -d' ' -f1)"
}

best() {
  local best=0 rate
  for _ in $(seq "$RUNS"); do
    rate=$(replay "$@")
    ((rate > best)) && best=$rate
  done
  echo "$best"
}

if [[ "${BENCH_ONLY:-sink}" == sink || -z "${BENCH_ONLY:-}" ]]; then
  echo "== MongoDB sink: replay of $READINGS readings, -w 2, best of $RUNS"
  out_rate=$(best --out "$DIR/out")
  mongo_rate=$(best --mongo "$MONGO_URI" --mongo-db "bench$RUN_ID")
  "$BIN" replay "$input" -w 2 --progress never --out "$DIR/out" --changes 2>/dev/null >/dev/null
  changes=$(cat "$DIR"/out/changes*.jsonl | wc -l)
  "$BIN" replay "$input" -w 2 --progress never --mongo "$MONGO_URI" --mongo-db "bench$RUN_ID" 2>"$DIR/replay.log" >/dev/null
  documents=$(grep -o '[0-9]* documents in' "$DIR/replay.log" | cut -d' ' -f1)
  round_trips=$(grep -o '[0-9]* round trips' "$DIR/replay.log" | cut -d' ' -f1)
  echo "replay --out:   $out_rate readings/s"
  echo "replay --mongo: $mongo_rate readings/s ($(( 100 * mongo_rate / out_rate ))% of --out; target >= 50%)"
  echo "changes: $changes; written to MongoDB as $documents documents (the changes of a key in one batch collapse to its latest) in $round_trips round trips"
  echo "round trips per 1,000 changes: $(echo "scale=2; 1000 * $round_trips / $changes" | bc)"
fi

if [[ "${BENCH_ONLY:-cpu}" == cpu || -z "${BENCH_ONLY:-}" ]]; then
  # The sink alone: changes made in memory, fed through the job's own MongoDB sink operator
  # until written. The stand-in's wall time says nothing about roomflow; its CPU does.
  changes="${BENCH_SINK_CHANGES:-200000}"
  echo "== MongoDB sink: $changes changes written by examples/sink_cost (the job's mongo_sink), roomflow's own CPU"
  for round in $(seq "$RUNS"); do
    result=$(target/release/examples/sink_cost mongo "$changes" --mongo "$MONGO_URI" --mongo-db "sink$RUN_ID")
    echo "round $round: $(sed -n 's/.*cpu_us_per_write=\([0-9.]*\).*/\1/p' <<<"$result") µs of roomflow CPU per document (target <= 5); $result"
  done
fi

if [[ "${BENCH_ONLY:-restart}" == restart || -z "${BENCH_ONLY:-}" ]]; then
  if [[ -z "${KAFKA_BROKERS:-}" ]]; then
    export KAFKA_PORT="${BENCH_KAFKA_PORT:-19601}" KAFKA_STATE="$DIR/broker"
    scripts/kafka.sh stop >/dev/null 2>&1 || true
    rm -rf "$KAFKA_STATE"
    scripts/kafka.sh start 2>/dev/null
    started+=(kafka)
    export KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"
  fi
  topic="bench-restart-$RUN_ID"
  more="$DIR/more-$MORE"
  rm -rf "$more"
  # Readings after those of the history: same rooms, later times (a later seed's own clock
  # would start over, so shift the simulated times past the history's last).
  "$BIN" simulate --rooms 100 --readings "$MORE" --seed 8 --out "$more.raw.jsonl" 2>/dev/null
  last=$(cat "$input"/*.jsonl | python3 -c 'import sys, json
m = 0
for line in sys.stdin:
    try: m = max(m, json.loads(line)["ts"])
    except Exception: pass
print(m)')
  python3 - "$more.raw.jsonl" "$more.jsonl" "$last" <<'PY'
import json, sys
src, dst, last = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = open(src).read().splitlines()
out = []
base = None
for l in lines:
    try:
        r = json.loads(l)
        if base is None:
            base = r["ts"]
        r["ts"] = r["ts"] - base + last + 1000
        out.append(json.dumps(r))
    except Exception:
        out.append(l)
open(dst, "w").write("\n".join(out) + "\n")
PY
  echo "== restart: $READINGS readings of history, $MORE since the checkpoint"
  "$BIN" publish "$input" --topic "$topic" --partitions 4 --progress never 2>/dev/null
  # At-least-once: the restart measured is the one from MongoDB checkpoints (exactly-once, the
  # default, restarts from its state topic).
  job=(run --topics "$topic" --group "bench-$RUN_ID" --alpha-topic "$topic.alpha" --dead-letter-topic "$topic.dead"
       --mongo "$MONGO_URI" --mongo-db "restart$RUN_ID" -w 2 --alpha-guarantee at-least-once)
  metrics_port="${BENCH_METRICS_PORT:-19698}"
  metric() { # the sum of one metric's samples, or nothing before it appears
    curl -s "http://127.0.0.1:$metrics_port/metrics" | awk -v name="$1" '$1 ~ "^"name"({|$)" {sum += $2; seen = 1} END {if (seen) print sum}'
  }
  start=$(date +%s.%N)
  "$BIN" "${job[@]}" --metrics "127.0.0.1:$metrics_port" 2>"$DIR/history.log" &
  history_pid=$!
  # Caught up: every partition reports a lag, and they sum to 0.
  until [[ "$(curl -s "http://127.0.0.1:$metrics_port/metrics" | grep -c '^roomflow_kafka_consumer_lag_messages{')" == 4 &&
           "$(metric roomflow_kafka_consumer_lag_messages)" == 0 ]]; do
    kill -0 "$history_pid" 2>/dev/null || { echo "the history job stopped: see $DIR/history.log" >&2; exit 1; }
    sleep 0.2
  done
  echo "history: $(echo "$(date +%s.%N) - $start" | bc) s to catch up from scratch"
  checkpoints=$(metric roomflow_checkpoints_total); checkpoints=${checkpoints:-0}
  until (( $(metric roomflow_checkpoints_total || echo 0) > checkpoints )); do sleep 0.2; done
  sleep "$(python3 -c 'import random; print(random.random())')"
  kill -KILL "$history_pid"; wait "$history_pid" 2>/dev/null || true
  echo "history job killed (SIGKILL) after a checkpoint written once caught up"
  "$BIN" publish "$more.jsonl" --topic "$topic" --progress never 2>/dev/null
  broker_pid=$(cat "${KAFKA_STATE:-target/kafka}/kafka.pid" 2>/dev/null || echo "")
  cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, in clock ticks
  broker_before=$([[ -n "$broker_pid" ]] && cpu_of "$broker_pid" || echo 0)
  start=$(date +%s.%N)
  TIMEFORMAT='%U %S'
  { time ROOMFLOW_LOG=info "$BIN" "${job[@]}" --exit-when-idle 1s 2>"$DIR/restart.log"; } 2>"$DIR/restart.cpu"
  elapsed=$(echo "$(date +%s.%N) - $start - 1" | bc)
  job_cpu=$(awk '{print $1 + $2}' "$DIR/restart.cpu")
  broker_after=$([[ -n "$broker_pid" ]] && cpu_of "$broker_pid" || echo 0)
  plain() { sed 's/\x1b\[[0-9;]*m//g' "$1"; }
  plain "$DIR/restart.log" | grep -o 'resuming from the checkpoint.*' | head -1
  plain "$DIR/restart.log" | grep -o 'messages=[0-9]*' | tail -1
  echo "restart: $elapsed s from start to caught up and written (target ≤ 2 s); job CPU $job_cpu s, broker CPU $(echo "scale=2; ($broker_after - $broker_before) / $(getconf CLK_TCK)" | bc) s"
fi
