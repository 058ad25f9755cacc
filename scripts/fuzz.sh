#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/, libFuzzer through cargo fuzz) for SECONDS each
# (default 600), one after another, and reports per target the executions, the executions per
# second and the crashes (files in fuzz/artifacts/<target>/). Seeds are written fresh into
# fuzz/corpus/ (a JSON, a KETI and an Intel line); the corpus grows there between runs.
# Needs the nightly toolchain and cargo-fuzz: rustup toolchain install nightly;
# cargo install cargo-fuzz. Usage: scripts/fuzz.sh [seconds] [target...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(line_formats json_fast_path format_detection bounded_lines kafka_admission changelog checkpoint_chunk dashboard_input)
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz not found: cargo install cargo-fuzz" >&2; exit 1; }

# Seeds: the selector byte of line_formats picks the format (0 JSON, 1 KETI, 2 Intel).
seed() { mkdir -p "fuzz/corpus/$1"; printf "$3" >"fuzz/corpus/$1/seed-$2"; }
seed line_formats json '\x00{"room": "413", "sensor": "co2", "ts": 1377299100000, "value": 400.5}'
seed line_formats keti '\x011377299100, 23.5'
seed line_formats intel '\x022004-02-28 00:59:16.02785 3 1 19.9884 37.0933 45.08 2.69964'
seed json_fast_path canonical '{"room":"r007","sensor":"temperature","ts":1700000000000,"value":21.53}'
seed json_fast_path spaced '{"room": "413", "sensor": "co2", "ts": 1377299100000, "value": -400.5}'
seed format_detection json 'a.jsonl\x00{"room": "1"}'
seed bounded_lines lines '\x03\x05ab\ncdefgh\n\nij'
seed dashboard_input messages '{"collection":"window_averages","operation":"upsert","key":{"room":"1","sensor":"co2","window_start":0},"data":{"room":"1","sensor":"co2","window_start":0,"count":1,"sum":400,"avg":400},"time":60000}\n{"collection":"temperature_deltas","operation":"upsert","key":{"room":"1","ts":5},"data":{"room":"1","ts":5,"prev_ts":1,"value":21.5,"prev_value":21,"delta":0.5},"time":60000}\n{"source":"f:1","reason":"late","room":"1","sensor":"co2","ts":1,"value":2}\n{"room":"1"}'

cargo +nightly fuzz build --fuzz-dir fuzz -O >/dev/null
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
  log="fuzz/artifacts/$target.log"
  before=$(find "fuzz/artifacts/$target" -type f | wc -l)
  cargo +nightly fuzz run --fuzz-dir fuzz -O "$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -dict=fuzz/json.dict -max_len=4096 -print_final_stats=1 \
    -timeout=10 -rss_limit_mb=2048 >"$log" 2>&1 || true
  after=$(find "fuzz/artifacts/$target" -type f | wc -l)
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  printf '%-18s %12s executions in %s s (%s/s), %d new crash files%s\n' "$target" "${runs:-?}" \
    "$seconds" "${rate:-?}" $((after - before)) "$( ((after > before)) && echo ": see $log" || true)"
done
