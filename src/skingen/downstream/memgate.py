"""The memorisation gate of ``skingen augment``: near-copies of patients' photos never join a data set silently.

Before a synthetic image joins an augmented set it is compared with

- the generator's own **training** images (found through the set's provenance: the run behind each row's
  ``checkpoint``, as the leakage checks find it; or ``--train DATA[:split]`` for a set without one). It is a
  near-copy when it is closer to its nearest training image than ``ratio`` (1/3) times its distance to the
  nearest training image of another photo, in *any* of the feature spaces (default: FID Inception and 64 px
  pixels) -- the rule ``skingen evaluate`` uses (:func:`skingen.eval.memorisation.memorisation`). Near-copies
  are dropped (kept with ``allow_memorised``, and then counted as kept), listed in ``memorised.csv`` and
  shown next to their training image in ``memorised.png``.
  A set made *from* real train crops (``inpaint``, ``tone``: each row names its ``parent_id``, and the leakage
  checks have made sure the parents are train crops of the real data) is compared with the real **train**
  split as well. An image whose nearest training image is a crop of its own parent's photo is what such a
  set is by design (its parent, partly repainted or recoloured): it is listed with ``own_parent`` = 1 and
  kept; a near-copy of any *other* photo is dropped as above.
- the real data's **val/test** images, by the same rule and by the near-duplicate rule of ``prepare`` under the 8
  flips and quarter turns (:func:`skingen.data.neardup.transformed_copies`: mirrored, turned, shifted and
  re-encoded copies): a copy of a held-out image is always an error naming both files, whatever the provenance
  says (it would leak the test set into training).

Images are compared at the synthetic images' size (training crops resized with the evaluation resize of
:mod:`skingen.data.imagesets`). Reference features are cached on disk like ``evaluate``'s
(:class:`skingen.eval.cache.FeatureCache`). Cost: ``bench/memgate.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from skingen.data.provenance import run_training_data
from skingen.errors import SkingenError
from skingen.data.imagesets import ImageSet, from_rows, open_data, parse_data_spec


@dataclass(frozen=True)
class GateConfig:
    features: tuple[str, ...] = ("inception", "pixels:64")
    ratio: float = 1 / 3
    batch: int = 50
    sheet_pairs: int = 64  # pairs shown in memorised.png at most


@dataclass
class GateResult:
    set_name: str
    checked: int
    reference: list[str]  # the training image sets compared against
    features: list[dict]  # describe() of each feature space
    flagged: list[dict[str, str]] = field(default_factory=list)  # rows of memorised.csv
    sheet: np.ndarray | None = None  # uint8 [H,W,3] contact sheet of the flagged pairs, or None
    own_parent: list[dict[str, str]] = field(default_factory=list)  # near their own parent's photo: kept

    @property
    def flagged_ids(self) -> set[str]:
        return {r["id"] for r in self.flagged}


def training_reference(folder: Path, rows: list[dict[str, str]], train: str | None, real: Path | None = None
                       ) -> list[ImageSet]:
    """The image sets a synthetic set was made from: its runs' training data (provenance), else ``train``
    (``DATA[:split]``, default split ``train``); plus ``real``'s train split when rows name a ``parent_id``
    (made from those crops); a clear error when no generator's training data is there."""
    found, problems = [], []
    for ckpt in sorted({r.get("checkpoint", "") for r in rows} - {""}):
        data, split, why = run_training_data(ckpt)
        if data is None:
            problems.append(why)
        else:
            found.append(f"{Path(data).resolve()}:{split}" if split else str(Path(data).resolve()))
    # resolved paths: the same folder named two ways is one reference (so a parent's photo has one group)
    parents = [f"{Path(real).resolve()}:train"] if real is not None and any(r.get("parent_id") for r in rows) else []
    if problems or not found:
        if train is not None:
            data, split = parse_data_spec(train)
            found = [f"{Path(data).resolve()}:{split or 'train'}"]
        elif problems or not parents:  # a generator's data is unknown; a parent-only set needs none
            why = "; ".join(sorted(set(problems))) or "no checkpoint recorded"
            raise SkingenError(f"{folder}: the memorisation gate cannot find the generator's training images ({why}); "
                               "give them with --train DATA[:split]")
    return [open_data(spec) for spec in dict.fromkeys(found + parents)]


def _features(images: ImageSet, extractor, size: int, batch: int, cache, advance: Callable[[int], None]) -> np.ndarray:
    from skingen.eval.cache import FeatureCache

    key = FeatureCache.key(images.fingerprint, len(images), size, extractor.describe()) if cache and images.fingerprint else None
    hit = cache.get(key) if key else None
    if hit is not None:
        advance(len(images))
        return hit
    parts = []
    for _, x in images.batches(size, batch):
        parts.append(extractor(x))
        advance(len(x))
    feats = np.concatenate(parts) if parts else np.zeros((0, 1), np.float32)
    if key:
        cache.put(key, feats)
    return feats


def _concat(sets: list[ImageSet]) -> tuple[list[Path], list[str], list[str]]:
    paths, ids, groups = [], [], []
    for s in sets:
        paths += list(s.paths)
        ids += list(s.ids)
        groups += [f"{s.root}:{g}" for g in s.groups]
    return paths, ids, groups


def load_extractors(cfg: GateConfig) -> list:
    """The gate's feature extractors, loaded (never downloading weights)."""
    from skingen.eval.features import FeaturesUnavailable, make_extractor

    out = []
    for spec in cfg.features:
        ex = make_extractor(spec)
        try:
            ex.load()
        except FeaturesUnavailable as exc:
            raise SkingenError(f"memorisation gate: {exc}; or gate in other feature spaces only, e.g. "
                               "--gate-features pixels:64") from None
        out.append(ex)
    return out


def run_gate(folder: Path, rows: list[dict[str, str]], real: Path, train: str | None = None,
             cfg: GateConfig = GateConfig(), extractors: list | None = None, cache=None,
             progress: Callable[[int, int], None] | None = None) -> GateResult:
    """Gate one synthetic set (module docstring). ``extractors``: loaded feature extractors to reuse across
    sets (default: made from ``cfg.features``). Raises on a near-copy of a val/test image."""
    from skingen.eval.memorisation import memorisation
    from skingen.imageio import image_size

    synth = from_rows(folder.name, folder, rows)
    refs = training_reference(folder, rows, train, real)
    held = [open_data(f"{real}:{s}") for s in ("val", "test") if _has_split(real, s)]
    extractors = extractors if extractors is not None else load_extractors(cfg)
    size = min(image_size(synth.paths[0])) if len(synth) else 64
    total = len(extractors) * (len(synth) + sum(map(len, refs)) + sum(map(len, held)))
    done = [0]

    def advance(n: int) -> None:
        done[0] += n
        if progress:
            progress(done[0], total)

    t_paths, t_ids, t_groups = _concat(refs)
    parent_group = _parent_groups(rows, t_ids, t_groups)
    h_paths, h_ids, h_groups = _concat(held)
    _refuse_transformed_copies(folder, synth, h_paths)
    flagged_by: dict[int, dict[str, str]] = {}
    for ex in extractors:
        fake = _features(synth, ex, size, cfg.batch, None, advance)
        held_feats = [_features(h, ex, size, cfg.batch, cache, advance) for h in held]
        if held_feats and len(set(h_groups)) >= 2:
            res = memorisation(fake, np.concatenate(held_feats), h_groups, cfg.ratio)
            hit = np.flatnonzero(res.ratio < cfg.ratio)
            if len(hit):
                i, j = int(hit[0]), int(res.nearest[hit[0]])
                raise SkingenError(f"{synth.paths[i]} is a near-copy of held-out image {h_paths[j]} "
                                   f"({ex.name} distance ratio {res.ratio[i]:.3f} < {cfg.ratio:.3f}); "
                                   f"{int(len(hit))} synthetic image(s) of {folder} copy val/test images: refusing "
                                   "them in any training set")
        train_feats = np.concatenate([_features(t, ex, size, cfg.batch, cache, advance) for t in refs])
        res = memorisation(fake, train_feats, t_groups, cfg.ratio)
        for i in np.flatnonzero(res.ratio < cfg.ratio):
            j = int(res.nearest[i])
            row = flagged_by.setdefault(int(i), {
                "set": folder.name, "id": synth.ids[i], "image": str(synth.paths[i]),
                "nearest_train_id": t_ids[j], "nearest_train_image": str(t_paths[j]), "own_parent": 1})
            row[f"ratio_{ex.name}"] = f"{res.ratio[i]:.4f}"
            if parent_group[i] != t_groups[j]:  # near a photo it was not made from (in any feature space)
                row["own_parent"] = 0
    near = [flagged_by[i] for i in sorted(flagged_by)]
    result = GateResult(folder.name, len(synth), [s.label for s in refs], [ex.describe() for ex in extractors],
                        [r for r in near if not r["own_parent"]], own_parent=[r for r in near if r["own_parent"]])
    if result.flagged:
        result.sheet = _sheet(result.flagged[:cfg.sheet_pairs], size)
    return result


def _parent_groups(rows: list[dict[str, str]], ref_ids: list[str], ref_groups: list[str]) -> list[str | None]:
    """Per synthetic row: the photo group of its ``parent_id`` among the reference images (None: no parent)."""
    group_of = dict(zip(ref_ids, ref_groups))
    return [group_of.get(r.get("parent_id") or "") for r in rows]


def _refuse_transformed_copies(folder: Path, synth: ImageSet, held: list[Path]) -> None:
    """A synthetic image that is a held-out image mirrored, turned, shifted by a few pixels or re-encoded is an
    error (:func:`skingen.data.neardup.transformed_copies`); the feature-space rule below misses those."""
    from skingen.data.neardup import transformed_copies
    from skingen.downstream.leaks import cached_fingerprints  # held-out pictures: fingerprinted once per process
    from skingen.imageio import read_image

    copies = transformed_copies([read_image(p) for p in synth.paths], [str(p) for p in synth.paths],
                                cached_fingerprints(held))
    if copies:
        mine, theirs = copies[0]
        count = len({m for m, _ in copies})
        raise SkingenError(f"{mine} is a near-copy of held-out image {theirs} (the same picture flipped, turned, "
                           f"shifted or re-encoded: perceptual hash and thumbnail); {count} synthetic image(s) of "
                           f"{folder} copy val/test images: refusing them in any training set")


def _has_split(real: Path, split: str) -> bool:
    from skingen.data.manifest import read_manifest

    return any(r.get("split") == split and r.get("origin", "") in ("", "real") for r in read_manifest(real))


def _sheet(rows: list[dict[str, str]], size: int) -> np.ndarray:
    """Each flagged synthetic image next to its nearest training image, captioned with the ratios."""
    from skingen.data.imagesets import square_resize
    from skingen.imageio import read_image
    from skingen.viz import contact_sheet

    tiles, captions = [], []
    for r in rows:
        ratios = " ".join(f"{k[6:]}={v}" for k, v in r.items() if k.startswith("ratio_"))
        tiles += [square_resize(read_image(r["image"]), size), square_resize(read_image(r["nearest_train_image"]), size)]
        captions += [f"{r['id']}\n{ratios}", f"train {r['nearest_train_id']}"]
    return contact_sheet(tiles, captions, columns=8, cell=max(96, min(size, 160)))


def gate_sets(sets: list, real: Path, train: str | None, allow_memorised: bool, cfg: GateConfig = GateConfig(),
              progress: Callable[..., None] | None = None) -> list[GateResult]:
    """Gate every :class:`~skingen.downstream.augment.SyntheticSet` of ``sets``; drops the near-copies of
    training images from each set's rows unless ``allow_memorised``."""
    from skingen.eval.cache import FeatureCache

    extractors, cache, results = load_extractors(cfg), FeatureCache(), []
    for s in sets:
        report = (lambda d, t, name=s.name: progress(d, t, f"memorisation gate: {name}")) if progress else None
        res = run_gate(Path(s.folder), s.rows, Path(real), train, cfg, extractors, cache, report)
        if not allow_memorised:
            s.rows = [r for r in s.rows if r["id"] not in res.flagged_ids]
        results.append(res)
    return results


def write_gate_outputs(out: Path, results: list[GateResult], allow_memorised: bool) -> dict[str, dict]:
    """``memorised.csv`` (every flagged image, also when none: the header shows the gate ran) and
    ``memorised.png`` into ``out``; returns per set ``{checked, flagged, dropped, kept, share, reference}``."""
    from skingen.imageio import write_image
    from skingen.runs import write_csv

    rows = [{**r, "kept": int(allow_memorised or r["own_parent"])} for res in results
            for r in res.flagged + res.own_parent]
    columns = ["set", "id", "image", "nearest_train_id", "nearest_train_image",
               *sorted({k for r in rows for k in r if k.startswith("ratio_")}), "own_parent", "kept"]
    write_csv(out / "memorised.csv", rows, columns)
    sheets = [res.sheet for res in results if res.sheet is not None]
    if sheets:
        width = max(s.shape[1] for s in sheets)
        write_image(out / "memorised.png", np.concatenate(
            [np.pad(s, ((0, 8), (0, width - s.shape[1]), (0, 0)), constant_values=255) for s in sheets]))
    return {res.set_name: {"checked": res.checked, "flagged": len(res.flagged),
                           "dropped": 0 if allow_memorised else len(res.flagged),
                           "kept": len(res.flagged) if allow_memorised else 0, "own_parent": len(res.own_parent),
                           "share": round(len(res.flagged) / res.checked, 4) if res.checked else 0.0,
                           "reference": res.reference, "features": [f.get("name") for f in res.features]}
            for res in results}


def describe_gate(counts: dict[str, dict], allow_memorised: bool, cfg: GateConfig) -> str:
    """One paragraph for the data sheet: what the gate found per set and what was done with it."""
    per_set = "; ".join(f"{name}: {c['flagged']} of {c['checked']} ({100 * c['share']:.1f}%) near-copies of "
                        f"training images, {c['kept'] if allow_memorised else c['dropped']} "
                        f"{'KEPT (--allow-memorised)' if allow_memorised else 'dropped'}"
                        + (f", and {c['own_parent']} near their own parent's photo (made from it: kept)"
                           if c.get("own_parent") else "")
                        for name, c in counts.items())
    return (f"Memorisation gate ({' + '.join(cfg.features)}; nearest training image closer than "
            f"{cfg.ratio:.2f} x the nearest other photo): {per_set or 'no synthetic set'}. "
            "No image is a near-copy of a val/test image (refused otherwise). Listed in memorised.csv / memorised.png.")
