#!/usr/bin/env bash
# The Kafka job at portfolio scale (issue 32): the same 2M readings (`simulate --seed 3`, as
# scripts/bench-scale.sh makes them) of 100 rooms and of 100,000 rooms, each published once to a
# topic of 4 partitions of a fresh local Apache Kafka (scripts/kafka.sh), then read from the
# beginning until caught up by `roomflow run -w 2`, at-least-once and exactly-once, each with its
# own group and alpha topic. Reported per run: the rate (readings over the wall time less the
# idle second that ends it), the 100,000-room rate as a share of the 100-room one of the same
# guarantee, peak RSS and the job's CPU (GNU time: all threads, librdkafka's included), and the
# broker's CPU beside it.
# Then the exactly-once restart: the job started again on its group with nothing new to read:
# from process start to its sources reading partitions (its log's first "reading partitions":
# fenced, the state topic read back, the restored state handed to the dataflow), and its wall time
# less the idle second (the restored state applied too, and the exit), with its peak RSS and the
# number of state records it resumed from (its log); then, COMPACT_WAIT seconds later (default
# 45: the broker's cleaner compacts the changelog's closed segments meanwhile), the same again.
# With MONGO=1, last: the job at-least-once with --mongo (the nx-27017 stand-in, scripts/mongo.sh)
# over the first MONGO_READINGS (default 400,000) readings of the largest file, until idle; then
# restarted on its MongoDB checkpoint with nothing new: time to reading partitions, CPU (the
# stand-in's wall time says nothing of roomflow's), peak RSS, state records, documents rewritten.
# Usage: scripts/bench-scale-kafka.sh [ROOMS...]   (default: 100 100000; READINGS, default
#        2000000; GUARANTEES, default "at-least-once exactly-once"; extra run flags as RUN_FLAGS)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BENCH_DIR:-target/bench-scale-kafka}
inputs=${BENCH_INPUTS:-target/bench-scale}
readings=${READINGS:-2000000}
guarantees=${GUARANTEES:-at-least-once exactly-once}
read -r -a extra <<<"${RUN_FLAGS:-}"
rooms_list=("$@")
if (( ${#rooms_list[@]} == 0 )); then rooms_list=(100 100000); fi
mkdir -p "$dir" "$inputs"
cargo build --release --locked --quiet --bin roomflow
bin=target/release/roomflow
export ROOMFLOW_LOG=${ROOMFLOW_LOG:-info}

export KAFKA_PORT=${BENCH_KAFKA_PORT:-19630} KAFKA_STATE="$dir/broker"
scripts/kafka.sh stop >/dev/null 2>&1 || true
rm -rf "$KAFKA_STATE"
scripts/kafka.sh start
broker_pid=$(cat "$KAFKA_STATE/kafka.pid")
stop_services() {
  scripts/kafka.sh stop >/dev/null 2>&1 || true
  if [[ "${MONGO:-0}" == 1 ]]; then
    MONGO_PORT=$mongo_port MONGO_STATE="$dir/mongo" scripts/mongo.sh stop >/dev/null 2>&1 || true
  fi
}
mongo_port=${BENCH_MONGO_PORT:-27231}
trap stop_services EXIT
export KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"
ticks_hz=$(getconf CLK_TCK)
broker_ticks() { awk '{print $14 + $15}' "/proc/$broker_pid/stat"; }
run_id=$(date +%s)

# One `roomflow run -w 2` until idle: prints "<rate> <peak MiB> <busy s> <job CPU s> <broker CPU s>
# <s from start to reading partitions>" (the last from its log's first "reading partitions").
job() { # topic group guarantee log
  local b0 b1 rss user sys wall busy started first reading
  b0=$(broker_ticks)
  started=$(date +%s%3N)
  /usr/bin/time -f '%M %U %S %e' -o "$dir/time" "$bin" run --topics "$1" --group "$2" \
    --alpha-topic "alpha-$2" --dead-letter-topic "dead-$2" --alpha-guarantee "$3" \
    --exit-when-idle 1s -w 2 "${extra[@]}" 2>"$4" >/dev/null
  b1=$(broker_ticks)
  read -r rss user sys wall <"$dir/time"
  busy=$(echo "$wall - 1" | bc -l)
  first=$(grep -m1 'reading partitions' "$4" | cut -d' ' -f1)
  reading=$(echo "($(date -d "$first" +%s%3N) - $started) / 1000" | bc -l)
  echo "$(echo "$readings / $busy" | bc) $(( rss / 1024 )) $busy $(echo "$user + $sys" | bc -l) \
$(echo "($b1 - $b0) / $ticks_hz" | bc -l | xargs printf '%.2f') $reading"
}

declare -A topic_of
for rooms in "${rooms_list[@]}"; do
  file="$inputs/r$rooms-n$readings.jsonl"
  if [[ ! -f "$file.done" ]]; then
    "$bin" simulate --rooms "$rooms" --readings "$readings" --seed 3 --out "$file" 2>/dev/null
    touch "$file.done"
  fi
  topic_of[$rooms]="scale-$run_id-r$rooms"
  "$bin" publish "$file" --topic "${topic_of[$rooms]}" --partitions 4 --progress never
done

for guarantee in $guarantees; do
  echo "== run -w 2 --alpha-guarantee $guarantee, $readings readings from the beginning until caught up ${extra[*]}"
  printf '  %9s  %12s  %9s  %10s  %8s  %9s  %s\n' rooms readings/s "of 100's" "peak RSS" seconds "job CPU" "broker CPU"
  base=
  for rooms in "${rooms_list[@]}"; do
    group="g-$run_id-$guarantee-r$rooms"
    read -r rate rss busy cpu broker _ < <(job "${topic_of[$rooms]}" "$group" "$guarantee" "$dir/run-$guarantee-$rooms.log")
    [[ -n "$base" ]] || base=$rate
    printf '  %9d  %12d  %8.0f%%  %6d MiB  %8.2f  %8.2fs  %ss\n' "$rooms" "$rate" \
      "$(echo "$rate * 100 / $base" | bc -l)" "$rss" "$busy" "$cpu" "$broker"
    if [[ "$guarantee" == exactly-once ]]; then
      read -r _ rss busy cpu broker reading < <(job "${topic_of[$rooms]}" "$group" "$guarantee" "$dir/restart-$rooms.log")
      records=$(grep -o 'records=[0-9]*' "$dir/restart-$rooms.log" | head -1 | cut -d= -f2)
      offset=$(grep -o 'messages=[0-9]*' "$dir/restart-$rooms.log" | head -1 | cut -d= -f2)
      printf '  %9s  restart with nothing new: %.2f s to reading partitions, %.2f s to idle (restored, exited: wall less the idle second), %d MiB peak, CPU %.2f s, %s state records (%s changelog messages read)\n' \
        "" "$reading" "$busy" "$rss" "$cpu" "${records:-?}" "${offset:-?}"
      if (( ${COMPACT_WAIT:-45} > 0 )); then
        # The broker's cleaner compacts the closed segments of the changelog (checked every 15 s).
        sleep "${COMPACT_WAIT:-45}"
        read -r _ rss busy cpu broker reading < <(job "${topic_of[$rooms]}" "$group" "$guarantee" "$dir/restart2-$rooms.log")
        records=$(grep -o 'records=[0-9]*' "$dir/restart2-$rooms.log" | head -1 | cut -d= -f2)
        read_count=$(grep -o 'messages=[0-9]*' "$dir/restart2-$rooms.log" | head -1 | cut -d= -f2)
        printf '  %9s  again %s s later:        %.2f s to reading partitions, %.2f s to idle, %d MiB peak, CPU %.2f s, %s state records (%s changelog messages read)\n' \
          "" "${COMPACT_WAIT:-45}" "$reading" "$busy" "$rss" "$cpu" "${records:-?}" "${read_count:-?}"
      fi
    fi
  done
done

[[ "${MONGO:-0}" == 1 ]] || exit 0
largest=${rooms_list[-1]}
mongo_readings=${MONGO_READINGS:-400000}
echo "== run -w 2 --mongo (at-least-once, MongoDB checkpoints), $mongo_readings readings of $largest rooms, then a restart"
MONGO_PORT=$mongo_port MONGO_STATE="$dir/mongo" scripts/mongo.sh start >/dev/null
uri="mongodb://127.0.0.1:$mongo_port"
head -n "$mongo_readings" "$inputs/r$largest-n$readings.jsonl" >"$dir/mongo-input.jsonl"
topic="scale-$run_id-mongo"
"$bin" publish "$dir/mongo-input.jsonl" --topic "$topic" --partitions 4 --progress never
mongo_job() { # log: prints "<peak MiB> <CPU s> <wall s> <s to reading partitions>"
  local started first rss user sys wall
  started=$(date +%s%3N)
  /usr/bin/time -f '%M %U %S %e' -o "$dir/time" "$bin" run --topics "$topic" --group "g-$run_id-mongo" \
    --alpha-topic "alpha-$run_id-mongo" --dead-letter-topic "dead-$run_id-mongo" --mongo "$uri" \
    --mongo-db "g-$run_id-mongo" --checkpoint-interval 60s --exit-when-idle 2s -w 2 \
    --alpha-guarantee at-least-once 2>"$1" >/dev/null
  read -r rss user sys wall <"$dir/time"
  first=$(grep -m1 'reading partitions' "$1" | cut -d' ' -f1)
  echo "$(( rss / 1024 )) $(echo "$user + $sys" | bc -l) $wall $(echo "($(date -d "$first" +%s%3N) - $started) / 1000" | bc -l)"
}
read -r rss cpu wall _ < <(mongo_job "$dir/mongo-run.log")
printf '  first run: %s s wall (the stand-in), job CPU %.2f s, peak %d MiB, %s\n' "$wall" "$cpu" "$rss" \
  "$(grep -o 'mongo_documents=[0-9]*' "$dir/mongo-run.log")"
read -r rss cpu wall reading < <(mongo_job "$dir/mongo-restart.log")
printf '  restart with nothing new: %.2f s to reading partitions, job CPU %.2f s, peak %d MiB, %s state records, %s\n' \
  "$reading" "$cpu" "$rss" "$(grep -o 'records=[0-9]*' "$dir/mongo-restart.log" | head -1 | cut -d= -f2)" \
  "$(grep -o 'mongo_documents=[0-9]*' "$dir/mongo-restart.log")"
