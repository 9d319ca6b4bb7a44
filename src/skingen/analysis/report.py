"""``skingen analyze``: a prepared data folder -> a colour / skin-tone / difficulty report.

Output (``out/``, a new or empty folder, built in a staging folder and renamed at the end):
``report.html`` (self-contained, figures embedded), ``stats.csv`` (one row per image: colour statistics,
ITA, outlier flags, autoencoder difficulty) and ``summary.json`` (counts, limits, mixtures, timings,
resolved config, versions). The ITA of each crop and of its whole original photo are also written back
into the data folder's ``manifest.csv`` (:data:`MANIFEST_COLUMNS`; replaced on a re-run, other columns
kept) so later steps can balance and evaluate by skin tone.

The measurements are :mod:`skingen.analysis.measure`'s; this module writes them (and :func:`analyze` runs both).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from skingen.analysis.colour import STAT_COLUMNS
from skingen.analysis.measure import (COLOUR_SPACE_NOTE, MANIFEST_COLUMNS, AnalysisResult, AnalyzeConfig, Findings, Progress,
                                      measure)
from skingen.data.skintone import ITA_CATEGORIES, UNKNOWN, fitzpatrick_approx, ita_category
from skingen.config import to_dict
from skingen.data.manifest import MANIFEST, manifest_sha256, read_manifest, write_manifest
from skingen.errors import SkingenError
from skingen.imageio import read_image
from skingen.runs import check_new_folder, environment_info, staged_dir, write_csv, write_json


# --------------------------------------------------------------------------- the command

def analyze(data: str | Path, out: str | Path, cfg: AnalyzeConfig = AnalyzeConfig(), autoencoder: bool = True,
            workers: int = 1, device: str = "cpu", progress: Progress | None = None) -> AnalysisResult:
    """Analyse the data folder ``data`` into the new folder ``out`` (module docstring).

    ``progress(done, total, stage)`` is called as work advances. Raises ``SkingenError`` for a missing
    or empty manifest, an unreadable crop or a non-empty ``out``.
    """
    t0 = time.perf_counter()
    data, out = Path(data), Path(out)
    rows = read_manifest(data)
    if not rows:
        raise SkingenError(f"{data / MANIFEST} lists no images")
    check_new_folder(out, hint="analyze never overwrites an earlier report — choose a new --out")
    sha_before = manifest_sha256(data)
    found, seconds = measure(data, rows, cfg, autoencoder, workers, device, progress)
    found.manifest_updated, found.manifest_note = write_ita_columns(data, rows, found.stats["ita"], found.photo_ita, sha_before)
    with staged_dir(out, "analysis report") as staging:
        t3 = time.perf_counter()
        _write_stats_csv(staging / "stats.csv", found)
        _report_html(_Page(data, rows, cfg), staging / "report.html", found)
        seconds["report"] = time.perf_counter() - t3
        seconds["total"] = time.perf_counter() - t0
        write_json(staging / "summary.json", _summary(data, cfg, found, sha_before, seconds, autoencoder, device))
    return AnalysisResult(out=out, images=len(rows), ita_counts=found.ita_counts,
                          outliers={k: len(v) for k, v in found.groups.items()}, photos_note=found.photos_note,
                          manifest_note=found.manifest_note, manifest_updated=found.manifest_updated, seconds=seconds)


def _fmt(value: float, digits: int = 4, fixed: bool = False) -> str:
    """A number for a CSV cell; NaN (not measured) becomes an empty cell."""
    if value is None or math.isnan(value):
        return ""
    return f"{value:.{digits}f}" if fixed else f"{value:.{digits}g}"


def write_ita_columns(data: Path, rows: list[dict[str, str]], itas: np.ndarray, photo_itas: np.ndarray,
                      sha_before: str) -> tuple[bool, str]:
    """Write :data:`MANIFEST_COLUMNS` into ``data/manifest.csv`` atomically, keeping every other column and
    replacing these on a re-run. Refuses (returns False and why) when the manifest changed since it was
    read or cannot be written (a read-only data folder)."""
    path = data / MANIFEST
    if manifest_sha256(data) != sha_before:
        return False, f"{path} changed while it was being analysed; ITA columns not written (run analyze again)"
    new_rows = [{**r, "ita": _fmt(v, 2, fixed=True), "ita_category": ita_category(v),
                 "photo_ita": _fmt(pv, 2, fixed=True), "photo_ita_category": ita_category(pv) if r.get("photo") else ""}
                for r, v, pv in zip(rows, itas, photo_itas)]
    try:
        write_manifest(data, new_rows)
    except OSError as exc:
        return False, f"cannot write {path} ({exc.strerror or exc}); ITA columns not written"
    return True, f"columns {', '.join(MANIFEST_COLUMNS)} written to {path}"


def _write_stats_csv(path: Path, f: Findings) -> None:
    flags = {k: set(v.tolist()) for k, v in f.groups.items()}
    rank = np.zeros(len(f.rows), int)
    if f.difficulty is not None:
        rank[np.argsort(-f.difficulty.errors, kind="stable")] = np.arange(1, len(f.rows) + 1)
    header = ["id", "image", "label", "split", *STAT_COLUMNS, "ita_category", "fitzpatrick_approx", "photo_ita",
              *f.groups, "ae_error", "ae_rank"]
    write_csv(path, [dict(zip(header, [
        r["id"], r["image"], r.get("label", ""), r.get("split", ""), *(_fmt(f.stats[c][i], 6) for c in STAT_COLUMNS),
        f.categories[i], fitzpatrick_approx(f.stats["ita"][i]), _fmt(f.photo_ita[i], 6),
        *(int(i in flags[k]) for k in f.groups),
        _fmt(f.difficulty.errors[i], 6) if f.difficulty else "", rank[i] if f.difficulty else ""]))
        for i, r in enumerate(f.rows)], header)


def _summary(data: Path, cfg: AnalyzeConfig, f: Findings, sha_before: str, seconds: dict[str, float],
             autoencoder: bool, device: str) -> dict[str, Any]:
    ids = f.ids
    limits = {"saturation_high": f.limits["saturation"][1], "luminosity_low": f.limits["luminosity"][0],
              "luminosity_high": f.limits["luminosity"][1]}
    itas = f.stats["ita"][~np.isnan(f.stats["ita"])]
    summary: dict[str, Any] = {
        "data": str(data.resolve()), "images": len(f.rows), "manifest_sha256_before": sha_before,
        "colour_space": COLOUR_SPACE_NOTE,
        "ita": {"counts": f.ita_counts, "median": float(np.median(itas)) if len(itas) else None,
                "quartiles": [float(q) for q in np.percentile(itas, [25, 75])] if len(itas) else None,
                "photo_counts": f.photo_ita_counts,
                "fitzpatrick_note": "approximate ITA -> Fitzpatrick mapping, not a clinical phototype"},
        "outliers": {k: {"limit": limits[k], "count": len(v), "ids": [ids[i] for i in v]} for k, v in f.groups.items()},
        "mixtures": {k: {ch: [[c.weight, c.mean, c.std] for c in comps] for ch, comps in zip("RGB", v)}
                     for k, v in f.mixtures.items()},
        "mixture_columns": ["weight", "mean", "std"],
        "photos": {"used": f.photos_used, "note": f.photos_note},
        "manifest": {"updated": f.manifest_updated, "note": f.manifest_note, "columns": list(MANIFEST_COLUMNS)},
        "autoencoder": None, "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "config": to_dict(cfg), "env": environment_info({"autoencoder": autoencoder, "device": device}),
    }
    if f.difficulty is not None:
        d = f.difficulty
        order = np.argsort(-d.errors, kind="stable")
        summary["autoencoder"] = {
            "seconds": round(d.seconds, 2), "steps": d.steps, "device": d.device,
            "epochs": len(d.epoch_losses), "epoch_losses": d.epoch_losses,
            "error_before_training": float(d.initial_errors.mean()), "error_after_training": float(d.errors.mean()),
            "hardest": [ids[i] for i in order[:cfg.sheet_images]],
            "easiest": [ids[i] for i in order[::-1][:cfg.sheet_images]],
        }
    return summary


# --------------------------------------------------------------------------- the HTML page

@dataclass
class _Page:
    data: Path
    rows: list[dict[str, str]]
    cfg: AnalyzeConfig

    def sheet(self, indices: Iterable[int], captions: Iterable[str]) -> str:
        """Contact sheet (8 per row) of the crops at ``indices``; index -1 leaves a blank cell."""
        from skingen.viz import contact_sheet, img_tag

        indices = [int(i) for i in indices]
        if not indices:
            return "<p><em>none</em></p>"
        blank = np.full((8, 8, 3), 255, np.uint8)
        images = [read_image(self.data / self.rows[i]["image"]) if i >= 0 else blank for i in indices]
        return img_tag(contact_sheet(images, list(captions), columns=8, cell=128), "contact sheet")


def _report_html(page: _Page, path: Path, f: Findings) -> None:
    from skingen.analysis import figures
    from skingen.viz import html_table, img_tag, write_html

    cfg, rows, stats, categories, groups, difficulty = page.cfg, f.rows, f.stats, f.categories, f.groups, f.difficulty
    ita_counts, photos_note, mixtures = f.ita_counts, f.photos_note, f.mixtures
    n = len(rows)
    k = cfg.sheet_images
    (sat_lo, sat_hi), (lum_lo, lum_hi) = f.limits["saturation"], f.limits["luminosity"]
    ids = f.ids
    rule = (f"robust z-score above {cfg.outliers.z:g} (median ± {cfg.outliers.z:g} × 1.4826 × MAD)"
            if cfg.outliers.method == "robust_z" else f"outside the quartiles ± {cfg.outliers.iqr_k:g} × IQR")
    with_masks = int((~np.isnan(stats["lesion_fraction"])).sum())
    lesion_note = ("lesion pixels excluded" if with_masks and cfg.exclude_lesion else
                   "lesion pixels included: no lesion masks" if not with_masks else "lesion pixels included")
    measured = n - ita_counts[UNKNOWN]
    overview = html_table(["", "value"], [
        ["images (crops)", n],
        ["with a lesion mask", with_masks],
        ["skin tone measured", f"{measured} of {n} (not measurable: {ita_counts[UNKNOWN]})"],
        ["median ITA", _fmt(float(np.nanmedian(stats["ita"])), 3) + "°" if measured else "–"],
        ["high-saturation outliers", len(groups["saturation_high"])],
        ["dark / bright outliers (L*)", f"{len(groups['luminosity_low'])} / {len(groups['luminosity_high'])}"],
        ["original photos", photos_note],
        ["manifest", f.manifest_note],
    ])
    sections: list[tuple[str, str, Any]] = [
        ("Overview", f"Data folder {page.data}. Colour: {COLOUR_SPACE_NOTE}", overview)]

    # Skin tone.
    per_photo = f.photo_ita_counts
    n_photos = sum(per_photo.values()) if per_photo else 0
    cat_rows = []
    ranges = ["> 55°", "41° to 55°", "28° to 41°", "10° to 28°", "-30° to 10°", "< -30°", "not measurable"]
    names = [(name, fitz) for _, name, fitz in ITA_CATEGORIES] + [(UNKNOWN, "–")]
    for (name, fitz), rng in zip(names, ranges):
        cat_rows.append([name, rng, fitz, ita_counts[name], f"{100 * ita_counts[name] / n:.0f}%"]
                        + ([per_photo[name], f"{100 * per_photo[name] / n_photos:.0f}%"] if per_photo else []))
    photo_cols = ["original photos", "share"] if per_photo else []
    sections.append((
        "Skin tone (Individual Typology Angle)",
        "ITA = arctan((L* − 50) / b*) in degrees, from the median colour of healthy skin in each crop "
        f"(skin detected by colour, {lesion_note}). Higher ITA means lighter skin. The Fitzpatrick "
        "types are the commonly used approximate mapping from ITA, not a clinical phototype. Lighting moves "
        "ITA a lot (on demo photos of known skin colour, whole photos land in the right category about 4 "
        "times in 5, single crops about 3 in 5), so read the categories as a rough spread, not a diagnosis; "
        "the last columns count each original photo once, measured on the whole photo (steadier).",
        img_tag(figures.ita_distribution(stats["ita"], ita_counts), "ITA histogram")
        + html_table(["category", "ITA", "approx. Fitzpatrick", "crops", "share", *photo_cols], cat_rows)))
    cells: list[int] = []
    captions: list[str] = []
    for _, name, _ in ITA_CATEGORIES:  # one row of up to 8 per category present, spread over its ITA range
        members = [i for i in np.argsort(stats["ita"]) if categories[i] == name]
        if members:
            picks = [members[j] for j in np.unique(np.linspace(0, len(members) - 1, min(8, len(members))).round().astype(int))]
            cells += picks + [-1] * (8 - len(picks))
            captions += [f"{ids[i]}\n{name} {stats['ita'][i]:.0f}°" for i in picks] + [""] * (8 - len(picks))
    sections.append(("Examples per skin-tone category",
                     "One row per category present (lightest first): up to 8 crops spread over its ITA range.",
                     page.sheet(cells, captions)))
    unknown = [i for i in range(n) if categories[i] == UNKNOWN][:k]
    sections.append(("Skin tone not measurable",
                     f"Crops where less than {100 * cfg.min_healthy_fraction:.0f}% of the pixels are healthy skin "
                     "(mostly lesion, background or colours the skin detector rejects), or where that skin is not "
                     f"yellowish (median b* ≤ 0, where ITA is undefined): {ita_counts[UNKNOWN]}.",
                     page.sheet(unknown, [f"{ids[i]}\nhealthy {100 * stats['healthy_fraction'][i]:.0f}%" for i in unknown])))

    # Colour distributions.
    sections.append(("Colour distribution of the crops",
                     "Share of pixels at each red, green and blue value over all crops, with a mixture of three "
                     "Gaussians fitted per channel (dashed: each Gaussian; black: their sum).",
                     img_tag(figures.channel_histograms(f.crop_hist, mixtures["crops"], "crops"), "crop histograms")))
    if f.photo_hist is not None:
        sections.append(("Colour distribution of the original photos",
                         f"The same for the whole original photos ({photos_note}), background included.",
                         img_tag(figures.channel_histograms(f.photo_hist, mixtures["photos"], "original photos"),
                                 "photo histograms")))
    else:
        sections.append(("Colour distribution of the original photos", f"Skipped: {photos_note}.", None))

    # Outliers.
    def group_sheet(title: str, group: str, column: str, sign: int, label: str) -> str:
        """The flagged crops, most extreme first; with none flagged, the 8 most extreme crops for a look."""
        values = stats[column]
        flagged = groups[group][np.argsort(sign * values[groups[group]])][:k]
        shown = flagged if len(flagged) else np.argsort(sign * values)[:8]
        head = (f"<h3>{title}: {len(groups[group])} outlier(s)</h3>" if len(flagged) else
                f"<h3>{title}: no outliers; the 8 most extreme crops, for a look</h3>")
        return head + page.sheet(shown, [f"{ids[i]}\n{label} {values[i]:.2f}" for i in shown])

    sections.append(("Saturation",
                     f"Mean HSV saturation per crop (0 = grey, 1 = pure colour). Red: unusually saturated crops, "
                     f"{rule}; limit {sat_hi:.3f}. Strong colour casts, filters and coloured backgrounds land here.",
                     img_tag(figures.value_distribution(stats["saturation_mean"], (sat_lo, sat_hi), "mean saturation",
                                                        "saturation per crop", sides=("high",)), "saturation")
                     + group_sheet("Saturated", "saturation_high", "saturation_mean", -1, "S")))
    sections.append(("Luminosity",
                     f"Mean CIELAB L* per crop (0 = black, 100 = white). Red: unusually dark or bright crops, {rule}; "
                     f"limits {lum_lo:.1f} and {lum_hi:.1f}. Under- and over-exposed photos land here; their skin "
                     "tone (ITA) is the least reliable.",
                     img_tag(figures.value_distribution(stats["lab_L_mean"], (lum_lo, lum_hi), "mean L*",
                                                        "luminosity per crop"), "luminosity")
                     + group_sheet("Dark", "luminosity_low", "lab_L_mean", 1, "L*")
                     + group_sheet("Bright", "luminosity_high", "lab_L_mean", -1, "L*")))

    # Hard images.
    if difficulty is not None:
        order = np.argsort(-difficulty.errors, kind="stable")
        ae = cfg.autoencoder
        sections.append((
            "Hard and easy images (autoencoder)",
            f"A small convolutional autoencoder ({ae.size} px, bottleneck {ae.latent_channels} × "
            f"{ae.size // 2 ** len(ae.channels)}² numbers) learned to rebuild all crops ({difficulty.steps} steps, "
            f"{difficulty.seconds:.0f} s on {difficulty.device}). Crops it rebuilds worst are least like the rest: "
            "unusual content, texture, colour or framing. They are worth a look before training a generator.",
            img_tag(figures.autoencoder_curves(difficulty.epoch_losses, difficulty.errors), "autoencoder")
            + "<h3>Hardest</h3>" + page.sheet(order[:k], [f"{ids[i]}\nerror {difficulty.errors[i]:.4f}" for i in order[:k]])
            + "<h3>Easiest</h3>" + page.sheet(order[::-1][:k], [f"{ids[i]}\nerror {difficulty.errors[i]:.4f}"
                                                                   for i in order[::-1][:k]])))
    else:
        sections.append(("Hard and easy images (autoencoder)", "Skipped (--no-autoencoder).", None))
    sections.append(("Files", "stats.csv: one row per crop with every number above; summary.json: counts, limits, "
                     "mixtures, timings and the resolved config.", None))
    write_html(path, f"skingen analysis: {page.data.name}", sections)


def console_rows(result: AnalysisResult) -> tuple[list[str], list[list[str]]]:
    """The console table: images per ITA category, next to the outlier counts."""
    outliers = list(result.outliers.items())
    rows = []
    for i, (name, count) in enumerate(result.ita_counts.items()):
        what, n = outliers[i] if i < len(outliers) else ("", "")
        rows.append([name, str(count), what.replace("_", " "), str(n)])
    return ["ITA category", "images", "outliers", "images"], rows
