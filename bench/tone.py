"""Seconds per crop of ``skingen tone``'s work, and how well its skin mask finds skin on photos with known skin.

Usage: python bench/tone.py DATA[:split] [--n 50] [--target -20] [--demo 60]
1. Times :func:`skingen.generation.tone_folder.tone_one` (what ``skingen tone`` does per output: skin detection,
   the tone change, measuring the output; file reading and writing left out) on the first N crops of the split,
   for both methods. Bar (issue 31): <= 0.2 s per 256 px crop on the 2-core CPU.
2. On ``--demo`` procedural demo photos (:mod:`skingen.data.demo`: exact skin masks, skin over the whole ITA
   range, a background strip) the skin mask ``tone`` changes: precision (share of changed pixels that are skin;
   the rest is background that gets toned) and recall (share of skin that is toned), per true ITA category.
Prints the tables and writes bench/results/tone.json and tone_skin_demo.json.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from skingen.data.demo import write_demo_data
from skingen.data.imagesets import parse_data_spec
from skingen.data.masks import skin_mask
from skingen.data.provenance import rows_of
from skingen.generation.tone_folder import tone_one
from skingen.imageio import read_image, read_mask

from table import print_and_save  # bench/table.py: scripts run with bench/ on sys.path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--target", type=float, default=-20.0)
    ap.add_argument("--demo", type=int, default=60)
    args = ap.parse_args()
    timing(args)
    if args.demo:
        skin_on_demo(args.demo)


def skin_on_demo(n: int) -> None:
    import csv
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        raw = write_demo_data(f"{tmp}/demo", n=n, seed=0)
        counts: dict[str, list[int]] = {}
        with open(raw / "truth.csv", newline="") as fh:
            for r in csv.DictReader(fh):
                truth = read_mask(raw / r["skin"])
                found = skin_mask(read_image(raw / r["image"]))
                for key in (r["true_ita_category"], "all"):
                    c = counts.setdefault(key, [0, 0, 0, 0])
                    c[0] += 1
                    c[1] += int((found & truth).sum())
                    c[2] += int(found.sum())
                    c[3] += int(truth.sum())
    table = [{"true ITA category": k, "photos": c[0], "precision": f"{c[1] / max(c[2], 1):.3f}",
              "recall": f"{c[1] / max(c[3], 1):.3f}"} for k, c in counts.items()]
    print(f"skin mask on {n} demo photos (exact skin masks)")
    print_and_save(table, list(table[0]), "tone_skin_demo")


def timing(args) -> None:
    folder, split = parse_data_spec(args.data)
    rows = rows_of(folder, split or "train")[: args.n]
    crops = [(read_image(folder / r["image"]), read_mask(folder / r["lesion"])) for r in rows]
    table = []
    for method in ("melanin", "lab"):
        times = []
        for image, lesion in crops:
            t = time.perf_counter()
            tone_one(image, lesion, args.target, method)
            times.append(time.perf_counter() - t)
        table.append({"method": method, "crops": len(crops), "size": f"{crops[0][0].shape[1]} px",
                      "median s/crop": f"{np.median(times):.3f}", "p90 s/crop": f"{np.percentile(times, 90):.3f}",
                      "max s/crop": f"{max(times):.3f}"})
    print(f"tone_one on {args.data}, target ITA {args.target:g} deg, 1 process")
    print_and_save(table, list(table[0]), "tone")


if __name__ == "__main__":
    main()
