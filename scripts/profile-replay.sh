#!/usr/bin/env bash
# Where replay's time goes, counted in instructions (valgrind's callgrind: repeatable on these
# shared, noisy machines, unlike wall time). Replays one file of READINGS simulated readings
# (default 200,000) over 100 rooms with -w 1, all three collections written with --out, under
# callgrind; prints the instructions per reading and the functions with the most instructions
# of their own, then with the most including their callees.
#
#   scripts/profile-replay.sh                 # the default replay
#   scripts/profile-replay.sh --tick 1s       # extra replay flags
#
# Needs valgrind (apt-get install valgrind). The release profile keeps debug line tables
# (Cargo.toml), so functions have names. The callgrind file stays in target/profile/.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind not found: apt-get install valgrind" >&2; exit 1; }

readings=${READINGS:-200000}
dir=target/profile
mkdir -p "$dir"
cargo build --release --locked --quiet
bin=target/release/roomflow
input="$dir/in-$readings.jsonl"
[[ -f "$input" ]] || "$bin" simulate --rooms 100 --readings "$readings" --seed 7 --out "$input" 2>/dev/null

rm -rf "$dir/out" "$dir"/callgrind.out
valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" \
  "$bin" replay "$input" --out "$dir/out" -w 1 --progress never "$@" >/dev/null 2>"$dir/replay.log"
# valgrind's own summary, on replay's stderr: "Collected : N".
total=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$dir/replay.log")
echo "instructions: $total for $readings readings, $((total / readings)) per reading"
echo
echo "== most instructions of their own"
callgrind_annotate --threshold=90 "$dir/callgrind.out" 2>/dev/null >"$dir/self.txt" || true
sed -n '/file:function/,$p' "$dir/self.txt" | sed -n '3,27p' | cut -c1-170
echo
echo "== most instructions including callees"
callgrind_annotate --inclusive=yes --threshold=99 "$dir/callgrind.out" 2>/dev/null >"$dir/inclusive.txt" || true
sed -n '/file:function/,$p' "$dir/inclusive.txt" | sed -n '3,32p' | cut -c1-170
