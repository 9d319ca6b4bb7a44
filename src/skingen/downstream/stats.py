"""Classifier metrics and their 95% confidence intervals.

- :func:`wilson_interval`: the Wilson score interval of a proportion (per-class recall, accuracy within
  a skin-tone group): well behaved for small counts and proportions near 0 or 1, unlike the normal one.
- :func:`bootstrap_metrics`: balanced accuracy, macro-F1 and macro one-vs-rest AUROC of one arm,
  averaged over its training seeds, with percentile 95% intervals from resampling the test images
  (with replacement) *and* the seeds, so the interval covers both test-set and training noise. Passing
  a second arm (``baseline``) gives the paired difference on the same resamples.

The metrics are computed here in vectorised NumPy over all resamples at once (confusion counts by
``bincount``, AUROC from average ranks, the Mann-Whitney form): a per-resample scikit-learn call was
~300x slower for 1000 resamples. ``tests/downstream/test_stats.py`` checks them against scikit-learn.
"""

from __future__ import annotations

import math

import numpy as np

METRICS = ("balanced_accuracy", "macro_f1", "auroc")


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for ``successes / n`` (95% by default); ``(nan, nan)`` when ``n == 0``."""
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def _confusions(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """``y, pred`` int ``[B,N]`` -> confusion counts ``[B,k,k]`` (row = true class)."""
    b = y.shape[0]
    flat = (np.arange(b)[:, None] * k * k + y * k + pred).ravel()
    return np.bincount(flat, minlength=b * k * k).reshape(b, k, k).astype(np.float64)


def balanced_accuracy(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """Mean recall over the classes present in each row of ``y [B,N]`` -> ``[B]`` (as scikit-learn)."""
    cm = _confusions(np.atleast_2d(y), np.atleast_2d(pred), k)
    support = cm.sum(2)
    recall = np.divide(np.diagonal(cm, axis1=1, axis2=2), support, out=np.zeros_like(support), where=support > 0)
    return recall.sum(1) / np.maximum((support > 0).sum(1), 1)


def macro_f1(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """Unweighted mean F1 over classes present in the truth or the predictions -> ``[B]``
    (scikit-learn's ``f1_score(average='macro')`` over the labels that occur; F1 = 0 when undefined)."""
    cm = _confusions(np.atleast_2d(y), np.atleast_2d(pred), k)
    tp = np.diagonal(cm, axis1=1, axis2=2)
    denom = cm.sum(2) + cm.sum(1)  # 2TP + FP + FN
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return f1.sum(1) / np.maximum((denom > 0).sum(1), 1)


def auroc(y: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Macro one-vs-rest AUROC: ``y [B,N]`` int, ``probs [B,N,k]`` -> ``[B]``; classes absent from a
    row (or present in all of it) are left out of that row's mean; NaN when none is left."""
    from scipy.stats import rankdata

    y, probs = np.atleast_2d(y), probs if probs.ndim == 3 else probs[None]
    k = probs.shape[-1]
    out = np.zeros(y.shape[0])
    used = np.zeros(y.shape[0])
    for c in range(k):
        pos = y == c
        n_pos = pos.sum(1)
        n_neg = y.shape[1] - n_pos
        ranks = rankdata(probs[..., c], axis=1)  # average ranks: ties count one half
        ok = (n_pos > 0) & (n_neg > 0)
        u = (ranks * pos).sum(1) - n_pos * (n_pos + 1) / 2
        out += np.where(ok, u / np.maximum(n_pos * n_neg, 1), 0.0)
        used += ok
    return np.where(used > 0, out / np.maximum(used, 1), np.nan)


def metric_values(y: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """All :data:`METRICS` for one test set: ``y [N]`` int, ``probs [N,k]`` class probabilities."""
    k = probs.shape[-1]
    pred = probs.argmax(-1)
    return {"balanced_accuracy": float(balanced_accuracy(y, pred, k)[0]), "macro_f1": float(macro_f1(y, pred, k)[0]),
            "auroc": float(auroc(y, probs)[0])}


def _resampled(y: np.ndarray, probs: np.ndarray, rows: np.ndarray, seeds: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics averaged over the resampled seeds: ``probs [S,N,k]``, ``rows [B,N]``, ``seeds [B,S']``."""
    k = probs.shape[-1]
    yb = y[rows]
    totals = {m: np.zeros(len(rows)) for m in METRICS}
    for j in range(seeds.shape[1]):
        pb = probs[seeds[:, j][:, None], rows]  # [B,N,k]
        pred = pb.argmax(-1)
        totals["balanced_accuracy"] += balanced_accuracy(yb, pred, k)
        totals["macro_f1"] += macro_f1(yb, pred, k)
        totals["auroc"] += auroc(yb, pb)
    return {m: v / seeds.shape[1] for m, v in totals.items()}


def bootstrap_metrics(y: np.ndarray, probs: np.ndarray, baseline: np.ndarray | None = None, n_boot: int = 1000,
                      seed: int = 0, level: float = 0.95) -> dict[str, dict[str, float]]:
    """Seed-averaged metrics of one arm with percentile intervals (module docstring).

    ``y``: int ``[N]`` true classes of the test images; ``probs``: ``[S,N,k]`` probabilities from ``S``
    training seeds. ``baseline`` (same shape, same seeds in the same order) adds ``delta_<metric>``: this
    arm minus the baseline, on the same resampled images and seeds (a paired difference).
    Returns ``{metric: {"value", "low", "high"}}``.
    """
    from skingen.seeding import numpy_rng

    probs = np.asarray(probs, np.float64)
    if probs.ndim == 2:
        probs = probs[None]
    s, n = probs.shape[:2]
    rng = numpy_rng(seed, "bootstrap")
    rows = rng.integers(0, n, size=(n_boot, n))
    seeds = rng.integers(0, s, size=(n_boot, s)) if s > 1 else np.zeros((n_boot, 1), int)
    full = _resampled(y, probs, np.arange(n)[None], np.arange(s)[None])
    boot = _resampled(y, probs, rows, seeds)
    tail = (1 - level) / 2 * 100
    out = {}
    for m in METRICS:
        low, high = np.nanpercentile(boot[m], [tail, 100 - tail]) if np.isfinite(boot[m]).any() else (np.nan, np.nan)
        out[m] = {"value": float(full[m][0]), "low": float(low), "high": float(high)}
    if baseline is not None:
        base = np.asarray(baseline, np.float64)
        base = base[None] if base.ndim == 2 else base
        if base.shape != probs.shape:
            raise ValueError(f"baseline probabilities {base.shape} differ from the arm's {probs.shape}")
        full_b = _resampled(y, base, np.arange(n)[None], np.arange(s)[None])
        boot_b = _resampled(y, base, rows, seeds)
        for m in METRICS:
            d = boot[m] - boot_b[m]
            low, high = np.nanpercentile(d, [tail, 100 - tail]) if np.isfinite(d).any() else (np.nan, np.nan)
            out[f"delta_{m}"] = {"value": float(full[m][0] - full_b[m][0]), "low": float(low), "high": float(high)}
    return out
