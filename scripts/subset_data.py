"""A data folder holding some rows of another, its image and mask folders linked, not copied (studies on scratch).

Usage: python scripts/subset_data.py SRC OUT < ids.txt     (one crop id per line; the rows keep SRC's columns)
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path


def main() -> None:
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    ids = {line.strip() for line in sys.stdin if line.strip()}
    with open(src / "manifest.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = [r for r in reader if r["id"] in ids]
        fields = reader.fieldnames
    if (out / "manifest.csv").exists():
        sys.exit(f"{out} already holds a data folder; not overwriting it")
    out.mkdir(parents=True, exist_ok=True)
    for d in ("images", "lesion", "coloured"):
        if (src / d).is_dir() and not (out / d).exists():
            os.symlink((src / d).resolve(), out / d)
    with open(out / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    print(f"{out}: {len(rows)} of {len(ids)} ids from {src}")


if __name__ == "__main__":
    main()
