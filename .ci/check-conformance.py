#!/usr/bin/env python3
"""Checks that every test named in spec/conformance.md exists.

Each table row of spec/conformance.md has a Test cell of the form `binary::path::to::test`, where `binary` is the
test target (the file stem under tests/, or `lib` for unit tests inside src/). Several tests may be listed in one
cell, separated by `<br>` or commas. The listing comes from `cargo test --all-features -- --list` (passed on stdin
together with cargo's `Running ...` lines, i.e. stdout and stderr merged).
"""
import re
import sys

listing = sys.stdin.read().splitlines()
tests = {}
current = None
for line in listing:
    m = re.search(r"Running (?:unittests )?(\S+)", line)
    if m:
        path = m.group(1)
        if path.startswith("src/"):
            current = "lib"
        else:
            current = re.sub(r"\.rs$", "", path.split("/")[-1])
        tests.setdefault(current, set())
        continue
    m = re.match(r"^(\S.*): (test|bench)$", line)
    if m and current is not None:
        tests[current].add(m.group(1))

rows = 0
missing = []
ids = set()
dupes = []
with open("spec/conformance.md", encoding="utf-8") as f:
    for line in f:
        if not line.startswith("| ") or line.startswith("| ID") or line.startswith("|--") or line.startswith("| --"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not re.match(r"^[A-Z]+-\d{3}$", cells[0]):
            continue
        rows += 1
        if cells[0] in ids:
            dupes.append(cells[0])
        ids.add(cells[0])
        for name in re.findall(r"`([^`]+)`", cells[-1]):
            binary, _, path = name.partition("::")
            if path not in tests.get(binary, set()):
                missing.append(f"{cells[0]}: {name}")

if dupes:
    print("duplicate clause ids: " + ", ".join(dupes))
if missing:
    print("tests named in spec/conformance.md but not found by `cargo test -- --list`:")
    for m in missing:
        print("  " + m)
if dupes or missing or rows == 0:
    sys.exit(1)
print(f"conformance matrix: {rows} clauses, every named test exists")
