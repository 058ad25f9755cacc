#!/usr/bin/env python3
"""Compares the final state of two `--out` directories (roomflow's, and the plain-Python
reference's of scripts/reference_replay.py), collection by collection: the same keys, counts
equal, sums, averages and temperatures equal to 1e-9 relative (the reference adds floats; roomflow
adds exact fixed-point values). Prints one line per collection; exits 1 on any difference.

Usage: compare_outputs.py EXPECTED_DIR ACTUAL_DIR
"""
import json
import math
import os
import sys

KEYS = {
    "room_averages.jsonl": ("room", "sensor"),
    "window_averages.jsonl": ("room", "sensor", "window_start"),
    "temperature_deltas.jsonl": ("room", "ts"),
}
EXACT = {"count", "prev_ts"}
APPROXIMATE = {"sum", "avg", "value", "prev_value", "delta"}


def load(directory, name, key):
    records = {}
    with open(os.path.join(directory, name)) as lines:
        for line in lines:
            record = json.loads(line)
            records[tuple(str(record[k]) for k in key)] = record
    return records


def same(field, a, b):
    if field in EXACT:
        return a == b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def main():
    expected_dir, actual_dir = sys.argv[1:3]
    different = False
    for name, key in KEYS.items():
        expected, actual = load(expected_dir, name, key), load(actual_dir, name, key)
        missing = expected.keys() - actual.keys()
        extra = actual.keys() - expected.keys()
        wrong = [k for k in expected.keys() & actual.keys()
                 if not all(same(f, expected[k][f], actual[k][f])
                            for f in EXACT | APPROXIMATE if f in expected[k])]
        if missing or extra or wrong:
            different = True
            print(f"  {name}: DIFFERENT: {len(missing)} keys missing, {len(extra)} extra, "
                  f"{len(wrong)} with other values (e.g. {(sorted(missing) + sorted(extra) + wrong)[:3]})")
        else:
            print(f"  {name}: equal to the reference ({len(expected)} keys)")
    sys.exit(1 if different else 0)


if __name__ == "__main__":
    main()
