"""Image sets to evaluate: a prepared data folder (optionally one split) or a folder of images.

Every metric reads a set as ``uint8 [n,3,S,S]`` tensors at one evaluation size ``S`` (by default the
real set's image size), so real and synthetic images are compared at the same resolution. An image of
another size is centre-cropped to a square and resized with PIL bicubic (antialiased when shrinking).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from skingen.data.manifest import MANIFEST, SPLITS, manifest_sha256, read_manifest
from skingen.errors import SkingenError
from skingen.imageio import image_size, is_image_file, read_image, resize_image
from skingen.runs import read_json

SPEED_COLUMN = "seconds_per_image"
SAMPLE_JSON = "sample.json"


@dataclass(frozen=True)
class ImageSet:
    """An ordered list of images with what is known about where they came from.

    ``groups`` holds the split group (``source_id``: the photo or patient) of each image, or the image
    id when unknown; ``rows`` the manifest rows (empty dicts for a plain folder).
    """

    name: str
    root: Path
    paths: tuple[Path, ...]
    ids: tuple[str, ...]
    groups: tuple[str, ...]
    rows: tuple[dict, ...]
    split: str | None = None
    manifest_sha256: str | None = None
    fingerprint: str = field(default="", compare=False)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def label(self) -> str:
        return f"{self.root}:{self.split}" if self.split else str(self.root)

    def sizes(self) -> list[tuple[int, int]]:
        """(width, height) of every image, read from the file headers (no decoding)."""
        return [image_size(p) for p in self.paths]

    def load(self, indices, size: int):
        """Images ``indices`` as a ``uint8`` tensor ``[n,3,size,size]``."""
        import torch

        arrays = [square_resize(read_image(self.paths[int(i)]), size) for i in indices]
        if not arrays:
            return torch.zeros((0, 3, size, size), dtype=torch.uint8)
        return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()

    def batches(self, size: int, batch_size: int) -> Iterator[tuple[int, "object"]]:
        """``(start, uint8 [n,3,size,size])`` over the whole set, in order."""
        for start in range(0, len(self), batch_size):
            yield start, self.load(range(start, min(start + batch_size, len(self))), size)

    def column_values(self, column: str) -> list[str]:
        """Distinct non-empty values of a manifest column, in first-seen order."""
        return list(dict.fromkeys(r[column] for r in self.rows if r.get(column)))


def square_resize(image: np.ndarray, size: int) -> np.ndarray:
    """``uint8 [H,W,3]`` -> ``uint8 [size,size,3]``: centre square crop, then PIL bicubic resize."""
    h, w = image.shape[:2]
    if h != w:
        s = min(h, w)
        y0, x0 = (h - s) // 2, (w - s) // 2
        image = image[y0:y0 + s, x0:x0 + s]
    if image.shape[0] == size:
        return np.ascontiguousarray(image)
    return resize_image(image, size, "bicubic")


def parse_data_spec(spec: str | Path) -> tuple[Path, str | None]:
    """``'data/:test'`` -> (Path('data/'), 'test'); ``'data/'`` -> (Path('data/'), None)."""
    text = str(spec)
    head, sep, tail = text.rpartition(":")
    if sep and head and tail in SPLITS:
        return Path(head), tail
    return Path(text), None


@dataclass(frozen=True)
class SetSpec:
    """A synthetic set named on the command line (``--synthetic``): ``[NAME=]DIR[:LABEL]``."""

    folder: Path
    name: str | None = None     #: ``NAME=``: the set's name in reports (default: the folder's name)
    label: str | None = None    #: ``:LABEL``: the class of every image, for a manifest without labels


def parse_set_spec(text: str | Path) -> SetSpec:
    """``'dcgan=runs/s1:measles'`` -> SetSpec(Path('runs/s1'), 'dcgan', 'measles'); ``'runs/s1'`` -> its folder
    only. A NAME holds no ``/`` and a LABEL no ``/`` (so paths with ``=`` or ``:`` in a folder name still work)."""
    text = str(text)
    name, sep, rest = text.partition("=")
    if not (sep and name and rest and "/" not in name):
        name, rest = None, text
    head, sep, tail = rest.rpartition(":")
    if sep and head and tail and "/" not in tail:
        return SetSpec(Path(head), name, tail)
    return SetSpec(Path(rest), name, None)


def open_synthetic(specs: list[str]) -> list[ImageSet]:
    """The sets of ``--synthetic [NAME=]DIR`` options (an image folder each; :func:`open_folders`'s names unless
    NAME is given); a ``:LABEL`` is refused, images are not relabelled here."""
    parsed = [parse_set_spec(s) for s in specs]
    for s in parsed:
        if s.label is not None:
            raise SkingenError(f"--synthetic {s.folder}:{s.label}: a class label only applies to augment and "
                               f"downstream")
    named = open_folders([s.folder for s in parsed])
    return [replace(images, name=s.name) if s.name else images for s, images in zip(parsed, named)]


def _hash(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def open_data(spec: str | Path, name: str | None = None) -> ImageSet:
    """A prepared data folder (``manifest.csv``), all rows or one split (``DATA:split``); real rows only."""
    folder, split = parse_data_spec(spec)
    if not folder.is_dir():
        raise SkingenError(f"data folder not found: {folder}")
    rows = read_manifest(folder)
    real = [r for r in rows if r.get("origin", "") in ("", "real")]  # an augmented folder also holds synthetic rows
    chosen = [r for r in real if split is None or r["split"] == split]
    if not chosen:
        present = sorted({r["split"] for r in real})
        raise SkingenError(f"{folder / MANIFEST}: no real rows" + (f" in split '{split}' (splits present: "
                                                                   f"{', '.join(present) or 'none'})" if split else ""))
    sha = manifest_sha256(folder)
    return from_rows(name or folder.name + (f":{split}" if split else ""), folder, chosen, split, sha,
                      fingerprint=_hash(["manifest", sha, split]))


def open_folder(folder: str | Path, name: str | None = None) -> ImageSet:
    """A folder of images: its ``manifest.csv`` when there is one (e.g. from ``skingen sample``; of an
    ``augment`` output, its synthetic rows), else
    the image files directly inside it (or inside its ``images/`` subfolder), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SkingenError(f"image folder not found: {folder}")
    name = name or folder.name
    if (folder / MANIFEST).is_file():
        rows = read_manifest(folder, required=("image",))
        augmented = (folder / "augment.json").is_file()
        if augmented:  # an `augment` output (e.g. a filtered set): its synthetic images
            rows = [r for r in rows if r.get("origin") == "synthetic"]
        if not rows:
            raise SkingenError(f"{folder / MANIFEST} has no rows")
        sha = manifest_sha256(folder)
        return from_rows(name, folder, rows, None, sha,
                         fingerprint=_hash(["manifest", sha] + (["synthetic"] if augmented else [])))
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))
    if not files and (folder / "images").is_dir():
        files = sorted(p for p in (folder / "images").iterdir() if p.is_file() and is_image_file(p))
    if not files:
        raise SkingenError(f"no images in {folder} (expected image files or a {MANIFEST})")
    listing = [[str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    ids = tuple(str(p.relative_to(folder).with_suffix("")) for p in files)
    return ImageSet(name, folder, tuple(files), ids, ids, tuple({} for _ in files), None, None,
                    fingerprint=_hash(["folder", listing]))


def open_folders(folders: list[Path]) -> list[ImageSet]:
    """Image folders as sets named by their folder name (``parent/name`` where two share a name)."""
    names = [Path(f).name for f in folders]
    return [open_folder(f, name=f"{Path(f).parent.name}/{Path(f).name}" if names.count(Path(f).name) > 1 else None)
            for f in folders]


def open_any(spec: str | Path) -> ImageSet:
    """``DATA[:split]`` for a prepared data folder (a manifest with real rows and splits), else an image folder."""
    folder, split = parse_data_spec(spec)
    if split is None and (folder / MANIFEST).is_file():
        rows = read_manifest(folder, required=("image",))
        if not (rows and "split" in rows[0] and any(r.get("origin", "") in ("", "real") for r in rows)):
            return open_folder(folder)
    elif split is None:
        return open_folder(folder)
    return open_data(spec)


def from_rows(name: str, folder: Path, rows: list[dict], split: str | None = None, sha: str | None = None,
              fingerprint: str = "") -> ImageSet:
    """The images of manifest ``rows`` (``image`` paths relative to ``folder``); an error names a missing file."""
    paths = []
    for r in rows:
        p = folder / r["image"]
        if not p.is_file():
            raise SkingenError(f"{folder / MANIFEST}: image not found: {p}")
        paths.append(p)
    ids = tuple(r.get("id") or Path(r["image"]).stem for r in rows)
    groups = tuple(r.get("source_id") or i for r, i in zip(rows, ids))
    return ImageSet(name, folder, tuple(paths), ids, groups, tuple(rows), split, sha, fingerprint=fingerprint)


def seconds_per_image(images: ImageSet) -> tuple[float | None, str]:
    """Generation speed of a synthetic set: (value, where it came from) or (None, why not).

    Read from the manifest's ``seconds_per_image`` column (mean over rows that have it) or from
    ``sample.json`` (key ``seconds_per_image``), both written by ``skingen sample``.
    """
    values = []
    for r in images.rows:
        try:
            if r.get(SPEED_COLUMN):
                values.append(float(r[SPEED_COLUMN]))
        except ValueError:
            raise SkingenError(f"{images.root / MANIFEST}: {SPEED_COLUMN} '{r[SPEED_COLUMN]}' is not a number") from None
    if values:
        return float(np.mean(values)), f"{MANIFEST} column {SPEED_COLUMN} ({len(values)} rows)"
    meta = images.root / SAMPLE_JSON
    if meta.is_file():
        value = read_json(meta).get(SPEED_COLUMN)
        if isinstance(value, (int, float)):
            return float(value), f"{SAMPLE_JSON}"
    return None, f"no {SPEED_COLUMN} in {MANIFEST} or {SAMPLE_JSON}"
