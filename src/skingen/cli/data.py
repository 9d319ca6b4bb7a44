"""Data commands: prepare, analyze, demo-data, demo."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from skingen.config import comma_list, with_options
from skingen.console import (console, default_device, default_workers, print_config, print_table, progress_bar,
                             user_errors)

from skingen.cli.app import app
from skingen.cli.options import SEED, Cpu, DryRun, Workers


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
    workers: Workers = 0,
    max_pixels: Optional[int] = typer.Option(None, "--max-pixels", help="Skip images above this many pixels, "
                                             "checked before decoding (default: 64000000, i.e. 64 MP)."),
    faces: Optional[str] = typer.Option(None, help="Faces found by the face detector: drop-crops (drop every crop touching "
                                        "one), drop-photos or keep (default: drop-crops)."),
    faces_list: Optional[Path] = typer.Option(None, "--faces-list", help="CSV (file, face) of photos a person marked as "
                                              "showing a face (yes/partial): skipped whatever the detector says."),
    dry_run: DryRun = False,
) -> None:
    """Cut photos into square crops with lesion and coloured masks, a manifest and grouped splits."""
    from skingen.config import load_config
    from skingen.data.prepare import PrepareConfig, console_rows, prepare as run_prepare, summary_lines
    from skingen.data.sources import CsvColumns

    with user_errors():
        cfg = load_config(PrepareConfig, config, with_options(
            set_, size=size, split=comma_list(split), seed=seed, auto_mask=True if auto_mask else None,
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


@app.command()
def analyze(
    data: Path = typer.Argument(..., help="Prepared data folder (with manifest.csv)."),
    out: Path = typer.Option(..., "--out", help="New folder for the report (must not exist or be empty)."),
    no_autoencoder: bool = typer.Option(False, "--no-autoencoder", help="Skip the hard-image autoencoder (fast)."),
    config: Optional[Path] = typer.Option(None, help="YAML file with AnalyzeConfig keys."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key, e.g. --set outliers.z=3 --set autoencoder.epochs=10."),
    workers: Workers = 0,
    cpu: Cpu = False,
    dry_run: DryRun = False,
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
    seed: int = typer.Option(0, **SEED, help="Seed; the same seed gives the same photos."),
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
    seed: int = typer.Option(0, **SEED, help="Seed."),
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
