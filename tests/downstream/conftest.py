from pathlib import Path

import numpy as np
import pytest

from skingen.data.manifest import write_manifest
from skingen.imageio import write_image


COLOURS = ([230, 40, 40], [40, 60, 230], [40, 200, 60], [240, 240, 40])


def write_planted(out: Path, per_class: dict[str, int], size: int = 16, seed: int = 0,
                  splits: tuple[str, ...] = ("train",) * 6 + ("val", "test", "test")) -> Path:
    """A prepared data folder with a planted signal: class ``i`` has a square of a class-specific colour
    at a random place on skin-coloured noise (flips, rotations and crops keep it, so the classical arm can
    learn it too); one image per group; split by position in ``splits``."""
    rng = np.random.default_rng(seed)
    rows = []
    labels = sorted(per_class)
    for c, label in enumerate(labels):
        for i in range(per_class[label]):
            img = np.clip(np.array([190, 140, 120]) + rng.normal(0, 25, (size, size, 3)), 0, 255)
            q = size // 3
            y0, x0 = rng.integers(size // 6, size - q - size // 6, 2)
            img[y0:y0 + q, x0:x0 + q] = COLOURS[c % len(COLOURS)]
            rid = f"{label}-{i:03d}"
            write_image(out / "images" / f"{rid}.png", img.astype(np.uint8))
            rows.append({"id": rid, "image": f"images/{rid}.png", "label": label, "source_id": f"g-{rid}",
                         "split": splits[i % len(splits)], "origin": "real",
                         "ita_category": ("light", "dark")[i % 2], "ita": ("45.00", "-40.00")[i % 2]})
    write_manifest(out, rows)
    return out


def write_synthetic(out: Path, rows: list[dict], size: int = 16, seed: int = 1) -> Path:
    """A synthetic folder as `skingen sample` writes it (seedNNNNNN.png + manifest.csv)."""
    rng = np.random.default_rng(seed)
    full = []
    for i, extra in enumerate(rows):
        name = f"seed{i:06d}.png"
        write_image(out / name, rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
        full.append({"id": f"syn-seed{i:06d}", "image": name, "label": "", "source_id": f"syn-seed{i:06d}",
                     "split": "train", "origin": "synthetic", "model": "dcgan", "checkpoint": "",
                     "seed": i, "parent_id": "", **extra})
    write_manifest(out, full)
    return out


@pytest.fixture(scope="session")
def planted(tmp_path_factory) -> Path:
    return write_planted(tmp_path_factory.mktemp("planted") / "data", {"a": 36, "b": 36})
