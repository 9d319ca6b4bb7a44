"""``manifest.csv``: the one currency between commands, a row per image of a data folder.

Paths in a manifest are relative to the folder holding it. Columns are the core ones below (in
this order), then any extra columns a later step added (e.g. ``ita`` from ``analyze``), which are
kept as they are when a manifest is rewritten.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from skingen.errors import SkingenError
from skingen.runs import read_csv, write_csv

MANIFEST = "manifest.csv"
CORE_COLUMNS = ("id", "image", "lesion", "coloured", "label", "source_id", "split", "origin",
                "crop_box", "sha256", "photo", "lesion_fraction")
SYNTHETIC_COLUMNS = ("model", "checkpoint", "seed", "parent_id", "edit_map")
SPLITS = ("train", "val", "test")


def read_manifest(folder: str | Path, required: tuple[str, ...] = ("id", "image", "split")) -> list[dict[str, str]]:
    """Rows of ``folder/manifest.csv`` as dicts of strings; checks the ``required`` columns exist (a manifest with
    no rows, e.g. of an idle ``--shard``, has none to miss)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise SkingenError(f"no {MANIFEST} in {folder} (run `skingen prepare` first)")
    header, rows = read_csv(path)
    missing = [c for c in required if c not in header]
    if missing and rows:
        raise SkingenError(f"{path}: missing column(s) {', '.join(missing)}")
    return rows


def write_manifest(folder: str | Path, rows: list[dict[str, object]]) -> Path:
    """Write rows atomically; core columns first, extra columns after in first-seen order."""
    path = Path(folder) / MANIFEST
    extra: list[str] = []
    for row in rows:
        extra.extend(k for k in row if k not in CORE_COLUMNS and k not in extra)
    columns = list(CORE_COLUMNS) + extra
    write_csv(path, [{c: r.get(c, "") for c in columns} for r in rows], columns)
    return path


def manifest_sha256(folder: str | Path) -> str:
    """Hash of the manifest file: recorded by every run that reads the folder."""
    return hashlib.sha256((Path(folder) / MANIFEST).read_bytes()).hexdigest()
