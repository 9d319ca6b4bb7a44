"""``skingen prepare``: photos (+ masks) -> a data folder of square crops, masks and a manifest.

Output (``out/``): ``images/<id>.png`` crops, ``lesion/<id>.png`` masks and ``coloured/<id>.png``
coloured masks (when a lesion mask exists), ``manifest.csv``, ``skipped.csv`` (every input file not
used, with the reason) and ``prepare.json`` (resolved config, counts, versions).

Policy:
- Lesion mask from ``--masks`` or ``--auto-mask`` (:mod:`skingen.data.masks`), else one centred
  square crop per photo. Crop choice: :mod:`skingen.data.crops`.
- Photos smaller than the crop size are upscaled up to ``crop.max_upscale`` (2x); smaller ones are
  skipped with a reason. Crops failing the contrast/sharpness thresholds are dropped (and counted).
- A given mask that marks no lesion pixel (all zero) skips its photo with a reason: an empty mask is far
  more often a failed export than a photo without rash, and its crops would teach "no lesion" as rash.
  (``--auto-mask`` finding nothing keeps the photo with a centred crop and ``lesion_fraction`` 0.)
- Images above ``max_pixels`` (default 64 MP) are skipped from their header, before decoding.
- Exact duplicates (same decoded pixels) of a photo that was used are skipped (a copy of a photo that
  was itself skipped, e.g. for a broken mask, is judged on its own); near-duplicates (perceptual hash distance
  <= ``near_dup_bits`` and mean absolute difference of 16x16 thumbnails <= ``near_dup_mad``) and photos
  sharing a ``source_id`` form one group; a group's crops all go to one split. Splits are drawn per
  label over shuffled groups (weighted by crop count) with ``seed``: deterministic.
- With a CSV split column (``CsvColumns.split``, e.g. ``suggested_split``) the given splits are kept:
  a group goes to test if any of its photos is marked test (so a near-duplicate found here can never
  put a copy of a test photo into training), else to val if any is marked val, else to train. When the
  column has no val rows, val is carved out of the train groups, group-safely and per label, with the
  share ``split[1] / (split[0] + split[1])`` of ``split`` (default 0.1 / 0.9: a ninth of train).
  ``prepare.json`` counts the groups whose photos were marked with different splits.
- ``splits_from`` (another prepared data folder) gives each photo the split it has there (matched by the
  ``photo`` path, else by ``source_id``), then the same rules apply. Use it to train a generator on
  exactly the train photos of a study's data (e.g. one class of a multi-class set), so that ``augment``
  and ``downstream`` accept its images. Photos the other folder does not know are counted in
  ``prepare.json`` (``splits_from_unmatched``) and go to train unless grouped with a held-out photo.
- Never writes into the input; builds ``out`` in a hidden staging folder next to it and renames it
  at the end, so an interrupted run leaves no half-made data folder. Only input problems are per-file
  skips: an OS error on the output side (disk full, read-only) aborts with one line and removes the
  staging folder.
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Callable

import numpy as np

from skingen.config import NonNegativeInt, PositiveInt, Range, to_dict
from skingen.data.crops import CropConfig, QualityConfig, centred_box, lesion_boxes, quality_problem
from skingen.data.manifest import SPLITS, read_manifest, write_manifest
from skingen.data.neardup import NEAR_DUP_BITS, NEAR_DUP_MAD
from skingen.data.neardup import fingerprint as _fingerprint
from skingen.data.neardup import near_duplicate_pairs as _near_duplicate_pairs
from skingen.data.faces import (FaceConfig, box_touches_face, detect_faces, is_marked, marked_photos,
                                reviewed_faces)
from skingen.data.masks import AutoMaskConfig, auto_lesion_mask, coloured_mask, resize_mask, skin_mask
from skingen.data.sources import CsvColumns, Photo, Skipped, discover, printable
from skingen.errors import SkingenError
from skingen.imageio import MAX_PIXELS, read_image, read_mask, resize_image, write_image, write_mask
from skingen.runs import check_new_folder, environment_info, file_sha256, output_error, staged_dir, write_csv, write_json
from skingen.seeding import numpy_rng
from skingen.workers import process_pool


@dataclass(frozen=True)
class PrepareConfig:
    size: Annotated[int, Range(16, 4096)] = 256
    split: tuple[float, ...] = (0.8, 0.1, 0.1)  # train, val, test
    seed: NonNegativeInt = 0
    auto_mask: bool = False
    near_dup_bits: Annotated[int, Range(0, 64)] = NEAR_DUP_BITS  # perceptual-hash Hamming distance (of 64 bits)
    near_dup_mad: Annotated[float, Range(0, 255)] = NEAR_DUP_MAD  # mean abs difference of 16x16 RGB thumbnails, 0..255
    max_pixels: PositiveInt = MAX_PIXELS  # larger images are skipped from their header, never decoded
    crop: CropConfig = field(default_factory=CropConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    auto: AutoMaskConfig = field(default_factory=AutoMaskConfig)
    faces: FaceConfig = field(default_factory=FaceConfig)

    def __post_init__(self) -> None:
        if len(self.split) != 3 or any(f < 0 for f in self.split) or abs(sum(self.split) - 1) > 1e-6:
            raise SkingenError(f"split must be three non-negative fractions summing to 1 (train,val,test), got {self.split}")
        if self.size < 8:
            raise SkingenError(f"size must be at least 8 px, got {self.size}")
        if self.max_pixels < 1:
            raise SkingenError(f"max_pixels must be positive, got {self.max_pixels}")


class _OutputFailed(OSError):
    """An OS error while writing into the staging folder: aborts ``prepare`` (never a per-photo skip)."""


@dataclass
class PrepareReport:
    out: Path
    photos_found: int
    photos_used: int
    crops: dict[str, int]
    skipped: list[Skipped]
    dropped_crops: dict[str, int]
    groups: int
    seconds: float


@dataclass
class _PhotoResult:
    index: int
    rows: list[dict[str, str]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # per-crop reasons for skipped.csv (a used photo's dropped crops)
    faces: int = 0  # faces detected (0 with --faces keep)
    skip: str | None = None
    pixel_sha: str = ""
    phash: int = 0
    thumb: np.ndarray | None = None


def _process(index: int, photo: Photo, cfg: PrepareConfig, staging: Path) -> _PhotoResult:
    """Read one photo, choose crops, write them to ``staging``. Never raises for bad input."""
    res = _PhotoResult(index)
    try:
        _crop_photo(res, photo, cfg, staging)
    except _OutputFailed:
        raise
    except SkingenError as exc:
        res.skip = str(exc).split(": ", 1)[-1] if str(exc).startswith(str(photo.path)) else str(exc)
    except Exception as exc:  # one bad photo must not stop the others; report it by name
        res.skip = f"unexpected error: {type(exc).__name__}: {exc}"
    return res


def _crop_photo(res: _PhotoResult, photo: Photo, cfg: PrepareConfig, staging: Path) -> None:
    """:func:`_process`'s work: the photo's crops into ``res.rows`` (or why none, ``res.skip``)."""
    image = read_image(photo.path, cfg.max_pixels)
    res.pixel_sha, res.phash, res.thumb = _fingerprint(image)
    h, w = image.shape[:2]
    min_side = math.ceil(cfg.size / cfg.crop.max_upscale)
    if min(h, w) < min_side:
        res.skip = (f"too small: {w}x{h} px (a {cfg.size} px crop needs a short side of at least "
                    f"{min_side} px; upscaling is capped at {cfg.crop.max_upscale:g}x)")
        return
    lesion, skin, res.skip = _masks_of(photo, image, cfg)
    if res.skip:
        return
    boxes = lesion_boxes(lesion, min_side, cfg.crop) if lesion is not None else []
    if not boxes:
        box = centred_box(h, w)
        boxes = [(box, float(lesion[box[1]:box[1] + box[2], box[0]:box[0] + box[2]].mean()) if lesion is not None else 0.0)]
    if cfg.faces.marked and is_marked(str(photo.rel), photo.path.name, marked_photos(cfg.faces.marked)):
        res.skip = f"marked as showing a face in {cfg.faces.marked}"
        return
    faces = detect_faces(image, cfg.faces) if cfg.faces.policy != "keep" else []
    drawn = reviewed_faces(res.pixel_sha, cfg.faces) if cfg.faces.policy != "keep" else []
    res.faces = len(faces) + len(drawn)
    if res.faces and cfg.faces.policy == "drop-photos":
        res.skip = (f"shows a face ({len(faces)} detected, {len(drawn)} marked by a person; "
                    "faces policy drop-photos)")
        return
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in photo.path.stem)[:40]
    for k, ((x0, y0, s), _) in enumerate(boxes):
        # never let a face into the crops (skingen.data.faces)
        touched = next((what for found, what in ((faces, "a detected face"), (drawn, "a face marked by a person "
                        "(faces.reviewed)")) if box_touches_face((x0, y0, s), found)), None)
        if touched:
            res.dropped.append("face")
            res.notes.append(f"crop {x0},{y0},{x0 + s},{y0 + s} dropped: it intersects {touched}")
            continue
        crop = resize_image(image[y0:y0 + s, x0:x0 + s], cfg.size, "lanczos")
        problem = quality_problem(crop, cfg.quality)
        if problem:
            res.dropped.append(problem.split(" (")[0])
            continue
        cid = f"{res.index:05d}-{stem}-{k}"
        row = {"id": cid, "image": f"images/{cid}.png", "label": photo.label, "source_id": photo.source_id,
               "origin": "real", "crop_box": f"{x0},{y0},{x0 + s},{y0 + s}", "photo": photo.rel}
        masks = None if lesion is None else tuple(None if m is None else m[y0:y0 + s, x0:x0 + s] for m in (lesion, skin))
        res.rows.append(_write_crop(staging, row, crop, masks, cfg))
    if not res.rows:
        res.skip = f"all {len(boxes)} crop(s) dropped: {', '.join(sorted(set(res.dropped)))}"


def _masks_of(photo: Photo, image: np.ndarray, cfg: PrepareConfig) -> tuple[np.ndarray | None, np.ndarray | None, str | None]:
    """(lesion, skin, why the photo is skipped): its given mask (checked against the image), the auto masks
    (``--auto-mask``; skin None with a given mask), or none."""
    h, w = image.shape[:2]
    if photo.mask is not None:
        lesion = read_mask(photo.mask, cfg.max_pixels)
        if lesion.shape != (h, w):
            return None, None, f"mask {photo.mask.name} is {lesion.shape[1]}x{lesion.shape[0]} but the image is {w}x{h}"
        if not lesion.any():
            return None, None, f"mask {photo.mask.name} marks no lesion (all zero); fix the mask or leave the photo out"
        return lesion, None, None
    if cfg.auto_mask:
        lesion, skin = auto_lesion_mask(image, cfg.auto)
        return lesion, skin, None
    return None, None, None


def _write_crop(staging: Path, row: dict[str, str], crop: np.ndarray,
                masks: tuple[np.ndarray, np.ndarray | None] | None, cfg: PrepareConfig) -> dict[str, str]:
    """Write the crop of ``row`` and, with ``masks`` (its lesion and skin at the photo's resolution), its lesion and
    coloured masks; the row with their paths."""
    cid = row["id"]
    try:
        write_image(staging / row["image"], crop)
        row["sha256"] = file_sha256(staging / row["image"])
        if masks is not None:
            lesion, skin = masks
            les = resize_mask(lesion, (cfg.size, cfg.size))
            crop_skin = resize_mask(skin, (cfg.size, cfg.size)) if skin is not None else skin_mask(crop, cfg.auto)
            row["lesion"], row["coloured"] = f"lesion/{cid}.png", f"coloured/{cid}.png"
            row["lesion_fraction"] = f"{les.mean():.4f}"
            write_mask(staging / row["lesion"], les)
            write_image(staging / row["coloured"], coloured_mask(crop, les, crop_skin))
    except OSError as exc:
        raise _OutputFailed(exc.errno, exc.strerror, exc.filename or str(staging)) from None
    return row


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        a, b = self.find(i), self.find(j)
        if a != b:
            self.parent[max(a, b)] = min(a, b)


def assign_splits(groups: dict[str, tuple[str, int]], fractions: tuple[float, ...], seed: int) -> dict[str, str]:
    """``{group: (label, n_crops)}`` -> ``{group: split}``, per label over shuffled groups, filling the
    split that is furthest below its target share of crops. Deterministic for ``seed``."""
    by_label: dict[str, list[str]] = defaultdict(list)
    for g, (label, _) in sorted(groups.items()):
        by_label[label].append(g)
    out = {}
    for label, names in sorted(by_label.items()):
        order = numpy_rng(seed, "split", label).permutation(len(names))
        counts = dict.fromkeys(SPLITS, 0)
        for idx in order:
            g = names[idx]
            n = groups[g][1]
            total = sum(counts.values()) + n
            deficit = {s: f * total - counts[s] for s, f in zip(SPLITS, fractions) if f > 0}
            split = max(deficit, key=lambda s: (deficit[s], -SPLITS.index(s)))
            counts[split] += n
            out[g] = split
    return out


def _given_splits(groups: dict[str, tuple[str, int]], given: dict[str, set[str]], cfg: PrepareConfig
                  ) -> tuple[dict[str, str], int]:
    """Splits from a CSV split column (module docstring): test wins, then val; val carved from train when
    the column has none. Returns ``({group: split}, groups whose photos were marked differently)``."""
    out = {g: "test" if "test" in m else "val" if "val" in m else "train" for g, m in given.items()}
    conflicts = sum(len(m) > 1 for m in given.values())
    if "val" not in out.values() and cfg.split[1] > 0:
        share = cfg.split[1] / (cfg.split[0] + cfg.split[1])
        train_groups = {g: groups[g] for g, s in out.items() if s == "train"}
        carved = assign_splits(train_groups, (1 - share, share, 0.0), cfg.seed)
        out.update(carved)
    return out, conflicts


def _splits_from(photos: list[Photo], data: Path) -> tuple[list[Photo], int]:
    """``photos`` with the split each has in the prepared folder ``data`` (by photo path, else by group)."""
    rows = read_manifest(data, required=("split", "source_id", "photo"))
    by_photo = {r["photo"]: r["split"] for r in rows}
    by_group = {r["source_id"]: r["split"] for r in rows}
    out = [replace(p, split=by_photo.get(p.rel) or by_group.get(p.source_id, "")) for p in photos]
    return out, sum(not p.split for p in out)


def _check_paths(src: Path, out: Path, masks: Path | None) -> None:
    if not src.exists():
        raise SkingenError(f"input not found: {src}")
    src_r, out_r = src.resolve(), out.resolve()
    # A CSV's photos may live anywhere; a new, empty out can never overwrite them.
    for inp in ([src_r] if src_r.is_dir() else []) + ([masks.resolve()] if masks else []):
        if out_r == inp or inp in out_r.parents:
            raise SkingenError(f"refusing to write into the input folder {inp}; choose --out elsewhere")
    check_new_folder(out, "prepared data", hint="prepare never mixes into an existing data folder — choose a new --out")


def prepare(src: str | Path, out: str | Path, cfg: PrepareConfig = PrepareConfig(), masks: str | Path | None = None,
            label: str = "", columns: CsvColumns = CsvColumns(), root: str | Path | None = None,
            workers: int = 1, progress: Callable[[int, int], None] | None = None,
            splits_from: str | Path | None = None) -> PrepareReport:
    """Prepare a data folder (module docstring). Raises ``SkingenError`` when nothing usable was found."""
    t0 = time.perf_counter()
    src, out = Path(src), Path(out)
    masks_p = Path(masks) if masks is not None else None
    if masks_p is not None and cfg.auto_mask:
        raise SkingenError("use either --masks or --auto-mask, not both")
    if splits_from is not None and columns.split:
        raise SkingenError("use either --split-column or --splits-from, not both")
    _check_paths(src, out, masks_p)
    if cfg.faces.marked:
        marked_photos(cfg.faces.marked)  # a bad list is one error up front, not a reason per photo
    reviewed_faces("", cfg.faces)  # likewise a bad faces.reviewed CSV
    photos, skipped = discover(src, masks_p, label, columns, root)
    unmatched = 0
    if splits_from is not None:
        photos, unmatched = _splits_from(photos, Path(splits_from))
    try:
        with staged_dir(out, "prepared data") as staging:
            (staging / "images").mkdir()
            results = _run_all(photos, cfg, staging, workers, progress)
            report = _finish(photos, results, skipped, cfg, staging, src, masks_p,
                             Path(root) if root is not None else None,
                             {"splits_from": str(Path(splits_from).resolve()) if splits_from is not None else None,
                              "splits_from_unmatched": unmatched})
            if report.photos_used == 0:  # the reasons go in the error: no report is printed after it
                reasons = Counter(s.reason for s in report.skipped).most_common()
                said = "; ".join(f"{n} x {reason}" for reason, n in reasons[:3])
                more = f"; {len(reasons) - 3} other reason(s)" if len(reasons) > 3 else ""
                raise SkingenError(f"nothing usable in {src}: {len(photos)} photo(s) found, "
                                   f"{len(report.skipped)} file(s) skipped: {said or 'no reason recorded'}{more}")
    except OSError as exc:  # the output side (inputs never raise here: _process turns them into skips)
        raise output_error(exc, out) from None
    report.out = out
    report.seconds = time.perf_counter() - t0
    return report


def _run_all(photos: list[Photo], cfg: PrepareConfig, staging: Path, workers: int,
             progress: Callable[[int, int], None] | None) -> list[_PhotoResult]:
    results: list[_PhotoResult] = []
    if workers <= 1 or len(photos) < 4:
        for i, p in enumerate(photos):
            results.append(_process(i, p, cfg, staging))
            if progress:
                progress(i + 1, len(photos))
        return results
    with process_pool(workers) as pool:
        futures = [pool.submit(_process, i, p, cfg, staging) for i, p in enumerate(photos)]
        try:
            for done, f in enumerate(futures, start=1):
                results.append(f.result())
                if progress:
                    progress(done, len(photos))
        except BaseException:  # disk full, Ctrl-C: do not wait for the photos not yet started
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return results


def _remove_crops(staging: Path, rows: list[dict[str, str]]) -> None:
    for row in rows:
        for key in ("image", "lesion", "coloured"):
            if row.get(key):
                (staging / row[key]).unlink(missing_ok=True)


def _finish(photos: list[Photo], results: list[_PhotoResult], skipped: list[Skipped], cfg: PrepareConfig,
            staging: Path, src: Path, masks: Path | None, root: Path | None = None,
            split_source: dict | None = None) -> PrepareReport:
    dropped = Counter(reason for r in results for reason in r.dropped)
    first_by_sha: dict[str, int] = {}  # pixel hash -> the used photo it belongs to
    used: list[_PhotoResult] = []
    for r in results:
        photo = photos[r.index]
        if r.skip:  # a skipped photo is no original: an identical copy of it may still be used
            _remove_crops(staging, r.rows)  # written before a later crop of the photo failed
            skipped.append(Skipped(photo.rel, printable(r.skip)))
            continue
        if r.pixel_sha and r.pixel_sha in first_by_sha:
            _remove_crops(staging, r.rows)  # its crops duplicate another photo's
            skipped.append(Skipped(photo.rel, f"exact duplicate of {photos[first_by_sha[r.pixel_sha]].rel}"))
            continue
        if r.pixel_sha:
            first_by_sha[r.pixel_sha] = r.index
        used.append(r)
        skipped += [Skipped(photo.rel, printable(note)) for note in r.notes]
    # Groups: same user source_id, or near-duplicate pictures.
    uf = _UnionFind(len(used))
    by_source: dict[str, int] = {}
    for k, r in enumerate(used):
        sid = photos[r.index].source_id
        if sid in by_source:
            uf.union(by_source[sid], k)
        by_source.setdefault(sid, k)
    if used:
        ph = np.array([r.phash for r in used], dtype=np.uint64)
        th = np.stack([r.thumb for r in used]).astype(np.float32)
        for i, j in _near_duplicate_pairs(ph, th, cfg.near_dup_bits, cfg.near_dup_mad):
            uf.union(i, j)
    group_of = {k: photos[used[uf.find(k)].index].source_id for k in range(len(used))}
    groups: dict[str, tuple[str, int]] = {}
    for k, r in enumerate(used):
        label, n = groups.get(group_of[k], (photos[r.index].label, 0))
        groups[group_of[k]] = (label, n + len(r.rows))
    given = {group_of[k]: set() for k in range(len(used))}
    for k, r in enumerate(used):
        given[group_of[k]].add(photos[r.index].split)
    split_of, conflicts = (_given_splits(groups, given, cfg) if any(s != {""} for s in given.values())
                           else (assign_splits(groups, tuple(cfg.split), cfg.seed), 0))
    rows = []
    for k, r in enumerate(used):
        for row in r.rows:
            rows.append({**row, "source_id": group_of[k], "split": split_of[group_of[k]]})
    crops = {s: sum(r["split"] == s for r in rows) for s in SPLITS}
    if rows:
        write_manifest(staging, rows)
    skipped.sort(key=lambda s: s.path)
    write_csv(staging / "skipped.csv", [{"path": s.path, "reason": s.reason} for s in skipped], ("path", "reason"))
    report = PrepareReport(out=staging, photos_found=len(photos), photos_used=len(used), crops=crops,
                           skipped=skipped, dropped_crops=dict(dropped), groups=len(groups), seconds=0.0)
    write_json(staging / "prepare.json", {
        "config": to_dict(cfg), "input": str(src.resolve()), "masks": str(masks.resolve()) if masks else None,
        "root": str(root.resolve()) if root else None,  # what the photo column is relative to, for a CSV with --root
        "photos_found": len(photos), "photos_used": len(used), "groups": len(groups), "crops": crops,
        "skipped": len(skipped), "dropped_crops": dict(dropped), "env": environment_info(),
        "split_column_conflicts": conflicts,
        "faces": {"policy": cfg.faces.policy, "detector": cfg.faces.detector, "reviewed": cfg.faces.reviewed,
                  "photos_with_faces": sum(r.faces > 0 for r in results),
                  "crops_dropped": dropped.get("face", 0),
                  "photos_dropped": sum(r.faces > 0 and r.skip is not None and r.skip.startswith("shows a face")
                                        for r in results),
                  "photos_marked": sum((r.skip or "").startswith("marked as showing a face") for r in results)},
        **(split_source or {}),
    })
    return report


def console_rows(report: PrepareReport) -> tuple[list[str], list[list[str]]]:
    """The console table of a finished ``prepare``: counts of photos, groups, crops per split, skipped files."""
    header = ["photos found", "photos used", "groups", "train", "val", "test", "skipped", "seconds"]
    return header, [[str(report.photos_found), str(report.photos_used), str(report.groups),
                     *(str(report.crops[s]) for s in SPLITS), str(len(report.skipped)), f"{report.seconds:.1f}"]]


def summary_lines(report: PrepareReport) -> list[str]:
    """The lines under that table: crops dropped by reason, then every skipped file with its reason."""
    lines = []
    if report.dropped_crops:
        lines.append("crops dropped: " + ", ".join(f"{k}: {v}" for k, v in sorted(report.dropped_crops.items())))
    if report.skipped:
        lines.append(f"skipped {len(report.skipped)} file(s) (also in {report.out / 'skipped.csv'}):")
        lines += [f"  {s.path}: {s.reason}" for s in report.skipped]
    return lines
