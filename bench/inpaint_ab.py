"""A/B of iterative-inpainting settings on real crops, by the seam score: which region shape, side and
feather leave no box?

Usage: python bench/inpaint_ab.py MODEL [MODEL ...] --data DATA[:split] [--n 109] [--runs 1] [--steps 10]
                                  [--shapes box,blob,mixed] [--sizes 0.1875,0.25] [--feathers 0,4,8]
                                  [--device cpu] [--json OUT.json]
MODEL: anything ``skingen inpaint`` takes (a run folder, a shipped model's name, opencv:telea, ...). For every
model and every combination of settings: ``runs`` runs of ``steps`` regions on each of the first ``n`` crops
(seeds as ``skingen inpaint``: crop i, run j -> i·runs + j), then the median seam score over the images
(1.0 = the region borders carry as much edge as the source had there; > 1 seams; < 1 smoothed borders) and
its interquartile range, wall seconds per image (after a warm-up) and network evaluations per image
(the measurement of bench/inpaint.py). Prints one table
(best |log seam| first) and writes it as JSON. Numbers depend on the data: say which crops you ran.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from pathlib import Path

import torch

from inpaint import measure  # bench/inpaint.py, beside this script: the same measurement, one setting at a time
from skingen.inpaint.iterative import IterativeParams


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--data", required=True, help="DATA[:split] (default split: train)")
    ap.add_argument("--n", type=int, default=109, help="crops (the first n of the split)")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--shapes", default="box,blob,mixed")
    ap.add_argument("--sizes", default="0.1875,0.25")
    ap.add_argument("--feathers", default="0,4,8")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--json", type=Path, default=None, help="write the rows here (must not exist)")
    args = ap.parse_args()
    if args.json is not None and args.json.exists():
        raise SystemExit(f"{args.json} already exists")
    rows = []
    for model, shape, size, feather in itertools.product(args.models, args.shapes.split(","),
                                                         map(float, args.sizes.split(",")),
                                                         map(float, args.feathers.split(","))):
        params = IterativeParams(steps=args.steps, shape=shape, size=size, feather=feather)
        rows.append({"model": model, "shape": shape, "size": size, "feather": feather,
                     **measure(model, args.data, args.n, args.runs, params, args.device, args.batch)})
        print(json.dumps(rows[-1]), flush=True)
    rows.sort(key=lambda r: abs(math.log(r["seam_median"])) if r["seam_median"] > 0 else math.inf)
    print(f"\n{'model':<40} {'shape':<6} {'size':>6} {'feather':>7} {'seam':>6} {'IQR':>13} {'s/img':>7} {'evals':>5}")
    for r in rows:
        iqr = f"{r['seam_iqr'][0]:.2f}-{r['seam_iqr'][1]:.2f}"
        print(f"{r['model'][-40:]:<40} {r['shape']:<6} {r['size']:>6g} {r['feather']:>7g} {r['seam_median']:>6.3f} "
              f"{iqr:>13} {r['wall_s_per_image']:>7.2f} {r['evaluations_per_image']:>5.0f}")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
