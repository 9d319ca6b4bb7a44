"""Benchmark `analyze` without the autoencoder: colour statistics (incl. skin detection and ITA) per crop.

Usage: python bench/analyze.py [--n 8000] [--size 256] [--workers N]
Makes ``--n`` crops by repeating demo crops (prepare at ``--size`` px with the exact masks; the images
are hard-linked copies, so reading them costs what reading real crops costs), then times the per-crop
statistics stage and the whole ``analyze --no-autoencoder`` (figures, HTML, manifest included).
Prints a table and writes bench/results/analyze.json. Target: 8,000 crops of 256 px in < 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from skingen.analysis.measure import AnalyzeConfig, _crop_job, _run_jobs
from skingen.analysis.report import analyze
from skingen.data.demo import write_demo_data
from skingen.data.manifest import read_manifest, write_manifest
from skingen.data.prepare import PrepareConfig, prepare

from table import print_and_save  # bench/table.py: scripts run with bench/ on sys.path


def make_crops(tmp: Path, n: int, size: int, workers: int) -> Path:
    raw = write_demo_data(tmp / "raw", n=60, seed=0)
    data = tmp / "data"
    prepare(raw / "images", data, PrepareConfig(size=size), masks=raw / "masks", workers=workers)
    rows = read_manifest(data)
    out = []
    for i in range(n):
        src = rows[i % len(rows)]
        row = {**src, "id": f"{i:06d}", "image": f"images/rep{i:06d}.png", "lesion": f"lesion/rep{i:06d}.png"}
        os.link(data / src["image"], data / row["image"])
        os.link(data / src["lesion"], data / row["lesion"])
        out.append(row)
    write_manifest(data, out)
    return data


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=8000)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = make_crops(tmp, args.n, args.size, args.workers)
        cfg = AnalyzeConfig()
        jobs = [(data, r["image"], r["lesion"], cfg.min_healthy_fraction, cfg.exclude_lesion, 0) for r in read_manifest(data)]
        for workers in sorted({1, args.workers}):
            subset = jobs if workers > 1 else jobs[: max(1, len(jobs) // 8)]  # one worker: an eighth is enough
            t0 = time.perf_counter()
            _run_jobs(_crop_job, subset, workers, lambda d, t: None)
            sec = time.perf_counter() - t0
            rows.append({"stage": "statistics", "crops": len(subset), "size": args.size, "workers": workers,
                         "seconds": round(sec, 2), "images_per_s": round(len(subset) / sec, 1)})
        t0 = time.perf_counter()
        res = analyze(data, tmp / "report", cfg, autoencoder=False, workers=args.workers)
        sec = time.perf_counter() - t0
        rows.append({"stage": "analyze --no-autoencoder", "crops": res.images, "size": args.size,
                     "workers": args.workers, "seconds": round(sec, 2), "images_per_s": round(res.images / sec, 1)})
    cols = ["stage", "crops", "size", "workers", "seconds", "images_per_s"]
    print_and_save(rows, cols, "analyze")


if __name__ == "__main__":
    main()
