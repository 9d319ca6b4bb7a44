"""Benchmark `prepare`: photos/s and crops/s on the measles photos (auto masks) and on demo data.

Usage: python bench/prepare.py [--workers N] [--size 256] [--demo-n 200]
Prints a table and writes bench/results/prepare.json. Target: all 209 measles photos in < 30 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from skingen.data.demo import write_demo_data
from skingen.data.prepare import PrepareConfig, prepare

from table import print_and_save  # bench/table.py: scripts run with bench/ on sys.path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SKINGEN_SHARED_DATA", REPO.parent / "shared" / "data"))


def run(name: str, src: Path, out: Path, cfg: PrepareConfig, workers: int, masks: Path | None = None) -> dict:
    t0 = time.perf_counter()
    report = prepare(src, out, cfg, masks=masks, workers=workers)
    sec = time.perf_counter() - t0
    crops = sum(report.crops.values())
    return {"set": name, "photos": report.photos_found, "used": report.photos_used, "crops": crops,
            "seconds": round(sec, 2), "photos_per_s": round(report.photos_found / sec, 1),
            "crops_per_s": round(crops / sec, 1), "workers": workers, "size": cfg.size,
            "masks": "auto" if cfg.auto_mask else ("given" if masks else "none")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--demo-n", type=int, default=200)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        measles = SHARED / "exanthem" / "viral_rash_measles"
        if measles.is_dir():
            rows.append(run("measles (209)", measles, tmp / "m", PrepareConfig(size=args.size, auto_mask=True), args.workers))
        else:
            print(f"measles photos not found at {measles}; skipping that row")
        demo = write_demo_data(tmp / "demo", n=args.demo_n, seed=0)
        rows.append(run(f"demo ({args.demo_n})", demo / "images", tmp / "d1", PrepareConfig(size=args.size), args.workers, demo / "masks"))
        rows.append(run(f"demo ({args.demo_n})", demo / "images", tmp / "d2", PrepareConfig(size=args.size, auto_mask=True), args.workers))
    cols = ["set", "masks", "photos", "used", "crops", "seconds", "photos_per_s", "crops_per_s", "workers", "size"]
    print_and_save(rows, cols, "prepare")


if __name__ == "__main__":
    main()
