"""The face filter by photo size (issue 29): photos shrunk to a long side of 765, 480, 255 and 190 px, searched
as prepare searches them (FaceConfig defaults: mtcnn+yunet, turns 0/+90/-90, max_side 480), against faces marked by
hand. Photo-level precision and recall on the 209 measles photos (bench/data/measles_faces.csv: yes/partial = a
face), and false faces on 60 PH2 dermoscopy photos (no faces). ``--old`` searches small photos at their own size
(before issue 29), for the before/after table.

Usage: python bench/faces_by_size.py [--old] [--sides 765,480,255,190]
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SKINGEN_SHARED_DATA", REPO.parent / "shared" / "data"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", action="store_true")
    ap.add_argument("--sides", default="765,480,255,190")
    args = ap.parse_args()
    import numpy as np

    import skingen.data.faces as F
    from skingen.imageio import read_image, resize_image

    if args.old:  # the search size before issue 29: shrink only
        real = F._search_size
        F._search_size = lambda image, side: (image, 1.0) if max(image.shape[:2]) <= side else real(image, side)
    truth = {r["file"]: r["face"] in ("yes", "partial") for r in csv.DictReader(open(REPO / "bench/data/measles_faces.csv"))}
    measles = [(SHARED / "exanthem" / "viral_rash_measles" / f, face) for f, face in sorted(truth.items())]
    ph2 = [(p, False) for p in sorted((SHARED / "masked" / "images").glob("ph2_*"))[:60]]
    cfg = F.FaceConfig()
    print(f"search: {'old (small photos at their own size)' if args.old else 'new (every photo at 480 px)'}")
    print("| long side px | measles: flagged | precision | recall (yes+partial) | PH2: false faces |")
    print("|---|---|---|---|---|")
    for side in map(int, args.sides.split(",")):
        def flagged(path: Path) -> bool:
            im = read_image(path)
            h, w = im.shape[:2]
            if max(h, w) > side:
                s = side / max(h, w)
                im = resize_image(im, (max(1, round(h * s)), max(1, round(w * s))), "lanczos")
            return bool(F.detect_faces(im, cfg))
        m = np.array([(flagged(p), face) for p, face in measles])
        tp, fp, fn = int((m[:, 0] & m[:, 1]).sum()), int((m[:, 0] & ~m[:, 1]).sum()), int((~m[:, 0] & m[:, 1]).sum())
        false_ph2 = sum(flagged(p) for p, _ in ph2)
        print(f"| {side} | {tp + fp} of {len(m)} | {tp / max(tp + fp, 1):.2f} | {tp / max(tp + fn, 1):.2f} "
              f"({tp} of {tp + fn}) | {false_ph2} of {len(ph2)} |", flush=True)


if __name__ == "__main__":
    main()
