#!/usr/bin/env bash
# Benchmark of `roomflow replay`, end to end (all three collections written with --out):
#   1. throughput: 1M simulated readings over 100 rooms, replayed with -w 1 and -w 2;
#   2. memory: 2M and 20M readings over the same 1,000 rooms, peak RSS of each.
# Inputs are generated once into $BENCH_DIR (default target/bench) as 4 shard files, like 4
# partitions of a topic keyed by room, so that workers can read in parallel.
# Usage: scripts/bench-replay.sh [extra replay flags, e.g. --tick 1s]
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${BENCH_RUNS:-3}
dir=${BENCH_DIR:-target/bench}
extra=("$@")
mkdir -p "$dir"
cargo build --release --locked --quiet
bin=target/release/roomflow

generate() { # rooms readings name
  if [ ! -f "$dir/$3/.done" ]; then
    rm -rf "${dir:?}/$3"
    "$bin" simulate --rooms "$1" --readings "$2" --shards 4 --seed 7 --out "$dir/$3" 2>/dev/null
    touch "$dir/$3/.done"
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

echo "== throughput: 1M readings, 100 rooms, best of $runs runs ${extra[*]}"
generate 100 1000000 r100-1m
w1=$(best_rate r100-1m 1)
w2=$(best_rate r100-1m 2)
printf '  -w 1: %9d readings/s\n  -w 2: %9d readings/s  (%.2fx of -w 1)\n' "$w1" "$w2" "$(echo "$w2 / $w1" | bc -l)"

echo "== memory: peak RSS for 2M and 20M readings over 1,000 rooms (-w 1)"
generate 1000 2000000 r1000-2m
generate 1000 20000000 r1000-20m
read -r rate2 rss2 s2 < <(replay r1000-2m 1)
read -r rate20 rss20 s20 < <(replay r1000-20m 1)
printf '  2M:  %6d MiB peak RSS  (%s s, %d readings/s)\n' "$rss2" "$s2" "$rate2"
printf '  20M: %6d MiB peak RSS  (%s s, %d readings/s)  -> %+.0f%% vs 2M\n' "$rss20" "$s20" "$rate20" \
  "$(echo "($rss20 - $rss2) * 100 / $rss2" | bc -l)"
