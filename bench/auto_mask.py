"""Quality of the training-free auto lesion mask: IoU against given masks.

Sets: ../shared/data/masked (clinical Waterloo and dermoscopic PH2 pigmented lesions — *not* rashes,
so a redness detector is expected to do poorly there) and demo data (exact rash masks).
Usage: python bench/auto_mask.py [--demo-n 100]. Prints a table, writes bench/results/auto_mask.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from skingen.data.demo import write_demo_data
from skingen.data.masks import auto_lesion_mask, iou
from skingen.imageio import read_image, read_mask

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SKINGEN_SHARED_DATA", REPO.parent / "shared" / "data"))


def score(pairs: list[tuple[Path, Path]]) -> list[float]:
    return [iou(auto_lesion_mask(read_image(img))[0], read_mask(msk)) for img, msk in pairs]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--demo-n", type=int, default=100)
    args = ap.parse_args()
    results = {}
    masked = SHARED / "masked"
    if masked.is_dir():
        for prefix, name in (("waterloo_", "masked: clinical (Waterloo)"), ("ph2_", "masked: dermoscopic (PH2)")):
            pairs = [(p, masked / "masks" / f"{p.stem}.png") for p in sorted((masked / "images").glob(f"{prefix}*.jpg"))]
            results[name] = score(pairs)
    with tempfile.TemporaryDirectory() as tmp:
        demo = write_demo_data(Path(tmp) / "demo", n=args.demo_n, seed=1)
        pairs = [(p, demo / "masks" / f"{p.stem}.png") for p in sorted((demo / "images").glob("*.jpg"))]
        results[f"demo (n={args.demo_n}, seed 1)"] = score(pairs)
    print("set | n | mean IoU | median IoU | IoU >= 0.5")
    for name, v in results.items():
        print(f"{name} | {len(v)} | {np.mean(v):.3f} | {np.median(v):.3f} | {np.mean(np.array(v) >= 0.5):.0%}")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "auto_mask.json").write_text(json.dumps({k: {"n": len(v), "mean": float(np.mean(v)), "median": float(np.median(v))}
                                                    for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    main()
