#!/usr/bin/env bash
# What a hostile changes file and slow clients cost `roomflow dashboard` (issue 28, defect 6):
# a changes file of one good room, one 10 MB envelope (a room named by 5 MiB) and 20 envelopes of
# an unknown collection named by 4 MiB each (errors that quote their input), followed by eight
# event-stream clients that never read. Reports the size of /api/building, the dashboard's
# resident memory with the eight clients connected and after they closed, and its peak, for BIN
# and, when given, BASELINE_BIN (an earlier build, measured the same way in the same run).
# Usage: scripts/bench-dashboard-hostile.sh   (BIN, default target/release/roomflow, built if
# missing; BASELINE_BIN; BENCH_DIR, default target/bench-dashboard-hostile)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BENCH_DIR:-target/bench-dashboard-hostile}
mkdir -p "$dir"
bin=${BIN:-target/release/roomflow}
if [[ ! -x "$bin" ]]; then cargo build --release --locked --quiet --bin roomflow; fi

python3 - "$dir/changes.jsonl" <<'PY'
import json, sys
good = {"collection": "room_averages", "operation": "upsert",
        "key": {"room": "lab", "sensor": "co2"},
        "data": {"room": "lab", "sensor": "co2", "count": 2, "sum": 900.0, "avg": 450.0}, "time": 60000}
with open(sys.argv[1], "w") as f:
    f.write(json.dumps(good) + "\n")
    huge = dict(good, key={"room": "r" * (5 << 20), "sensor": "co2"},
                data=dict(good["data"], room="r" * (5 << 20)))
    f.write(json.dumps(huge) + "\n")
    for i in range(20):
        f.write(json.dumps({"collection": "c%d" % i + "c" * (4 << 20), "operation": "delete",
                            "key": {}, "time": 1}) + "\n")
PY

measure() {
  local name=$1 binary=$2
  "$binary" dashboard --changes "$dir/changes.jsonl" --listen 127.0.0.1:0 >"$dir/$name.out" 2>/dev/null &
  local pid=$!
  for _ in $(seq 100); do grep -q '^roomflow dashboard' "$dir/$name.out" 2>/dev/null && break; sleep 0.1; done
  local address
  address=$(sed -n 's|^roomflow dashboard: http://\(.*\)/$|\1|p' "$dir/$name.out")
  sleep 2
  local bytes
  bytes=$(curl -s "http://$address/api/building" | wc -c)
  python3 - "$address" "$pid" "$name" "$bytes" <<'PY'
import socket, sys, time
address, pid, name, building = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
host, port = address.rsplit(":", 1)
def status(field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
clients = []
for _ in range(8):
    s = socket.create_connection((host, int(port)))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    clients.append(s)
time.sleep(5)
held = status("VmRSS:")
for s in clients:
    s.close()
time.sleep(3)
after = status("VmRSS:")
print(f"{name:9} /api/building {building / 1e6:8.3f} MB; RSS with 8 unread streams {held:7.1f} MB, "
      f"after they closed {after:7.1f} MB, peak {status('VmHWM:'):7.1f} MB")
PY
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

if [[ -n "${BASELINE_BIN:-}" ]]; then measure baseline "$BASELINE_BIN"; fi
measure current "$bin"
