"""Speed of `skingen evaluate` on this machine: images/s of the FID Inception (the packaged weights) at
64/128/256 px input, what 1,000 real vs 1,000 synthetic images cost in it, and the other stages.

Images: the measles crops (shared data, auto masks, 256 px, resized to each size), and their mirror
images / 90° rotations up to --n per set; only the timing matters, not the content. Inception resizes every input
to 299 px, so its cost barely depends on the input size; the resize (legacy-tf: inside torch-fidelity;
clean: PIL bicubic first) does.

"1,000 vs 1,000" is measured end to end with `evaluate(metrics=fid,kid, features=inception)` on --n
real + --n synthetic images at --total-size (default 64 px; --total-size 0 skips it), once with an
empty feature cache (both sets through Inception) and once with the real set's features cached.
At the other sizes the 1,000 vs 1,000 time is projected from the measured images/s (marked so).

Usage: nice -n 10 python bench/evaluate.py [--n 1000] [--sample 48] [--threads 2] [--total-size 64]
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
SIZES = (64, 128, 256)


def make_sets(work: Path, n: int, size: int) -> tuple[Path, Path]:
    """``real/`` (a data folder, all rows train) and ``fake/`` (plain folder): ``n`` PNGs each, resized
    (bicubic) from the 256 px measles crops (prepared once)."""
    from evaluate_real import prepare_measles  # bench/ is on sys.path when this script runs
    from skingen.data.manifest import read_manifest, write_manifest
    from skingen.data.imagesets import square_resize
    from skingen.imageio import read_image, write_image

    crops = work / "measles256"
    if not crops.is_dir():
        prepare_measles(crops, 256)
    sources = [crops / r["image"] for r in read_manifest(crops)]
    real, fake = work / f"real{size}", work / f"fake{size}"
    rows = []
    for i in range(2 * n):
        img = square_resize(read_image(sources[i % len(sources)]), size)
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
        fn(images[start:start + batch])
    return len(images) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000, help="images per set for the 1,000 vs 1,000 run")
    ap.add_argument("--sample", type=int, default=48, help="images timed per extractor and size")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--total-size", type=int, default=64, help="size of the end-to-end run (0: skip it)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from skingen.config import from_dict
    from skingen.eval.cache import FeatureCache
    from skingen.eval.evaluate import EvaluateConfig, evaluate
    from skingen.eval.features import InceptionExtractor, make_extractor
    from skingen.data.imagesets import open_data, open_folder
    from skingen.eval.swd import SwdDescriptors

    results = []

    def add(row: dict) -> None:  # print as we go: the whole run takes many minutes on 2 cores
        results.append(row)
        ips = f"{row['images_per_s']:.2f}" if "images_per_s" in row else ""
        secs = f"{row['seconds']:.0f}" if "seconds" in row else ""
        print(f"| {row['stage']:44s} | {row['size']:>4} | {ips:>8s} | {secs:>9s} | {row['note']} |", flush=True)

    inception = InceptionExtractor(mode="legacy-tf")
    inception.load()
    clean = InceptionExtractor(mode="clean")
    clean.load()
    print(f"threads {args.threads}; Inception weights {inception.describe()['weights_file']}")
    print(f"| {'stage':44s} | size | images/s | s 1k vs 1k | note |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for size in SIZES:
            real_dir, fake_dir = make_sets(tmp, args.n if size == args.total_size else args.sample, size)
            real = open_data(real_dir)
            t0 = time.perf_counter()
            sample = real.load(range(args.sample), size)
            add({"stage": "read PNG + decode", "size": size, "images_per_s": args.sample / (time.perf_counter() - t0),
                 "note": ""})
            for name, ex in (("inception (legacy-tf)", inception), ("inception (clean)", clean)):
                ips = rate(ex, sample, 16)
                add({"stage": f"features {name}", "size": size, "images_per_s": ips, "seconds": 2000 / ips,
                     "note": "projected: 2,000 images / measured rate (real features not cached)"})
            for spec in ("pixels", "colour"):
                ex = make_extractor(spec)
                add({"stage": f"features {ex.name}", "size": size, "images_per_s": rate(ex, sample, 32), "note": ""})
            desc = SwdDescriptors(size)
            add({"stage": "SWD descriptors", "size": size,
                 "images_per_s": rate(lambda b: desc.add(0, b), sample, 32), "note": f"{len(desc.levels)} levels x 128"})
            if size != args.total_size:
                continue
            fake = open_folder(fake_dir)
            cfg = from_dict(EvaluateConfig, {"metrics": ["fid", "kid"], "features": ["inception"]})
            cache = FeatureCache(tmp / "cache")
            for label in ("cold cache: both sets through Inception", "warm cache: real features cached"):
                t0 = time.perf_counter()
                evaluate(real, [fake], cfg, cache=cache)
                seconds = time.perf_counter() - t0
                add({"stage": f"evaluate fid,kid {args.n} vs {args.n}", "size": size,
                     "images_per_s": (2 if label.startswith("cold") else 1) * args.n / seconds,
                     "seconds": seconds, "note": f"measured end to end; {label}"})
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluate.json").write_text(json.dumps({"n": args.n, "sample": args.sample, "threads": args.threads,
                                                   "results": results}, indent=2))


if __name__ == "__main__":
    main()
