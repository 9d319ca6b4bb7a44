"""The measurements of ``skingen analyze`` (:mod:`skingen.analysis.report` writes them).

Method (details in :mod:`skingen.analysis.colour`, :mod:`~skingen.data.skintone`,
:mod:`~skingen.analysis.difficulty`):
- per image: RGB mean/std, HSV saturation, CIELAB means (``skimage.color.rgb2lab``, D65, sRGB in [0, 1]),
  contrast, sharpness, lesion fraction, and ITA from the median colour of healthy skin (skin detection
  minus the lesion mask); too little healthy skin or a median b* <= 0 -> ITA is NaN, category ``unknown``;
- histograms of R, G, B over all crops and over the original photos (when they can be found), each with
  a 3-component Gaussian mixture;
- outliers: high mean saturation, low or high mean L*, by a robust rule (``outliers.*`` in the config);
- hard images: a small convolutional autoencoder ranks the crops by reconstruction error.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Callable, Iterable

import numpy as np

from skingen.config import Fraction, Range, Seed
from skingen.analysis.colour import STAT_COLUMNS, OutlierConfig, fit_histogram_gmm, flag_outliers, image_stats
from skingen.analysis.difficulty import AutoencoderConfig, DifficultyResult, resize_for_autoencoder, train_and_score
from skingen.data.skintone import ITA_CATEGORIES, UNKNOWN, ita_category
from skingen.errors import SkingenError
from skingen.imageio import read_image, read_mask
from skingen.runs import read_json
from skingen.workers import process_pool

COLOUR_SPACE_NOTE = ("CIELAB from scikit-image rgb2lab on sRGB values scaled to [0, 1], D65 white point "
                     "(L* 0-100); not OpenCV's 8-bit Lab.")
MANIFEST_COLUMNS = ("ita", "ita_category", "photo_ita", "photo_ita_category")
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class AnalyzeConfig:
    seed: Seed = 0
    min_healthy_fraction: Fraction = 0.05  # ITA needs at least this share of the crop to be healthy skin
    exclude_lesion: bool = True  # measure skin tone without the lesion (ill skin) pixels
    gmm_components: Annotated[int, Range(1, 16)] = 3
    gmm_samples: Annotated[int, Range(10, 10_000_000)] = 10000  # pixel values drawn per channel to fit each mixture (enough for 3 components)
    sheet_images: Annotated[int, Range(1, 1024)] = 16  # images per contact sheet
    outliers: OutlierConfig = field(default_factory=OutlierConfig)
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)


@dataclass
class AnalysisResult:
    out: Path
    images: int
    ita_counts: dict[str, int]
    outliers: dict[str, int]
    photos_note: str
    manifest_note: str
    manifest_updated: bool
    seconds: dict[str, float]


# --------------------------------------------------------------------------- per-image work (workers)

def _crop_job(args: tuple[Path, str, str, float, bool, int]) -> tuple[dict[str, float], np.ndarray, np.ndarray | None]:
    data, image_rel, lesion_rel, min_fraction, exclude_lesion, ae_size = args
    image = read_image(data / image_rel)
    lesion = read_mask(data / lesion_rel) if lesion_rel else None
    if lesion is not None and lesion.shape != image.shape[:2]:
        raise SkingenError(f"{data / lesion_rel}: mask is {lesion.shape[1]}x{lesion.shape[0]} but its image is "
                           f"{image.shape[1]}x{image.shape[0]}")
    stats, hist = image_stats(image, lesion, min_fraction, exclude_lesion)
    return stats, hist, resize_for_autoencoder(image, ae_size) if ae_size else None


def _photo_job(path: Path) -> tuple[np.ndarray, float] | None:
    """Histogram and ITA of a whole original photo; None when unreadable. The photo's lesion mask is not
    stored, so lesions are not excluded: on whole demo photos that changes the accuracy very little
    (bench/ita_demo.py), since the median ignores a minority of lesion pixels."""
    from skingen.analysis.colour import channel_histogram
    from skingen.data.skintone import measure_skin_tone

    try:
        image = read_image(path)
    except SkingenError:
        return None
    return channel_histogram(image), measure_skin_tone(image).ita


def _run_jobs(fn: Callable, jobs: list, workers: int, progress: Callable[[int, int], None]) -> list:
    """``[fn(job) for job in jobs]`` in order, over ``workers`` processes when worth it."""
    out = []
    if workers <= 1 or len(jobs) < 8:
        for i, job in enumerate(jobs):
            out.append(fn(job))
            progress(i + 1, len(jobs))
        return out
    chunk = max(1, min(32, len(jobs) // (workers * 8)))
    with process_pool(workers) as pool:
        for i, res in enumerate(pool.map(fn, jobs, chunksize=chunk)):
            out.append(res)
            progress(i + 1, len(jobs))
    return out


def find_photos(data: Path, rows: list[dict[str, str]]) -> tuple[dict[str, Path], str]:
    """Original photos of a data folder (the manifest's ``photo`` column, relative to ``prepare``'s input folder,
    the input CSV's folder or its ``--root``, all recorded in ``prepare.json``) -> ({photo column value: path
    found}, a note saying how many or why none)."""
    listed = sorted({r.get("photo", "").strip() for r in rows} - {""})
    if not listed:
        return {}, "the manifest has no photo column values (not made by skingen prepare, or synthetic images)"
    bases: list[Path] = []
    info = read_json(data / "prepare.json") if (data / "prepare.json").is_file() else {}
    if info.get("input"):
        src = Path(str(info["input"]))
        bases.append(Path(str(info["root"])) if info.get("root") else src if src.is_dir() else src.parent)
    found = {}
    for rel in listed:
        candidates = [Path(rel)] if Path(rel).is_absolute() else [b / rel for b in bases]
        hit = next((c for c in candidates if c.is_file()), None)
        if hit is not None:
            found[rel] = hit
    if not found:
        where = f"under {bases[0]}" if bases else "(prepare.json with the input folder is missing)"
        return {}, (f"none of the {len(listed)} original photos were found {where}; the data folder or the "
                    "photos may have moved")
    return found, f"{len(found)} of {len(listed)} original photos found"


@dataclass
class Findings:
    """Everything measured, shared by the CSV, JSON and HTML writers. Arrays are per manifest row."""

    rows: list[dict[str, str]]
    stats: dict[str, np.ndarray]  # STAT_COLUMNS -> float [N]
    categories: list[str]
    photo_ita: np.ndarray  # float [N]: ITA of the row's whole original photo (NaN when not found)
    crop_hist: np.ndarray  # int [3, 256]
    photo_hist: np.ndarray | None
    photos_used: int
    photos_note: str
    mixtures: dict[str, list[list]]
    groups: dict[str, np.ndarray]  # outlier group -> row indices
    limits: dict[str, tuple[float, float]]  # "saturation" / "luminosity" -> (low, high)
    difficulty: DifficultyResult | None
    manifest_updated: bool = False
    manifest_note: str = ""

    @property
    def ids(self) -> list[str]:
        return [r["id"] for r in self.rows]

    def counts(self, categories: Iterable[str]) -> dict[str, int]:
        categories = list(categories)
        out = {name: categories.count(name) for _, name, _ in ITA_CATEGORIES}
        out[UNKNOWN] = categories.count(UNKNOWN)
        return out

    @property
    def ita_counts(self) -> dict[str, int]:
        return self.counts(self.categories)

    @property
    def photo_ita_counts(self) -> dict[str, int] | None:
        """Categories of the distinct original photos found (each photo once)."""
        per_photo = {r.get("photo", ""): v for r, v in zip(self.rows, self.photo_ita) if not math.isnan(v)}
        return self.counts(ita_category(v) for v in per_photo.values()) if per_photo else None


# --------------------------------------------------------------------------- the measurement

def measure(data: Path, rows: list[dict[str, str]], cfg: AnalyzeConfig = AnalyzeConfig(), autoencoder: bool = True,
            workers: int = 1, device: str = "cpu", progress: Progress | None = None) -> tuple[Findings, dict[str, float]]:
    """Measure the crops ``rows`` of the data folder ``data`` and their original photos (module docstring);
    returns the findings and the seconds each stage took. Writes nothing."""
    t0 = time.perf_counter()
    report = progress or (lambda done, total, stage: None)
    seconds: dict[str, float] = {}

    ae_size = cfg.autoencoder.size if autoencoder else 0
    jobs = [(data, r["image"], (r.get("lesion") or "").strip(), cfg.min_healthy_fraction, cfg.exclude_lesion, ae_size)
            for r in rows]
    per_image = _run_jobs(_crop_job, jobs, workers, lambda d, t: report(d, t, "colour statistics"))
    stats = {c: np.array([p[0][c] for p in per_image]) for c in STAT_COLUMNS}
    crop_hist = np.sum([p[1] for p in per_image], axis=0)
    seconds["statistics"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    photo_paths, photos_note = find_photos(data, rows)
    names = list(photo_paths)
    done = _run_jobs(_photo_job, list(photo_paths.values()), workers, lambda d, t: report(d, t, "original photos"))
    photo_results = {n: res for n, res in zip(names, done) if res is not None}
    if len(photo_results) < len(names):
        photos_note += f", {len(names) - len(photo_results)} unreadable"
    photo_hist = np.sum([h for h, _ in photo_results.values()], axis=0) if photo_results else None
    photo_ita = np.array([photo_results[p][1] if (p := (r.get("photo") or "").strip()) in photo_results else math.nan
                          for r in rows])
    seconds["photos"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    mixtures = {"crops": _mixtures(crop_hist, cfg)}
    if photo_hist is not None:
        mixtures["photos"] = _mixtures(photo_hist, cfg)
    sat_low, sat_high, sat_limits = flag_outliers(stats["saturation_mean"], cfg.outliers)
    lum_low, lum_high, lum_limits = flag_outliers(stats["lab_L_mean"], cfg.outliers)
    seconds["mixtures_outliers"] = time.perf_counter() - t2

    difficulty = None
    if autoencoder:
        thumbs = np.stack([p[2] for p in per_image])
        difficulty = train_and_score(thumbs, cfg.autoencoder, device=device,
                                     progress=lambda d, t: report(d, t, "autoencoder"))
        seconds["autoencoder"] = difficulty.seconds

    found = Findings(
        rows=rows, stats=stats, categories=[ita_category(v) for v in stats["ita"]], photo_ita=photo_ita,
        crop_hist=crop_hist, photo_hist=photo_hist, photos_used=len(photo_results), photos_note=photos_note,
        mixtures=mixtures, limits={"saturation": sat_limits, "luminosity": lum_limits}, difficulty=difficulty,
        groups={"saturation_high": np.flatnonzero(sat_high), "luminosity_low": np.flatnonzero(lum_low),
                "luminosity_high": np.flatnonzero(lum_high)})
    return found, seconds


def _mixtures(hist: np.ndarray, cfg: AnalyzeConfig) -> list[list]:
    return [fit_histogram_gmm(hist[c], cfg.gmm_components, cfg.gmm_samples, seed=cfg.seed + c) for c in range(3)]
