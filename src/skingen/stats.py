"""Statistics: classifier metrics, proportions, means and agreement, each with its 95% interval.

- :func:`wilson_interval`: the Wilson score interval of a proportion (per-class recall, accuracy within
  a skin-tone group, a share of answers): well behaved for small counts and proportions near 0 or 1.
- :func:`bootstrap_metrics`: balanced accuracy, macro-F1 and macro one-vs-rest AUROC of one arm,
  averaged over its training seeds, with percentile 95% intervals from resampling the test images
  (with replacement) *and* the seeds, so the interval covers both test-set and training noise. Passing
  a second arm (``baseline``) gives the paired difference on the same resamples.
- :func:`paired_accuracy_delta`: the same paired difference for plain accuracy on a subgroup of test images
  (e.g. the dark-skin test group), from per-seed right/wrong.
- :func:`proportion`, :func:`mean_interval`, :func:`cluster_interval`, :func:`krippendorff_alpha`: the
  statistics of a rating study (:mod:`skingen.rating.results`).

The classifier metrics are computed here in vectorised NumPy over all resamples at once (confusion counts
by ``bincount``, AUROC from average ranks, the Mann-Whitney form): a per-resample scikit-learn call was
~300x slower for 1000 resamples. ``tests/test_stats.py`` checks them against scikit-learn.

Why :func:`cluster_interval` besides the textbook intervals: answers in a rating study are not independent.
One rater says *real* more often or is a better judge than another, and one image is harder than another,
so answers of the same rater (or about the same image) are correlated, and the Wilson and t intervals,
which count every answer as independent, are too narrow. ``bench/rate_stats.py`` measures by simulation
how often each interval covers the true value when raters and images differ.
"""

from __future__ import annotations

import math

import numpy as np

METRICS = ("balanced_accuracy", "macro_f1", "auroc")


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``successes / n`` (scipy's); ``(nan, nan)`` when ``n == 0``."""
    from scipy.stats import binomtest

    if n == 0:
        return math.nan, math.nan
    ci = binomtest(successes, n).proportion_ci(confidence, method="wilson")
    return max(0.0, float(ci.low)), min(1.0, float(ci.high))


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


def paired_accuracy_delta(correct: np.ndarray, baseline: np.ndarray, n_boot: int = 1000, seed: int = 0,
                          level: float = 0.95) -> tuple[float, float, float]:
    """Accuracy of one arm minus a baseline's on the same test images, with a percentile interval.

    ``correct``, ``baseline``: ``[S,N]`` 0/1 (right / wrong) of ``S`` training seeds on ``N`` test images,
    seeds in the same order. The test images and the seeds are resampled together for both arms (as in
    :func:`bootstrap_metrics`), so the interval is of the paired difference. -> (difference, low, high);
    NaNs when ``N`` is 0."""
    from skingen.seeding import numpy_rng

    a, b = np.asarray(correct, np.float64), np.asarray(baseline, np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"correct {a.shape} and baseline {b.shape} must both be [seeds, images]")
    s, n = a.shape
    if n == 0:
        return math.nan, math.nan, math.nan
    rng = numpy_rng(seed, "paired-accuracy")
    rows = rng.integers(0, n, size=(n_boot, 1, n))
    seeds = rng.integers(0, s, size=(n_boot, s, 1))
    d = (a[seeds, rows] - b[seeds, rows]).mean(axis=(1, 2))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(d, [tail, 100 - tail])
    return float(a.mean() - b.mean()), float(low), float(high)


def proportion(k: int, n: int, test: bool = True) -> dict:
    """``k`` of ``n`` -> ``{n, k, value, ci_low, ci_high, p_value}``: the share with its Wilson 95% interval
    and (``test``) the two-sided exact binomial p-value against 50%; ``None`` where ``n == 0``."""
    from scipy.stats import binomtest

    if n == 0:
        return {"n": 0, "k": 0, "value": None, "ci_low": None, "ci_high": None, "p_value": None}
    low, high = wilson_interval(k, n)
    return {"n": n, "k": k, "value": k / n, "ci_low": low, "ci_high": high,
            "p_value": float(binomtest(k, n, 0.5).pvalue) if test else None}


def mean_interval(values: list[float], level: float = 0.95, bounds: tuple[float, float] | None = None) -> dict:
    """Mean of ``values`` with a Student-t interval (``mean ± t[n-1] · sd / √n``, sd with ``ddof=1``), clipped
    to ``bounds`` (the rating scale: a mean of 1-5 ratings cannot leave it, a t-interval on few answers can).

    Why a t-interval over answers and not a bootstrap over raters (the cluster that matters): studies
    have few raters (3-10), and with 3 raters a bootstrap has only 10 distinct resamples, so its
    percentile interval is coarse and unstable; a t-interval over rater means (2 degrees of freedom)
    would be honest but very wide. The t-interval over answers is narrower than the truth when raters
    differ in leniency; the per-rater table shows each rater's means. ``None`` bounds for ``n < 2``.
    """
    from scipy.stats import t

    x = np.asarray(values, np.float64)
    n = len(x)
    if n == 0:
        return {"n": 0, "value": None, "ci_low": None, "ci_high": None}
    mean = float(x.mean())
    if n < 2:
        return {"n": n, "value": mean, "ci_low": None, "ci_high": None}
    half = float(t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return {"n": n, "value": mean, "ci_low": low, "ci_high": high}


def krippendorff_alpha(units: dict[object, dict[str, float]], level: str) -> tuple[float | None, str]:
    """Krippendorff's alpha of ``{unit: {rater: value}}`` at ``level`` (``nominal`` or ``ordinal``), raters who
    skipped a unit allowed (Krippendorff 2011, "Computing Krippendorff's alpha-reliability": the coincidence
    matrix, then 1 - observed / expected disagreement; the ordinal metric over the observed values' ranks).

    Returns ``(alpha, note)``; alpha is ``None`` with the reason in ``note`` when no unit has two values
    (no two raters answered the same question) or when every value is the same (alpha is 0/0 then:
    no variation to agree about). Written here because the ``krippendorff`` package is GPL-3.0 (skingen is MIT);
    tests hold it to the paper's worked example."""
    if level not in ("nominal", "ordinal"):
        raise ValueError(f"level must be nominal or ordinal, got {level!r}")
    raters = sorted({r for answers in units.values() for r in answers})
    pairable = [u for u, answers in units.items() if len(answers) >= 2]
    if len(raters) < 2 or not pairable:
        return None, "needs 2 raters who answered the same question"
    values = sorted({v for u in pairable for v in units[u].values()})
    if len(values) < 2:
        return None, "every answer the same: alpha undefined (no variation)"
    index = {v: i for i, v in enumerate(values)}
    coincidences = np.zeros((len(values), len(values)))
    for u in pairable:  # every ordered pair of one unit's values, weighted 1 / (m_u - 1)
        counts = np.bincount([index[v] for v in units[u].values()], minlength=len(values)).astype(float)
        coincidences += (np.outer(counts, counts) - np.diag(counts)) / (counts.sum() - 1)
    n_c = coincidences.sum(1)
    n = n_c.sum()
    if level == "nominal":
        delta = 1.0 - np.eye(len(values))
    else:  # squared distance in cumulative counts between the two ranks, half of each end category
        cum = np.concatenate([[0.0], np.cumsum(n_c)])
        lo, hi = np.minimum.outer(np.arange(len(values)), np.arange(len(values))), \
            np.maximum.outer(np.arange(len(values)), np.arange(len(values)))
        delta = (cum[hi + 1] - cum[lo] - (n_c[lo] + n_c[hi]) / 2) ** 2
    observed = (coincidences * delta).sum() / n
    expected = (np.outer(n_c, n_c) * delta).sum() / (n * (n - 1))
    return float(1.0 - observed / expected), ""


def cluster_interval(values, raters, units, level: float = 0.95, n_boot: int = 2000,
                     seed: int = 0) -> tuple[float | None, float | None]:
    """Percentile interval of the mean of ``values`` (0/1 for a share, 1-5 for ratings), one per answer,
    by a crossed ("pigeonhole", Owen 2007) bootstrap: each resample draws the raters with replacement and,
    independently, the units (questions: an image, or a pair) with replacement, and weights every answer
    by (times its rater was drawn) x (times its unit was drawn). This keeps the correlation of answers by
    the same rater and about the same image, which the Wilson / t intervals ignore; it is known to be
    slightly conservative. ``(None, None)`` with fewer than 2 raters (no rater-to-rater spread to resample)
    or no answers. Deterministic for a given ``seed``.

    Written here because no maintained library offers a crossed two-way bootstrap (scipy.stats.bootstrap
    resamples one axis of independent observations).
    """
    y = np.asarray(values, np.float64)
    if len(y) == 0:
        return None, None
    r = np.unique(np.asarray(raters, dtype=object).astype(str), return_inverse=True)[1]
    u = np.unique(np.asarray(units, dtype=object).astype(str), return_inverse=True)[1]
    n_r, n_u = int(r.max()) + 1, int(u.max()) + 1
    if n_r < 2:
        return None, None
    rng = np.random.default_rng(seed)
    stats = []
    for start in range(0, n_boot, 256):  # chunks keep the [resamples, answers] weights small
        b = min(256, n_boot - start)
        w = (rng.multinomial(n_r, np.full(n_r, 1 / n_r), size=b)[:, r]
             * rng.multinomial(n_u, np.full(n_u, 1 / n_u), size=b)[:, u]).astype(np.float64)
        total = w.sum(1)
        stats.append((w @ y)[total > 0] / total[total > 0])
    stats = np.concatenate(stats)
    low, high = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)
