"""Where a synthetic set came from: the generator's training data and the data its conditions were taken from.

Read from what ``skingen train``, ``sample`` and ``inpaint`` write: the run's ``config.yaml`` (``data``,
``train.split``) behind each row's ``checkpoint``, and the set's ``sample.json`` / ``inpaint.json`` / ``tone.json``
(``source``, ``masks``). A prepared data folder's ``prepare.json`` says where its original photos are.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from skingen.data.manifest import MANIFEST, read_manifest
from skingen.data.imagesets import parse_data_spec
from skingen.run_folder import RunFolder
from skingen.runs import read_json


def run_training_data(checkpoint: str | Path) -> tuple[Path | None, str | None, str]:
    """``(data folder, split or None for all, "ok")`` a generator checkpoint was trained on, or
    ``(None, None, why not)`` when its run config or data folder cannot be found."""
    run = RunFolder.of_checkpoint(checkpoint)
    if not run.has_config():
        return None, None, f"no run config at {run.config_file}"
    data, split = run.training_data()
    if not data or not (Path(data) / MANIFEST).is_file():
        return None, None, f"training data {data} of {run.path.name} not found"
    return Path(data), split, "ok"


def condition_sources(folder: Path, rows: list[dict[str, str]]) -> list[Path]:
    """Data folders the parents / conditions (``parent_id``) of a synthetic set's rows were taken from:
    ``sample.json``'s ``source`` / ``masks`` (default: the run's training data), ``inpaint.json``'s and
    ``tone.json``'s ``source``."""
    out: list[Path] = []
    for name, keys in (("sample.json", ("source", "masks")), ("inpaint.json", ("source",)), ("tone.json", ("source",))):
        meta = folder / name
        if not meta.is_file():
            continue
        info = read_json(meta)  # damaged: an error, not a leak check that silently misses a source
        for k in keys:
            if info.get(k):
                out.append(parse_data_spec(str(info[k]))[0])
    if not out and any(r.get("parent_id") for r in rows) and any(r.get("condition") == "data" for r in rows):
        for ckpt in {r.get("checkpoint", "") for r in rows} - {""}:  # sample's default --masks: the run's data
            data, _, _ = run_training_data(ckpt)
            if data is not None:
                out.append(data)
    return list(dict.fromkeys(out))


@lru_cache(maxsize=64)
def _photo_base(data: str) -> Path | None:
    """The folder a prepared data folder's ``photo`` column is relative to (from its ``prepare.json``)."""
    meta = Path(data) / "prepare.json"
    if not meta.is_file():
        return None
    info = read_json(meta)
    if info.get("root"):
        return Path(str(info["root"]))
    src = Path(str(info.get("input") or ""))
    return src if src.is_dir() else src.parent if str(src) else None


def picture_of(data: Path, row: dict[str, str]) -> tuple[Path, bool]:
    """``(file, is_photo)``: the original photo a prepared crop was cut from when it can still be found
    (``photo`` column + ``prepare.json``), else the crop itself."""
    photo = (row.get("photo") or "").strip()
    if photo:
        p = Path(photo)
        if not p.is_absolute():
            base = _photo_base(str(Path(data).resolve()))
            p = base / photo if base is not None else p
        if p.is_absolute() and p.is_file():
            return p, True
    return Path(data) / row["image"], False


def rows_of(data: Path, split: str | None = None) -> list[dict[str, str]]:
    """Real rows of a prepared data folder (one split, or all with ``None``)."""
    return [r for r in read_manifest(data, required=("id", "image", "split"))
            if r.get("origin", "") in ("", "real") and (split is None or r["split"] == split)]
