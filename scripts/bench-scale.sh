#!/usr/bin/env bash
# Replay at portfolio scale (issue 32): the same number of readings over more and more rooms,
# `replay -w 1 --out` (all three collections written), peak RSS and rate of each, the rate as a
# share of the 100-room file's measured in the same run, and the plain-Python reference
# (scripts/reference_replay.py) on the largest file beside it: its peak RSS, and whether its
# outputs equal roomflow's (every key and value, compared by scripts/compare_outputs.py).
# Inputs: `roomflow simulate --rooms N --readings M --seed 3`, generated once into $BENCH_DIR
# (default target/bench-scale).
# Usage: scripts/bench-scale.sh [ROOMS...]   (default: 100 1000 10000 100000; READINGS, default
#        2000000; MILLION=1 adds 1,000,000 rooms with 4M readings; REFERENCE=0 skips the reference;
#        extra replay flags in REPLAY_FLAGS)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BENCH_DIR:-target/bench-scale}
readings=${READINGS:-2000000}
read -r -a extra <<<"${REPLAY_FLAGS:-}"
rooms_list=("$@")
if (( ${#rooms_list[@]} == 0 )); then rooms_list=(100 1000 10000 100000); fi
mkdir -p "$dir"
cargo build --release --locked --quiet --bin roomflow
bin=target/release/roomflow

generate() { # rooms readings: the file's path
  local file="$dir/r$1-n$2.jsonl"
  if [[ ! -f "$file.done" ]]; then
    "$bin" simulate --rooms "$1" --readings "$2" --seed 3 --out "$file" 2>/dev/null
    touch "$file.done"
  fi
  echo "$file"
}

# Prints "<readings/s> <peak RSS MiB> <seconds> <cpu seconds>" of one replay into $dir/out-<rooms>.
replay() { # file rooms
  local out="$dir/out-$2" log="$dir/replay-$2.log"
  rm -rf "$out"
  /usr/bin/time -f '%M %U %S' -o "$dir/time" "$bin" replay "$1" --out "$out" -w 1 \
    --progress never "${extra[@]}" 2>"$log" >/dev/null
  local rss user sys rate seconds
  read -r rss user sys <"$dir/time"
  rate=$(grep -o '[0-9]* readings/s' "$log" | cut -d' ' -f1)
  seconds=$(grep -o '; [0-9.]* s,' "$log" | tr -d ';s, ')
  echo "$rate $(( rss / 1024 )) $seconds $(echo "$user + $sys" | bc -l)"
}

echo "== replay -w 1 --out, $readings readings, seed 3 ${extra[*]}"
printf '  %9s  %12s  %9s  %10s  %8s  %s\n' rooms readings/s "of 100's" "peak RSS" seconds "CPU s"
base_rate=
largest=
for rooms in "${rooms_list[@]}"; do
  file=$(generate "$rooms" "$readings")
  read -r rate rss seconds cpu < <(replay "$file" "$rooms")
  if [[ -z "$base_rate" ]]; then base_rate=$rate; fi
  printf '  %9d  %12d  %8.0f%%  %6d MiB  %8s  %s\n' "$rooms" "$rate" \
    "$(echo "$rate * 100 / $base_rate" | bc -l)" "$rss" "$seconds" "$cpu"
  largest=$rooms
done
if [[ "${MILLION:-0}" == 1 ]]; then
  file=$(generate 1000000 4000000)
  read -r rate rss seconds cpu < <(replay "$file" 1000000)
  printf '  %9d  %12d  %9s  %6d MiB  %8s  %s   (4M readings)\n' 1000000 "$rate" - "$rss" "$seconds" "$cpu"
fi

if [[ "${REFERENCE:-1}" == 1 ]]; then
  file=$(generate "$largest" "$readings")
  /usr/bin/time -f '%M' -o "$dir/time" python3 scripts/reference_replay.py "$dir/reference-out" "$file" \
    2>"$dir/reference.log"
  printf '  Python reference, %d rooms: %s, peak RSS %d MiB\n' "$largest" \
    "$(grep -o '[0-9]* readings/s' "$dir/reference.log")" "$(( $(cat "$dir/time") / 1024 ))"
  python3 scripts/compare_outputs.py "$dir/reference-out" "$dir/out-$largest"
fi
