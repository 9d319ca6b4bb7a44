"""Statistics of a rating study (used by :mod:`skingen.rating.report`).

- :func:`proportion`: a share with its Wilson 95% interval and an exact binomial test against 50%.
- :func:`mean_interval`: a mean rating with a Student-t interval, clipped to the scale.
- :func:`cluster_interval`: a 95% interval that respects who answered what (resampling raters *and*
  images), for the same share or mean.
- :func:`krippendorff_alpha`: agreement between raters, with missing answers.

Why :func:`cluster_interval` besides the textbook intervals: answers are not independent. One rater
says *real* more often or is a better judge than another, and one image is harder than another, so
answers of the same rater (or about the same image) are correlated, and the Wilson and t intervals,
which count every answer as independent, are too narrow. ``bench/rate_stats.py`` measures by simulation
how often each interval covers the true value when raters and images differ.
"""

from __future__ import annotations

import math

import numpy as np

from skingen.downstream.stats import wilson_interval


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
    """Krippendorff's alpha of ``{unit: {rater: value}}`` at ``level`` (``nominal`` or ``ordinal``).

    Returns ``(alpha, note)``; alpha is ``None`` with the reason in ``note`` when no unit has two values
    (no two raters answered the same question) or when every value is the same (alpha is 0/0 then:
    no variation to agree about)."""
    import krippendorff

    raters = sorted({r for answers in units.values() for r in answers})
    pairable = [u for u, answers in units.items() if len(answers) >= 2]
    if len(raters) < 2 or not pairable:
        return None, "needs 2 raters who answered the same question"
    values = {v for u in pairable for v in units[u].values()}
    if len(values) < 2:
        return None, "every answer the same: alpha undefined (no variation)"
    matrix = np.full((len(raters), len(pairable)), np.nan)
    index = {r: i for i, r in enumerate(raters)}
    for j, u in enumerate(pairable):
        for r, v in units[u].items():
            matrix[index[r], j] = v
    alpha = krippendorff.alpha(reliability_data=matrix, level_of_measurement=level,
                               value_domain=sorted(values))
    return float(alpha), ""


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
