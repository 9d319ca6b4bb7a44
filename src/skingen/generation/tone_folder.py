"""``skingen tone``: real crops moved to darker skin (:mod:`skingen.data.tone`), written as a synthetic set.

Each crop of ``DATA[:split]`` (default split train) whose healthy-skin ITA lies above the target band is
toned ``per_image`` times; output k of source crop i has seed ``seed + i*per_image + k``, and its target ITA
is drawn uniformly from the band by that seed (``numpy_rng(seed)``). Crops already inside or below the band,
or whose ITA is not measurable, are skipped and counted. The folder holds, named by seed:

| path | what |
|---|---|
| ``seedNNNNNN.png`` | the toned crop (bit-exact to the source outside the detected skin) |
| ``lesion/seedNNNNNN.png`` | the source's lesion mask (the rash does not move) |

plus ``manifest.csv`` (synthetic rows: ``parent_id`` and the parent's ``source_id`` so grouped splits stay
leak-free, ``model`` = ``tone-<method>``, ``seed``, ``target_ita``, ``source_ita``, the measured ``ita`` and its
``ita_category``, ``tone_amount``, lesion-vs-skin contrasts before / after in the haemoglobin density and in
a*), ``tone.json`` and ``DATASHEET.md``. Skin and healthy skin are the project's ITA estimate
(:func:`skingen.data.masks.skin_mask` minus the lesion mask), and the measured ``ita`` is
:func:`skingen.data.skintone.measure_skin_tone` of the output, the same number ``analyze`` reports.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from skingen.errors import SkingenError
from skingen.seeding import format_seeds, numpy_rng

METHODS = ("melanin", "lab")


@dataclass
class ToneReport:
    out: Path
    sources: int          #: crops of the split
    toned: int            #: crops toned (healthy ITA above the band)
    images: int           #: images written
    skipped: dict         #: why crops were not toned -> count
    within_8: float       #: share of outputs whose measured ITA is within 8 deg of the target
    seconds: float        #: time inside toning and measuring (no file reading / writing)

    @property
    def seconds_per_image(self) -> float:
        return self.seconds / self.images if self.images else float("nan")

    def summary(self) -> str:
        skipped = ", ".join(f"{v} {k}" for k, v in self.skipped.items() if v) or "none"
        return (f"wrote {self.images} images from {self.toned} of {self.sources} crops to {self.out}: "
                f"{100 * self.within_8:.0f}% within 8 deg of their target ITA, {self.seconds_per_image:.3f} s/image; "
                f"skipped: {skipped}")


def lesion_contrast(image: np.ndarray, lesion: np.ndarray, healthy: np.ndarray) -> tuple[float, float]:
    """(haemoglobin, a*) of the lesion minus healthy skin: differences of medians over ``lesion`` and ``healthy``
    (``bool [H,W]``) of :func:`skingen.data.tone.decompose`'s haemoglobin density and of CIELAB a*. NaN when a
    region is empty."""
    from skimage.color import rgb2lab

    from skingen.data.tone import decompose

    if not lesion.any() or not healthy.any():
        return math.nan, math.nan
    hb = decompose(image)[..., 1]
    a = rgb2lab(image.astype(np.float32) / 255.0)[..., 1]
    return (float(np.median(hb[lesion]) - np.median(hb[healthy])),
            float(np.median(a[lesion]) - np.median(a[healthy])))


def tone_one(image: np.ndarray, lesion: np.ndarray, target: float, method: str,
             skin: np.ndarray | None = None, before: tuple[float, float] | None = None) -> tuple[np.ndarray, dict]:
    """Tone one crop (``uint8 [H,W,3]``, lesion ``bool [H,W]``) to ``target`` ITA -> (image, manifest fields).
    ``skin`` (:func:`skingen.data.masks.skin_mask` of ``image``) and ``before`` (its :func:`lesion_contrast`)
    may be passed when one crop is toned several times."""
    from skingen.data.masks import skin_mask
    from skingen.data.skintone import ita_category, measure_skin_tone
    from skingen.data.tone import tone_skin

    skin = skin_mask(image) if skin is None else skin
    healthy = skin & ~lesion
    result = tone_skin(image, skin, healthy, target, method)
    measured = measure_skin_tone(result.image, lesion).ita
    hb0, a0 = lesion_contrast(image, lesion, healthy) if before is None else before
    hb1, a1 = lesion_contrast(result.image, lesion, healthy)
    return result.image, {
        "target_ita": f"{target:.2f}", "ita": f"{measured:.2f}", "ita_category": ita_category(measured),
        "tone_amount": f"{result.amount:.4f}", "skin_fraction": f"{skin.mean():.4f}",
        "hb_contrast_before": f"{hb0:.4f}", "hb_contrast_after": f"{hb1:.4f}",
        "a_contrast_before": f"{a0:.3f}", "a_contrast_after": f"{a1:.3f}"}


def tone_to_folder(source: str | Path, out: str | Path, ita: tuple[float, float], per_image: int = 1,
                   method: str = "melanin", seed: int = 0, n: int | None = None,
                   progress: Callable[[int, int], None] | None = None) -> ToneReport:
    """Tone the crops of ``source`` (``DATA[:split]``, default split train; the first ``n`` only when given)
    whose healthy-skin ITA is above ``ita`` = (MIN, MAX) degrees into that band, ``per_image`` outputs each,
    by ``method`` (melanin | lab); writes the new folder ``out`` (module docstring) through the one generation
    job (:class:`~skingen.generation.job.GenerationJob`; under ``torchrun`` the processes share the crops)."""
    from skingen.data.imagesets import parse_data_spec
    from skingen.data.provenance import rows_of
    from skingen.generation.job import GenerationJob

    if method not in METHODS:
        raise SkingenError(f"--method must be one of {', '.join(METHODS)}, got '{method}'")
    lo, hi = ita
    if not (-90 <= lo <= hi <= 90) or per_image < 1 or (n is not None and n < 1):
        raise SkingenError("--ita must be MIN..MAX within -90..90, --per-image and --n at least 1")
    folder, split = parse_data_spec(str(source))
    rows = rows_of(folder, split or "train")[:n]
    if not rows:
        raise SkingenError(f"{folder}: no real crops in split {split or 'train'}")
    job = GenerationJob(out, "toned crops", 1, None, "cpu", "fp32", progress)
    out_rows: list[dict] = []
    tally = {"already in or below the band": 0, "ITA not measurable": 0, "toned": 0, "seconds": 0.0}
    with job.staged(list(range(len(rows))), ("lesion",)) as staging:
        for chunk in job.batches():
            for i in chunk:
                out_rows += _tone_crop(folder, rows[i], i, (lo, hi), per_image, method, seed, staging, tally)
        out_rows = job.gather_rows(out_rows)
        tally = {k: sum(t[k] for t in job.gather(tally)) for k in tally}
        if not out_rows and job.total:
            raise SkingenError(f"{folder}: no crop of split {split or 'train'} has healthy skin lighter than "
                               f"{hi:g} deg to tone")
        errors = np.array([abs(float(r["ita"]) - float(r["target_ita"])) for r in out_rows])
        within = float(np.mean(np.nan_to_num(errors, nan=np.inf) <= 8.0)) if len(errors) else math.nan
        seconds, toned = tally.pop("seconds"), tally.pop("toned")
        report = ToneReport(Path(out), job.total, toned, len(out_rows), tally, within, seconds)
        if not job.is_main:
            return report
        job.write(staging, out_rows, report.seconds_per_image, "tone.json", {
            "source": str(source), "method": method, "ita": [lo, hi], "per_image": per_image, "seed": seed, "n": n,
            "sources": job.total, "toned": toned, "images": len(out_rows), "skipped": tally,
            "within_8_degrees": within, "seconds": seconds, "seconds_per_image": report.seconds_per_image,
            "seeds": format_seeds([int(r["seed"]) for r in out_rows]), **job.sharding()}, "tone",
            {"source crops": source, "method": method, "target ITA band (degrees)": f"{lo:g}..{hi:g}",
             "outputs per crop": per_image},
            counts={"crops toned": toned, **{f"crops skipped ({k})": v for k, v in tally.items()},
                    "outputs within 8 deg of their target ITA": f"{100 * within:.0f}%"})
    return report


def _tone_crop(folder: Path, row: dict[str, str], i: int, band: tuple[float, float], per_image: int, method: str,
               seed: int, staging: Path, tally: dict) -> list[dict]:
    """Tone crop ``i`` (its manifest ``row``) ``per_image`` times into ``band``, write the outputs to ``staging``;
    their manifest rows (none when it is skipped: counted in ``tally``, with the seconds spent)."""
    from skingen.data.masks import skin_mask
    from skingen.data.skintone import measure_skin_tone
    from skingen.imageio import read_image, read_mask, write_image, write_mask

    image = read_image(folder / row["image"])
    lesion = (read_mask(folder / row["lesion"]) if row.get("lesion") else np.zeros(image.shape[:2], bool))
    if lesion.shape != image.shape[:2]:
        raise SkingenError(f"{folder / row['lesion']}: mask size {lesion.shape} differs from its image's")
    t = time.perf_counter()
    before = measure_skin_tone(image, lesion).ita
    tally["seconds"] += time.perf_counter() - t
    if math.isnan(before) or before <= band[1]:
        tally["ITA not measurable" if math.isnan(before) else "already in or below the band"] += 1
        return []
    tally["toned"] += 1
    t = time.perf_counter()
    skin = skin_mask(image)
    contrast = lesion_contrast(image, lesion, skin & ~lesion)
    tally["seconds"] += time.perf_counter() - t
    made = []
    for k in range(per_image):
        s = seed + i * per_image + k
        target = float(numpy_rng(s).uniform(*band))
        t = time.perf_counter()
        result, fields = tone_one(image, lesion, target, method, skin, contrast)
        tally["seconds"] += time.perf_counter() - t
        name = f"seed{s:06d}.png"
        write_image(staging / name, result)
        write_mask(staging / "lesion" / name, lesion)
        made.append({"id": f"tone-{method}-seed{s:06d}", "image": name, "lesion": f"lesion/{name}",
                     "label": row.get("label", ""), "source_id": row.get("source_id", ""), "split": "train",
                     "origin": "synthetic", "model": f"tone-{method}", "checkpoint": "", "seed": s,
                     "parent_id": row["id"], "source_ita": f"{before:.2f}", **fields})
    return made
