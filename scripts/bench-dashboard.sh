#!/usr/bin/env bash
# The dashboard's figures against Apache Kafka (the local one, scripts/kafka.sh, started fresh on
# BENCH_KAFKA_PORT, default 19650; or KAFKA_BROKERS as it is):
#
# 1. A building of BENCH_ROOMS rooms (default 1000): `roomflow simulate` readings (100 per room)
#    replayed with --changes, every change produced to a fresh alpha topic (4 partitions) keyed
#    as the job keys them. The dashboard reads it from the beginning: the time until it holds
#    every change, its resident memory then, and the size of /api/building.
# 2. In headless Chromium (tests/browser/bench-latency.mjs): the page's load time to every tile
#    drawn, then the time from a change produced to alpha to the page showing it
#    (BENCH_CHANGES, default 1000, at BENCH_RATE per second, default 100), p50/p90/p99/max,
#    beside a bare kcat consumer's latency for the same messages (the independent baseline:
#    what Kafka alone takes), and the dashboard's CPU during it.
#
# Needs kcat, node and npm, Chromium ($CHROMIUM, default /usr/bin/chromium). Work files in
# BENCH_DIR (default target/bench-dashboard).
set -euo pipefail
cd "$(dirname "$0")/.."

ROOMS="${BENCH_ROOMS:-1000}"
DIR="${BENCH_DIR:-target/bench-dashboard}"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
export ROOMFLOW_LOG="${ROOMFLOW_LOG:-warn}"
mkdir -p "$DIR"
command -v kcat >/dev/null || { echo "bench-dashboard: needs kcat (apt-get install kcat)" >&2; exit 1; }
[[ -x "$CHROMIUM" ]] || { echo "bench-dashboard: no Chromium at $CHROMIUM (apt-get install chromium)" >&2; exit 1; }

BROKER_PID=""
if [[ -n "${KAFKA_BROKERS:-}" ]]; then
  BROKERS="$KAFKA_BROKERS"
else
  export KAFKA_PORT="${BENCH_KAFKA_PORT:-19650}" KAFKA_STATE="$DIR/broker"
  BROKERS="127.0.0.1:$KAFKA_PORT"
  scripts/kafka.sh stop >/dev/null 2>&1 || true
  rm -rf "$KAFKA_STATE"
  scripts/kafka.sh start
  BROKER_PID="$(cat "$KAFKA_STATE/kafka.pid")"
fi
DASHBOARD=""
cleanup() {
  [[ -z "$DASHBOARD" ]] || kill "$DASHBOARD" 2>/dev/null || true
  [[ -z "$BROKER_PID" ]] || scripts/kafka.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
cargo build --release --locked --quiet --bin roomflow --example produce_lines
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
BIN=target/release/roomflow
TICKS="$(getconf CLK_TCK)"
ticks_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }
now_ms() { date +%s%3N; }

# 1. The building on alpha.
TOPIC="alpha-dashboard-$(date +%s)"
"$BIN" simulate --rooms "$ROOMS" --readings $((ROOMS * 100)) --malformed 0.001 --late 0.001 \
  --out "$DIR/readings.jsonl"
rm -rf "$DIR/replay"
"$BIN" replay "$DIR/readings.jsonl" --out "$DIR/replay" --changes --progress never
: > "$DIR/empty.jsonl"
"$BIN" publish "$DIR/empty.jsonl" --topic "$TOPIC" --partitions 4 --brokers "$BROKERS" >/dev/null 2>&1
"$BIN" publish "$DIR/empty.jsonl" --topic "$TOPIC.dead-letters" --partitions 1 --brokers "$BROKERS" >/dev/null 2>&1
python3 - "$DIR/replay/changes.jsonl" > "$DIR/keyed.tsv" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    change = json.loads(line)
    key = json.dumps([change["collection"], change["key"]], separators=(",", ":"))
    sys.stdout.write(key + "\t" + line)
PY
CHANGES_TOTAL="$(wc -l < "$DIR/keyed.tsv")"
kcat -P -b "$BROKERS" -t "$TOPIC" -K $'\t' < "$DIR/keyed.tsv"
echo "alpha: $CHANGES_TOTAL changes of $ROOMS rooms on $TOPIC"

"$BIN" dashboard --brokers "$BROKERS" --alpha-topic "$TOPIC" --dead-letter-topic "$TOPIC.dead-letters" \
  --listen 127.0.0.1:0 > "$DIR/dashboard.out" &
DASHBOARD=$!
START=$(now_ms)
until grep -q '^roomflow dashboard: ' "$DIR/dashboard.out"; do sleep 0.05; done
URL="$(sed -n 's/^roomflow dashboard: //p' "$DIR/dashboard.out")"
until [[ "$(curl -fsS "${URL}api/building" | python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"]["changes"])')" == "$CHANGES_TOTAL" ]]; do
  sleep 0.05
done
LOADED_MS=$(( $(now_ms) - START ))
BYTES="$(curl -fsS "${URL}api/building" | wc -c)"
RSS_KB="$(awk '/VmRSS/ {print $2}' "/proc/$DASHBOARD/status")"
echo "dashboard: all $CHANGES_TOTAL changes applied $LOADED_MS ms after start; RSS $((RSS_KB / 1024)) MiB; /api/building $((BYTES / 1024)) KiB"

# 2. The page.
BEFORE="$(ticks_of "$DASHBOARD")"
BENCH_START=$(now_ms)
node tests/browser/bench-latency.mjs "$URL" "$BROKERS" "$TOPIC" "$ROOMS"
SPENT=$(( $(ticks_of "$DASHBOARD") - BEFORE ))
WALL=$(( $(now_ms) - BENCH_START ))
awk -v t="$SPENT" -v hz="$TICKS" -v ms="$WALL" \
  'BEGIN { printf "dashboard CPU during the page benchmark: %.2f s over %.1f s (%.0f %% of a core)\n", t / hz, ms / 1000, 100 * t / hz / (ms / 1000) }'
