#!/usr/bin/env bash
# What hostile input costs `roomflow replay`: peak memory, wall time and the size of the dead
# letter for (1) one line of SIZE_MB (default 300) MB without a newline, followed by a good
# reading, and (2) one reading whose room name is 100,000 characters. Each figure beside the same
# measure for a file of the good reading alone (the baseline of this run).
# Usage: scripts/bench-hostile.sh   (BENCH_DIR, default target/bench-hostile; SIZE_MB)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BENCH_DIR:-target/bench-hostile}
size_mb=${SIZE_MB:-300}
mkdir -p "$dir"
cargo build --release --locked --quiet --bin roomflow
bin=target/release/roomflow
good='{"room":"1","sensor":"co2","ts":1000,"value":400}'

echo "$good" >"$dir/baseline.jsonl"
python3 - "$dir/long-line.jsonl" "$size_mb" "$good" <<'EOF'
import sys
path, size_mb, good = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, "w") as f:
    prefix = '{"room": "'
    f.write(prefix)
    chunk = "x" * (1 << 20)
    for _ in range(size_mb):
        f.write(chunk)
    f.write("\n" + good + "\n")
EOF
python3 -c "print('{\"room\":\"' + 'r' * 100000 + '\",\"sensor\":\"co2\",\"ts\":1000,\"value\":1}'); print('$good')" \
  >"$dir/long-room.jsonl"

for case in baseline long-line long-room; do
  rm -rf "$dir/out-$case"
  /usr/bin/time -f "%M %e" -o "$dir/time.txt" \
    "$bin" replay "$dir/$case.jsonl" --out "$dir/out-$case" 2>"$dir/stderr-$case.txt" >/dev/null
  read -r rss_kb seconds <"$dir/time.txt"
  summary=$(grep -o '[0-9]* readings applied, [0-9]* dead letters' "$dir/stderr-$case.txt")
  dead_bytes=$(stat -c %s "$dir/out-$case/dead_letters.jsonl" 2>/dev/null || echo 0)
  printf '%-10s input %10d bytes: peak RSS %6.1f MB, %5.2f s, %s, dead_letters.jsonl %d bytes\n' \
    "$case" "$(stat -c %s "$dir/$case.jsonl")" "$(awk -v kb="$rss_kb" 'BEGIN { print kb / 1024 }')" "$seconds" "$summary" "$dead_bytes"
done
