#!/usr/bin/env python3
"""The plain-Python reference for `scripts/bench-replay.sh`: what a straightforward consumer
written without roomflow does with the same recording, timed the same way.

Reads JSON-lines files (plain or .gz), judges each reading late against its own file's newest
event time (more than LATENESS behind: dropped, as roomflow does per input stream), and writes the
final state of the three collections to OUT as JSON lines: per (room, sensor) count, sum and
average; the same per 60 s window; per room, each temperature reading's delta from the previous
one in event-time order. Malformed lines are counted and skipped. Prints
"<readings> readings in <seconds> s, <rate> readings/s" on stderr.

Usage: reference_replay.py OUT FILE... [--window-ms 60000] [--lateness-ms 300000]
"""
import gzip
import json
import os
import sys
import time


def main():
    args = sys.argv[1:]
    window, lateness = 60_000, 300_000
    if "--window-ms" in args:
        i = args.index("--window-ms")
        window = int(args[i + 1])
        del args[i : i + 2]
    if "--lateness-ms" in args:
        i = args.index("--lateness-ms")
        lateness = int(args[i + 1])
        del args[i : i + 2]
    out, files = args[0], args[1:]
    started = time.monotonic()
    rooms, windows, temperatures = {}, {}, {}
    readings = malformed = late = 0
    for path in files:
        opener = gzip.open if path.endswith(".gz") else open
        newest = None
        with opener(path, "rt", encoding="utf-8") as lines:
            for line in lines:
                try:
                    r = json.loads(line)
                    room, sensor, ts, value = r["room"], r["sensor"], int(r["ts"]), float(r["value"])
                    if not isinstance(room, (str, int)) or not isinstance(sensor, str):
                        raise TypeError("room and sensor are names")
                except (ValueError, KeyError, TypeError):
                    malformed += 1
                    continue
                if newest is not None and ts < newest - lateness:
                    late += 1
                    continue
                newest = ts if newest is None else max(newest, ts)
                readings += 1
                agg = rooms.setdefault((room, sensor), [0, 0.0])
                agg[0] += 1
                agg[1] += value
                start = ts - ts % window
                agg = windows.setdefault((room, sensor, start), [0, 0.0])
                agg[0] += 1
                agg[1] += value
                if sensor == "temperature":
                    temperatures.setdefault(room, []).append((ts, value))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "room_averages.jsonl"), "w") as f:
        for (room, sensor), (count, total) in rooms.items():
            f.write(json.dumps({"room": room, "sensor": sensor, "count": count, "sum": total,
                                "avg": total / count}) + "\n")
    with open(os.path.join(out, "window_averages.jsonl"), "w") as f:
        for (room, sensor, start), (count, total) in windows.items():
            f.write(json.dumps({"room": room, "sensor": sensor, "window_start": start,
                                "count": count, "sum": total, "avg": total / count}) + "\n")
    with open(os.path.join(out, "temperature_deltas.jsonl"), "w") as f:
        for room, series in temperatures.items():
            series.sort()
            for (prev_ts, prev), (ts, value) in zip(series, series[1:]):
                f.write(json.dumps({"room": room, "ts": ts, "prev_ts": prev_ts, "value": value,
                                    "prev_value": prev, "delta": value - prev}) + "\n")
    seconds = time.monotonic() - started
    print(f"{readings} readings in {seconds:.2f} s, {readings / seconds:.0f} readings/s "
          f"({malformed} malformed, {late} late)", file=sys.stderr)


if __name__ == "__main__":
    main()
