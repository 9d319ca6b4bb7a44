"""Seconds per trained classifier of the downstream study, on this machine's CPU.

Usage: python bench/downstream.py --data PREPARED [--sizes 64,128] [--classifiers efficientnet-lite0,probe:efficientnet-lite0,probe:inception]
                                  [--seeds 1] [--threads 1] [--cache-dir DIR]
One real-only classifier per (classifier, size, seed) on the data's full train split, model selection on its val
split, test balanced accuracy on its test split. Fine-tune: the recipe of ``skingen.downstream.train`` (fixed
budget, last weights, test-time averaging over 8 rotations / mirror images; ``images`` = training images seen). Probe: feature extraction
(once per image, then cached; timed cold into a fresh cache) and the logistic-regression fits (timed per
classifier). Prints a table and writes bench/results/downstream.json. Timings on a shared machine vary with its
load; the 1-minute load average is recorded with each row.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from table import print_and_save  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="prepared data folder with train/val/test splits and labels")
    ap.add_argument("--sizes", default="64,128")
    ap.add_argument("--classifiers", default="efficientnet-lite0,probe:efficientnet-lite0,probe:inception")
    ap.add_argument("--classes", default="", help="only these classes (comma-separated)")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache-dir", default=None, help="feature cache (default: a fresh temporary folder: cold timing)")
    args = ap.parse_args()

    import torch

    from skingen.data.manifest import read_manifest
    from skingen.downstream.probe import ProbeFeatures, is_probe, make_probe_extractor, train_probe
    from skingen.stats import metric_values
    from skingen.downstream.study import load_images
    from skingen.downstream.train import TrainConfig, predict, train_classifier
    from skingen.eval.cache import FeatureCache

    torch.set_num_threads(args.threads)
    data = Path(args.data)
    rows = read_manifest(data)
    if args.classes:
        rows = [r for r in rows if r["label"] in args.classes.split(",")]
    labels = tuple(sorted({r["label"] for r in rows}))
    tmp = tempfile.TemporaryDirectory()
    cache = FeatureCache(args.cache_dir or tmp.name)
    out = []
    for size in (int(s) for s in args.sizes.split(",")):
        split = {s: load_images(data, [r for r in rows if r["split"] == s], labels, size) for s in ("train", "val", "test")}
        for arch in args.classifiers.split(","):
            cfg = TrainConfig(arch=arch, size=size).resolved()
            feats, extract_s = {}, 0.0
            if is_probe(arch):
                fx = ProbeFeatures(make_probe_extractor(arch), cache)
                for s, imgs in split.items():
                    feats[s] = fx.features(imgs.x, s)
                extract_s = fx.seconds
            for seed in range(args.seeds):
                t0 = time.perf_counter()
                if is_probe(arch):
                    trained = train_probe(feats["train"], split["train"].y.numpy(), feats["val"], split["val"].y.numpy(),
                                          len(labels))
                    p, seen, val_ba = trained.predict(feats["test"]), 0, trained.val_balanced_accuracy
                else:
                    trained = train_classifier(split["train"].x, split["train"].y, split["val"].x, split["val"].y,
                                               labels, cfg, seed)
                    p, seen, val_ba = (predict(trained.model, split["test"].x, tta=bool(cfg.tta)), trained.best_images,
                                      trained.val_balanced_accuracy)
                seconds = time.perf_counter() - t0
                test = metric_values(split["test"].y.numpy(), p)
                out.append({"classifier": arch, "size": size, "seed": seed, "train_images": len(split["train"].y),
                            "seconds_per_classifier": round(seconds, 1),
                            "feature_extraction_s": round(extract_s, 1) if is_probe(arch) else "",
                            "images_seen_at_best": seen if not is_probe(arch) else "",
                            "val_ba": round(val_ba, 3), "test_ba": round(test["balanced_accuracy"], 3),
                            "threads": args.threads, "load_1min": round(os.getloadavg()[0], 1)})
                print(out[-1], flush=True)
    print()
    print_and_save(out, ["classifier", "size", "seed", "train_images", "seconds_per_classifier", "feature_extraction_s",
                         "images_seen_at_best", "val_ba", "test_ba", "load_1min"], "downstream")
    tmp.cleanup()
    return None


if __name__ == "__main__":
    main()
