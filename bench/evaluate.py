"""Speed of `skingen evaluate`: images/s per feature extractor and stage, and the total time for
1,000 real vs 1,000 synthetic images of 256 px.

Images: the measles crops prepared at 256 px (auto masks) and their mirror images / 90° rotations,
written as PNG (1,000 "real" + 1,000 "synthetic"); only the timing matters, not the content.
Inception runs with *random* weights unless --inception-weights is given (the real ones cannot be
downloaded here): the network's cost is the same, its features are meaningless.

Usage: nice -n 10 python bench/evaluate.py [--n 1000] [--size 256] [--threads 2] [--inception-weights PATH]
Prints a table and writes bench/results/evaluate.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SKINGEN_SHARED_DATA", REPO.parent / "shared" / "data"))


def make_sets(work: Path, n: int, size: int) -> tuple[Path, Path]:
    """``real/`` (a data folder, all rows train) and ``fake/`` (plain folder): ``n`` PNGs each."""
    from evaluate_real import prepare_measles  # bench/ is on sys.path when this script runs
    from skingen.data.manifest import read_manifest, write_manifest
    from skingen.imageio import read_image, write_image

    crops = prepare_measles(work / "measles", size)
    sources = [crops / r["image"] for r in read_manifest(crops)]
    real, fake = work / "real", work / "fake"
    rows = []
    for i in range(2 * n):
        img = read_image(sources[i % len(sources)])
        img = np.rot90(img, (i // len(sources)) % 4)
        if (i // (4 * len(sources))) % 2:
            img = img[:, ::-1]
        if i < n:
            write_image(real / "images" / f"{i:05d}.png", np.ascontiguousarray(img))
            rows.append({"id": f"{i:05d}", "image": f"images/{i:05d}.png", "split": "train", "source_id": str(i)})
        else:
            write_image(fake / f"{i:05d}.png", np.ascontiguousarray(img))
    write_manifest(real, rows)
    return real, fake


def rate(fn, images, batch: int) -> float:
    t0 = time.perf_counter()
    for start in range(0, len(images), batch):
        fn(start, images[start:start + batch])
    return len(images) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sample", type=int, default=128, help="images timed per extractor")
    ap.add_argument("--inception-weights", type=Path, default=None)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from skingen.config import from_dict
    from skingen.eval.diversity import DiversityConfig, ms_ssim_diversity
    from skingen.eval.evaluate import EvaluateConfig, evaluate
    from skingen.eval.features import InceptionExtractor, make_extractor, write_random_inception_weights
    from skingen.eval.imagesets import open_data, open_folder
    from skingen.eval.swd import SwdDescriptors

    results = []

    def add(row: dict) -> None:  # print as we go: the whole run takes many minutes on 2 cores
        results.append(row)
        ips = f"{row['images_per_s']:.1f}" if "images_per_s" in row else ""
        print(f"{row['stage']:58s} {ips:>10s} {str(row.get('seconds', '')):>8s}  {row['note']}", flush=True)

    print(f"{'stage':58s} {'images/s':>10s} {'seconds':>8s}  note")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        real_dir, fake_dir = make_sets(tmp, args.n, args.size)
        print(f"wrote {2 * args.n} PNGs of {args.size} px in {time.perf_counter() - t0:.0f} s", flush=True)
        real, fake = open_data(real_dir), open_folder(fake_dir)
        weights = args.inception_weights or write_random_inception_weights(tmp / "random.pth")
        note = "" if args.inception_weights else "random weights (real ones not downloadable here)"

        t0 = time.perf_counter()
        sample = real.load(range(args.sample), args.size)
        add({"stage": "read PNG + decode", "images_per_s": args.sample / (time.perf_counter() - t0), "note": ""})
        for spec in ("pixels", "pixels:64", "colour"):
            ex = make_extractor(spec)
            add({"stage": f"features {ex.name}", "images_per_s": rate(lambda s, b: ex(b), sample, 32), "note": ""})
        inc = InceptionExtractor(weights, mode="legacy-tf")
        inc.load()
        add({"stage": "features inception (legacy-tf)", "images_per_s": rate(lambda s, b: inc(b), sample[:64], 32),
                        "note": note})
        inc_clean = InceptionExtractor(weights, mode="clean")
        add({"stage": "features inception (clean)", "images_per_s": rate(lambda s, b: inc_clean(b), sample[:64], 32),
                        "note": note})
        desc = SwdDescriptors(args.size)
        add({"stage": "SWD descriptors", "images_per_s": rate(desc.add, sample, 32), "note": "5 levels x 128"})
        t0 = time.perf_counter()
        ms_ssim_diversity(real, args.size, DiversityConfig(pairs=64))
        add({"stage": "MS-SSIM pairs", "images_per_s": 64 / (time.perf_counter() - t0), "note": "pairs/s incl. reading"})

        totals = {}
        for label, features, w in (("pixels+colour", ("pixels", "colour"), None),
                                   ("inception+pixels+colour", ("inception", "pixels", "colour"), weights)):
            cfg = from_dict(EvaluateConfig, {"features": list(features)})
            t0 = time.perf_counter()
            evaluate(real, [fake], cfg, inception_weights=w, allow_download=False, cache=None)
            totals[label] = time.perf_counter() - t0
            add({"stage": f"TOTAL evaluate {args.n} vs {args.n}: {label}", "seconds": round(totals[label], 1),
                            "note": (note if w else "") + "; all metrics, 200 MS-SSIM pairs per set, no cache"})
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluate.json").write_text(json.dumps({"n": args.n, "size": args.size, "threads": args.threads,
                                                   "results": results}, indent=2))


if __name__ == "__main__":
    main()
