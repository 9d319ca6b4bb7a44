"""Accuracy of the skin-tone (ITA) measurement on demo data, whose true skin colour is known.

Usage: python bench/ita_demo.py [--n 200] [--size 128] [--workers N]
For whole demo photos and for their prepared crops (given masks and auto masks), measures ITA from
healthy skin with and without excluding the lesion mask, and compares it with the true base skin
colour of the photo (``truth.csv``): median absolute error in degrees and the share of images in the
right ITA category. Prints a table and writes bench/results/ita_demo.json.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
from pathlib import Path


import numpy as np

from skingen.data.skintone import ita_category, measure_skin_tone
from skingen.data.demo import write_demo_data
from skingen.data.manifest import read_manifest
from skingen.data.prepare import PrepareConfig, prepare
from skingen.imageio import read_image, read_mask

from table import print_and_save  # bench/table.py: scripts run with bench/ on sys.path


def score(pairs: list[tuple[float, float]]) -> dict:
    """pairs of (measured ITA, true ITA) -> error and agreement (unmeasurable images count as wrong)."""
    measured = np.array([m for m, _ in pairs])
    truth = np.array([t for _, t in pairs])
    ok = ~np.isnan(measured)
    return {"images": len(pairs), "unknown": int((~ok).sum()),
            "median_abs_error_deg": round(float(np.median(np.abs(measured[ok] - truth[ok]))), 2) if ok.any() else None,
            "category_agreement": round(float(np.mean([ita_category(m) == ita_category(t) for m, t in pairs])), 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        raw = write_demo_data(tmp / "raw", n=args.n, seed=0)
        truth = {r["id"]: r for r in csv.DictReader(open(raw / "truth.csv"))}
        for exclude in (True, False):
            pairs = []
            for stem, t in truth.items():
                tone = measure_skin_tone(read_image(raw / t["image"]), read_mask(raw / t["lesion"]), exclude_lesion=exclude)
                pairs.append((tone.ita, float(t["true_ita"])))
            rows.append({"images of": "whole photos", "masks": "exact", "lesion excluded": exclude, **score(pairs)})
        for masks in ("given", "auto"):
            data = tmp / f"data-{masks}"
            prepare(raw / "images", data, PrepareConfig(size=args.size, auto_mask=masks == "auto"),
                    masks=raw / "masks" if masks == "given" else None, workers=args.workers)
            crops = read_manifest(data)
            for exclude in (True, False):
                pairs = []
                for r in crops:
                    tone = measure_skin_tone(read_image(data / r["image"]), read_mask(data / r["lesion"]),
                                             exclude_lesion=exclude)
                    pairs.append((tone.ita, float(truth[Path(r["photo"]).stem]["true_ita"])))
                rows.append({"images of": f"{args.size} px crops", "masks": masks, "lesion excluded": exclude, **score(pairs)})
    cols = ["images of", "masks", "lesion excluded", "images", "unknown", "median_abs_error_deg", "category_agreement"]
    print_and_save(rows, cols, "ita_demo")


if __name__ == "__main__":
    main()
