#!/usr/bin/env python3
"""The shape of roomflow's code: which module imports which (and any circles), and the longest
functions. Used for the restructure's before/after notes.

    scripts/code-shape.py [--graph] [--circles] [--functions N]
"""
import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATES = {"src": "crate", "dataflows/src": "roomflow_dataflows"}


def modules():
    """(crate dir, file path, module path such as `kafka::source`) of every source file."""
    for base in CRATES:
        top = os.path.join(ROOT, base)
        for folder, _, files in os.walk(top):
            for name in files:
                if not name.endswith(".rs"):
                    continue
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, top)[:-3].split(os.sep)
                if rel[-1] in ("mod", "lib", "main"):
                    rel = rel[:-1]
                yield base, path, "::".join(rel)


def imports(base, path, module, known):
    """Modules of the same crate that `path` names through `crate::`/`super::` paths."""
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"#\[cfg\(test\)\]\s*mod tests\s*\{.*", "", text, flags=re.S)
    found = set()
    parts = module.split("::") if module else []
    is_mod = os.path.basename(path) in ("mod.rs", "lib.rs", "main.rs")
    parent = parts if is_mod else parts[:-1]
    for match in re.finditer(r"\b(crate|super|self)((?:::\w+)+)", text):
        head, tail = match.group(1), match.group(2).strip(":").split("::")
        if head == "crate":
            segs = tail
        elif head == "super":
            segs = (parent[:-1] if is_mod else parent) + tail
        else:
            segs = parent + tail
        # The longest prefix that is a module.
        for n in range(len(segs), 0, -1):
            candidate = "::".join(segs[:n])
            if candidate in known:
                if candidate != module:
                    found.add(candidate)
                break
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--graph", action="store_true")
    parser.add_argument("--circles", action="store_true")
    parser.add_argument("--functions", type=int, default=0)
    args = parser.parse_args()
    graph = {}
    for base in CRATES:
        files = [(p, m) for b, p, m in modules() if b == base]
        known = {m for _, m in files}
        for path, module in files:
            graph[(base, module)] = sorted(imports(base, path, module, known))
    if args.graph:
        for (base, module), targets in sorted(graph.items()):
            name = f"{CRATES[base]}::{module}" if module else CRATES[base]
            print(f"{name} -> {', '.join(targets) if targets else '-'}")
    if args.circles:
        circles = set()
        for (base, module), targets in graph.items():
            for target in targets:
                back = graph.get((base, target), [])
                # Not between a folder's mod.rs and its own files (declarations, not imports).
                if module in back and not (target.startswith(module + "::") or module.startswith(target + "::") or module == "" or target == ""):
                    circles.add(tuple(sorted((module, target))))
        folders = {}
        for (base, module), targets in graph.items():
            top = module.split("::")[0]
            for target in targets:
                other = target.split("::")[0]
                if other != top and module and target:
                    folders.setdefault((base, top), set()).add(other)
        for (base, top), others in folders.items():
            for other in others:
                if top in folders.get((base, other), set()) and top < other:
                    circles.add((f"{top}/ (folder)", f"{other}/ (folder)"))
        print("circles:" if circles else "no circles")
        for a, b in sorted(circles):
            print(f"  {a} <-> {b}")
    if args.functions:
        lengths = []
        for base, path, _ in modules():
            text = open(path, encoding="utf-8").read()
            # Braces inside string and character literals do not count.
            keep_lines = lambda m: '""' + "\n" * m.group(0).count("\n")
            text = re.sub(r'r#+"(?:.|\n)*?"#+', keep_lines, text)
            text = re.sub(r"'(?:\\.|[^'\\])'", "' '", text)
            text = re.sub(r'"(?:\\[\s\S]|[^"\\])*"', keep_lines, text)
            lines = text.split("\n")
            for i, line in enumerate(lines):
                m = re.match(r"\s*(pub(\(\w+\))? )?(async )?fn (\w+)", line)
                if not m:
                    continue
                depth, started = 0, False
                for j in range(i, len(lines)):
                    depth += lines[j].count("{") - lines[j].count("}")
                    if "{" in lines[j]:
                        started = True
                    if started and depth <= 0:
                        break
                    if not started and lines[j].rstrip().endswith(";"):
                        break
                lengths.append((j - i + 1, os.path.relpath(path, ROOT), m.group(4)))
        for length, path, name in sorted(lengths, reverse=True)[: args.functions]:
            print(f"{length:5} {path} {name}")


if __name__ == "__main__":
    sys.exit(main())
