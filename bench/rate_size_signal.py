"""How well does a served image's byte size alone tell real from synthetic in a rating study?

Usage: python bench/rate_size_signal.py --real DATA[:split] --synthetic DIR [--synthetic DIR ...] [--n 40]
                                        [--out bench/results/rate_size_signal.json]

For each synthetic set: a throwaway ``single``-mode study (``--n`` synthetic and ``--n`` real images, shown at
the study's display size) is created in a temporary folder, every image is fetched through the app
(``GET /img/<token>``, as a rater's browser does) and its size in bytes recorded, next to the size of the
file stored in ``STUDY/images``. A size rule "bigger than t is real" (or "... synthetic") is scored by
accuracy: ``best`` picks t and the direction on all images (in-sample, an upper bound), ``cv`` by 2-fold
cross-validation (t chosen on one half, scored on the other; mean over 20 random halvings). Chance is 0.5.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from table import RESULTS, print_and_save  # bench/table.py: scripts run with bench/ on sys.path


def _fit(sizes: np.ndarray, synthetic: np.ndarray) -> tuple[float, bool]:
    """(threshold, above_is_synthetic) maximising accuracy on these images."""
    best = (0.5, sizes.max() + 1.0, True)
    for t in np.unique(sizes):
        above = sizes > t
        for direction in (True, False):
            acc = float(np.mean((above if direction else ~above) == synthetic))
            if acc > best[0]:
                best = (acc, float(t), direction)
    return best[1], best[2]


def _accuracy(sizes, synthetic, t, above_is_synthetic) -> float:
    above = sizes > t
    return float(np.mean((above if above_is_synthetic else ~above) == synthetic))


def scores(sizes: np.ndarray, synthetic: np.ndarray, seed: int = 0) -> dict[str, float]:
    t, d = _fit(sizes, synthetic)
    rng, cv = np.random.default_rng(seed), []
    for _ in range(20):
        half = rng.permutation(len(sizes)) < len(sizes) // 2
        for fit_on in (half, ~half):
            cv.append(_accuracy(sizes[~fit_on], synthetic[~fit_on], *_fit(sizes[fit_on], synthetic[fit_on])))
    return {"best": round(_accuracy(sizes, synthetic, t, d), 3), "cv": round(float(np.mean(cv)), 3)}


def measure(real: str, fake: str, n: int, work: Path) -> dict:
    from starlette.testclient import TestClient

    from skingen.rating.app import create_app
    from skingen.rating.store import connect
    from skingen.rating.study import RatingStudyConfig, create_study, sources_from_args

    study = work / Path(fake).name
    create_study(study, sources_from_args(real, [fake]), RatingStudyConfig(modes=("single",), n=n))
    with connect(study) as con:
        rows = [dict(r) for r in con.execute("SELECT token, truth, file FROM images")]
    synthetic = np.array([r["truth"] == "synthetic" for r in rows])
    stored = np.array([(study / r["file"]).stat().st_size for r in rows], float)
    client = TestClient(create_app(study), base_url="http://127.0.0.1:8000")
    client.post("/api/session", json={})
    served = np.array([len(client.get(f"/img/{r['token']}").content) for r in rows], float)
    s_stored, s_served = scores(stored, synthetic), scores(served, synthetic)
    return {"set": Path(fake).name, "n_real": int((~synthetic).sum()), "n_synthetic": int(synthetic.sum()),
            "stored_best": s_stored["best"], "stored_cv": s_stored["cv"],
            "served_best": s_served["best"], "served_cv": s_served["cv"],
            "served_sizes_distinct": int(len(np.unique(served)))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", required=True)
    ap.add_argument("--synthetic", action="append", required=True)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--out", type=Path, default=RESULTS / "rate_size_signal.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(args.real, f, args.n, Path(tmp)) for f in args.synthetic]
    print_and_save(rows, list(rows[0]), out=args.out)


if __name__ == "__main__":
    sys.exit(main())
