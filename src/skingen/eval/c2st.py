"""The critic: a classifier two-sample test (C2ST; Lopez-Paz & Oquab, ICLR 2017) of synthetic vs real images.

A logistic regression learns to tell a synthetic set from real crops on frozen features (``float [N,D]``
from the evaluate feature spaces and cache); its out-of-fold AUROC is the measure: 0.5 = it cannot tell them
apart, 1 = it always can. Every image's out-of-fold P(synthetic) is its *realism score* (low = looks real),
which ``augment --filter critic:KEEP`` ranks by.

Soundness rules:

- **Grouped folds.** Crops of one photo are near-copies in feature space, and a synthetic image is a near-copy
  of its parent crop: a classifier that saw a photo in training recognises it in the held-out fold. Images are
  put into one group when they share a photo (``source_id``) or a parent (``parent_id``, the parent crop's
  id; a synthetic image's group is joined with its parent photo's real crops): :func:`photo_groups`, a union of
  both. scikit-learn's ``StratifiedGroupKFold`` keeps each group in one fold.
- **Class balance.** The classes are weighted by inverse frequency in the fit (``class_weight='balanced'``),
  accuracy is the balanced accuracy at P = 0.5, and AUROC does not depend on the class ratio.
- **Regularisation.** Standardised features, then an L2 penalty (``C`` chosen on the training folds by an inner
  grouped CV from :data:`C_GRID`, or the single value given), optionally after a PCA fitted on the training folds.
- **Repeats.** The group-to-fold assignment is drawn ``repeats`` times (seeded); each image's score is the
  mean of its out-of-fold scores, AUROC the mean over repeats.
- **Interval.** 95% percentile bootstrap over groups (photos), not images.

The floor is never assumed to be 0.5: ``evaluate`` measures real vs real (another split against the reference,
at the synthetic set's N) with the same function, and prints it next to every set. On the measles crops no
setting (folds, C, repeats, class balance) moved it systematically; its spread is set by the number of photos
(docs/critic.md, ``bench/c2st_real.py``).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Annotated, Sequence

import numpy as np

from skingen.config import Range, check_fields
from skingen.errors import SkingenError
from skingen.seeding import numpy_rng

C_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


@dataclass(frozen=True)
class C2stConfig:
    features: str = "inception"  # the evaluate feature space the critic reads (must be one of --features)
    folds: Annotated[int, Range(2, 20)] = 2  # 5x2 CV: as sound as 5-fold on simulated nulls (docs/critic.md), half the fits
    repeats: Annotated[int, Range(1, 100)] = 5  # shuffles of the group-to-fold assignment
    c: Annotated[float, Range(0, 1e6)] = 0.0  # inverse L2 strength; 0 = chosen by inner grouped CV from C_GRID
    inner_folds: Annotated[int, Range(2, 10)] = 3
    pca: Annotated[int, Range(0, 4096)] = 0  # keep this many principal components (fitted on training folds); 0 = none
    n_boot: Annotated[int, Range(0, 100_000)] = 1000  # group bootstrap draws for the 95% interval (0 = none)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class C2stResult:
    """``scores float [n_real + n_fake]``: mean out-of-fold P(synthetic), real images first."""

    auroc: float
    auroc_ci: tuple[float, float]
    accuracy: float  # balanced accuracy at P = 0.5
    accuracy_ci: tuple[float, float]
    auroc_repeats: list[float]
    scores: np.ndarray
    labels: np.ndarray  # 0 = real, 1 = synthetic
    groups: np.ndarray  # int group of each image (photo-and-parent union)
    n_real: int
    n_fake: int
    n_groups: int
    c_chosen: list[float]
    seconds: float

    def record(self) -> dict:
        return {"auroc": self.auroc, "auroc_ci": list(self.auroc_ci), "accuracy": self.accuracy,
                "accuracy_ci": list(self.accuracy_ci), "auroc_repeats": self.auroc_repeats, "n_real": self.n_real,
                "n_fake": self.n_fake, "groups": self.n_groups,
                "c_median": float(np.median(self.c_chosen)), "seconds": round(self.seconds, 3)}


def photo_groups(ids: Sequence[str], sources: Sequence[str], parents: Sequence[str]) -> np.ndarray:
    """``int [N]`` group of each image: images sharing a ``source_id``, or linked by ``parent_id`` -> ``id``
    (an image and its parent), are in one group, transitively (union-find). Empty strings link nothing."""
    parent_of: dict[str, str] = {}

    def find(x: str) -> str:
        root = x
        while parent_of.setdefault(root, root) != root:
            root = parent_of[root]
        while parent_of[x] != root:  # path compression
            parent_of[x], x = root, parent_of[x]
        return root

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent_of[max(ra, rb)] = min(ra, rb)

    for i, (img, src, par) in enumerate(zip(ids, sources, parents)):
        node = f"row:{i}"
        find(node)
        for token in (f"id:{img}" if img else "", f"src:{src}" if src else "", f"id:{par}" if par else ""):
            if token:
                union(node, token)
    roots = [find(f"row:{i}") for i in range(len(ids))]
    return np.unique(roots, return_inverse=True)[1].astype(np.int64)


def groups_of_rows(rows: Sequence[dict], ids: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """(ids, source_ids, parent_ids) of manifest rows (``''`` where a column is missing)."""
    return list(ids), [r.get("source_id") or "" for r in rows], [r.get("parent_id") or "" for r in rows]


def _transform(x: np.ndarray, pca: int):
    """Standardiser (and, ``pca`` > 0, that many principal components) fitted on ``x [n,D]``."""
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if not pca:
        return make_pipeline(StandardScaler()).fit(x)
    return make_pipeline(StandardScaler(), PCA(min(pca, len(x) - 1, x.shape[1]), random_state=0)).fit(x)


def _path_fits(z: np.ndarray, y: np.ndarray, cs):
    """Class-balanced L2 logistic regressions on ``z`` for each C in ascending ``cs``, warm-started along the path."""
    import copy

    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(class_weight="balanced", max_iter=300, warm_start=True)
    for c in cs:
        model = copy.deepcopy(model).set_params(C=c).fit(z, y)
        yield c, model


def fit_grouped(x: np.ndarray, y: np.ndarray, groups: np.ndarray, c: float = 0.0, pca: int = 0, inner_folds: int = 3,
                seed: int = 0):
    """Standardise (and PCA, :func:`_transform`), class-balanced L2 logistic regression on ``x float [N,D]``,
    ``y int [N]``; returns the fitted scikit-learn pipeline and its C. ``c`` = 0: C from :data:`C_GRID` by an
    inner grouped CV on these rows only (AUROC for two classes, log-likelihood of the true class for more;
    ties: the stronger penalty)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.pipeline import Pipeline

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if not c:
            inner = StratifiedGroupKFold(max(2, min(inner_folds, _most_folds(y, groups))), shuffle=True,
                                         random_state=seed)
            p = {cand: np.zeros((len(y), int(y.max()) + 1)) for cand in C_GRID}
            for tr, te in inner.split(x, y, groups):
                t = _transform(x[tr], pca)
                zte = t.transform(x[te])
                for cand, m in _path_fits(t.transform(x[tr]), y[tr], sorted(C_GRID)):
                    p[cand][np.ix_(te, m.classes_)] = m.predict_proba(zte)
            c = -max((_score(y, p[cand]), -cand) for cand in C_GRID)[1]
        t = _transform(x, pca)
        _, model = next(_path_fits(t.transform(x), y, [c]))
        return Pipeline(t.steps + [("logisticregression", model)]), c


def _score(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if p.shape[1] == 2:
        return float(roc_auc_score(y, p[:, 1]))
    return float(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean())


def _most_folds(y: np.ndarray, groups: np.ndarray) -> int:
    """Folds possible when each holds at least one group of each class."""
    return int(min(len(np.unique(groups[y == k])) for k in np.unique(y)))


def _balanced_accuracy(y: np.ndarray, s: np.ndarray) -> float:
    pred = s >= 0.5
    return float(0.5 * (pred[y == 1].mean() + (~pred[y == 0]).mean()))


def _group_bootstrap(y: np.ndarray, s: np.ndarray, groups: np.ndarray, n_boot: int, seed: int):
    """95% percentile intervals of (AUROC, balanced accuracy), resampling groups with replacement."""
    from sklearn.metrics import roc_auc_score

    if not n_boot:
        return (float("nan"),) * 2, (float("nan"),) * 2
    rng = numpy_rng(seed, "c2st-bootstrap")
    uniq = np.unique(groups)
    members = [np.flatnonzero(groups == g) for g in uniq]
    aucs, accs = [], []
    for _ in range(n_boot):
        idx = np.concatenate([members[i] for i in rng.integers(0, len(uniq), len(uniq))])
        yb = y[idx]
        if yb.min() == yb.max():
            continue
        aucs.append(roc_auc_score(yb, s[idx]))
        accs.append(_balanced_accuracy(yb, s[idx]))
    return _interval(aucs), _interval(accs)


def _interval(values: list[float]) -> tuple[float, float]:
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def outer_folds(y: np.ndarray, groups: np.ndarray, folds: int, seed: int,
                repeat: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, held-out) index arrays of repeat ``repeat``: stratified by ``y``, every group in one fold."""
    from sklearn.model_selection import StratifiedGroupKFold

    split = StratifiedGroupKFold(folds, shuffle=True, random_state=int(numpy_rng(seed, "c2st", repeat).integers(2**31)))
    return list(split.split(np.zeros(len(y)), y, groups))


def c2st(real: np.ndarray, fake: np.ndarray, real_groups: tuple[Sequence[str], Sequence[str], Sequence[str]],
         fake_groups: tuple[Sequence[str], Sequence[str], Sequence[str]], cfg: C2stConfig = C2stConfig(),
         seed: int = 0) -> C2stResult:
    """Classifier two-sample test of ``fake float [M,D]`` against ``real float [N,D]`` (module docstring).

    ``*_groups``: (ids, source_ids, parent_ids) of each image (:func:`groups_of_rows`)."""
    from sklearn.metrics import roc_auc_score

    t0 = time.perf_counter()
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise SkingenError(f"c2st: features must be [N,D] of one D, got {real.shape} and {fake.shape}")
    x = np.concatenate([real, fake]).astype(np.float64)
    y = np.r_[np.zeros(len(real), int), np.ones(len(fake), int)]
    # a synthetic image's own id is its own name space (a plain folder's "0001" is not the real "0001"); its
    # parent_id still names a real image
    ids = list(real_groups[0]) + [f"synthetic:{i}" for i in fake_groups[0]]
    groups = photo_groups(ids, list(real_groups[1]) + list(fake_groups[1]), list(real_groups[2]) + list(fake_groups[2]))
    folds = min(cfg.folds, _most_folds(y, groups))
    if folds < 2:
        raise SkingenError(f"c2st needs at least 2 photo groups on each side, got {len(np.unique(groups[y == 0]))} "
                           f"real and {len(np.unique(groups[y == 1]))} synthetic (a synthetic image is grouped with "
                           "its parent photo)")
    scores = np.zeros((cfg.repeats, len(y)))
    cs = []
    for r in range(cfg.repeats):
        for k, (tr, te) in enumerate(outer_folds(y, groups, folds, seed, r)):
            model, c = fit_grouped(x[tr], y[tr], groups[tr], cfg.c, cfg.pca, cfg.inner_folds, seed + 1000 * r + k)
            scores[r, te] = model.predict_proba(x[te])[:, 1]
            cs.append(c)
    mean = scores.mean(0)
    aucs = [float(roc_auc_score(y, s)) for s in scores]
    auc_ci, acc_ci = _group_bootstrap(y, mean, groups, cfg.n_boot, seed)
    return C2stResult(float(np.mean(aucs)), auc_ci, float(np.mean([_balanced_accuracy(y, s) for s in scores])), acc_ci,
                      aucs, mean, y, groups, len(real), len(fake), len(np.unique(groups)), cs,
                      time.perf_counter() - t0)
