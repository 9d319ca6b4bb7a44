"""``skingen plan``: what a generation job will cost, before it runs, from a short timed calibration.

The calibration runs the real thing (:func:`~skingen.generation.sample_folder.sample_to_folder` or
:func:`~skingen.generation.inpaint_folder.inpaint_to_folder`, same checkpoint, options, batch, device and precision)
on two batches of the job into a temporary folder, and times it from the outside:

- ``head``: model loading, the first (warm-up) batch and its files;
- ``per batch``: the second batch — the steady cost of a batch, network and file writing together;
- ``tail``: manifest and summary;
- ``start-up``: this process's own start (interpreter, imports), which a ``skingen`` command pays too.

predicted wall time = start-up + head + (n - batch) / batch x per batch + tail (one process, this machine).
Model evaluations and pixels through the network are counted by hooks during the calibration
(:class:`~skingen.generation.speed.EvaluationCounter`) and scaled to ``n``. GPU figures are never guessed:
they come from a table of *measured* rows (:func:`gpu_figures`: the package's ``gpu_figures.csv``, filled
by ``scripts/device_check.py`` on a GPU, and the run's own ``gpu_figures.csv``); without one the plan says so.
"""

from __future__ import annotations

import csv
import math
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from skingen.errors import SkingenError
from skingen.generation.inpaint_folder import InpaintConfig
from skingen.generation.sample_folder import SampleConfig
from skingen.generation.speed import EvaluationCounter

PACKAGE_GPU_TABLE = Path(__file__).with_name("gpu_figures.csv")
GPU_COLUMNS = ("card", "kind", "family", "size", "precision", "batch", "seconds_per_image", "measured")


@dataclass
class Plan:
    kind: str                     #: sample | inpaint
    family: str
    size: int                     #: image side in px
    images: int
    batch: int
    device: str
    precision: str
    evaluations_per_image: float  #: network rows per image (a guided diffusion step counts 2)
    pixels_per_image: float       #: pixels through the network per image
    startup_s: float
    head_s: float
    per_batch_s: float
    tail_s: float
    calibration_images: int
    gpu: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def seconds_per_image(self) -> float:
        """Steady wall seconds per image on this machine (network and files)."""
        return self.per_batch_s / self.batch

    @property
    def predicted_s(self) -> float:
        return self.startup_s + self.head_s + max(self.images - self.batch, 0) * self.seconds_per_image + self.tail_s

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {**asdict(self), "seconds_per_image": self.seconds_per_image, "predicted_s": self.predicted_s,
                "evaluations": self.evaluations_per_image * self.images, "pixels": self.pixels_per_image * self.images}


def _process_startup_s() -> float:
    """Seconds from this process's creation to now (interpreter start and imports so far)."""
    import psutil

    return max(time.time() - psutil.Process().create_time(), 0.0)


def _calibrate(make: Callable[[Path, Callable[[int, int], None]], Any], batch: int) -> tuple[float, float, float, EvaluationCounter]:
    """Run ``make(out, progress)`` (two batches) and return (head, per batch, tail, counter)."""
    marks: list[float] = []
    counter = EvaluationCounter()

    def progress(done: int, total: int) -> None:
        marks.append(time.perf_counter())

    with tempfile.TemporaryDirectory(prefix="skingen-plan-") as tmp, counter.watch():
        t0 = time.perf_counter()
        make(Path(tmp) / "calibration", progress)
        end = time.perf_counter()
    if len(marks) < 2:
        raise SkingenError("the calibration made fewer than two batches")
    return marks[0] - t0, marks[1] - marks[0], end - marks[-1], counter


def plan_sample(run: str | Path, n: int, cfg: SampleConfig = SampleConfig(), calibrate: int | None = None,
                device: str = "cpu", gpus: tuple[int, ...] = (1, 8)) -> Plan:
    """The cost of ``skingen sample RUN --n n`` with the options ``cfg``. ``calibrate``: images per calibration
    batch (default ``cfg.batch``; two such batches are made)."""
    from skingen.generation.sample_folder import sample_to_folder

    if n < 1:
        raise SkingenError("--n must be at least 1")
    b = _calibration_batch(cfg.batch, calibrate)
    startup = _process_startup_s()
    seeds = list(range(2 * b))
    made: dict[str, Any] = {}

    def make(out: Path, progress) -> None:
        from skingen.imageio import read_image
        from skingen.runs import read_json

        sample_to_folder(run, out, seeds, replace(cfg, batch=b), device=device, progress=progress)
        made["family"] = read_json(out / "sample.json")["model"]  # written just above
        made["size"] = read_image(out / "seed000000.png").shape[0]

    head, per_batch, tail, counter = _calibrate(make, b)
    plan = Plan("sample", made["family"], made["size"], n, b, device, cfg.precision,
                counter.evaluations / len(seeds), counter.pixels / len(seeds), startup, head, per_batch, tail, len(seeds))
    _add_gpu(plan, run, gpus)
    _batch_note(plan, cfg.batch)
    return plan


def plan_inpaint(run: str | Path, source: str | Path, n: int, cfg: InpaintConfig = InpaintConfig(),
                 runs: int | None = None, calibrate: int | None = None, device: str = "cpu",
                 gpus: tuple[int, ...] = (1, 8)) -> Plan:
    """The cost of ``n`` iterative-inpainting images of the crops of ``source`` with the options ``cfg`` (``runs``
    per crop; default: as many as ``n`` needs; the calibration makes one run per crop)."""
    from skingen.generation.inpaint_folder import inpaint_to_folder
    from skingen.generation.job import source_dataset

    if n < 1:
        raise SkingenError("--n must be at least 1")
    b = _calibration_batch(cfg.batch, calibrate)
    startup = _process_startup_s()
    reports = []

    def make(out: Path, progress) -> None:
        reports.append(inpaint_to_folder(run, source, out, replace(cfg, n=2 * b, batch=b, runs=1), device=device,
                                         progress=progress))

    head, per_batch, tail, counter = _calibrate(make, b)
    report = reports[0]
    if report.images < 2 * b:
        raise SkingenError(f"{source} has only {report.sources} crops; calibrating needs {2 * b} (lower --calibrate)")
    from skingen.generation.backends import load_filler

    loaded = load_filler(run, device="cpu")
    parents = source_dataset(source, loaded.size)
    crops = len(parents)
    runs = runs or math.ceil(n / crops)
    size = loaded.size or parents[0]["image"].shape[-1]  # a backend that works at any size: the crops' own
    plan = Plan("inpaint", loaded.family, size, n, b, device, cfg.precision, report.evaluations_per_image,
                report.pixels_per_image, startup, head, per_batch, tail, report.images)
    plan.notes.append(f"{n} images = {math.ceil(n / runs)} crops x {runs} runs (the source has {crops} crops); "
                      f"evaluations and pixels are the mean of the {report.images} calibration runs")
    if math.ceil(n / runs) > crops:
        plan.notes.append(f"--runs {runs} gives at most {crops * runs} images from {crops} crops")
    _add_gpu(plan, run, gpus)
    _batch_note(plan, cfg.batch)
    return plan


def _calibration_batch(batch: int, calibrate: int | None) -> int:
    if batch < 1 or (calibrate is not None and calibrate < 1):
        raise SkingenError("--batch and --calibrate must be at least 1")
    return min(batch, calibrate) if calibrate else batch


def _batch_note(plan: Plan, batch: int) -> None:
    if plan.batch != batch:
        plan.notes.append(f"calibrated with batches of {plan.batch} (--calibrate), the job uses {batch}: "
                          f"larger batches are usually a little faster per image")


def gpu_figures(run: str | Path | None = None) -> list[dict[str, str]]:
    """Measured GPU rows (:data:`GPU_COLUMNS`) from the package's table and the run's ``gpu_figures.csv``."""
    rows = []
    tables = [PACKAGE_GPU_TABLE]
    if run is not None:
        tables += [Path(run) / "gpu_figures.csv", Path(run).parent / "gpu_figures.csv"]
    for table in tables:
        if table.is_file():
            with open(table, newline="", encoding="utf-8") as fh:
                rows += [r for r in csv.DictReader(fh) if r.get("seconds_per_image")]
    return rows


def _add_gpu(plan: Plan, run: str | Path, gpus: tuple[int, ...]) -> None:
    rows = [r for r in gpu_figures(run) if r["kind"] == plan.kind and r["family"] == plan.family
            and int(r["size"]) == plan.size]
    if not rows:
        plan.notes.append(f"no measured GPU figure for {plan.family} at {plan.size} px (none has been measured yet: "
                          f"run scripts/device_check.py on a GPU machine); no GPU time is predicted")
    for r in rows:
        s = float(r["seconds_per_image"])
        plan.gpu.append({**r, "predicted_s": {g: plan.images * s / g for g in gpus}})


def plan_job(run: str | Path, n: int, kind: str = "auto", batch: int = 16, calibrate: int | None = None,
             device: str = "cpu", precision: str = "fp32", gpus: tuple[int, ...] = (1, 8), source: str | None = None,
             solver_steps: int | None = None, region: dict[str, Any] | None = None, runs: int | None = None,
             masks: str | None = None, layouts: Any = None, guidance: float | None = None) -> Plan:
    """``skingen plan``: the plan of a ``sample`` or ``inpaint`` job (``kind``; ``auto``: :func:`default_kind`).
    inpaint: ``region`` holds the :class:`~skingen.inpaint.iterative.IterativeParams` fields, ``source`` defaults to
    the run's training data; sample: ``source`` (vary these crops), ``masks``, ``layouts``, ``guidance``."""
    if kind == "auto":
        kind = default_kind(run)
    common = dict(calibrate=calibrate, device=device, gpus=gpus)
    # an option of the other kind of job would be silently ignored
    sample_only = (("--masks", masks), ("--layouts", layouts), ("--guidance", guidance))
    inpaint_only = (("--steps, --shape, --region-size or --context", region), ("--runs", runs))
    other, wrong = ("sample", sample_only) if kind == "inpaint" else ("inpaint", inpaint_only)
    if kind in ("inpaint", "sample") and any(v for _, v in wrong):
        raise SkingenError(f"{' and '.join(o for o, v in wrong if v)} apply to {other} plans; {run} makes a "
                           f"{kind} plan")
    if kind == "inpaint":  # region: the options given; the rest from the checkpoint's run_params, else the defaults
        cfg = InpaintConfig(params=dict(region or {}), solver_steps=solver_steps, batch=batch, precision=precision)
        return plan_inpaint(run, source or training_data_of(run), n, cfg, runs=runs, **common)
    if kind == "sample":
        cfg = SampleConfig(batch=batch, source=source, masks=masks, layouts=layouts, guidance=guidance,
                           solver_steps=solver_steps, precision=precision)
        return plan_sample(run, n, cfg, **common)
    raise SkingenError(f"--kind must be sample, inpaint or auto, got '{kind}'")


def default_kind(run: str | Path) -> str:
    """``inpaint`` for what an inpainting backend drives (an inpainting model, a RePaint / SD folder, OpenCV), else
    ``sample``: the one test :func:`skingen.generation.backends.inpaints`, as ``skingen inpaint`` decides."""
    from skingen.generation.backends import inpaints

    return "inpaint" if inpaints(run) else "sample"


def training_data_of(run: str | Path) -> str:
    """The data folder the run was trained on (the default source crops of an inpainting plan)."""
    from skingen.registry import load_model
    from skingen.generation.sample_folder import training_data

    return str(training_data(load_model(run)[1]))


def plan_table(p: Plan):
    """The plan as a rich table (its notes are printed separately)."""
    from rich.table import Table

    table = Table(title=f"plan: {p.images} {p.family} images at {p.size} px ({p.kind}, batch {p.batch}, {p.precision})",
                  show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("model evaluations", f"{p.evaluations_per_image:.1f} per image, "
                  f"{p.evaluations_per_image * p.images:,.0f} in all")
    table.add_row("pixels through the network", f"{p.pixels_per_image / 1e6:.3f} M per image, "
                  f"{p.pixels_per_image * p.images / 1e9:.2f} G in all")
    table.add_row("calibration", f"{p.calibration_images} images: start-up {p.startup_s:.1f} s, first batch "
                  f"{p.head_s:.1f} s (load + warm-up), then {p.per_batch_s:.2f} s per batch")
    table.add_row(f"this machine ({p.device}, 1 process)", f"{p.seconds_per_image:.3f} s/image, "
                  f"{3600 / p.seconds_per_image:,.0f} images/hour: {duration(p.predicted_s)} for {p.images}")
    for g in p.gpu:
        for count, seconds in g["predicted_s"].items():
            table.add_row(f"{count} x {g['card']} ({g['precision']}, measured {g['measured']})",
                          f"{duration(seconds)} (model time, work split evenly)")
    return table


def duration(seconds: float) -> str:
    """``95`` -> ``'95 s'``, ``5400`` -> ``'90.0 min'``, then hours, then days."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
