"""``augment --filter``: keep the synthetic images that look most real, or most like their own class.

- ``critic:KEEP`` (0 < KEEP <= 1): the critic of :mod:`skingen.eval.c2st` (a classifier two-sample test)
  is fitted on each synthetic set against the real **train** images of the same label, with grouped folds (a
  synthetic image is held out together with its parent photo); each image's out-of-fold P(synthetic) is
  its score, and the fraction KEEP with the lowest scores (the most real-looking) is kept.
- ``label:P`` (0 <= P <= 1): a real-only probe (standardised, class-balanced L2 logistic regression, C by
  grouped CV on the train photos) is fitted on the real **train** images of every class; a synthetic image is
  kept when it gives the image's own label a probability >= P.

Only the real data's train rows are ever opened (val and test images are not read, not even their files),
and the result depends only on the inputs and the seed. Features: one evaluate feature space
(``efficientnet-lite0`` by default: ~10x cheaper than Inception), at the real train images' size, through the
evaluate feature cache.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skingen.errors import SkingenError

FILTERS = ("critic", "label")


@dataclass(frozen=True)
class FilterSpec:
    kind: str  # critic | label
    value: float  # critic: the fraction kept; label: the least probability of the own label
    features: str = "efficientnet-lite0"

    def describe(self) -> str:
        what = (f"kept the {self.value:g} of each set that the critic (C2ST, {self.features} features, fitted against "
                "the real train split) found most real" if self.kind == "critic" else
                f"kept images that a real-only probe ({self.features} features, train split) gives their own label "
                f"with probability >= {self.value:g}")
        return f"--filter {self.kind}:{self.value:g}: {what}"


def parse_filter(text: str, features: str = "efficientnet-lite0") -> FilterSpec:
    """``critic:KEEP`` or ``label:P`` -> :class:`FilterSpec` (one-line error otherwise)."""
    kind, sep, value = str(text).partition(":")
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if kind not in FILTERS or not sep:
        raise SkingenError(f"--filter must be critic:KEEP or label:P, got '{text}'")
    if kind == "critic" and not 0 < number <= 1:
        raise SkingenError(f"--filter critic:KEEP keeps a fraction 0 < KEEP <= 1 of each set, got '{value}'")
    if kind == "label" and not 0 <= number <= 1:
        raise SkingenError(f"--filter label:P needs a probability 0 <= P <= 1, got '{value}'")
    return FilterSpec(kind, number, features)


def _rows_set(name: str, folder: Path, rows: list[dict]):
    from skingen.data.imagesets import from_rows
    from skingen.data.manifest import manifest_sha256

    key = json.dumps([str(folder.resolve()), manifest_sha256(folder), [r["id"] for r in rows]])
    return from_rows(name, folder, rows, fingerprint="rows:" + hashlib.sha256(key.encode()).hexdigest())


def filter_sets(sets: list, real: Path, real_rows: list[dict[str, str]], spec: FilterSpec, seed: int = 0,
                cache=None) -> list[dict]:
    """Score every image of each :class:`~skingen.downstream.augment.SyntheticSet` in ``sets``, keep those that
    pass (``set.rows`` shrinks; kept rows get ``filter_score``), and return one row per image for
    ``filtered.csv``: set, id, label, filter, score, rank (1 = most real / most its label), kept."""
    from skingen.eval.cache import cached_features
    from skingen.eval.features import make_extractor

    train_rows = [r for r in real_rows if r["split"] == "train"]  # the only real rows this function reads
    if not train_rows:
        raise SkingenError(f"--filter needs real train images; {real} has none")
    train = _rows_set("train", Path(real), train_rows)
    w, h = train.sizes()[0]
    size = min(w, h)
    extractor = make_extractor(spec.features)
    extractor.load()
    train_feats = cached_features(train, extractor, size, cache)
    out = []
    for s in sets:
        feats = cached_features(_rows_set(s.name, Path(s.folder), s.rows), extractor, size, cache)
        scores = (_critic_scores(train_rows, train_feats, s.rows, feats, seed) if spec.kind == "critic" else
                  _label_scores(train_rows, train_feats, s.rows, feats, seed))
        kept = _kept(s.rows, scores, spec)
        rank = _ranks(s.rows, scores, spec.kind)
        for r, sc, k, rk in zip(s.rows, scores, kept, rank):
            out.append({"set": s.name, "id": r["id"], "label": r["label"], "filter": f"{spec.kind}:{spec.value:g}",
                        "features": spec.features, "score": round(float(sc), 6), "rank": int(rk), "kept": int(k)})
        s.rows = [{**r, "filter_score": f"{sc:.6f}"} for r, sc, k in zip(s.rows, scores, kept) if k]
    return out


def _by_label(rows: list[dict]) -> dict[str, np.ndarray]:
    labels: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        labels.setdefault(r["label"], []).append(i)
    return {k: np.array(v) for k, v in labels.items()}


def _critic_scores(train_rows, train_feats, rows, feats, seed: int) -> np.ndarray:
    """Out-of-fold P(synthetic) of each synthetic image, against the real train images of its label."""
    from skingen.eval.c2st import C2stConfig, c2st, groups_of_rows

    real_by, scores = _by_label(train_rows), np.zeros(len(rows))
    for label, idx in _by_label(rows).items():
        if label not in real_by:
            raise SkingenError(f"--filter critic: no real train images of label '{label}' to compare with")
        ridx = real_by[label]
        sub = [rows[i] for i in idx]
        res = c2st(train_feats[ridx], feats[idx], groups_of_rows([train_rows[i] for i in ridx],
                                                                  [train_rows[i]["id"] for i in ridx]),
                   groups_of_rows(sub, [r["id"] for r in sub]), C2stConfig(n_boot=0), seed)
        scores[idx] = res.scores[len(ridx):]
    return scores


def _label_scores(train_rows, train_feats, rows, feats, seed: int) -> np.ndarray:
    """Probability of each synthetic image's own label under a probe fitted on the real train images."""
    from skingen.eval.c2st import fit_grouped, photo_groups

    classes = sorted({r["label"] for r in train_rows})
    y = np.array([classes.index(r["label"]) for r in train_rows])
    groups = photo_groups([r["id"] for r in train_rows], [r.get("source_id") or "" for r in train_rows],
                          [r.get("parent_id") or "" for r in train_rows])
    model, _ = fit_grouped(train_feats.astype(np.float64), y, groups, seed=seed)
    p = np.zeros((len(rows), len(classes)))
    p[:, model.classes_] = model.predict_proba(feats.astype(np.float64))
    return np.array([p[i, classes.index(r["label"])] for i, r in enumerate(rows)])


def _ranks(rows: list[dict], scores: np.ndarray, kind: str) -> np.ndarray:
    """1 = best within the image's label: lowest P(synthetic) for the critic, highest P(label); ties by id."""
    rank = np.zeros(len(rows), int)
    for idx in _by_label(rows).values():
        key = scores[idx] if kind == "critic" else -scores[idx]
        order = sorted(range(len(idx)), key=lambda j: (key[j], rows[idx[j]]["id"]))
        rank[idx[order]] = np.arange(1, len(idx) + 1)
    return rank


def _kept(rows: list[dict], scores: np.ndarray, spec: FilterSpec) -> np.ndarray:
    if spec.kind == "label":
        return scores >= spec.value
    rank = _ranks(rows, scores, "critic")
    keep = np.zeros(len(rows), bool)
    for idx in _by_label(rows).values():
        keep[idx] = rank[idx] <= max(1, int(round(spec.value * len(idx))))
    return keep


def describe_filter(spec: FilterSpec | None, rows: list[dict]) -> str:
    """One line for the data sheet: the rule and, per set, how many images it kept."""
    if spec is None:
        return "none"
    per: dict[str, list[int]] = {}
    for r in rows:
        per.setdefault(r["set"], []).append(r["kept"])
    return spec.describe() + "; " + "; ".join(f"{name}: kept {sum(k)} of {len(k)}" for name, k in per.items()) + \
        " (every image with its score in filtered.csv)"
