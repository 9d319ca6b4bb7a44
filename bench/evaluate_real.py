"""Sanity of the evaluation metrics on real data: do they rank known degradations sensibly?

Real set: the measles crops' train split. Compared sets: the test and val splits (the floor: real vs
real; two of them show the noise level), the same test images colour-jittered, blurred and JPEG-compressed, JPEG copies of *training* images (the
memorisation check must flag them), and procedural demo data (a different distribution).

Usage: python bench/evaluate_real.py [--data PREPARED] [--size 128] [--work DIR] [--inception-weights PATH]
Without --data it prepares ../shared/data/exanthem/viral_rash_measles (auto masks) at --size first.
Prints the comparison table and writes bench/results/evaluate_real/NNNNN-measles/ (report) and a JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from skingen.data.manifest import read_manifest
from skingen.imageio import read_image, write_image
from skingen.runs import new_run_dir
from skingen.seeding import numpy_rng

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SKINGEN_SHARED_DATA", REPO.parent / "shared" / "data"))


def prepare_measles(out: Path, size: int) -> Path:
    from skingen.data.prepare import PrepareConfig, prepare
    from skingen.data.sources import CsvColumns

    root = SHARED / "exanthem" / "viral_rash_measles"
    cols = CsvColumns(image="file", group="near_dup_group", exclude="content_flag")
    prepare(root / "metadata.csv", out, PrepareConfig(size=size, auto_mask=True), columns=cols, workers=2)
    return out


def colour_jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per image: brightness and contrast ×U(0.7,1.3), saturation ×U(0.6,1.4), hue ±0.05 turn (torchvision ColorJitter)."""
    import torch
    import torchvision.transforms.v2.functional as TF

    x = torch.from_numpy(np.array(img)).permute(2, 0, 1)
    x = TF.adjust_brightness(x, float(rng.uniform(0.7, 1.3)))
    x = TF.adjust_contrast(x, float(rng.uniform(0.7, 1.3)))
    x = TF.adjust_saturation(x, float(rng.uniform(0.6, 1.4)))
    x = TF.adjust_hue(x, float(rng.uniform(-0.05, 0.05)))
    return x.permute(1, 2, 0).numpy()


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return np.clip(np.round(gaussian_filter(img.astype(np.float64), (sigma, sigma, 0))), 0, 255).astype(np.uint8)


def write_variant(data: Path, rows: list[dict], out: Path, fn=None, jpeg_quality: int | None = None) -> Path:
    out.mkdir(parents=True)
    for i, r in enumerate(rows):
        img = read_image(data / r["image"])
        if fn is not None:
            img = fn(img, numpy_rng(0, "variant", out.name, i))
        write_image(out / f"{r['id']}.{'jpg' if jpeg_quality else 'png'}", img, quality=jpeg_quality or 95)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, help="prepared measles folder (default: prepare it into --work)")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--work", type=Path, default=None, help="folder for the variants (default: a temp dir)")
    ap.add_argument("--inception-weights", type=Path, default=None)
    ap.add_argument("--pairs", type=int, default=200, help="MS-SSIM pairs per set")
    args = ap.parse_args()

    from skingen.config import from_dict
    from skingen.data.demo import write_demo_data
    from skingen.data.prepare import PrepareConfig, prepare
    from skingen.eval.cache import FeatureCache
    from skingen.eval.evaluate import EvaluateConfig, evaluate
    from skingen.data.imagesets import open_data, open_folder
    from skingen.eval.report import summary_table, write_report

    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        data = args.data or prepare_measles(work / "measles", args.size)
        rows = read_manifest(data)
        test = [r for r in rows if r["split"] == "test"]
        val = [r for r in rows if r["split"] == "val"]
        train = [r for r in rows if r["split"] == "train"]
        # a random subset: manifest order groups crops of one photo, and neighbouring photos are alike
        picked = [train[i] for i in sorted(numpy_rng(0, "train-copies").choice(len(train), len(test), replace=False))]
        size = int(np.asarray(read_image(data / test[0]["image"])).shape[0])
        v = work / "variants"
        fakes = [
            write_variant(data, test, v / "test (floor)"),
            write_variant(data, val, v / "val (2nd floor)"),
            write_variant(data, test, v / "test JPEG q=20", jpeg_quality=20),
            write_variant(data, test, v / "test JPEG q=5", jpeg_quality=5),
            write_variant(data, test, v / "test blur s=1.5", lambda im, _: blur(im, 1.5 * size / 128)),
            write_variant(data, test, v / "test colour jitter", colour_jitter),
            write_variant(data, picked, v / "train copies JPEG q=90", jpeg_quality=90),
        ]
        demo_raw = write_demo_data(work / "demo_raw", n=max(40, len(test) // 2), seed=0)
        demo = prepare(demo_raw / "images", work / "demo", PrepareConfig(size=size), masks=demo_raw / "masks")
        demo_rows = read_manifest(demo.out)[: len(test)]
        fakes.append(write_variant(demo.out, demo_rows, v / "demo data"))

        cfg = from_dict(EvaluateConfig, {"diversity": {"pairs": args.pairs}})
        t0 = time.perf_counter()
        ev = evaluate(open_data(f"{data}:train"), [open_folder(f) for f in fakes], cfg,
                      inception_weights=args.inception_weights,
                      cache=FeatureCache(work / "cache"))
        seconds = time.perf_counter() - t0
        out = new_run_dir(REPO / "bench" / "results" / "evaluate_real", "measles")
        write_report(ev, out)
    header, table = summary_table(ev.record)
    print(" | ".join(header))
    for row in table:
        print(" | ".join(row))
    print((out / "report.md").read_text().split("## By feature space")[1].split("## Notes")[0])
    for note in ev.notes:
        print("note:", note)
    print(f"evaluate: {seconds:.1f} s for {len(fakes)} sets; report in {out}")
    (REPO / "bench" / "results" / "evaluate_real.json").write_text(json.dumps(ev.record, indent=2, default=str))


if __name__ == "__main__":
    main()
