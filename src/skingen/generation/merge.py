"""``skingen merge``: the folders of ``--shard K/N`` jobs -> one folder, as if made by one command.

Refuses (one clear line, nothing written) when the shards come from different checkpoints or options, when
a seed is in two shards, or when seeds of the job are missing (a shard not run, or still running: an
unfinished shard has no visible folder). The merged folder is staged and renamed into place, so it appears
whole or not at all; the shards are only read.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skingen.data.manifest import MANIFEST, read_manifest, write_manifest
from skingen.data.datasheet import NAME as DATASHEET, write_datasheet
from skingen.errors import SkingenError
from skingen.runs import read_json, staged_dir, write_json
from skingen.seeding import format_seeds, parse_seeds

#: the summary file of each generator kind
SUMMARIES = ("sample.json", "inpaint.json")
#: summary keys that differ between the shards of one job (sizes, timing, how it was spread); all others
#: (checkpoint, options, the job's seed list...) must be equal
PER_SHARD = frozenset({"n", "images", "shard", "processes", "seconds_model", "seconds_total", "seconds_per_image",
                       "evaluations_per_image", "pixels_per_image", "merged_from", "seam_score_median",
                       "warnings"})


@dataclass
class MergeReport:
    out: Path
    kind: str      #: the summary file: sample.json | inpaint.json
    shards: int
    images: int


def read_summary(folder: Path) -> tuple[str, dict]:
    """(summary file name, its content) of a generated folder."""
    if not folder.is_dir():
        raise SkingenError(f"{folder} is not a folder")
    found = [name for name in SUMMARIES if (folder / name).is_file()]
    if len(found) != 1 or not (folder / MANIFEST).is_file():
        raise SkingenError(f"{folder} is not a finished folder of `skingen sample` or `skingen inpaint` "
                           f"(needs {MANIFEST} and one of {', '.join(SUMMARIES)})")
    meta = read_json(folder / found[0])
    numbers = [k for k in ("seconds_model", "seconds_total", "processes") if k in meta]
    if not all(isinstance(meta[k], (int, float)) and not isinstance(meta[k], bool) for k in numbers) \
            or "seconds_model" not in meta or not isinstance(meta.get("seeds", ""), str):
        raise SkingenError(f"{folder / found[0]}: damaged (needs the numbers seconds_model, and seeds as text)")
    return found[0], meta


def _cell(row: dict, key: str, folder: Path, kind: type = int) -> int | float:
    """``row[key]`` as a number (``kind``); a damaged manifest cell is one line naming the folder."""
    try:
        return kind(row.get(key))
    except (ValueError, TypeError):
        raise SkingenError(f"{folder / MANIFEST}: damaged ({key} {row.get(key)!r} of {row.get('id')} is not a "
                           f"{'whole ' if kind is int else ''}number)") from None


def merge_folders(out: str | Path, folders: list[str | Path]) -> MergeReport:
    """Merge the shard ``folders`` into the new folder ``out`` (module docstring)."""
    folders = [Path(f) for f in folders]
    if not folders:
        raise SkingenError("give the shard folders to merge")
    if len(set(f.resolve() for f in folders)) != len(folders):
        raise SkingenError("a shard folder is given twice")
    kinds, metas = zip(*(read_summary(f) for f in folders))
    if len(set(kinds)) > 1:
        raise SkingenError(f"cannot merge {kinds[0]} folders with {next(k for k in kinds if k != kinds[0])} folders")
    first = metas[0]
    if "seeds" not in first:
        raise SkingenError(f"{folders[0]}/{kinds[0]} records no seed list (made before skingen had --shard)")
    for folder, meta in zip(folders[1:], metas[1:]):
        for key in sorted(set(first) | set(meta)):
            if key not in PER_SHARD and first.get(key) != meta.get(key):
                raise SkingenError(f"{folder} and {folders[0]} differ in '{key}' ({meta.get(key)!r} vs "
                                   f"{first.get(key)!r}): shards must come from one command (same checkpoint and options)")
    job = parse_seeds(first["seeds"])
    owner: dict[int, Path] = {}
    rows_of: dict[int, dict] = {}
    for folder in folders:
        for row in read_manifest(folder, required=("id", "image", "seed")):
            seed = _cell(row, "seed", folder)
            if seed in owner:
                raise SkingenError(f"seed {seed} is in both {owner[seed]} and {folder}: shards overlap")
            owner[seed], rows_of[seed] = folder, row
    missing = [s for s in job if s not in owner]
    if missing:
        raise SkingenError(f"seeds {format_seeds(missing)} of the job ({first['seeds']}) are in none of the folders: "
                           f"a shard is missing or unfinished")
    extra = sorted(set(owner) - set(job))
    if extra:
        raise SkingenError(f"seeds {format_seeds(extra)} are not part of the job ({first['seeds']})")
    rows = [rows_of[s] for s in job]
    merged = _merged_summary(kinds[0], folders, metas, rows, [owner[s] for s in job])
    for r in rows:
        r["seconds_per_image"] = f"{merged['seconds_per_image']:.6f}"
    files = _files(folders)
    with staged_dir(out, "merged folder") as staging:
        for rel, src in files.items():
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, staging / rel)
        write_manifest(staging, rows)
        write_json(staging / kinds[0], merged)
        # one data sheet for the whole set (each shard's describes only its slice)
        write_datasheet(staging, rows, "sample" if kinds[0] == "sample.json" else "inpaint",
                        {"merged from shard folders": ", ".join(str(f) for f in folders)})
    return MergeReport(Path(out), kinds[0], len(folders), len(rows))


def _merged_summary(kind: str, folders: list[Path], metas: tuple[dict, ...], rows: list[dict],
                    owners: list[Path]) -> dict:
    """The summary (``kind``: sample.json / inpaint.json) of the merged folder: the first shard's, with the
    counts and times of all; ``owners[i]``: the shard folder row ``i`` came from."""
    first = metas[0]
    merged = dict(first, shard=None, merged_from=[str(f.resolve()) for f in folders],
                  processes=sum(m.get("processes", 1) for m in metas),
                  seconds_model=sum(m["seconds_model"] for m in metas))
    merged["seconds_per_image"] = merged["seconds_model"] / len(rows)
    if "seconds_total" in first:
        merged["seconds_total"] = sum(m["seconds_total"] for m in metas)
    if kind == "sample.json":
        merged["n"] = len(rows)
    else:
        merged["images"] = len(rows)
        merged["evaluations_per_image"] = sum(_cell(r, "evaluations", f) for r, f in zip(rows, owners)) / len(rows)
        merged["pixels_per_image"] = sum(_cell(r, "pixels", f) for r, f in zip(rows, owners)) / len(rows)
        if "seam_score_median" in first:
            seams = [_cell(r, "seam_score", f, float) for r, f in zip(rows, owners)
                     if r.get("seam_score", "nan") != "nan"]
            merged["seam_score_median"] = float(np.median(seams)) if seams else float("nan")
    if "warnings" in first:  # a shard's warning (e.g. a constant set) stays a warning of the whole
        merged["warnings"] = sorted({w for m in metas for w in m.get("warnings", [])})
    return merged


def _files(folders: list[Path]) -> dict[Path, Path]:
    """relative path -> source file of every image/sidecar in the shards (not the manifest or summary)."""
    files: dict[Path, Path] = {}
    owner: dict[Path, Path] = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder)
            if not path.is_file() or rel.name in (MANIFEST, DATASHEET, *SUMMARIES) and len(rel.parts) == 1 \
                    or any(p.startswith(".") for p in rel.parts):
                continue
            if rel in files:
                raise SkingenError(f"{rel} is in both {owner[rel]} and {folder}: shards overlap")
            files[rel], owner[rel] = path, folder
    return files
