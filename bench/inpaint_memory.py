"""Peak memory of `skingen inpaint` by crop size: one crop, one run, the default 10 regions (issue 29).

Usage: python bench/inpaint_memory.py [--sizes 256,1024,4096] [--method opencv:telea]

Each size runs in a fresh process (``python -m skingen.cli inpaint``) on a procedural crop (demo data, resized);
the table gives the process's peak resident memory (``ru_maxrss`` of the child), the wall time and the size of
the frame strip it wrote. What the memory should scale with is the output image, not the strip or the steps.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def crop_folder(out: Path, size: int) -> Path:
    """A prepared-data folder with one ``size`` px crop (a demo photo, resized) and its empty lesion mask."""
    sys.path.insert(0, str(SRC))
    import numpy as np

    from skingen.data.demo import write_demo_data
    from skingen.data.manifest import write_manifest
    from skingen.imageio import read_image, resize_image, write_image, write_mask

    raw = write_demo_data(out / "raw", n=1, seed=0)
    photo = read_image(next((raw / "images").iterdir()))
    write_image(out / "data" / "images" / "c.png", resize_image(photo, (size, size), "bicubic"))
    write_mask(out / "data" / "masks" / "c.png", np.zeros((size, size), bool))
    write_manifest(out / "data", [{"id": "c", "image": "images/c.png", "mask": "masks/c.png", "label": "x",
                                   "source_id": "c", "split": "train", "origin": "real"}])
    return out / "data"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="256,1024,4096")
    ap.add_argument("--method", default="opencv:telea")
    args = ap.parse_args()
    print(f"| crop px | peak RSS (MB) | wall s | strip px ({args.method}, 10 regions) |")
    print("|---|---|---|---|")
    for size in map(int, args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            data = crop_folder(Path(tmp), size)
            out = Path(tmp) / "out"
            t = time.perf_counter()
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            proc = subprocess.run([sys.executable, "-m", "skingen.cli", "inpaint", args.method, "--from", str(data),
                                   "--out", str(out), "--n", "1"], capture_output=True, text=True)
            wall = time.perf_counter() - t
            if proc.returncode:
                print(proc.stdout[-2000:], proc.stderr[-2000:])
                raise SystemExit(proc.returncode)
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            from PIL import Image

            strip = Image.open(next((out / "frames").glob("*.png"))).size
            note = "" if peak > before else " (<= an earlier size's peak)"
            print(f"| {size} | {peak / 1024:.0f}{note} | {wall:.1f} | {strip[0]} x {strip[1]} |")


if __name__ == "__main__":
    main()
