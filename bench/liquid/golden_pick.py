#!/usr/bin/env python3
"""golden_pick.py GOLDEN OUTDIR N: the golden suite has no benchmark
fixtures, so the benchmark takes a few representative golden cases
(read from the shared file at run time, never copied into the repo) and
writes, per case, CASE.liquid and CASE.jsonl (its data repeated N times)."""
import json, os, sys

golden, outdir, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
picks = {
    "golden-for": "tags, for, forloop.index",
    "golden-where": "filters, where, array of hashes with equality test",
    "golden-render": "tags, render, forloop helper",
    "golden-case": "tags, case, evaluate multiple matching blocks",
}
cases = {t["name"]: t for t in json.load(open(golden))["tests"]}
os.makedirs(outdir, exist_ok=True)
for short, name in picks.items():
    c = cases.get(name)
    if not c or c.get("invalid"):
        continue
    with open(os.path.join(outdir, short + ".liquid"), "w") as f:
        f.write(c["template"])
    parts = os.path.join(outdir, short + "-partials")
    os.makedirs(parts, exist_ok=True)
    for pname, ptext in (c.get("templates") or {}).items():
        with open(os.path.join(parts, pname + ".liquid"), "w") as f:
            f.write(ptext)
    line = json.dumps(c.get("data") or {})
    with open(os.path.join(outdir, short + ".jsonl"), "w") as f:
        for _ in range(n):
            f.write(line + "\n")
    print(short)
