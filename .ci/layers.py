#!/usr/bin/env python3
"""Fails when a `crate::…` path in src/ points upward: litepool's modules form layers, and each
may use only its own layer and those below it (values -> profile -> settings -> the pool core ->
commit/checkpoint/stats -> check/lint -> adapters -> admin -> the binary), and that no source file is over
600 lines. Re-exports in lib.rs are the
crate's surface and are not checked. Run from the repository root: `python3 .ci/layers.py`."""
import pathlib
import re
import sys

# Lowest first. A module's layer is the first entry naming it (a top-level module of src/).
LAYERS = [
    ("foundation", ["guide", "error", "sys", "strict", "units", "histogram", "reentry"]),
    ("values", ["pragma", "connection"]),
    ("profile", ["profile"]),
    ("settings", ["settings"]),
    ("files", ["file", "budget"]),
    ("pool core", ["guard", "customizer", "stats", "driver", "open", "checkin", "manager",
                   "watch", "pool", "checkpoint", "metrics", "replica", "staleness"]),
    ("write path", ["commit"]),
    ("pools", ["pools"]),
    ("check", ["check", "lint"]),
    ("adapters", ["adapters", "adapter_databases", "diesel", "deadpool"]),
    ("admin", ["admin"]),
]
RANK = {m: i for i, (_, mods) in enumerate(LAYERS) for m in mods}

def module_of(path: pathlib.Path) -> str:
    rel = path.relative_to("src")
    return rel.parts[0].removesuffix(".rs")

def main() -> int:
    bad = []
    for path in sorted(pathlib.Path("src").rglob("*.rs")):
        mod = module_of(path)
        if mod in ("lib", "bin"):
            continue
        if mod not in RANK:
            bad.append(f"{path}: module `{mod}` has no layer in .ci/layers.py")
            continue
        text = path.read_text()
        # Doc comments may link anywhere; code may not.
        code = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("//"))
        for m in re.finditer(r"crate::([a-z_]+)", code):
            target = m.group(1)
            if target not in RANK:
                continue  # a re-export at the crate root (crate::Error, crate::Result, …)
            if RANK[target] > RANK[mod]:
                line = code[: m.start()].count("\n") + 1
                bad.append(
                    f"{path}: `crate::{target}` ({LAYERS[RANK[target]][0]}) is above "
                    f"`{mod}` ({LAYERS[RANK[mod]][0]})"
                )
        for m in re.finditer(r"use super::super", code):
            bad.append(f"{path}: `super::super` hides the layer; use crate::")
    # One question per file: none over 600 lines.
    for path in sorted(pathlib.Path("src").rglob("*.rs")):
        n = path.read_text().count("\n")
        if n > 600:
            bad.append(f"{path}: {n} lines; split it by topic (at most 600)")
    for b in sorted(set(bad)):
        print(b)
    if bad:
        print(f"{len(set(bad))} upward imports", file=sys.stderr)
        return 1
    return 0

sys.exit(main())
