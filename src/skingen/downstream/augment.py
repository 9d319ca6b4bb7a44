"""Synthetic image sets next to a real data folder: loading, leakage checks, selection, and the
``skingen augment`` export (real + synthetic as one class-per-folder tree with a provenance manifest).

Leakage rules (a violation is a :class:`~skingen.errors.SkingenError`, never a warning):
- synthetic images only ever join the **train** split;
- a synthetic image whose ``parent_id`` (or condition's ``condition_id``) is a real val/test image, or
  whose ``source_id`` (or any ``*source_id`` column, e.g. the condition's) is a val/test group, is refused:
  it is a child of held-out data;
- the same by content, whatever the ids say (:mod:`skingen.downstream.leaks`): a picture behind the set
  (the generator's training data, its parents/conditions) that is a near-duplicate of a val/test photo;
- a generator (the run behind each row's ``checkpoint``) whose training split contains a val/test
  group of the real data is refused: its samples may reproduce held-out images. When the run's
  ``config.yaml`` or data folder cannot be found this cannot be checked, and the set is marked
  ``unverified`` (recorded, not refused: a user may bring images from elsewhere).
"""

from __future__ import annotations

import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from skingen.data.imagesets import parse_set_spec
from skingen.data.manifest import MANIFEST, SPLITS, read_manifest, write_manifest
from skingen.downstream.leaks import check_content
from skingen.data.datasheet import write_datasheet
from skingen.downstream.filters import FilterSpec, describe_filter, filter_sets
from skingen.downstream.memgate import GateConfig, describe_gate, gate_sets, write_gate_outputs
from skingen.data.provenance import run_training_data
from skingen.errors import SkingenError
from skingen.runs import environment_info, staged_dir, write_csv, write_json
from skingen.seeding import numpy_rng

BALANCE = ("none", "label", "skin-tone")
PATH_COLUMNS = ("lesion", "coloured", "edit_map", "condition")  # files that travel with an image


# inpaint (training-free backends) and tone sets: every row has a parent and no checkpoint, so there is no
# generator whose training data could hold val/test photos (the parents are checked like any other source)
NO_GENERATOR = "not applicable (no trained generator recorded: each image is made from its train parent)"


@dataclass
class SyntheticSet:
    name: str
    folder: Path
    rows: list[dict[str, str]]
    generator_check: str = ""  # "ok", NO_GENERATOR, or why the generator's training data could not be checked
    notes: list[str] = field(default_factory=list)


def load_synthetic(text: str, name: str | None = None) -> SyntheticSet:
    """The set of ``--synthetic [NAME=]DIR[:LABEL]`` (:func:`~skingen.data.imagesets.parse_set_spec`), its rows
    checked: every image labelled (LABEL relabels them all) and synthetic; of an ``augment`` output (e.g. a filtered
    set), its synthetic rows."""
    spec = parse_set_spec(text)
    folder, label = spec.folder, spec.label
    rows = read_manifest(folder, required=("id", "image"))
    if (folder / "augment.json").is_file():  # an augment output (e.g. a filtered set): its synthetic rows
        rows = [r for r in rows if r.get("origin") == "synthetic"]
    if not rows:
        raise SkingenError(f"{folder / MANIFEST}: no images")
    for r in rows:
        if label is not None:
            r["label"] = label
        if not (r.get("label") or "").strip():
            raise SkingenError(f"{folder / MANIFEST}: image {r['id']} has no label; give the set's class as "
                               f"{folder}:LABEL")
        if (r.get("origin") or "synthetic") != "synthetic":
            raise SkingenError(f"{folder / MANIFEST}: image {r['id']} has origin '{r['origin']}', not synthetic")
        r["origin"] = "synthetic"  # an empty or missing origin counts as synthetic, and is recorded so
    return SyntheticSet(name or spec.name or folder.name, folder, rows)


def _generator_groups(checkpoint: str) -> tuple[set[str] | None, str]:
    """Source groups a generator was trained on, from its run's config.yaml and data manifest."""
    data, split, why = run_training_data(checkpoint)
    if data is None:
        return None, why
    rows = read_manifest(data, required=("id", "split", "source_id"))
    return {r["source_id"] for r in rows if split in (None, "", r["split"])}, "ok"


def check_leakage(real_rows: list[dict[str, str]], synth: SyntheticSet, real: str | Path | None = None) -> None:
    """Apply the module's leakage rules; fills ``synth.generator_check``. Raises on a violation. With the real
    data folder ``real``, also by content (:mod:`skingen.downstream.leaks`)."""
    held_ids = {r["id"]: r["split"] for r in real_rows if r["split"] != "train"}
    held_groups = {r["source_id"]: r["split"] for r in real_rows if r["split"] != "train"}
    labels = {r["label"] for r in real_rows}
    where = synth.folder / MANIFEST
    for r in synth.rows:
        if r.get("split", "train") not in ("", "train"):
            raise SkingenError(f"{where}: synthetic image {r['id']} is marked split '{r['split']}'; synthetic images "
                               "may only join the train split")
        for col in ("parent_id", "condition_id"):
            if (r.get(col) or "") in held_ids:
                raise SkingenError(f"{where}: synthetic image {r['id']} is a child of {held_ids[r[col]]} image "
                                   f"{r[col]} ({col}); refusing to train on children of held-out images")
        for col in (c for c in r if c.endswith("source_id")):
            if (r.get(col) or "") in held_groups:
                raise SkingenError(f"{where}: synthetic image {r['id']} comes from {held_groups[r[col]]} group "
                                   f"{r[col]} ({col}); refusing to train on children of held-out images")
        if r["label"] not in labels:
            raise SkingenError(f"{where}: synthetic image {r['id']} has label '{r['label']}', not a class of the real "
                               f"data ({', '.join(sorted(labels))})")
    problems = []
    for ckpt in sorted({r.get("checkpoint", "") for r in synth.rows} - {""}):
        groups, why = _generator_groups(ckpt)
        if groups is None:
            problems.append(why)
            continue
        leaked = sorted(groups & set(held_groups))
        if leaked:
            n_test = sum(held_groups[g] == "test" for g in leaked)
            raise SkingenError(f"{synth.folder}: its generator ({ckpt}) was trained on {len(leaked)} group(s) that are "
                               f"held out here ({n_test} test, {len(leaked) - n_test} val; e.g. {', '.join(leaked[:3])}); "
                               "its images may reproduce them. Train the generator on this data's train split "
                               "(prepare its photos with --splits-from this data folder)")
    no_checkpoint = not any(r.get("checkpoint") for r in synth.rows)
    derived = no_checkpoint and all(r.get("parent_id") for r in synth.rows)
    if no_checkpoint and not derived:
        problems.append("no checkpoint recorded")
    if real is not None:
        synth.notes += check_content(Path(real), real_rows, synth.folder, synth.rows)
    synth.generator_check = (NO_GENERATOR if derived else "ok" if not problems else
                             "unverified: " + "; ".join(sorted(set(problems))))


def water_fill(current: dict[str, int], available: dict[str, int], total: int) -> dict[str, int]:
    """How many to add per key so the smallest ``current + added`` counts rise first (as even as the
    ``available`` numbers allow), ``total`` in all at most. Deterministic (ties by key order)."""
    added = dict.fromkeys(available, 0)
    keys = sorted(available)
    for _ in range(min(total, sum(available.values()))):
        open_keys = [k for k in keys if added[k] < available[k]]
        k = min(open_keys, key=lambda k: (current.get(k, 0) + added[k], keys.index(k)))
        added[k] += 1
    return added


def select_synthetic(synth_rows: list[dict[str, str]], counts: dict[str, int], per_key: Callable[[dict], str],
                     seed: int) -> list[dict[str, str]]:
    """``counts[key]`` rows of each key, in a seeded order (a prefix of one permutation per key, so a
    smaller request is a subset of a larger one)."""
    by_key: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in synth_rows:
        by_key[per_key(r)].append(r)
    chosen = []
    for key in sorted(by_key):
        rows = by_key[key]
        order = numpy_rng(seed, "synthetic", key).permutation(len(rows))
        chosen += [rows[i] for i in order[:counts.get(key, 0)]]
    return chosen


@dataclass
class AugmentReport:
    out: Path
    real: dict[str, int]
    synthetic: dict[str, int]  # per set name
    checks: dict[str, str]
    memorised: dict[str, dict] = field(default_factory=dict)  # per set: checked, flagged, dropped (the gate)
    filtered: str = ""  # what --filter kept, per set ('' without a filter)

    def summary(self, allow_memorised: bool) -> tuple[list[str], list[str]]:
        """The console's lines about a finished ``augment``, and its notes (training data not checked)."""
        lines = [f"wrote {self.out}: real {self.real}, synthetic {self.synthetic}"]
        lines += [f"memorisation gate: {name}: {c['flagged']} of {c['checked']} near-copies of training images "
                  f"{'kept (--allow-memorised)' if allow_memorised else 'dropped'}; see {self.out / 'memorised.csv'}"
                  for name, c in self.memorised.items() if c["flagged"]]
        lines += [f"memorisation gate: {name}: {c['own_parent']} of {c['checked']} near their own parent's photo "
                  f"(made from it: kept, listed in {self.out / 'memorised.csv'})"
                  for name, c in self.memorised.items() if c.get("own_parent")]
        lines += [f"filter: {self.filtered}"] if self.filtered else []
        return lines, [f"{name}: generator training data {check}" for name, check in self.checks.items()
                       if check not in ("ok", NO_GENERATOR)]


def augment(real: str | Path, synthetic: list[str], out: str | Path, ratio: float | None = None,
            balance: str = "none", seed: int = 0, progress: Callable[[int, int], None] | None = None,
            train: str | None = None, allow_memorised: bool = False, gate: GateConfig = GateConfig(),
            filter_spec: FilterSpec | None = None, cache=None) -> AugmentReport:
    """Write ``out/<split>/<label>/<id>.<ext>`` for every real image and the chosen synthetic ones (train
    only), ``out/extra/<column>/`` for their masks and conditions, ``manifest.csv`` (every input column
    kept; ``image`` and path columns rewritten; ``synthetic_set`` names a synthetic row's folder) and
    ``augment.json``.

    ``ratio``: synthetic images per real train image of the classes the synthetic sets cover (all synthetic
    images when None); ``balance``: ``none``
    (a seeded random choice), ``label`` or ``skin-tone`` (fill the smallest classes / ITA categories first).
    Every set first passes the memorisation gate (:mod:`skingen.downstream.memgate`; ``train``: the generator's
    training data for sets without provenance; ``allow_memorised`` keeps near-copies of training images), then
    the ``filter_spec`` (:mod:`skingen.downstream.filters`; every image's score in ``filtered.csv``; ``cache``: the
    evaluate feature cache).
    """
    real = Path(real)
    if balance not in BALANCE:
        raise SkingenError(f"--balance must be one of {', '.join(BALANCE)}, got '{balance}'")
    if ratio is not None and not 0 <= ratio <= 1e6:  # NaN fails this too
        raise SkingenError(f"--ratio must be 0..1e6 synthetic images per real one, got {ratio}")
    if not synthetic:
        raise SkingenError("give at least one --synthetic set")
    real_rows = read_manifest(real, required=("id", "image", "split", "label", "source_id"))
    sets = [load_synthetic(s) for s in synthetic]
    for s in sets:
        check_leakage(real_rows, s, real)
    gated = gate_sets(sets, real, train, allow_memorised, gate, progress)
    filtered = filter_sets(sets, real, real_rows, filter_spec, seed, cache) if filter_spec is not None else []
    pool = [{**r, "synthetic_set": str(s.folder)} for s in sets for r in s.rows]
    ids = Counter(r["id"] for r in real_rows + pool)
    if any(n > 1 for n in ids.values()):
        raise SkingenError(f"image ids repeat across the inputs ({', '.join(sorted(i for i, n in ids.items() if n > 1)[:3])}); "
                           "give each synthetic set once")
    train = [r for r in real_rows if r["split"] == "train"]
    covered = {r["label"] for r in pool}  # as in the study: a measles-only set is measured against real measles
    total = len(pool) if ratio is None else int(round(ratio * sum(r["label"] in covered for r in train)))
    key = {"none": lambda r: "", "label": lambda r: r["label"],
           "skin-tone": lambda r: r.get("ita_category") or ""}[balance]
    if balance == "skin-tone" and any(not key(r) for r in train + pool):
        raise SkingenError("--balance skin-tone needs an ita_category for every real train and synthetic image "
                           "(run `skingen analyze` on both folders first)")
    available = Counter(key(r) for r in pool)
    if balance == "none":
        counts = {"": min(total, len(pool))}
    else:
        counts = water_fill(Counter(key(r) for r in train), dict(available), total)
    chosen = select_synthetic(pool, counts, key, seed)
    rows_out = []
    with staged_dir(out, "augmented data") as staging:
        items = [(real, r, r["split"]) for r in real_rows] + [(Path(r["synthetic_set"]), r, "train") for r in chosen]
        for i, (folder, r, split) in enumerate(items):
            rows_out.append(_copy_row(folder, r, split, staging))
            if progress:
                progress(i + 1, len(items))
        write_manifest(staging, rows_out)
        memorised = write_gate_outputs(staging, gated, allow_memorised)
        if filter_spec is not None:
            write_csv(staging / "filtered.csv", filtered)
        by_set = Counter(Path(r["synthetic_set"]).name for r in chosen)
        report = AugmentReport(Path(out), {s: sum(r["split"] == s for r in real_rows) for s in SPLITS},
                               {s.name: by_set.get(s.folder.name, 0) for s in sets},
                               {s.name: s.generator_check for s in sets}, memorised,
                               describe_filter(filter_spec, filtered) if filter_spec else "")
        write_json(staging / "augment.json", {
            "real": str(real.resolve()), "synthetic": [str(s.folder.resolve()) for s in sets], "ratio": ratio,
            "balance": balance, "seed": seed, "counts_real": report.real, "counts_synthetic": report.synthetic,
            "synthetic_requested": total, "synthetic_per_key": {k or "all": v for k, v in counts.items()},
            "generator_checks": report.checks, "memorisation_gate": memorised, "allow_memorised": allow_memorised,
            "gate_features": list(gate.features), "notes": [n for s in sets for n in s.notes],
            "filter": filter_spec.describe() if filter_spec else None,
            "filter_kept": {s.name: len(s.rows) for s in sets} if filter_spec else None,
            "env": environment_info()})
        write_datasheet(staging, rows_out, "augment", {"real data": str(real.resolve()), "ratio": ratio, "balance": balance,
                                                       "synthetic sets": [str(s.folder) for s in sets],
                                                       "filter": describe_filter(filter_spec, filtered)},
                        describe_gate(memorised, allow_memorised, gate), {"real images": report.real})
    return report


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text) or "_"


def _copy_row(folder: Path, row: dict[str, str], split: str, staging: Path) -> dict[str, str]:
    src = folder / row["image"]
    if not src.is_file():
        raise SkingenError(f"{folder / MANIFEST}: image file {row['image']} of {row['id']} not found")
    rel = f"{split}/{_safe(row['label'])}/{_safe(row['id'])}{src.suffix.lower()}"
    (staging / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, staging / rel)
    out = {**row, "image": rel, "split": split, "origin": row.get("origin") or "real"}
    for col in PATH_COLUMNS:
        value = (row.get(col) or "").strip()
        if value and (folder / value).is_file():
            extra = f"extra/{col}/{_safe(row['id'])}{Path(value).suffix.lower()}"
            (staging / extra).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / value, staging / extra)
            out[col] = extra
    return out
