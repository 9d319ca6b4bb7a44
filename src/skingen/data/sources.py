"""Finding the photos (and masks, labels, groups) that ``prepare`` should read.

Three input forms:
- a folder of photos, searched recursively (label from ``--label``, empty by default);
- a class-per-folder tree: when the top folder holds no photos itself, each sub-folder is a class
  and its name is the label;
- a CSV file with columns ``image[,mask,label,source_id]`` (names configurable), paths relative to
  the CSV's folder or to ``root``. ``exclude_column`` drops rows where that column is non-empty
  (e.g. ``content_flag``) and ``group_column`` is used as ``source_id`` (e.g. ``near_dup_group``).
  ``label_column`` names the class column; ``split_column`` (values train / val / test) fixes each photo's
  split (e.g. ``suggested_split``), which ``prepare`` then honours (see its docstring).

Masks come from the CSV or from ``masks_dir``, matched by file stem (``x.jpg`` <-> ``x.png``; common
suffixes such as ``_mask``, ``_lesion``, ``_segmentation`` are ignored).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from skingen.errors import SkingenError
from skingen.imageio import is_image_file
from skingen.runs import read_csv

_MASK_SUFFIX = re.compile(r"(_|-)(mask|masks|lesion|segmentation|seg|contour|label)$", re.IGNORECASE)


@dataclass(frozen=True)
class Photo:
    path: Path
    rel: str  # path shown to the user and stored in the manifest's ``photo`` column
    mask: Path | None
    label: str
    source_id: str
    split: str = ""  # from the CSV's split column when one is given, else "" (prepare draws the split)


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass(frozen=True)
class CsvColumns:
    image: str = "image"
    mask: str = "mask"
    label: str = "label"
    source_id: str = "source_id"
    group: str | None = None  # used as source_id when given (e.g. near_dup_group)
    exclude: str | None = None  # rows with a non-empty value here are skipped (e.g. content_flag)
    split: str | None = None  # fixed split per row (train / val / test), e.g. suggested_split


SPLIT_VALUES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def printable(text: str) -> str:
    """``text`` with file-name bytes that are not UTF-8 (held as surrogates by Python) shown as ``\\xNN``,
    so it can be written to a UTF-8 CSV or printed; valid names are unchanged."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def walk_files(root: Path, skipped: list[Skipped]) -> list[Path]:
    """All non-hidden files under ``root``, sorted; unreadable folders, broken links and other entries that
    are not regular files are recorded in ``skipped``."""
    found: list[Path] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            skipped.append(Skipped(printable(str(folder)), f"cannot read folder ({exc.strerror or exc})"))
            continue
        for e in entries:
            if e.name.startswith("."):
                continue
            rel = printable(Path(e.path).relative_to(root).as_posix())
            if e.is_dir(follow_symlinks=False):
                stack.append(Path(e.path))
            elif e.is_file():
                found.append(Path(e.path))
            elif e.is_symlink() and not os.path.exists(e.path):
                skipped.append(Skipped(rel, f"broken symbolic link (target {printable(os.readlink(e.path))} not found)"))
            elif e.is_symlink():
                skipped.append(Skipped(rel, "symbolic link to a folder (not followed)"))
            else:
                skipped.append(Skipped(rel, "not a regular file"))
    return sorted(found)


def _mask_key(path: Path) -> str:
    return _MASK_SUFFIX.sub("", path.stem).lower()


def index_masks(masks_dir: Path) -> tuple[dict[str, Path], list[Skipped]]:
    if not masks_dir.is_dir():
        raise SkingenError(f"masks folder not found: {masks_dir}")
    skipped: list[Skipped] = []
    index: dict[str, Path] = {}
    for p in walk_files(masks_dir, skipped):
        if is_image_file(p):
            index.setdefault(_mask_key(p), p)
    return index, skipped


def discover(src: str | Path, masks_dir: str | Path | None = None, label: str = "",
             columns: CsvColumns = CsvColumns(), root: str | Path | None = None) -> tuple[list[Photo], list[Skipped]]:
    """Photos to prepare, and files skipped while looking (with the reason for each)."""
    src = Path(src)
    if not src.exists():
        raise SkingenError(f"input not found: {src}")
    if src.is_file():
        if src.suffix.lower() != ".csv":
            raise SkingenError(f"{src}: expected a folder of photos or a .csv listing them")
        if label:
            raise SkingenError("--label applies to a folder of photos; a CSV gives each photo's label in its label "
                               "column (--label-column)")
        photos, skipped = _from_csv(src, columns, Path(root) if root else src.parent)
    else:
        if columns != CsvColumns() or root is not None:  # they would be silently ignored
            raise SkingenError(f"--image-column, --label-column, --split-column, --group-column, --exclude-column and "
                               f"--root apply to a CSV input; {src} is a folder")
        photos, skipped = _from_folder(src, label)
    if masks_dir is not None:
        index, mask_skips = index_masks(Path(masks_dir))
        skipped += mask_skips
        masks_root = Path(masks_dir).resolve()
        matched = []
        for p in photos:
            if masks_root in p.path.resolve().parents:  # masks kept inside SRC are not photos
                continue
            m = p.mask or index.get(p.path.stem.lower())
            if m is None:
                skipped.append(Skipped(p.rel, f"no mask named {p.path.stem}.* in {masks_dir}"))
            else:
                matched.append(Photo(p.path, p.rel, m, p.label, p.source_id, p.split))
        photos = matched
    return photos, skipped


def _from_folder(src: Path, label: str) -> tuple[list[Photo], list[Skipped]]:
    skipped: list[Skipped] = []
    files = walk_files(src, skipped)
    top_level_images = any(is_image_file(f) and f.parent == src for f in files)
    photos = []
    for f in files:
        rel = printable(f.relative_to(src).as_posix())
        if not is_image_file(f):
            skipped.append(Skipped(rel, f"not an image file ({f.suffix or 'no extension'})"))
            continue
        cls = label if top_level_images or f.parent == src else f.relative_to(src).parts[0]
        photos.append(Photo(f, rel, None, cls, rel))
    return photos, skipped


def _from_csv(path: Path, cols: CsvColumns, root: Path) -> tuple[list[Photo], list[Skipped]]:
    header, rows = read_csv(path, encoding="utf-8-sig")
    label_col = cols.label if cols.label != CsvColumns.label else None  # the default may be absent
    for name in (cols.image, cols.group, cols.exclude, cols.split, label_col):
        if name is not None and name not in header:
            raise SkingenError(f"{path}: no column '{name}' (columns: {', '.join(header)})")
    photos, skipped = [], []
    for i, row in enumerate(rows, start=2):
        rel = (row.get(cols.image) or "").strip()
        if not rel:
            skipped.append(Skipped(f"{path.name}:{i}", f"empty '{cols.image}' cell"))
            continue
        if cols.exclude and (row.get(cols.exclude) or "").strip():
            skipped.append(Skipped(rel, f"excluded by {cols.exclude}={row[cols.exclude].strip()}"))
            continue
        image = Path(rel) if Path(rel).is_absolute() else root / rel
        mask_rel = (row.get(cols.mask) or "").strip()
        mask = (Path(mask_rel) if Path(mask_rel).is_absolute() else root / mask_rel) if mask_rel else None
        group = (row.get(cols.group) or "").strip() if cols.group else ""
        source = group or (row.get(cols.source_id) or "").strip() or rel
        split = ""
        if cols.split:
            value = (row.get(cols.split) or "").strip().lower()
            if value not in SPLIT_VALUES:
                raise SkingenError(f"{path}:{i}: {cols.split}='{row.get(cols.split)}' is not a split "
                                   "(expected train, val or test)")
            split = SPLIT_VALUES[value]
        photos.append(Photo(image, rel, mask, (row.get(cols.label) or "").strip(), source, split))
    return photos, skipped
