"""Generation commands: train, sample, inpaint, tone, merge, plan."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from skingen.config import load_config, parse_counts, to_dict
from skingen.console import (console, default_device, is_main_process, note, print_config, progress_bar, status,
                             user_errors, warning)
from skingen.errors import SkingenError

from skingen.cli.app import app
from skingen.cli.options import (SEED, MODEL_PLACES, Batch, Cpu, DryRun, Guidance, Layouts, Masks, NoEma, Precision,
                                 RegionSize, Shard, SolverSteps, renamed)


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
    init: Optional[str] = typer.Option(None, help=f"Start from this model's weights ({MODEL_PLACES}): its model "
                                       "config is the base, every tensor must match."),
    minutes: Optional[float] = typer.Option(None, help="Stop after this many minutes of training with a final checkpoint "
                                            "(continue later with --resume)."),
    pipeline: Optional[str] = typer.Option(None, help="sd-lora: the pretrained Stable Diffusion pipeline to fine-tune, "
                                           "a local folder (save_pretrained layout) or a hub id (text-to-image or "
                                           "inpainting)."),
    cpu: Cpu = False,
    dry_run: DryRun = False,
) -> None:
    """Train a generative model; every tick prints one status line, snapshots write checkpoints and grids.

    `skingen train sd-lora --pipeline DIR_OR_ID --data DATA` fine-tunes a LoRA of a pretrained Stable Diffusion
    pipeline instead (--set train.steps, train.rank, train.lr, ...; docs/sd-lora.md).
    Several GPUs or machines: `accelerate launch -m skingen.cli train ...`.
    """
    from skingen.run_folder import RunFolder
    from skingen.train import loop

    with user_errors():
        if any(s.replace("'", "").replace('"', "") == f"train.mixed_precision={loop.OLD_FP32}" for s in set_):
            note(f"train.mixed_precision={loop.OLD_FP32} is deprecated and goes in the next release: use fp32")
        if model == "sd-lora" or pipeline is not None:
            run = _train_sd_lora(model, data, config, list(set_), outdir, desc, resume, init, minutes, pipeline, cpu,
                                 dry_run)
            if run is None:
                return
        elif resume is not None:
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


def _train_sd_lora(model, data, config, overrides, outdir, desc, resume, init, minutes, pipeline, cpu, dry_run):
    """``train sd-lora``: the run folder, or None after --dry-run."""
    from skingen.data.imagesets import parse_data_spec
    from skingen.train import sd_lora

    if model != "sd-lora":
        raise SkingenError(f"--pipeline applies to sd-lora only, not '{model}'")
    if init is not None:
        raise SkingenError("--init does not apply to sd-lora (--pipeline is the starting point)")
    if resume is not None:
        if config is not None or pipeline is not None or data is not None:
            raise SkingenError("--resume keeps the run's config, pipeline and data; drop --config, --pipeline, --data")
        steps = sd_lora.resume_steps(overrides)
        with progress_bar("train") as progress:
            return sd_lora.resume_sd_lora(resume, steps=steps, cpu=cpu, minutes=minutes, progress=progress, log=status)
    if pipeline is None or data is None:
        raise SkingenError("sd-lora needs --pipeline DIR_OR_ID and --data DATA (a folder made by `skingen prepare`)")
    folder, split = parse_data_spec(str(data))
    cfg = sd_lora.resolve_config(config, overrides + ([f"train.split={split}"] if split else []))
    if dry_run:
        print_config(cfg)
        return None
    with progress_bar("train") as progress:
        return sd_lora.train_sd_lora(pipeline, folder, cfg, outdir=outdir, desc=desc, cpu=cpu, minutes=minutes,
                                     progress=progress, log=status)


@app.command()
def sample(
    run: Path = typer.Argument(..., help=f"The model: {MODEL_PLACES}."),
    out: Path = typer.Option(..., "--out", help="New folder for the images (must not exist or be empty)."),
    n: Optional[int] = typer.Option(None, "--n", "--images", help="Number of images (seeds 0..n-1) (under torchrun "
                                    "write --images: torchrun's parser takes --n for its own --nnodes)."),
    seeds: Optional[str] = typer.Option(None, help="Seed list, e.g. 0-99 or 3,7,100-120."),
    batch: Batch = 16,
    from_: Optional[str] = typer.Option(None, "--from", help="Vary real crops of DATA[:split] instead of sampling from scratch."),
    strength: Optional[float] = typer.Option(None, help="How far to move from the real crop (with --from) (default: the model's)."),
    label: Optional[str] = typer.Option(None, help="Class for label-conditional models (default: classes in turn by seed)."),
    masks: Masks = None,
    layouts: Layouts = False,
    ita: Optional[str] = typer.Option(None, help="With --layouts: healthy-skin ITA range MIN..MAX in degrees "
                                      "(e.g. -60..-30) or a category (very light, light, intermediate, tan, brown, dark)."),
    coverage: Optional[str] = typer.Option(None, help="With --layouts: lesion fraction range MIN..MAX (default: 0.03..0.13)."),
    layout: Optional[list[str]] = typer.Option(None, help="With --layouts: any layout parameter, e.g. --layout spread=1 "
                                               "(see skingen.data.layouts.LayoutParams)."),
    guidance: Guidance = None,
    solver_steps: SolverSteps = None,
    no_ema: NoEma = False,
    precision: Precision = "fp32",
    cpu: Cpu = False,
    shard: Shard = None,
    channels_last: bool = typer.Option(False, "--channels-last", help="Channels-last memory layout (GPU convolutions)."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the networks (pays off on long runs)."),
) -> None:
    """Generate images named by seed, with a synthetic manifest.csv and the measured seconds per image.

    Several processes: `torchrun --nproc_per_node N -m skingen.cli sample ...` (or `accelerate launch -m
    skingen.cli sample ...`) share the seeds and write one folder, byte-identical to a one-process run.
    """
    from skingen.data.layouts import layout_options
    from skingen.generation.sample_folder import SampleConfig, sample_to_folder
    from skingen.seeding import seeds_of

    with user_errors():
        params = layout_options(layouts, ita, coverage, layout or [])
        cfg = load_config(SampleConfig, base=dict(
            batch=batch, source=from_, strength=strength, label=label, masks=masks, layouts=params and to_dict(params),
            guidance=guidance, solver_steps=solver_steps, ema=not no_ema, precision=precision, shard=shard,
            channels_last=channels_last, compile=compile_))
        with progress_bar("sample") as progress:
            report = sample_to_folder(run, out, seeds_of(n, seeds), cfg, device=default_device(cpu), progress=progress)
    if is_main_process():  # one line, not one per process
        status(report.summary(cfg.precision))
        for text in report.warnings:
            warning(text)


@app.command()
def inpaint(
    run: str = typer.Argument(..., help="What repaints the regions, for one of the inpainting backends (`skingen list` "
                              "shows them all): an `inpaint` run or checkpoint or a shipped model's name "
                              "(measles-inpaint: no training needed), a diffusers folder (RePaint, Stable "
                              "Diffusion inpainting) or opencv:telea (training-free)."),
    from_: str = typer.Option(..., "--from", help="Source crops: DATA[:split] (default split: train)."),
    out: Path = typer.Option(..., "--out", help="New folder for the results (must not exist or be empty)."),
    runs: int = typer.Option(1, help="Runs per source crop (different seeds give different images)."),
    steps: Optional[int] = typer.Option(None, help="Regions inpainted per run (at most; --coverage or --repeat-cap may "
                                        "end it sooner) [default: 10]. Unset run options take the model's recorded "
                                        "settings (a shipped model's measured ones), else the defaults shown."),
    n: Optional[int] = typer.Option(None, "--n", "--crops", help="Use only the first N crops of the split (under torchrun "
                                    "write --crops: torchrun's parser takes --n for its own --nnodes)."),
    shape: Optional[str] = typer.Option(None, help="Region shape: box, blob or mixed [default: blob]."),
    region_size: RegionSize = None,
    region_size_end: Optional[float] = typer.Option(None, "--region-size-end", help="Region side at the last step "
                                                    "(linear change) (default: --region-size)."),
    size: Optional[float] = typer.Option(None, "--size", hidden=True, help="Old name of --region-size."),
    size_end: Optional[float] = typer.Option(None, "--size-end", hidden=True, help="Old name of --region-size-end."),
    placement: Optional[str] = typer.Option(None, help="random, or least-covered (avoids repainting the same pixels) "
                                            "[default: least-covered]."),
    coverage: Optional[float] = typer.Option(None, help="End a run once this fraction of pixels has been repainted."),
    repeat_cap: Optional[int] = typer.Option(None, help="Never repaint a pixel more than this many times."),
    context: Optional[float] = typer.Option(None, help="Denoise a window this many times the region side (0 = the "
                                            "whole image) [default: 2]."),
    feather: Optional[float] = typer.Option(None, help="Fade each fill in from the region's border over this fraction of "
                                            "its side (<= 1) or pixels (> 1) (0 = hard edge) "
                                            "[default: 0.125]."),
    solver_steps: SolverSteps = None,
    seed: int = typer.Option(0, help="Seed of the first run (run j of crop i gets seed + i*runs + j)."),
    batch: Batch = 16,
    no_ema: NoEma = False,
    precision: Precision = "fp32",
    cpu: Cpu = False,
    backend: str = typer.Option("auto", help="auto (the backend RUN names) or a backend's name (`skingen list`)."),
    prompt: list[str] = typer.Option([], help="sd: prompt for every class, or LABEL=TEXT for one (repeatable; "
                                     "default: a small per-class table)."),
    negative_prompt: Optional[str] = typer.Option(None, help="sd: negative prompt (default: drawing, cartoon, text, ...)."),
    guidance: Guidance = None,
    strength: Optional[float] = typer.Option(None, help="sd: 1 repaints a region from noise (default); < 1 keeps some of it."),
    resolution: Optional[int] = typer.Option(None, help="sd: side windows are resized to (default: the pipeline's, 512 for SD 1.5/2)."),
    attention: Optional[str] = typer.Option(None, help="sd: sdpa (default) or slicing (less GPU memory, slower)."),
    cpu_offload: bool = typer.Option(False, "--cpu-offload", help="sd: keep each model on the GPU only while it runs."),
    shard: Shard = None,
) -> None:
    """Iterative inpainting: turn real crops into new images by repainting one region per step.

    Several processes: `torchrun --nproc_per_node N -m skingen.cli inpaint ...` share the runs.
    """
    from skingen.generation.inpaint_folder import InpaintConfig, inpaint_to_folder
    from skingen.generation.backends.sd import sd_options

    with user_errors():
        sd = sd_options(prompt, negative_prompt, guidance, strength, resolution, attention, cpu_offload)
        cfg = load_config(InpaintConfig, base=dict(
            params=_given(steps=steps, shape=shape, size=renamed("--size", size, "--region-size", region_size),
                          size_end=renamed("--size-end", size_end, "--region-size-end", region_size_end),
                          placement=placement,
                          coverage=coverage, repeat_cap=repeat_cap, feather=feather, context=context),
            runs=runs, n=n, seed=seed, solver_steps=solver_steps, batch=batch, ema=not no_ema, precision=precision,
            backend=backend, sd=sd and to_dict(sd), shard=shard))
        with progress_bar("inpaint") as progress:
            report = inpaint_to_folder(run, from_, out, cfg, device=default_device(cpu), progress=progress)
    if is_main_process():
        status(report.summary(cfg.precision, cfg.runs))


@app.command()
def tone(
    data: str = typer.Argument(..., help="Source crops: DATA[:split] (default split: train)."),
    ita: str = typer.Option(..., "--ita", help="Target healthy-skin ITA band MIN..MAX in degrees (e.g. -40..10) or a "
                            "category (tan, brown, dark, ...); crops already in or below it are skipped."),
    out: Path = typer.Option(..., "--out", help="New folder for the toned crops (must not exist or be empty)."),
    per_image: int = typer.Option(1, "--per-image", min=1, max=1000, help="Toned outputs per source crop (each with "
                                  "its own target drawn from the band)."),
    method: str = typer.Option("melanin", help="melanin (add melanin density in optical density, keep the "
                               "haemoglobin: the rash) or lab (the naive baseline: shift L* and b*)."),
    seed: int = typer.Option(0, **SEED, help="Seed of the first output (output k of crop i: seed + i*per_image + k)."),
    n: Optional[int] = typer.Option(None, "--n", min=1, help="Use only the first N crops of the split."),
) -> None:
    """Darker skin: move the healthy skin of real crops to a target ITA, keep the rash and every non-skin pixel."""
    from skingen.data.skintone import ita_range
    from skingen.generation.tone_folder import tone_to_folder

    with user_errors():
        with progress_bar("tone") as progress:
            report = tone_to_folder(data, out, ita_range(ita), per_image=per_image, method=method, seed=seed, n=n,
                                    progress=progress)
    status(report.summary())


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
    batch: Batch = 16,
    calibrate: Optional[int] = typer.Option(None, help="Images per calibration batch (two are made) (default: --batch)."),
    from_: Optional[str] = typer.Option(None, "--from", help="inpaint: source crops DATA[:split] (default: the run's "
                                        "training data); sample: vary these crops."),
    masks: Masks = None,
    layouts: Layouts = False,
    guidance: Guidance = None,
    solver_steps: SolverSteps = None,
    runs: Optional[int] = typer.Option(None, help="inpaint: runs per crop (default: as many as --n needs)."),
    steps: Optional[int] = typer.Option(None, help="inpaint: regions per run (unset region options: the model's recorded "
                                        "settings, else the defaults shown) [default: 10]."),
    shape: Optional[str] = typer.Option(None, help="inpaint: region shape: box, blob or mixed [default: blob]."),
    region_size: RegionSize = None,
    context: Optional[float] = typer.Option(None, help="inpaint: window / region side (0 = the whole image) [default: 2]."),
    precision: Precision = "fp32",
    gpus: str = typer.Option("1,8", help="GPU counts to predict for (from measured GPU figures only)."),
    cpu: Cpu = False,
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the plan as JSON to this new file."),
) -> None:
    """Predict a generation job's model evaluations, pixels and wall time from a short timed calibration."""
    from skingen.data.layouts import layout_options
    from skingen.generation.plan import plan_job, plan_table
    from skingen.runs import write_json

    with user_errors():
        result = plan_job(run, n, kind, batch=batch, calibrate=calibrate, device=default_device(cpu), precision=precision,
                          gpus=tuple(parse_counts(gpus, "--gpus", most=4096)), source=from_, solver_steps=solver_steps,
                          region=_given(steps=steps, shape=shape, size=region_size, context=context), runs=runs,
                          masks=masks, layouts=layout_options(layouts, None, None, []), guidance=guidance)
        if json_out is not None:
            if json_out.exists():
                raise SkingenError(f"{json_out} already exists; choose a new file")
            write_json(json_out, result.to_dict())
    console.print(plan_table(result))
    for text in result.notes:
        note(text)


def _given(**options):
    """The iterative-inpainting options the user gave (None = unset: the model's recorded settings, else the
    defaults); ``context`` 0 means the whole image (None in IterativeParams)."""
    given = {k: v for k, v in options.items() if v is not None}
    if "context" in given:
        given["context"] = given["context"] or None
    return given
