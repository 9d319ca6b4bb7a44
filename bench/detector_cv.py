"""Group k-fold cross-validation of a detector recipe on the train split only: how a recipe is chosen
without looking at the test images.

Usage: python bench/detector_cv.py --data PREPARED [--folds 5] [--set train.size=224 ...] [--threads 1]
The train split is cut into ``--folds`` folds by photo (``source_id``, stratified by class; scikit-learn's
``StratifiedGroupKFold``); each fold is predicted by a classifier trained on the other folds with the study's own
recipe (``skingen.downstream.train.train_classifier``, the val split as its val set), and the out-of-fold
predictions give one balanced accuracy. Each ``--set`` list (separate them with ``--vs``) is one recipe, e.g.
  python bench/detector_cv.py --data mc3-128 --set train.size=128 --vs --set train.size=224
Prints one row per recipe and writes bench/results/detector_cv.json. Slow: a fine-tune per fold and recipe.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from table import print_and_save  # noqa: E402


def recipes(argv: list[str]) -> list[list[str]]:
    """``--set A --set B --vs --set C`` -> [["A", "B"], ["C"]]."""
    out, current, it = [], [], iter(argv)
    for a in it:
        if a == "--vs":
            out.append(current)
            current = []
        elif a == "--set":
            current.append(next(it))
    return out + [current]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="prepared data folder with train/val splits, labels and source_id")
    ap.add_argument("--arch", default="efficientnet-lite0")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args, rest = ap.parse_known_args()

    import numpy as np
    import torch
    from sklearn.model_selection import StratifiedGroupKFold

    from skingen.config import load_config
    from skingen.data.manifest import read_manifest
    from skingen.downstream.study import StudyConfig, load_images
    from skingen.downstream.train import predict, train_classifier
    from skingen.stats import balanced_accuracy

    torch.set_num_threads(args.threads)
    data = Path(args.data)
    rows = read_manifest(data)
    labels = tuple(sorted({r["label"] for r in rows}))
    train_rows = [r for r in rows if r["split"] == "train"]
    val_rows = [r for r in rows if r["split"] == "val"]
    out = []
    for overrides in recipes(rest):
        cfg = load_config(StudyConfig, None, [f"train.arch={args.arch}", *overrides]).train.resolved()
        train, val = (load_images(data, rs, labels, cfg.size) for rs in (train_rows, val_rows))
        y = train.y.numpy()
        folds = StratifiedGroupKFold(args.folds, shuffle=True, random_state=args.seed)
        oof = np.zeros((len(y), len(labels)))
        t0 = time.perf_counter()
        for k, (fit, held) in enumerate(folds.split(np.zeros(len(y)), y, [r["source_id"] for r in train.rows])):
            fit, held = torch.as_tensor(fit), torch.as_tensor(held)
            clf = train_classifier(train.x[fit], train.y[fit], val.x, val.y, labels, cfg, seed=args.seed + k)
            oof[held.numpy()] = predict(clf.model, train.x[held], tta=bool(cfg.tta))
            print(f"{' '.join(overrides) or 'defaults'}: fold {k + 1}/{args.folds} done, {clf.seconds:.0f} s", flush=True)
        ba = balanced_accuracy(y, oof.argmax(1), len(labels))[0]
        out.append({"recipe": " ".join(overrides) or "defaults", "arch": args.arch, "folds": args.folds,
                    "n_train": len(y), "cv_balanced_accuracy": round(float(ba), 4),
                    "seconds": round(time.perf_counter() - t0), "load_1min": round(os.getloadavg()[0], 1)})
    print(f"group {args.folds}-fold CV on {data}:train (no test image is read)")
    print_and_save(out, ["recipe", "arch", "folds", "n_train", "cv_balanced_accuracy", "seconds", "load_1min"], "detector_cv")


if __name__ == "__main__":
    main()
