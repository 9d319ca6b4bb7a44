"""The documentation's pictures, made from a finished `make demo` run: procedural photos and tiny models only, so
no image has a licence or privacy question. Usage:

    python scripts/docs_figures.py demo_out/NNNNN-demo [--out docs/img]

writes ``demo-overview.png`` (prepared crops next to each tiny generator's samples), ``demo-inpaint-strip.png``
(one iterative-inpainting run, step by step), ``demo-ita.png`` (the crops' skin-tone histogram) and
``demo-study.png`` (the detector study's lead figure). The demo's models train for seconds: the pictures show what
each stage writes, not image quality.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from skingen.analysis.figures import ita_distribution
from skingen.imageio import read_image, resize_image, write_image
from skingen.runs import read_json
from skingen.viz import contact_sheet

FAMILIES = ("dcgan", "cvae", "dermgan", "dermdiff")
WIDTH = 900  #: px: the pictures are shown at most this wide


def _fit(image: np.ndarray) -> np.ndarray:
    """Shrink to WIDTH px wide (area average) when wider."""
    h, w = image.shape[:2]
    return image if w <= WIDTH else resize_image(image, (round(h * WIDTH / w), WIDTH), "box")


def _samples(folder: Path, n: int) -> list[Path]:
    """The first ``n`` images of a synthetic folder; of a mask-conditioned model, half painted from real masks and
    half from synthesised layouts (its ``masks/`` and ``layouts/`` subfolders)."""
    parts = [sorted(folder.glob("seed*.png"))] + [sorted(sub.glob("seed*.png")) for sub in sorted(folder.iterdir())
                                                  if sub.is_dir() and sub.name in ("masks", "layouts")]
    parts = [p for p in parts if p]
    return [path for part in parts for path in part[:n // len(parts)]] if parts else []


def overview(demo: Path, per_row: int = 8) -> np.ndarray:
    rows = [("real crops", sorted((demo / "data" / "images").glob("*.png"))[:per_row])]
    rows += [(family, _samples(demo / "synth" / family, per_row)) for family in FAMILIES
             if (demo / "synth" / family).is_dir()]
    images, captions = [], []
    for name, paths in rows:
        images += [read_image(p) for p in paths] + [np.full((64, 64, 3), 255, np.uint8)] * (per_row - len(paths))
        captions += [name] + [""] * (per_row - 1)
    return contact_sheet(images, captions, columns=per_row, cell=64)


def ita_histogram(demo: Path) -> np.ndarray:
    with open(demo / "analysis" / "stats.csv", newline="") as fh:
        itas = np.array([float(r["ita"]) for r in csv.DictReader(fh) if r.get("ita") not in (None, "")])
    counts = read_json(demo / "analysis" / "summary.json")["ita"]["counts"]
    return ita_distribution(itas, counts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("demo", type=Path, help="a finished demo folder (demo_out/NNNNN-demo)")
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    args = ap.parse_args()
    strips = sorted((args.demo / "synth" / "inpaint" / "frames").glob("seed*.png"))
    studies = sorted(args.demo.rglob("balanced_accuracy.png"))
    made = {"demo-overview.png": overview(args.demo), "demo-ita.png": ita_histogram(args.demo)}
    if strips:
        made["demo-inpaint-strip.png"] = read_image(strips[0])
    if studies:
        made["demo-study.png"] = read_image(studies[0])
    for name, image in made.items():
        write_image(args.out / name, _fit(image))
        print(f"wrote {args.out / name} ({image.shape[1]}x{image.shape[0]} px)")


if __name__ == "__main__":
    main()
