"""Seconds of the critic (C2ST, `evaluate --metrics c2st`) for 200 synthetic vs 200 real images whose features
are already in the feature cache: only the classifier fits (5 grouped folds x 5 repeats, C by inner grouped CV)
and the group bootstrap are timed, with features read from the cache.

Features: --features FILE.npz (a feature-cache entry, e.g. the measles crops' Inception features; its first 400
rows are used, in two halves) or, by default, random 2048-d features (the fit's cost does not depend on content
much; real features converge in a similar number of iterations). Groups: 2 images per photo.

Usage: nice -n 10 python bench/c2st.py [--features FILE.npz] [--n 200] [--threads 1]
Prints wall and CPU seconds (on a shared machine the CPU seconds are what an idle one would take) and writes
bench/results/c2st.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--features", type=Path)
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    from skingen.eval.c2st import C2stConfig, c2st
    from skingen.eval.cache import FeatureCache

    n = args.n
    if args.features:
        with np.load(args.features) as z:
            feats = z["features"][: 2 * n]
        source = str(args.features)
    else:
        feats = np.random.default_rng(0).normal(size=(2 * n, 2048)).astype(np.float32)
        source = "random 2048-d"
    with tempfile.TemporaryDirectory() as tmp:  # the timed read is a cache hit, as in evaluate
        cache = FeatureCache(tmp)
        key = FeatureCache.key("bench", 2 * n, 256, {"name": "bench"})
        cache.put(key, feats)
        groups = lambda p: ([f"{p}{i}" for i in range(n)], [f"{p}photo{i // 2}" for i in range(n)], [""] * n)  # noqa: E731
        rows = []
        for name, cfg in [("default (C by inner CV)", C2stConfig()), ("fixed C=0.01", C2stConfig(c=0.01))]:
            t0, c0 = time.perf_counter(), time.process_time()
            x = cache.get(key)
            r = c2st(x[:n], x[n:], groups("r"), groups("f"), cfg, 0)
            rows.append({"config": name, "n": f"{n} vs {n}", "dim": int(x.shape[1]), "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
                         "auroc": r.auroc, "features": source, "load": os.getloadavg()[0]})
    for r in rows:
        print(f"{r['config']:<26} {r['n']:>11}  D={r['dim']}  {r['seconds']:6.2f} s wall  {r['cpu_seconds']:6.2f} CPU s  "
              f"AUROC {r['auroc']:.3f}  "
              f"load {r['load']:.1f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "c2st.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
