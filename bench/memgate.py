"""Benchmark the memorisation gate of ``skingen augment``: 1,000 synthetic vs 1,000 training images.

Usage: python bench/memgate.py [--n 1000] [--held 200] [--features inception,pixels:64]
Builds a prepared folder of ``n`` training crops (256 px PNG, smooth skin-like textures, one photo each) plus
``held`` val/test crops, and a synthetic folder of ``n`` 64 px images (10 of them copies of training crops),
then times :func:`skingen.downstream.memgate.run_gate` per feature space, with the reference features' disk
cache cold and then warm (a second augment against the same data).
Prints a table and writes bench/results/memgate.json.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from skingen.data.manifest import write_manifest
from skingen.downstream.memgate import GateConfig, load_extractors, run_gate
from skingen.eval.cache import FeatureCache
from skingen.imageio import write_image

from table import print_and_save  # bench/table.py: scripts run with bench/ on sys.path


def texture(rng: np.random.Generator, size: int) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    base = np.array([200, 150, 130]) + rng.normal(0, 20, 3)
    noise = gaussian_filter(rng.normal(0, 1, (size // 4, size // 4, 3)), sigma=(1.5, 1.5, 0))
    small = np.clip(base + 60 * noise, 0, 255).astype(np.uint8)
    return np.kron(small, np.ones((4, 4, 1), np.uint8))


def build(root: Path, n: int, held: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    real, synth = root / "real", root / "synth"
    rows, train_images = [], []
    for i in range(n + held):
        split = "train" if i < n else ("val" if i < n + held // 2 else "test")
        img = texture(rng, 256)
        if split == "train" and i < 10:
            train_images.append(img)
        write_image(real / "images" / f"r{i:05d}.png", img)
        rows.append({"id": f"r{i:05d}", "image": f"images/r{i:05d}.png", "label": "exanthem", "source_id": f"p{i}",
                     "split": split, "origin": "real"})
    write_manifest(real, rows)
    srows = []
    for i in range(n):
        img = train_images[i][::4, ::4] if i < len(train_images) else texture(rng, 64)
        write_image(synth / f"s{i:05d}.png", img)
        srows.append({"id": f"s{i:05d}", "image": f"s{i:05d}.png", "label": "exanthem", "source_id": f"s{i}",
                      "split": "train", "origin": "synthetic", "model": "bench", "checkpoint": ""})
    write_manifest(synth, srows)
    return real, synth


def main() -> None:
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--held", type=int, default=200)
    ap.add_argument("--features", default="inception,pixels:64")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SKINGEN_CACHE_DIR"] = str(Path(tmp) / "cache")
        t = time.perf_counter()
        real, synth = build(Path(tmp), args.n, args.held)
        print(f"built the folders in {time.perf_counter() - t:.1f} s")
        from skingen.data.manifest import read_manifest

        synth_rows = read_manifest(synth)
        for spec in args.features.split(","):
            cfg = GateConfig(features=(spec,))
            weights = "n/a"
            if spec == "inception":
                from skingen.eval.features import find_inception_weights

                weights = str(find_inception_weights())
            extractors = load_extractors(cfg)
            cache = FeatureCache()
            for run in ("cold cache", "warm cache"):
                t = time.perf_counter()
                res = run_gate(synth, synth_rows, real, str(real), cfg, extractors, cache)
                sec = time.perf_counter() - t
                rows.append({"features": spec, "run": run, "synthetic": args.n, "training": args.n,
                             "held_out": args.held, "seconds": round(sec, 1),
                             "ms_per_synthetic_image": round(1000 * sec / args.n, 1),
                             "flagged": len(res.flagged), "planted_copies": 10, "weights": weights,
                             "threads": torch.get_num_threads()})
                print(rows[-1], flush=True)
    print("busy shared 2-core CPU; cold = every image's features computed, warm = training and held-out "
          "features read from the disk cache (only the synthetic set is computed)")
    print_and_save(rows, ["features", "run", "synthetic", "training", "held_out", "seconds", "ms_per_synthetic_image",
                          "flagged", "planted_copies", "weights"], "memgate")


if __name__ == "__main__":
    main()
