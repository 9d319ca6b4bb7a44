"""Seconds per crop of ``skingen tone``'s work (skin detection, the tone change, measuring the output).

Usage: python bench/tone.py DATA[:split] [--n 50] [--target -20]
Times :func:`skingen.generation.tone_folder.tone_one` (what ``skingen tone`` does per output, file reading and
writing left out) on the first N crops of the split, for both methods. Prints a table and writes
bench/results/tone.json. Bar (issue 31): <= 0.2 s per 256 px crop on the 2-core CPU.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from skingen.data.imagesets import parse_data_spec
from skingen.data.provenance import rows_of
from skingen.generation.tone_folder import tone_one
from skingen.imageio import read_image, read_mask

from table import print_and_save  # bench/table.py: scripts run with bench/ on sys.path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--target", type=float, default=-20.0)
    args = ap.parse_args()
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
