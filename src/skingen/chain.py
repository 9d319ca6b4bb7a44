"""``skingen demo``: the whole chain on procedural demo data, in minutes on a laptop CPU.

Stages (later issues add theirs here): demo data -> prepare (given masks) -> prepare (auto masks, to
measure them against the truth) -> analyze (with a tiny autoencoder; ITA checked against the truth)
-> train the tiny DCGAN and CVAE presets and sample from them -> train the tiny mask-conditioned models and
paint from real masks and from dark-skin layouts -> train the tiny inpainting model and run iterative
inpainting on a few crops -> a tiny downstream study (exanthem vs healthy demo photos, small CNN, real-only
vs classical augmentation, one seed) -> a blinded rating study of the crops against the DCGAN and CVAE
samples, ready for `skingen rate serve` -> an HTML summary.
"""

from __future__ import annotations

import csv
import html
from pathlib import Path
from typing import Callable

import numpy as np

from skingen.analysis.difficulty import AutoencoderConfig
from skingen.analysis.measure import AnalyzeConfig
from skingen.analysis.report import analyze
from skingen.data.demo import write_demo_data
from skingen.data.layouts import LayoutParams
from skingen.data.manifest import SPLITS, read_manifest
from skingen.data.masks import AutoMaskConfig, auto_lesion_mask, iou
from skingen.data.prepare import PrepareConfig, PrepareReport, prepare
from skingen.imageio import read_image, read_mask
from skingen.runs import check_new_folder, write_json
from skingen.generation.sample_folder import SampleConfig, sample_to_folder
from skingen.train.loop import resolve_config, train
from skingen.viz import contact_sheet, html_table, write_html

MASK_FAMILIES = ("dermgan", "dermdiff")
DEMO_DARK_ITA = (-60.0, -30.0)

# Keeps the demo's analyze stage to seconds; the real default is AutoencoderConfig() (64 px).
_TINY_AE = AutoencoderConfig(size=32, channels=(8, 16, 32), latent_channels=4, epochs=5)


def auto_masks_vs_truth(photo_dir: Path, mask_dir: Path, cfg: AutoMaskConfig = AutoMaskConfig()
                        ) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """For each ``*.jpg`` photo (sorted): (auto lesion mask, given mask ``<stem>.png``, their IoU)."""
    out = []
    for photo in sorted(photo_dir.glob("*.jpg")):
        lesion, _ = auto_lesion_mask(read_image(photo), cfg)
        truth = read_mask(mask_dir / f"{photo.stem}.png")
        out.append((lesion, truth, iou(lesion, truth)))
    return out


def run_demo(out: str | Path, n: int = 60, size: int = 64, seed: int = 0, workers: int = 1, train_images: int = 3000,
             log: Callable[[str], None] = lambda s: None) -> Path:
    """Run the demo chain into ``out`` (must be new or empty); returns the path of ``summary.html``.

    ``train_images``: duration of each tiny model's training (0 skips the model stages and the downstream
    detector stage, whose classifiers see at most 2000 images).
    """
    out = check_new_folder(out, hint="choose a new --out for the demo")
    log(f"demo data: {n} photos")
    raw = write_demo_data(out / "raw", n=n, seed=seed)
    log(f"prepare with the true masks at {size} px")
    cfg = PrepareConfig(size=size, seed=seed)
    given = prepare(raw / "images", out / "data", cfg, masks=raw / "masks", workers=workers)
    log(f"prepare with auto masks at {size} px")
    auto = prepare(raw / "images", out / "data-auto", PrepareConfig(size=size, seed=seed, auto_mask=True), workers=workers)
    compared = auto_masks_vs_truth(raw / "images", raw / "masks")
    ious = [c[2] for c in compared]
    log("analyze the prepared crops (tiny autoencoder)")
    analysis = analyze(out / "data", out / "analysis", AnalyzeConfig(autoencoder=_TINY_AE),
                       workers=workers)
    ita_agreement = _ita_agreement(raw, out / "data")
    summary = {"photos": n, "size": size, "given_masks": _counts(given), "auto_masks": _counts(auto),
               "auto_mask_iou_mean": float(np.mean(ious)), "auto_mask_iou_median": float(np.median(ious)),
               "ita_counts": analysis.ita_counts, "ita_category_agreement": ita_agreement,
               "analysis_seconds": round(analysis.seconds["total"], 2)}
    write_json(out / "summary.json", summary)
    models = {}
    for family in ("dcgan", "cvae") if train_images > 0 else ():
        log(f"train {family} (preset tiny/{family}, {train_images} images) and sample 16 images")
        cfg = resolve_config(family, f"tiny/{family}", [f"train.seed={seed}", f"train.images={train_images}",
                                                        f"train.batch={min(16, given.crops['train'])}"])
        run = train(family, out / "data", cfg, outdir=out / "runs", cpu=True)
        report = sample_to_folder(run, out / "synth" / family, list(range(16)), SampleConfig(batch=16))
        models[family] = {"run": str(run), "seconds_per_image": report.seconds_per_image,
                          "images": [read_image(p) for p in sorted(report.out.glob("seed*.png"))]}
    for family in MASK_FAMILIES if train_images > 0 else ():
        models[family] = _mask_stage(out, family, seed, train_images, given.crops["train"], log)
    if train_images > 0:
        models["inpaint"] = _inpaint_stage(out, seed, train_images, given.crops["train"], log)
    summary["models"] = {f: {k: v for k, v in m.items() if k not in ("images", "strips")} for f, m in models.items()}
    downstream = _downstream_stage(out, seed, workers, min(2000, train_images), log) if train_images > 0 else None
    if downstream:
        summary["downstream"] = downstream["summary"]
    rating = _rating_stage(out, seed, log) if train_images > 0 else None
    if rating:
        summary["rating"] = rating
    write_json(out / "summary.json", summary)
    rows = read_manifest(out / "data")[:16]
    crops = [read_image(out / "data" / r["image"]) for r in rows]
    lesions = [read_mask(out / "data" / r["lesion"]) for r in rows]
    coloured = [read_image(out / "data" / r["coloured"]) for r in rows]
    photos = [read_image(p) for p in sorted((raw / "images").glob("*.jpg"))[:8]]
    auto_masks = [c[0] for c in compared[:8]]
    true_masks = [c[1] for c in compared[:8]]
    path = out / "summary.html"
    write_html(path, "skingen demo", [
        ("Data", "Crops written per split (given = the generator's exact masks; auto = training-free erythema masks).",
         html_table(["masks", "photos used", *SPLITS, "skipped"],
                    [["given", given.photos_used, *given.crops.values(), len(given.skipped)],
                     ["auto", auto.photos_used, *auto.crops.values(), len(auto.skipped)]])),
        ("Demo photos", "Procedural photos of maculopapular rash over the whole light-to-dark skin range.",
         contact_sheet(photos, columns=8, cell=128)),
        ("Auto masks vs truth", f"Top: training-free auto lesion masks; bottom: exact masks. Mean IoU over "
         f"{len(ious)} photos: {np.mean(ious):.2f}.", contact_sheet(auto_masks + true_masks, columns=8, cell=128)),
        ("Crops", "Rows: crops, their lesion masks and coloured masks (lesion colour on healthy-skin colour).",
         contact_sheet(crops + lesions + coloured, columns=16, cell=64)),
        ("Analysis", f"Skin tone (ITA) of the crops; the measured category equals the true one for "
         f"{100 * ita_agreement['crops']:.0f}% of the crops and {100 * ita_agreement['photos']:.0f}% of the whole photos. "
         "Full report: analysis/report.html.",
         html_table(list(analysis.ita_counts), [list(analysis.ita_counts.values())])),
        *[(f"{family} samples", f"Seeds 0-15 from the tiny {family} preset (32 px, a few thousand images of training "
           f"on the CPU: a smoke test of the chain, not a quality result); {m['seconds_per_image'] * 1000:.1f} ms per "
           f"image.", contact_sheet(m["images"], columns=16, cell=64)) for family, m in models.items() if "images" in m],
        *[_mask_section(family, models[family]) for family in MASK_FAMILIES if family in models],
        *_inpaint_section(models.get("inpaint")),
        *([("Downstream detector (tiny)", downstream["caption"], downstream["table"])] if downstream else []),
        *([("Human evaluation", f"A blinded rating study of the real crops against the dcgan and cvae samples is "
            f"ready ({rating['questions']} questions per rater). Serve it, open the printed address in a browser, "
            f"and write the report:", "<pre>" + html.escape(f"skingen rate serve --study {rating['study']}\n"
                                                          f"skingen rate report {rating['study']} --out REPORT")
            + "</pre>")] if rating else []),
    ])
    log(f"summary: {path}")
    return path


def _downstream_stage(out: Path, seed: int, workers: int, images: int, log: Callable[[str], None]) -> dict:
    """Exanthem vs healthy demo photos (192 px, 64 px crops chosen alike for both classes by where the rash is or
    would be): real-only vs classical augmentation, one seed, ``images`` training images seen per classifier."""
    from skingen.data.sources import CsvColumns
    from skingen.downstream.report import write_report
    from skingen.downstream.study import StudyConfig, run_study
    from skingen.downstream.train import TrainConfig

    log("downstream: exanthem vs healthy detector (small CNN, real only vs classical augmentation)")
    raw = write_demo_data(out / "raw-2class", n=40, seed=seed + 1, healthy=0.5, size=(192, 192))
    prepare(raw / "truth.csv", out / "data-2class", PrepareConfig(size=64, seed=seed, split=(0.5, 0.2, 0.3)),
            masks=raw / "regions", columns=CsvColumns(image="image"), workers=workers)
    cfg = StudyConfig(fractions=(1.0,), seeds=1, ratios=(0,), n_boot=200,
                      train=TrainConfig(size=64, images=max(16, images), batch=16, eval_every=500))
    result = run_study(out / "data-2class", [], cfg)
    write_report(result, out / "downstream")
    rows = {r["arm"]: r for r in result.runs}
    header = ["arm", "train images", "balanced accuracy", "macro-F1", "AUROC"]
    table = html_table(header, [[a, r["n_real"], f"{r['test_balanced_accuracy']:.2f}", f"{r['test_macro_f1']:.2f}",
                                 f"{r['test_auroc']:.2f}"] for a, r in rows.items()])
    caption = (f"A small CNN told {len(result.test.y)} test crops apart (exanthem vs healthy skin, 64 px), trained on "
               f"real crops only or with classical augmentation; one seed, so no claim either way. Full report with "
               f"95% intervals: downstream/summary.html.")
    return {"summary": {a: {k: r[k] for k in ("n_real", "test_balanced_accuracy", "test_macro_f1", "test_auroc")}
                        for a, r in rows.items()}, "caption": caption, "table": table}


def _rating_stage(out: Path, seed: int, log: Callable[[str], None]) -> dict | None:
    """A rating study (`skingen rate serve`) of the demo crops against the dcgan and cvae samples, as large as
    the crops allow (each mode takes 5 real crops per ``n``, none shown twice), at most ``n`` = 4."""
    from skingen.rating.study import RatingStudyConfig, create_study, sources_from_args

    n = min(4, len(read_manifest(out / "data")) // 5)
    if n == 0:
        log("rating study skipped: too few crops")
        return None
    log(f"rating study: real crops vs dcgan and cvae samples (n={n})")
    study = out / "rating"
    definition = create_study(study, sources_from_args(str(out / "data"), [str(out / "synth" / f) for f in ("dcgan", "cvae")]),
                              RatingStudyConfig(n=n, seed=seed))
    return {"study": str(study), "questions": sum(sum(c.values()) // (2 if m == "pair" else 1)
                                                  for m, c in definition.counts.items())}


def _mask_stage(out: Path, family: str, seed: int, train_images: int, n_train: int, log: Callable[[str], None]) -> dict:
    """Train a tiny mask-conditioned model; paint 8 images from training masks and 8 from dark-skin layouts."""
    log(f"train {family} (preset tiny/{family}, {train_images} images); paint from 8 real masks and 8 dark-skin layouts")
    cfg = resolve_config(family, f"tiny/{family}", [f"train.seed={seed}", f"train.images={train_images}",
                                                   f"train.batch={min(16, n_train)}"])
    run = train(family, out / "data", cfg, outdir=out / "runs", cpu=True)
    reports = [sample_to_folder(run, out / "synth" / family / "masks", list(range(8)), SampleConfig(batch=8)),
               sample_to_folder(run, out / "synth" / family / "layouts", list(range(8)),
                                SampleConfig(batch=8, layouts=LayoutParams(ita=DEMO_DARK_ITA)))]
    sheet = []
    for report in reports:
        rows = read_manifest(report.out, required=("image", "coloured"))
        sheet += [read_image(report.out / r["coloured"]) for r in rows] + [read_image(report.out / r["image"]) for r in rows]
    return {"run": str(run), "seconds_per_image": reports[1].seconds_per_image, "strips": contact_sheet(sheet, columns=8, cell=64)}


def _mask_section(family: str, m: dict) -> tuple[str, str, np.ndarray]:
    lo, hi = DEMO_DARK_ITA
    return (f"{family}: painting from masks", f"Rows 1-2: coloured masks of training crops and what the tiny {family} "
            f"painted from them; rows 3-4: synthesised rash layouts on skin of ITA {lo:g}..{hi:g} degrees (darker than "
            f"most training crops) and the paintings (a smoke test of the chain, not a quality result); "
            f"{m['seconds_per_image'] * 1000:.1f} ms per image.", m["strips"])


def _inpaint_stage(out: Path, seed: int, train_images: int, n_train: int, log: Callable[[str], None]) -> dict:
    """Train the tiny inpainting model and run 2 iterative runs of 6 steps on 3 training crops."""
    from skingen.generation.inpaint_folder import InpaintConfig, inpaint_to_folder

    log(f"train inpaint (preset tiny/inpaint, {train_images} images) and run 3 crops x 2 iterative-inpainting runs")
    cfg = resolve_config("inpaint", "tiny/inpaint", [f"train.seed={seed}", f"train.images={train_images}",
                                                     f"train.batch={min(16, n_train)}"])
    run = train("inpaint", out / "data", cfg, outdir=out / "runs", cpu=True)
    steps = 6
    report = inpaint_to_folder(run, out / "data", out / "synth" / "inpaint", InpaintConfig(
        params={"steps": steps, "shape": "mixed"}, runs=2, n=3, seed=seed))
    strips = [read_image(p) for p in sorted((report.out / "frames").glob("seed*.png"))]
    return {"run": str(run), "seconds_per_image": report.seconds_per_image, "steps": steps,
            "evaluations_per_image": report.evaluations_per_image, "strips": np.vstack(strips)}


def _inpaint_section(m: dict | None) -> list[tuple[str, str, np.ndarray]]:
    if m is None:
        return []
    return [("inpaint: iterative runs", f"Each row: a crop, the image after each of {m['steps']} inpainting steps of "
             f"the tiny inpaint preset, and the edit map (how often each pixel was repainted); "
             f"{m['seconds_per_image']:.2f} s and {m['evaluations_per_image']:.0f} model evaluations per image.",
             m["strips"])]
def _ita_agreement(raw: Path, data: Path) -> dict[str, float]:
    """Share of crops (their own ITA) and of photos (whole-photo ITA) whose ITA category is the true one."""
    with open(raw / "truth.csv", newline="") as fh:
        truth = {Path(r["image"]).name: r["true_ita_category"] for r in csv.DictReader(fh)}
    rows = read_manifest(data)
    photos = {r["photo"]: r["photo_ita_category"] == truth[r["photo"]] for r in rows}
    return {"crops": float(np.mean([r["ita_category"] == truth[r["photo"]] for r in rows])),
            "photos": float(np.mean(list(photos.values())))}


def _counts(report: PrepareReport) -> dict[str, object]:
    return {"photos_used": report.photos_used, "crops": report.crops, "skipped": len(report.skipped),
            "seconds": round(report.seconds, 2)}
