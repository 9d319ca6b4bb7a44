"""Matplotlib figures of ``skingen analyze``, each returned as ``uint8 [H,W,3]`` for an HTML report.

Figures are drawn on ``matplotlib.figure.Figure`` objects (no pyplot state, no display needed).
"""

from __future__ import annotations

import math

import numpy as np

from skingen.analysis.colour import GaussianComponent
from skingen.data.skintone import ITA_CATEGORIES, UNKNOWN
from skingen.viz import figure_to_image

CHANNELS = (("red", "#c0392b"), ("green", "#27ae60"), ("blue", "#2e6fd0"))
# One colour per ITA category, light to dark, close to the skin tones they name.
ITA_COLOURS = ("#f6e0cf", "#ecc7a8", "#d7a27a", "#b67a4f", "#80522f", "#4a2f1c")


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _normal_pdf(x: np.ndarray, c: GaussianComponent) -> np.ndarray:
    return c.weight * np.exp(-0.5 * ((x - c.mean) / c.std) ** 2) / (c.std * math.sqrt(2 * math.pi))


def channel_histograms(hist: np.ndarray, mixtures: list[list[GaussianComponent]], title: str) -> np.ndarray:
    """Three panels (R, G, B): share of pixels per 8-bit value, the 3 fitted Gaussians (dashed) and their sum."""
    fig = _figure(11, 3.0)
    axes = fig.subplots(1, 3, sharey=True)
    x = np.arange(256)
    for ax, counts, comps, (name, colour) in zip(axes, hist, mixtures, CHANNELS):
        density = counts / max(counts.sum(), 1)
        ax.fill_between(x, density, step="mid", color=colour, alpha=0.35, linewidth=0)
        total = np.zeros(256)
        for c in comps:
            pdf = _normal_pdf(x.astype(float), c)
            total += pdf
            ax.plot(x, pdf, "--", color="0.35", linewidth=1)
        ax.plot(x, total, color="black", linewidth=1.3)
        means = ", ".join(f"{c.mean:.0f}" for c in comps)
        ax.set_title(f"{name}: Gaussian means {means}", fontsize=10)
        ax.set_xlim(0, 255)
        ax.set_xlabel(f"{name} value (0-255)")
    axes[0].set_ylabel("share of pixels")
    fig.suptitle(title, fontsize=11)
    return figure_to_image(fig)


def value_distribution(values: np.ndarray, bounds: tuple[float, float], xlabel: str, title: str,
                       sides: tuple[str, ...] = ("low", "high")) -> np.ndarray:
    """Histogram of one value per image, with the outlier limits drawn and the flagged images in red."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    lo, hi = bounds
    fig = _figure(7, 2.8)
    ax = fig.subplots()
    edges = np.histogram_bin_edges(v, bins=min(60, max(10, len(v) // 4))) if len(v) else np.linspace(0, 1, 11)
    flagged = np.zeros(len(v), bool)
    if "low" in sides:
        flagged |= v < lo
    if "high" in sides:
        flagged |= v > hi
    ax.hist(v[~flagged], bins=edges, color="0.55", label=f"typical ({int((~flagged).sum())})")
    if flagged.any():
        ax.hist(v[flagged], bins=edges, color="#c0392b", label=f"outliers ({int(flagged.sum())})")
    for side, limit in (("low", lo), ("high", hi)):
        if side in sides and math.isfinite(limit) and len(v) and v.min() - 0.1 * np.ptp(v) <= limit <= v.max() + 0.1 * np.ptp(v):
            ax.axvline(limit, color="#c0392b", linestyle="--", linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("images")
    ax.set_title(title, fontsize=11)
    ax.legend(fontsize=9)
    return figure_to_image(fig)


def ita_distribution(itas: np.ndarray, counts: dict[str, int]) -> np.ndarray:
    """Left: ITA histogram over coloured category bands; right: images per category (plus 'unknown')."""
    v = np.asarray(itas, dtype=float)
    v = v[~np.isnan(v)]
    fig = _figure(11, 3.4)
    left, right = fig.subplots(1, 2, width_ratios=(1.6, 1))
    lo_edge = min(-60.0, math.floor(v.min() / 5) * 5) if len(v) else -60.0
    hi_edge = max(80.0, math.ceil(v.max() / 5) * 5) if len(v) else 80.0
    bounds = [hi_edge] + [b for b, _, _ in ITA_CATEGORIES[:-1]] + [lo_edge]
    for (upper, lower), colour, (_, name, _) in zip(zip(bounds[:-1], bounds[1:]), ITA_COLOURS, ITA_CATEGORIES):
        left.axvspan(lower, upper, color=colour, alpha=0.5, linewidth=0)
        left.text((lower + upper) / 2, 0.98, name, transform=left.get_xaxis_transform(), ha="center",
                  va="top", rotation=90, fontsize=8, color="0.15")
    left.hist(v, bins=np.arange(lo_edge, hi_edge + 5, 5), color="#1f4e79", alpha=0.85)
    left.margins(y=0.35)  # room for the category names above the bars
    left.set_xlim(lo_edge, hi_edge)
    left.set_xlabel("ITA (degrees) — higher is lighter skin")
    left.set_ylabel("images")
    names = [n for _, n, _ in ITA_CATEGORIES] + [UNKNOWN]
    colours = list(ITA_COLOURS) + ["#bbbbbb"]
    heights = [counts.get(n, 0) for n in names]
    labels = [f"{n} ({f})" for (_, n, f) in ITA_CATEGORIES] + [UNKNOWN]
    bars = right.barh(labels[::-1], heights[::-1], color=colours[::-1], edgecolor="0.3")
    right.bar_label(bars, fontsize=8, padding=2)
    right.set_xlabel("images")
    right.set_title("category (approx. Fitzpatrick type)", fontsize=10)
    right.set_xlim(0, max(heights + [1]) * 1.18)
    return figure_to_image(fig)


def autoencoder_curves(epoch_losses: list[float], errors: np.ndarray) -> np.ndarray:
    """Left: training loss per epoch (log scale); right: histogram of per-image reconstruction errors."""
    fig = _figure(10, 2.8)
    left, right = fig.subplots(1, 2)
    left.plot(np.arange(1, len(epoch_losses) + 1), epoch_losses, marker=".", color="0.2")
    left.set_yscale("log")
    left.set_xlabel("epoch")
    left.set_ylabel("mean squared error")
    left.set_title("training loss", fontsize=10)
    right.hist(np.asarray(errors, dtype=float), bins=min(50, max(10, len(errors) // 4)), color="0.45")
    right.set_xlabel("reconstruction error per image (higher = harder)")
    right.set_ylabel("images")
    right.set_title("difficulty", fontsize=10)
    return figure_to_image(fig)
