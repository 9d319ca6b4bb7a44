"""Leaks found by content: held-out photos behind a synthetic set, whatever the ids say.

The id checks of :func:`skingen.downstream.augment.check_leakage` trust ``source_id`` and ``parent_id``; the
same photos prepared a second time (another CSV group column, another ``--seed``) get other ids and pass
them. Here the pictures behind a synthetic set -- the generator's training data (its run's ``config.yaml``)
and the data its parents / conditions (``parent_id``) were taken from (``sample.json`` / ``inpaint.json`` / ``tone.json``)
-- are matched against the real data's val/test pictures by :mod:`skingen.data.neardup` (the rule
``prepare`` groups photos by). A picture is the original photo of a crop when ``prepare.json`` still
leads to it (crops of one photo cut at other boxes or sizes then still match), else the crop itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from skingen.data.manifest import manifest_sha256
from skingen.data.neardup import Fingerprints, fingerprint
from skingen.data.provenance import condition_sources, picture_of, rows_of, run_training_data
from skingen.errors import SkingenError

_CACHE: dict[tuple[str, int, int], tuple[int, np.ndarray]] = {}  # (path, size, mtime) -> (pHash, thumbnail)


def cached_fingerprints(paths: list[Path]) -> Fingerprints:
    """Fingerprints of image files, remembered per (path, size, mtime) for this process (a study checks
    several synthetic sets against one real data folder)."""
    from skingen.imageio import read_image

    phs, ths = [], []
    for p in paths:
        st = p.stat()
        key = (str(p), st.st_size, st.st_mtime_ns)
        if key not in _CACHE:
            _CACHE[key] = fingerprint(read_image(p))[1:]
        phs.append(_CACHE[key][0])
        ths.append(_CACHE[key][1])
    return Fingerprints(tuple(str(p) for p in paths), np.array(phs, dtype=np.uint64),
                        np.stack(ths) if ths else np.zeros((0, 16, 16, 3), np.int16))


def pictures(data: Path, rows: list[dict[str, str]]) -> tuple[list[Path], int]:
    """Distinct pictures behind ``rows`` of the data folder ``data`` and how many of them are crops
    because the original photo was not found."""
    found = dict.fromkeys(picture_of(data, r) for r in rows)
    return list(dict.fromkeys(p for p, _ in found)), sum(not is_photo for _, is_photo in found)


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or manifest_sha256(a) == manifest_sha256(b)
    except (OSError, SkingenError):
        return False


def check_content(real: Path, real_rows: list[dict[str, str]], folder: Path, rows: list[dict[str, str]]) -> list[str]:
    """Raise :class:`SkingenError` naming both files when a picture behind the synthetic set at ``folder``
    (``rows``: its manifest) is a near-duplicate of a val/test picture of the real data ``real``. Returns
    notes on what could not be checked. The real folder's own rows are left to the id checks (``prepare``
    already put near-duplicates of one photo into one split)."""
    held = [r for r in real_rows if r.get("split") in ("val", "test")]
    if not held:
        return []
    upstream: list[tuple[str, Path, list[dict[str, str]]]] = []
    for ckpt in sorted({r.get("checkpoint", "") for r in rows} - {""}):
        data, split, _ = run_training_data(ckpt)
        if data is not None and not _same_folder(data, real):
            upstream.append((f"generator training picture (of {data})", data, rows_of(data, split)))
    parent_ids = {r.get("parent_id") for r in rows} - {"", None}
    for data in condition_sources(folder, rows) if parent_ids else []:
        if data.is_dir() and not _same_folder(data, real):
            upstream.append((f"parent/condition picture (of {data})", data,
                             [r for r in rows_of(data) if r["id"] in parent_ids]))
    if not upstream:
        return []
    held_pics, held_crops = pictures(real, held)
    split_of = {picture_of(real, r)[0]: r["split"] for r in held}
    held_fp = cached_fingerprints(held_pics)
    notes = [f"{held_crops} held-out photo(s) of {real} not found, their crops compared instead"] if held_crops else []
    for what, data, up_rows in upstream:
        pics, crops = pictures(data, up_rows)
        if crops:
            notes.append(f"{crops} photo(s) of {data} not found, their crops compared instead")
        for mine, theirs in cached_fingerprints(pics).matches(held_fp):
            raise SkingenError(f"{folder}: {what} {mine} is a near-duplicate of {split_of[Path(theirs)]} picture "
                               f"{theirs} of {real} (perceptual hash and thumbnail, the rule prepare groups photos "
                               "by), whatever their ids say; its images may reproduce held-out data")
    return notes
