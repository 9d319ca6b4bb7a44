"""Shared tail of the bench scripts: print rows as a table and write them to bench/results/NAME.json."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def print_and_save(rows: list[dict], cols: list[str], name: str | None = None, out: Path | None = None) -> None:
    """Print ``cols`` of ``rows``; write all of ``rows`` to ``out`` (default bench/results/NAME.json)."""
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r[c]) for c in cols))
    out = out or RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
