#!/usr/bin/env bash
# Benchmarks the streaming job against Apache Kafka: the local one (scripts/kafka.sh, started
# fresh on BENCH_KAFKA_PORT, default 19600) or, with KAFKA_BROKERS set, that broker as it is.
# Broker, job and load generator share this machine's cores; every figure comes with the CPU
# time the job and the local broker used during it (user+system seconds, and as a share of the
# wall time: 100 % is one core).
#
# 1. throughput: BENCH_READINGS (default 1M) simulated readings of 100 rooms, published once to
#    a topic of 4 partitions, then read from the beginning until caught up by, in turn: kcat
#    (Debian's librdkafka client, to /dev/null: the independent baseline), examples/bare_consumer
#    in its two modes (librdkafka's batch call, as kcat reads; the rdkafka crate's poll, one
#    message per call, as roomflow's source reads; both doing nothing), `roomflow run -w 1` and
#    `-w 2` (each with its own group and alpha topic, its consumer-lag gauge sampled). BENCH_RUNS rounds (default 2); each job is reported against the
#    kcat of its own round, with the alpha messages it produced per reading.
#    Each job runs once per guarantee of BENCH_GUARANTEES (default "at-least-once exactly-once",
#    side by side in the same round), with its peak RSS and CPU per reading; the round ends with
#    exactly-once's rate, CPU per reading and peak RSS as ratios of at-least-once's.
# 2. live: for each guarantee and each rate of BENCH_RATES (default "5000 20000 50000 75000
#    100000") readings/s, a fresh topic of 4 partitions fed by `roomflow simulate` for
#    BENCH_SECONDS (default 60) while `roomflow run -w 2` reads it: the rate the simulator
#    achieved; the latency a user sees, from each reading's produce time to its temperature
#    delta's arrival at a consumer outside the job (examples/alpha_latency, started before the
#    readings, read_committed for exactly-once), p50/p99/max, the first 10 s left out as warm-up
#    and the last second as the end of the stream; the job's consumer lag (its own gauge, summed
#    over partitions, sampled every 2 s) at most in each half of the run. A rate is sustained when the simulator
#    achieved it (≥ 95 %) and the lag of the second half is no higher than the first half's plus
#    a quarter second of input: the lag is bounded, not growing.
#
# 3. sink: the alpha sink's own cost, BENCH_SINK_CHANGES (default 1M) changes made in memory and
#    produced through the job's sink operator by examples/sink_cost: roomflow's CPU (user+system,
#    all threads) per alpha message, BENCH_RUNS times.
#
# BENCH_ONLY=throughput|sink|live runs one part; BENCH_WORKERS (default "1 2") the job's worker counts;
# BENCH_METRICS=0 runs the throughput jobs without --metrics (and without sampling the lag), to
# measure what the instrumentation costs. BENCH_GUARANTEES="exactly-once" measures one guarantee.
# Extra arguments go to every `roomflow run`
# (e.g. --tick 1s). Needs kcat for the baseline (apt-get install kcat); without it the bare
# consumer is the baseline, which says so. Work files in BENCH_DIR (default target/bench-kafka).
set -euo pipefail
cd "$(dirname "$0")/.."

READINGS="${BENCH_READINGS:-1000000}"
RUNS="${BENCH_RUNS:-2}"
RATES="${BENCH_RATES:-5000 20000 50000 75000 100000}"
SECONDS_LIVE="${BENCH_SECONDS:-60}"
DIR="${BENCH_DIR:-target/bench-kafka}"
ONLY="${BENCH_ONLY:-all}"
export ROOMFLOW_LOG="${ROOMFLOW_LOG:-warn}"
mkdir -p "$DIR"

BROKER_PID=""
if [[ -n "${KAFKA_BROKERS:-}" ]]; then
  BROKERS="$KAFKA_BROKERS"
else
  export KAFKA_PORT="${BENCH_KAFKA_PORT:-19600}" KAFKA_STATE="$DIR/broker"
  BROKERS="127.0.0.1:$KAFKA_PORT"
  scripts/kafka.sh stop >/dev/null 2>&1 || true
  rm -rf "$KAFKA_STATE"
  scripts/kafka.sh start
  BROKER_PID="$(cat "$KAFKA_STATE/kafka.pid")"
fi
JOB=""
cleanup() {
  [[ -z "$JOB" ]] || kill "$JOB" 2>/dev/null || true
  [[ -z "$BROKER_PID" ]] || scripts/kafka.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
export KAFKA_BROKERS="$BROKERS"
cargo build --release --locked --quiet --bin roomflow --example bare_consumer --example alpha_latency --example sink_cost
BIN=target/release/roomflow
RUN_ID="$(date +%s)"
TICKS="$(getconf CLK_TCK)"
now_ms() { date +%s%3N; }
GUARANTEES="${BENCH_GUARANTEES:-at-least-once exactly-once}"
# CPU seconds (user+system) a live process has used so far, in clock ticks.
ticks_of() { [[ -n "$1" && -r "/proc/$1/stat" ]] && awk '{print $14 + $15}' "/proc/$1/stat" || echo 0; }
broker_ticks() { ticks_of "$BROKER_PID"; }
# "1.23 s (45 %)" for CPU ticks $1 over wall milliseconds $2.
cpu() { awk -v t="$1" -v hz="$TICKS" -v ms="$2" 'BEGIN { printf "%.2f s (%.0f %%)", t / hz, 100 * t / hz / (ms / 1000) }'; }
broker_cpu() { if [[ -n "$BROKER_PID" ]]; then cpu "$1" "$2"; else echo "n/a (not local)"; fi; }
# Messages in a topic: the sum of its partitions' high watermarks (nothing is deleted here).
count() { ((HAVE_KCAT)) || { echo -1; return; }; kcat -b "$BROKERS" -Q $(for p in $(seq 0 $(($2 - 1))); do echo -t "$1:$p:-1"; done) | awk '{ n += $NF } END { print n }'; }
METRICS_PORT="${BENCH_METRICS_PORT:-19611}"
# The job's consumer lag from its own gauge, read in one scrape: the sum over partitions, then
# the largest of one partition (the source coarsens stamps above --catch-up-lag, 1,000).
lag() {
  curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics" 2>/dev/null |
    awk '/^roomflow_kafka_consumer_lag_messages/ { n += $NF; if ($NF > m) m = $NF } END { print n + 0, m + 0 }'
}
HAVE_KCAT=1
command -v kcat >/dev/null || { HAVE_KCAT=0; echo "kcat not found (apt-get install kcat): the bare consumer is the baseline"; }

if [[ "$ONLY" == all || "$ONLY" == throughput ]]; then
  echo "== throughput: $READINGS readings, 100 rooms, 4 partitions, from the beginning until caught up"
  INPUT="$DIR/readings-$READINGS.jsonl"
  [[ -f "$INPUT" ]] || "$BIN" simulate --rooms 100 --readings "$READINGS" --seed 7 --out "$INPUT"
  TOPIC="bench-$RUN_ID"
  "$BIN" publish "$INPUT" --topic "$TOPIC" --partitions 4 --progress never
  messages="$(wc -l <"$INPUT")"
  for round in $(seq "$RUNS"); do
    echo "-- round $round"
    baseline=0 kcat_ticks=0
    if ((HAVE_KCAT)); then
      b0=$(broker_ticks); start=$(now_ms)
      /usr/bin/time -f '%U %S %M' -o "$DIR/kcat-time.txt" \
        kcat -C -b "$BROKERS" -t "$TOPIC" -o beginning -e -q -X fetch.wait.max.ms=500 >/dev/null
      ms=$(($(now_ms) - start)); b1=$(broker_ticks)
      baseline=$(awk -v n="$messages" -v ms="$ms" 'BEGIN { printf "%.0f", n / (ms / 1000) }')
      kcat_ticks=$(awk -v hz="$TICKS" '{ printf "%.0f", ($1 + $2) * hz }' "$DIR/kcat-time.txt")
      echo "kcat to /dev/null:      $baseline messages/s ($(awk -v ms="$ms" 'BEGIN{printf "%.2f", ms/1000}') s); kcat CPU $(cpu "$kcat_ticks" "$ms"), peak RSS $(($(awk '{ print $3 }' "$DIR/kcat-time.txt") / 1024)) MiB; broker CPU $(broker_cpu $((b1 - b0)) "$ms")"
    fi
    bare_rate=0
    for mode in batch poll; do
      b0=$(broker_ticks)
      bare="$(target/release/examples/bare_consumer "$BROKERS" "$TOPIC" "$mode")"
      b1=$(broker_ticks)
      rate="$(sed -n 's/.*: \([0-9]*\) messages\/s.*/\1/p' <<<"$bare")"
      ms="$(sed -n 's/.* in \([0-9.]*\) s.*/\1/p' <<<"$bare" | awk '{ printf "%.0f", $1 * 1000 }')"
      ((rate > bare_rate)) && bare_rate=$rate
      ((baseline > 0)) || baseline=$rate
      printf "bare consumer (%-5s): %s messages/s (%s %% of the baseline); broker CPU %s\n" "$mode" "$rate" \
        "$(awk -v a="$rate" -v b="$baseline" 'BEGIN{printf "%.0f", 100*a/b}')" "$(broker_cpu $((b1 - b0)) "$ms")"
    done
    IDLE=1
    : >"$DIR/round.txt"
    for guarantee in $GUARANTEES; do
    for workers in ${BENCH_WORKERS:-1 2}; do
      # The job's own lag gauge, sampled while it runs: it must show the backlog (about all of
      # the topic at first), not a false 0.
      : >"$DIR/lag-throughput.txt"
      metrics=()
      SAMPLER=""
      if [[ "${BENCH_METRICS:-1}" == 1 ]]; then
        metrics=(--metrics "127.0.0.1:$METRICS_PORT")
        (while sleep 0.5; do lag >>"$DIR/lag-throughput.txt"; done) &
        SAMPLER=$!
      fi
      name="$RUN_ID-r$round-w$workers-$guarantee"
      alpha="bench-alpha-$name"
      b0=$(broker_ticks); start=$(now_ms)
      /usr/bin/time -f '%U %S %M' -o "$DIR/time.txt" "$BIN" run --topics "$TOPIC" --alpha-topic "$alpha" \
        --dead-letter-topic "bench-dead-$name" --group "bench-$name" --alpha-guarantee "$guarantee" \
        --exit-when-idle "${IDLE}s" -w "$workers" "${metrics[@]}" "$@" 2>"$DIR/run.log"
      end=$(now_ms); b1=$(broker_ticks)
      [[ -z "$SAMPLER" ]] || { kill "$SAMPLER" 2>/dev/null || true; wait "$SAMPLER" 2>/dev/null || true; }
      # Start to caught up: the wall time without the idle wait at the end (the broker's CPU
      # in that second is near nothing).
      busy=$((end - start - IDLE * 1000))
      job_ticks=$(awk -v hz="$TICKS" '{ printf "%.0f", ($1 + $2) * hz }' "$DIR/time.txt")
      out=$(count "$alpha" 4)
      rss_kb=$(awk '{ print $3 }' "$DIR/time.txt")
      awk -v n="$messages" -v ms="$busy" -v w="$workers" -v g="$guarantee" -v base="$baseline" -v bare="$bare_rate" -v out="$out" \
        'BEGIN { r = n / (ms / 1000); printf "roomflow run -w %d %s: %.0f messages/s (%.0f %% of the baseline, %.0f %% of the faster bare consumer) in %.2f s, %.2f alpha messages per reading", w, g, r, 100 * r / base, 100 * r / bare, ms / 1000, out / n }' | sed 's/, -0.00 alpha messages per reading/, alpha not counted (no kcat)/'
      echo "; job CPU $(cpu "$job_ticks" "$busy") = $(awk -v t="$job_ticks" -v hz="$TICKS" -v n="$messages" 'BEGIN { printf "%.2f", 1e6 * t / hz / n }') µs per reading ($(awk -v j="$job_ticks" -v k="$kcat_ticks" 'BEGIN { if (k > 0) printf "%.2fx kcat'"'"'s CPU", j / k; else print "kcat not run" }')), peak RSS $((rss_kb / 1024)) MiB; broker CPU $(broker_cpu $((b1 - b0)) "$busy")"
      echo "$guarantee $workers $busy $job_ticks $rss_kb" >>"$DIR/round.txt"
      [[ -z "$SAMPLER" ]] || echo "  its consumer-lag gauge: at most $(cut -d' ' -f1 "$DIR/lag-throughput.txt" | sort -n | tail -1) messages over $(wc -l <"$DIR/lag-throughput.txt") samples, last $(tail -1 "$DIR/lag-throughput.txt" | cut -d' ' -f1)"
    done
    done
    # Exactly-once against at-least-once, same round, same worker count.
    awk '{ ms[$1" "$2] = $3; cpu[$1" "$2] = $4; rss[$1" "$2] = $5; w[$2] = 1 }
      END { for (k in w) { a = "at-least-once " k; e = "exactly-once " k
        if ((a in ms) && (e in ms)) printf "exactly-once / at-least-once, -w %d: rate %.0f %%, CPU per reading %.2fx, peak RSS %.2fx\n", k, 100 * ms[a] / ms[e], cpu[e] / cpu[a], rss[e] / rss[a] } }' "$DIR/round.txt"
  done
fi

if [[ "$ONLY" == all || "$ONLY" == sink ]]; then
  # The alpha sink alone: changes made in memory, fed through the job's own sink operator, until
  # every one is acknowledged; roomflow's CPU (all its threads) per message produced.
  changes="${BENCH_SINK_CHANGES:-1000000}"
  echo "== alpha sink: $changes changes produced by examples/sink_cost (the job's kafka_sink), roomflow's own CPU"
  for round in $(seq "$RUNS"); do
    b0=$(broker_ticks); start=$(now_ms)
    result=$(target/release/examples/sink_cost kafka "$changes" --topic "bench-sink-$RUN_ID-$round" --brokers "$BROKERS")
    ms=$(($(now_ms) - start)); b1=$(broker_ticks)
    echo "round $round: $(sed -n 's/.*cpu_us_per_write=\([0-9.]*\).*/\1/p' <<<"$result") µs of roomflow CPU per alpha message (target <= 2); $result; broker CPU $(broker_cpu $((b1 - b0)) "$ms")"
  done
fi

[[ "$ONLY" == all || "$ONLY" == live ]] || exit 0
for guarantee in $GUARANTEES; do
for rate in $RATES; do
  echo "== live: $rate readings/s offered for $SECONDS_LIVE s, roomflow run -w 2 --alpha-guarantee $guarantee"
  name="$RUN_ID-$rate-$guarantee"
  live="live-$name"
  alpha="live-alpha-$name"
  "$BIN" run --topics "$live" --alpha-topic "$alpha" --dead-letter-topic "live-dead-$name" \
    --group "live-$name" --discover-interval 1s -w 2 --metrics "127.0.0.1:$METRICS_PORT" \
    --alpha-guarantee "$guarantee" "$@" 2>"$DIR/live.log" &
  JOB=$!
  sleep 2
  began=$(now_ms)
  # A consumer outside the job that times changes as they reach it (read_committed for
  # exactly-once: visibility waits for the transaction's commit).
  mode=arrivals
  [[ "$guarantee" == exactly-once ]] && mode=committed
  target/release/examples/alpha_latency "$BROKERS" "$alpha" $((began + 10000)) \
    $((began + (SECONDS_LIVE - 1) * 1000)) "$mode" >"$DIR/latency.txt" 2>&1 &
  READER=$!
  j0=$(ticks_of "$JOB"); b0=$(broker_ticks)
  "$BIN" simulate --topic "$live" --partitions 4 --rooms 100 --rate "$rate" \
    --readings $((rate * SECONDS_LIVE)) --malformed 0 --out-of-order 0 --late 0 2>"$DIR/simulate.log" &
  simulator=$!
  : >"$DIR/lag.txt"
  while kill -0 "$simulator" 2>/dev/null; do
    echo "$(($(now_ms) - began)) $(lag)" >>"$DIR/lag.txt"
    sleep 2
  done
  wait "$simulator"
  ended=$(now_ms)
  j1=$(ticks_of "$JOB"); b1=$(broker_ticks)
  sleep 2
  kill -TERM "$JOB"
  wait "$JOB" || true
  JOB=""
  wall=$((ended - began))
  produced=$(sed -n 's/^produced \([0-9]*\) simulated lines.* in \([0-9.]*\) s$/\1 \2/p' "$DIR/simulate.log")
  achieved=$(awk '{ printf "%.0f", $1 / $2 }' <<<"$produced")
  # Readings of the simulator's last second are left out too: the newest tick of a stream that
  # stops stays open until the job is stopped (nothing newer completes it), which says nothing
  # about the latency of a stream that goes on.
  wait "$READER" || true
  latency=$(cat "$DIR/latency.txt")
  read -r first second <<<"$(awk -v half=$((wall / 2)) '$1 < half { if ($2 > a) a = $2 } $1 >= half { if ($2 > b) b = $2 } END { print a + 0, b + 0 }' "$DIR/lag.txt")"
  verdict=$(awk -v r="$rate" -v got="$achieved" -v a="$first" -v b="$second" \
    'BEGIN { if (got < 0.95 * r) print "not sustained: the simulator achieved only " got "/s"; else if (b > a + r / 4) print "not sustained: lag grows"; else print "sustained" }')
  echo "simulator achieved $achieved readings/s; ${latency#latency }"
  echo "alpha: $(awk -v out="$(count "$alpha" 4)" -v n="$(cut -d' ' -f1 <<<"$produced")" 'BEGIN { if (out < 0) print "not counted (no kcat)"; else printf "%.2f messages per reading", out / n }')"
  echo "consumer lag at most $first messages in the first half, $second in the second: $verdict;" \
    "one partition's at most $(awk '$3 > m { m = $3 } END { print m + 0 }' "$DIR/lag.txt")"
  echo "job CPU $(cpu $((j1 - j0)) "$wall"), broker CPU $(broker_cpu $((b1 - b0)) "$wall")"
done
done
