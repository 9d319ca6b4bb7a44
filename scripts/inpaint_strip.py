"""Side-by-side strip of `skingen inpaint` outputs: one row per crop, the source then each folder's image.

    python scripts/inpaint_strip.py strip.png OUT_SHIFTMAP OUT_MODEL [...] --n 8

Rows are ``--n`` crops (parents) that every folder inpainted, evenly spaced over their sorted ids; each
folder shows its first run (lowest seed) of that crop at the crops' own resolution, and a last column the
first folder's edit map (white = repainted). The documentation's strip cannot ship in the repository (the
measles crops are third-party images of unknown licence), so this makes it on your machine.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def first_runs(folder: Path) -> dict[str, dict]:
    """parent_id -> the manifest row of its lowest-seed image."""
    from skingen.data.manifest import read_manifest
    from skingen.errors import SkingenError

    rows = read_manifest(folder, required=("image", "parent_id", "seed"))
    if not rows:
        raise SkingenError(f"{folder}: the manifest lists no images")
    out: dict[str, dict] = {}
    for r in sorted(rows, key=lambda r: int(r["seed"])):
        out.setdefault(r["parent_id"], r)
    return out


def strip(folders: list[Path], n: int) -> np.ndarray:
    """``uint8 [n·(S+caption), (len(folders)+2)·S, 3]`` with S the first folder's image side."""
    from skingen.errors import SkingenError
    from skingen.imageio import read_image
    from skingen.viz import contact_sheet

    runs = [first_runs(f) for f in folders]
    shared = sorted(set.intersection(*(set(r) for r in runs)))
    if not shared:
        raise SkingenError("the folders share no parent_id: inpaint the same crops into each")
    parents = [shared[i] for i in np.linspace(0, len(shared) - 1, min(n, len(shared))).round().astype(int)]
    images, captions = [], []
    for parent in parents:
        first = runs[0][parent]
        final = read_image(folders[0] / first["image"])
        side = final.shape[1]
        source = read_image(folders[0] / "frames" / Path(first["image"]).name)[: final.shape[0], :side]  # frame 0
        edits = read_image(folders[0] / first["edit_map"]) if first.get("edit_map") else np.zeros_like(final)
        images += [source] + [read_image(f / r[parent]["image"]) for f, r in zip(folders, runs)]
        images.append((edits > 0).astype(np.uint8) * 255)  # the map stores repaint counts 0, 1, 2, ...
        captions += [f"source {parent}"] + [f.name for f in folders] + [f"repainted ({folders[0].name})"]
    return contact_sheet(images, captions, columns=len(folders) + 2, cell=side)


def main() -> None:
    from skingen.imageio import write_image

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="PNG to write (must not exist)")
    ap.add_argument("folders", type=Path, nargs="+", help="skingen inpaint output folders of the same crops")
    ap.add_argument("--n", type=int, default=8, help="crops (rows), default 8")
    args = ap.parse_args()
    if args.out.exists():
        raise SystemExit(f"{args.out} exists: choose a new file")
    write_image(args.out, strip(args.folders, args.n))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
