"""The critic (C2ST) on the shared measles crops: the required ranking and what sets the real-vs-real floor.

Reference: measles-study:train (auto-mask crops, 256 px). Sets, each against the reference with the critic's
grouped folds: real test crops (the floor: another real split), a sigma=2 Gaussian blur of those test crops,
chickenpox crops (another class, auto-mask crops of the same source), and optionally a synthetic folder.
Floor study: the same real-vs-real comparison under other settings (folds, C), a simulated null with the data's
photo groups (random features: what grouped CV alone gives), a label-permutation null
(train crops split into two random halves by photo: no distribution difference by construction), and the
floor at other N (test crops subsampled).

Usage: SKINGEN_CACHE_DIR=... nice -n 10 python bench/c2st_real.py --measles DATA --chickenpox DATA2
       [--features inception,efficientnet-lite0] [--synthetic DIR ...]
Prints tables and writes bench/results/c2st_real.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from skingen.data.imagesets import ImageSet, open_data, open_folder
from skingen.eval.c2st import C2stConfig, c2st, groups_of_rows
from skingen.eval.cache import FeatureCache, cached_features
from skingen.eval.features import make_extractor
from skingen.seeding import numpy_rng

RESULTS = Path(__file__).resolve().parent / "results"


class Blurred:
    """An image set's images blurred with a Gaussian of ``sigma`` px (at the set's size), same ids and rows."""

    def __init__(self, images: ImageSet, sigma: float):
        self.images, self.sigma = images, sigma
        self.fingerprint = f"{images.fingerprint}:blur{sigma}"
        self.rows, self.ids = images.rows, images.ids

    def __len__(self):
        return len(self.images)

    def batches(self, size, batch_size):
        import torch
        from scipy.ndimage import gaussian_filter

        for start, batch in self.images.batches(size, batch_size):
            x = batch.permute(0, 2, 3, 1).numpy().astype(np.float64)
            x = np.stack([gaussian_filter(im, (self.sigma, self.sigma, 0)) for im in x])
            yield start, torch.from_numpy(np.clip(np.round(x), 0, 255).astype(np.uint8)).permute(0, 3, 1, 2)


def table(title, rows):
    print(f"\n{title}", flush=True)
    for r in rows:
        print("  " + " | ".join(str(v) for v in r))


def run(args) -> dict:
    ref = open_data(f"{args.measles}:train")
    test = open_data(f"{args.measles}:test")
    other = open_data(args.chickenpox)
    sets = {"real test": test, "blur s=2": Blurred(test, 2.0), "chickenpox": other}
    sets.update({Path(s).name: open_folder(s) for s in args.synthetic})
    size = 256
    cache = FeatureCache()
    out = {}
    for space in args.features.split(","):
        ex = make_extractor(space)
        ex.load()
        t0 = time.perf_counter()
        f_ref = cached_features(ref, ex, size, cache)
        feats = {k: cached_features(v, ex, size, cache) for k, v in sets.items()}
        g_ref = groups_of_rows(ref.rows, ref.ids)
        print(f"{space}: features in {time.perf_counter() - t0:.0f} s (reference N={len(ref)})")
        res = {}
        for cfg_name, cfg in (CONFIGS if not args.quick else {args.main: CONFIGS[args.main]}).items():
            rows = []
            for k, v in sets.items():
                r = c2st(f_ref, feats[k], g_ref, groups_of_rows(v.rows, v.ids), cfg, 0)
                res[f"{cfg_name}/{k}"] = {**r.record(), "set": k}
                rows.append([k, len(v), f"{r.auroc:.3f} [{r.auroc_ci[0]:.3f}, {r.auroc_ci[1]:.3f}]",
                             f"acc {r.accuracy:.3f}", f"C~{np.median(r.c_chosen):g}", f"{r.seconds:.1f} s"])
            table(f"{space}, {cfg_name}: set | N | AUROC [95% CI] | balanced acc | C | s", rows)
        if not args.quick:
            res["null"] = null_study(f_ref, ref, CONFIGS[args.main])
            res["simulated_null"] = simulated_null(ref, test)
            res["balanced"] = balanced_floor(f_ref, ref, feats["real test"], test, CONFIGS[args.main])
            res["by_n"] = floor_by_n(f_ref, g_ref, feats["real test"], test, CONFIGS[args.main])
        out[space] = res
    return out


def null_study(f_ref, ref, cfg, draws: int = 5) -> list[dict]:
    """Train crops split into two random halves by photo: any AUROC away from 0.5 is the estimator's, not the data's."""
    groups = np.unique(ref.groups, return_inverse=True)[1]
    rows, out = [], []
    for d in range(draws):
        half = numpy_rng(0, "null", d).permutation(groups.max() + 1) % 2 == 1
        b = half[groups]
        ga, gb = [groups_of_rows([ref.rows[i] for i in np.flatnonzero(m)], [ref.ids[i] for i in np.flatnonzero(m)])
                  for m in (~b, b)]
        r = c2st(f_ref[~b], f_ref[b], ga, gb, cfg, d)
        out.append({"auroc": r.auroc, "n": [int((~b).sum()), int(b.sum())]})
        rows.append([d, int((~b).sum()), int(b.sum()), f"{r.auroc:.3f}"])
    table("null (train halves by photo): draw | N a | N b | AUROC", rows)
    return out


def balanced_floor(f_ref, ref, f_test, test, cfg, draws: int = 3) -> list[dict]:
    """Imbalance check: reference crops subsampled by whole photos to about the test set's N, against the test crops."""
    groups = np.unique(ref.groups, return_inverse=True)[1]
    rows, out = [], []
    for d in range(draws):
        keep: list[int] = []
        for photo in numpy_rng(0, "sub", d).permutation(groups.max() + 1):
            if len(keep) >= len(test):
                break
            keep += list(np.flatnonzero(groups == photo))
        keep = np.sort(keep)
        r = c2st(f_ref[keep], f_test, groups_of_rows([ref.rows[i] for i in keep], [ref.ids[i] for i in keep]),
                 groups_of_rows(test.rows, test.ids), cfg, d)
        out.append({"n_ref": len(keep), "auroc": r.auroc})
        rows.append([d, len(keep), len(test), f"{r.auroc:.3f}"])
    table("imbalance: reference subsampled by photo: draw | N ref | N test | AUROC", rows)
    return out


def floor_by_n(f_ref, g_ref, f_test, test, cfg) -> list[dict]:
    rows, out = [], []
    for n in (12, 24, len(test)):
        aucs = []
        for d in range(3 if n < len(test) else 1):
            pick = np.sort(numpy_rng(0, "byn", n, d).permutation(len(test))[:n])
            r = c2st(f_ref, f_test[pick], g_ref, groups_of_rows([test.rows[i] for i in pick],
                                                                [test.ids[i] for i in pick]), cfg, d)
            aucs.append(r.auroc)
        out.append({"n": n, "auroc": float(np.mean(aucs)), "draws": aucs})
        rows.append([n, f"{np.mean(aucs):.3f}", " ".join(f"{a:.3f}" for a in aucs)])
    table("floor by N (test crops vs train): N | mean AUROC | draws", rows)
    return out


CONFIGS = {
    "default (5x2-fold, C by inner CV)": C2stConfig(),
    "5-fold": C2stConfig(folds=5),
    "5-fold, C=1 (weak)": C2stConfig(folds=5, c=1.0),
    "5-fold, C=1e-2": C2stConfig(folds=5, c=1e-2),
    "2-fold x10, C=1e-2": C2stConfig(repeats=10, c=1e-2),
}


def simulated_null(ref, test, dim: int = 256, draws: int = 8) -> list[dict]:
    """No difference at all, the photo groups of the data: random features = a photo offset (2x the crop noise)
    plus crop noise, for the train and test crops, ``draws`` times; the spread is what few photos give."""
    ga, gb = groups_of_rows(ref.rows, ref.ids), groups_of_rows(test.rows, test.ids)
    ua, ub = (np.unique(g[1], return_inverse=True)[1] for g in (ga, gb))
    out = {2: [], 5: []}
    for d in range(draws):
        rng = np.random.default_rng(100 + d)
        photos = rng.normal(size=(ua.max() + ub.max() + 2, dim)) * 2
        a = photos[ua] + rng.normal(size=(len(ua), dim))
        b = photos[ua.max() + 1 + ub] + rng.normal(size=(len(ub), dim))
        for folds in out:
            out[folds].append(c2st(a, b, ga, gb, C2stConfig(folds=folds, c=1e-2, repeats=2, n_boot=0), d).auroc)
    table("simulated null with the data's photo groups: folds | mean AUROC | min | max",
          [[f, f"{np.mean(v):.3f}", f"{min(v):.3f}", f"{max(v):.3f}"] for f, v in out.items()])
    return [{"folds": f, "auroc": v} for f, v in out.items()]


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--measles", required=True)
    p.add_argument("--chickenpox", required=True)
    p.add_argument("--features", default="inception,efficientnet-lite0")
    p.add_argument("--synthetic", nargs="*", default=[])
    p.add_argument("--main", default="default (5x2-fold, C by inner CV)")
    p.add_argument("--quick", action="store_true", help="only the --main setting, no floor study")
    args = p.parse_args()
    result = run(args)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"c2st_real{'_quick' if args.quick else ''}.json").write_text(json.dumps(result, indent=1, default=float))
