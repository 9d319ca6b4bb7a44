from pathlib import Path

import numpy as np
import pytest

from skingen.data.manifest import write_manifest
from skingen.imageio import write_image


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Never touch the user's ~/.cache/skingen from tests."""
    monkeypatch.setenv("SKINGEN_CACHE_DIR", str(tmp_path / "cache"))


def skin_images(n: int, size: int = 32, seed: int = 0, shift=(0, 0, 0)) -> list[np.ndarray]:
    """``n`` textured skin-like ``uint8 [size,size,3]`` images (random base colour, blobs, noise) + a colour shift."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    out = []
    for _ in range(n):
        base = np.array([190, 140, 120]) + rng.normal(0, 12, 3)
        img = np.broadcast_to(base, (size, size, 3)).astype(np.float64).copy()
        for _ in range(6):  # red macules
            cy, cx, r = rng.uniform(0, size, 2).tolist() + [rng.uniform(1.5, size / 6)]
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
            img += blob[..., None] * np.array([25, -30, -20])
        img += rng.normal(0, 6, img.shape) + np.asarray(shift, np.float64)
        out.append(np.clip(np.round(img), 0, 255).astype(np.uint8))
    return out


def make_data_folder(path: Path, images: list[np.ndarray], splits: list[str], groups: list[str] | None = None) -> Path:
    """A minimal prepared data folder: images/<id>.png + manifest.csv with split and source_id."""
    rows = []
    for i, (img, split) in enumerate(zip(images, splits)):
        write_image(path / "images" / f"{i:04d}.png", img)
        rows.append({"id": f"{i:04d}", "image": f"images/{i:04d}.png", "split": split, "origin": "real",
                     "source_id": groups[i] if groups else f"photo{i}"})
    write_manifest(path, rows)
    return path


def make_image_folder(path: Path, images: list[np.ndarray], rows_extra: list[dict] | None = None) -> Path:
    """A folder of PNGs; with ``rows_extra`` also a synthetic manifest.csv (as `skingen sample` writes)."""
    path.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, img in enumerate(images):
        write_image(path / f"{i:06d}.png", img)
        if rows_extra is not None:
            rows.append({"id": f"s{i}", "image": f"{i:06d}.png", "origin": "synthetic", "model": "dcgan",
                         "checkpoint": "runs/00001-dcgan/checkpoints/step-000100", "seed": str(i), **rows_extra[i]})
    if rows_extra is not None:
        write_manifest(path, rows)
    return path
