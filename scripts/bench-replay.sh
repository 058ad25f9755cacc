#!/usr/bin/env bash
# Benchmark of `roomflow replay`, end to end (all three collections written with --out), beside
# the plain-Python reference (scripts/reference_replay.py) measured in the same run:
#   1. throughput: 1M simulated readings over 100 rooms in one file, -w 1, and the reference on
#      the same file; the same readings as 4 shard files (like 4 partitions of a topic keyed by
#      room), -w 1 and -w 2, and -w 2 on the single file; best of BENCH_RUNS (default 3) each;
#   2. memory: 2M and 20M readings over the same 100 rooms (-w 1), peak RSS of each.
# Inputs are generated once into $BENCH_DIR (default target/bench).
# Usage: scripts/bench-replay.sh [extra replay flags, e.g. --tick 1s or --emit final]
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${BENCH_RUNS:-3}
dir=${BENCH_DIR:-target/bench}
extra=("$@")
mkdir -p "$dir"
cargo build --release --locked --quiet
bin=target/release/roomflow

generate() { # rooms readings shards name: a directory of shard files (one file for 1 shard)
  if [ ! -f "$dir/$4/.done" ]; then
    rm -rf "${dir:?}/$4"
    if (( $3 == 1 )); then
      mkdir -p "$dir/$4"
      "$bin" simulate --rooms "$1" --readings "$2" --seed 7 --out "$dir/$4/readings.jsonl" 2>/dev/null
    else
      "$bin" simulate --rooms "$1" --readings "$2" --shards "$3" --seed 7 --out "$dir/$4" 2>/dev/null
    fi
    touch "$dir/$4/.done"
  fi
}

# Prints "<readings/s> <peak RSS in MiB> <seconds>" of one replay.
replay() { # input workers
  local out="$dir/out" log="$dir/replay.log"
  rm -rf "$out"
  /usr/bin/time -f '%M' -o "$dir/rss" "$bin" replay "$dir/$1" --out "$out" -w "$2" --progress never "${extra[@]}" 2>"$log" >/dev/null
  local rate seconds
  rate=$(grep -o '[0-9]* readings/s' "$log" | cut -d' ' -f1)
  seconds=$(grep -o '; [0-9.]* s,' "$log" | tr -d ';s, ')
  echo "$rate $(( $(cat "$dir/rss") / 1024 )) $seconds"
}

best_rate() { # input workers: the best of $runs runs
  local best=0
  for _ in $(seq "$runs"); do
    read -r rate _ _ < <(replay "$1" "$2")
    (( rate > best )) && best=$rate
  done
  echo "$best"
}

reference_rate() { # input: the best of $runs runs of the Python reference
  local best=0 rate
  for _ in $(seq "$runs"); do
    python3 scripts/reference_replay.py "$dir/reference-out" "$dir/$1"/*.jsonl 2>"$dir/reference.log"
    rate=$(grep -o '[0-9]* readings/s' "$dir/reference.log" | cut -d' ' -f1)
    (( rate > best )) && best=$rate
  done
  echo "$best"
}

ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }

echo "== throughput: 1M readings, 100 rooms, best of $runs runs ${extra[*]}"
generate 100 1000000 1 r100-1m-single
generate 100 1000000 4 r100-1m
python_rate=$(reference_rate r100-1m-single)
single1=$(best_rate r100-1m-single 1)
single2=$(best_rate r100-1m-single 2)
w1=$(best_rate r100-1m 1)
w2=$(best_rate r100-1m 2)
printf '  Python reference, one file: %9d readings/s\n' "$python_rate"
printf '  one file,  -w 1:           %9d readings/s  (%sx the reference; target >= 2M/s)\n' "$single1" "$(ratio "$single1" "$python_rate")"
printf '  one file,  -w 2:           %9d readings/s  (%sx of -w 1)\n' "$single2" "$(ratio "$single2" "$single1")"
printf '  4 shards,  -w 1:           %9d readings/s\n' "$w1"
printf '  4 shards,  -w 2:           %9d readings/s  (%sx of -w 1; target >= 1.8x)\n' "$w2" "$(ratio "$w2" "$w1")"

echo "== memory: peak RSS for 2M and 20M readings over 100 rooms (-w 1)"
generate 100 2000000 4 r100-2m
generate 100 20000000 4 r100-20m
read -r rate2 rss2 s2 < <(replay r100-2m 1)
read -r rate20 rss20 s20 < <(replay r100-20m 1)
printf '  2M:  %6d MiB peak RSS  (%s s, %d readings/s)\n' "$rss2" "$s2" "$rate2"
printf '  20M: %6d MiB peak RSS  (%s s, %d readings/s)  -> %+.0f%% vs 2M (target: <= 50 MB, <= +10%%)\n' "$rss20" "$s20" "$rate20" \
  "$(echo "($rss20 - $rss2) * 100 / $rss2" | bc -l)"
