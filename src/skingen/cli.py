"""The ``skingen`` command line: thin wrappers over library calls, one sub-command per verb."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from skingen import __version__
from skingen.errors import SkingenError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Synthetic skin-illness images to augment small clinical data sets.")
console = Console(stderr=True, soft_wrap=True)  # soft wrap: an error stays one line


@contextmanager
def _user_errors() -> Iterator[None]:
    """Bad input and refusals end in one clear line and exit code 1, not a traceback."""
    try:
        yield
    except SkingenError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/] — nothing half-written was kept")
        raise typer.Exit(130) from None


@contextmanager
def _progress(description: str) -> Iterator:
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int, stage: str | None = None) -> None:
            bar.update(task, completed=done, total=total, **({"description": stage} if stage else {}))

        yield update


def _default_workers() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


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
    size: Optional[int] = typer.Option(None, help="Crop size in px [default: 256]."),
    split: Optional[str] = typer.Option(None, help="train,val,test fractions [default: 0.8,0.1,0.1]."),
    seed: Optional[int] = typer.Option(None, help="Seed for the split [default: 0]."),
    label: str = typer.Option("", help="Label for photos of a flat folder (class trees use folder names)."),
    image_column: str = typer.Option("image", help="CSV input: column with the image path."),
    group_column: Optional[str] = typer.Option(None, help="CSV input: column used as source_id / split group (e.g. near_dup_group)."),
    exclude_column: Optional[str] = typer.Option(None, help="CSV input: skip rows where this column is non-empty (e.g. content_flag)."),
    root: Optional[Path] = typer.Option(None, help="CSV input: folder the paths are relative to [default: the CSV's folder]."),
    config: Optional[Path] = typer.Option(None, help="YAML file with PrepareConfig keys."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key, e.g. --set crop.max_per_photo=6."),
    workers: int = typer.Option(0, help="Worker processes [default: CPU count, at most 8]."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config and stop."),
) -> None:
    """Cut photos into square crops with lesion and coloured masks, a manifest and grouped splits."""
    from skingen.config import load_config, to_dict
    from skingen.data.prepare import PrepareConfig, prepare as run_prepare
    from skingen.data.sources import CsvColumns

    with _user_errors():
        overrides = list(set_)
        if size is not None:
            overrides.append(f"size={size}")
        if split is not None:
            overrides.append(f"split=[{split}]")
        if seed is not None:
            overrides.append(f"seed={seed}")
        if auto_mask:
            overrides.append("auto_mask=true")
        cfg = load_config(PrepareConfig, config, overrides)
        if dry_run:
            import yaml

            print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
            return
        columns = CsvColumns(image=image_column, group=group_column, exclude=exclude_column)
        with _progress("prepare") as progress:
            report = run_prepare(src, out, cfg, masks=masks, label=label, columns=columns, root=root,
                                 workers=workers or _default_workers(), progress=progress)
        _print_prepare_summary(report)


def _print_prepare_summary(report) -> None:
    table = Table(title=f"prepared {report.out}", show_header=True)
    for col in ("photos found", "photos used", "groups", "train", "val", "test", "skipped", "seconds"):
        table.add_column(col, justify="right")
    table.add_row(str(report.photos_found), str(report.photos_used), str(report.groups),
                  *(str(report.crops[s]) for s in ("train", "val", "test")), str(len(report.skipped)),
                  f"{report.seconds:.1f}")
    console.print(table)
    if report.dropped_crops:
        console.print("crops dropped: " + ", ".join(f"{k}: {v}" for k, v in sorted(report.dropped_crops.items())))
    if report.skipped:
        console.print(f"skipped {len(report.skipped)} file(s) (also in {report.out / 'skipped.csv'}):")
        for s in report.skipped:
            console.print(f"  {s.path}: {s.reason}", highlight=False, markup=False)


@app.command()
def analyze(
    data: Path = typer.Argument(..., help="Prepared data folder (with manifest.csv)."),
    out: Path = typer.Option(..., "--out", help="New folder for the report (must not exist or be empty)."),
    no_autoencoder: bool = typer.Option(False, "--no-autoencoder", help="Skip the hard-image autoencoder (fast)."),
    config: Optional[Path] = typer.Option(None, help="YAML file with AnalyzeConfig keys."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key, e.g. --set outliers.z=3 --set autoencoder.epochs=10."),
    workers: int = typer.Option(0, help="Worker processes for the statistics [default: CPU count, at most 8]."),
    device: str = typer.Option("auto", help="Device for the autoencoder: auto (CUDA when available), cpu, cuda, cuda:1, ..."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config and stop."),
) -> None:
    """Report colour distributions, outliers, skin tone (ITA) and hard images; add ITA to the manifest."""
    from skingen.analysis.report import AnalyzeConfig, analyze as run_analyze
    from skingen.config import load_config, to_dict

    with _user_errors():
        cfg = load_config(AnalyzeConfig, config, list(set_))
        if dry_run:
            import yaml

            print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
            return
        if device == "auto":
            device = _auto_device() if not no_autoencoder else "cpu"
        with _progress("analyze") as progress:
            res = run_analyze(data, out, cfg, autoencoder=not no_autoencoder, workers=workers or _default_workers(),
                              device=device, progress=progress)
    table = Table(title=f"analysed {res.images} images of {data} in {res.seconds['total']:.1f} s", show_header=True)
    table.add_column("ITA category")
    table.add_column("images", justify="right")
    table.add_column("outliers")
    table.add_column("images", justify="right")
    outliers = list(res.outliers.items())
    for i, (name, count) in enumerate(res.ita_counts.items()):
        what, n = outliers[i] if i < len(outliers) else ("", "")
        table.add_row(name, str(count), what.replace("_", " "), str(n))
    console.print(table)
    console.print(f"original photos: {res.photos_note}", highlight=False, markup=False)
    console.print(("" if res.manifest_updated else "[yellow]warning:[/] ") + res.manifest_note, highlight=False)
    console.print(f"open {res.out / 'report.html'}", highlight=False)


def _auto_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@app.command("demo-data")
def demo_data(
    out: Path = typer.Argument(..., help="New folder for the demo photos, masks and truth.csv."),
    n: int = typer.Option(200, help="Number of photos."),
    seed: int = typer.Option(0, help="Seed; the same seed gives the same photos."),
) -> None:
    """Write procedural photos of maculopapular rash with exact masks and true skin colour."""
    from skingen.data.demo import write_demo_data

    with _user_errors(), _progress("demo-data") as progress:
        write_demo_data(out, n=n, seed=seed, progress=progress)
    console.print(f"wrote {n} demo photos to {out}")


@app.command()
def demo(
    out: Optional[Path] = typer.Option(None, help="New folder for everything [default: the next demo_out/NNNNN-demo]."),
    n: int = typer.Option(60, help="Number of demo photos."),
    size: int = typer.Option(64, help="Crop size in px (small so the demo is fast on a CPU)."),
    seed: int = typer.Option(0, help="Seed."),
) -> None:
    """Run the whole chain end to end on demo data and write an HTML summary."""
    from skingen.chain import run_demo

    from skingen.runs import new_run_dir

    with _user_errors():
        out = out if out is not None else new_run_dir("demo_out", "demo")
        path = run_demo(out, n=n, size=size, seed=seed, workers=_default_workers(),
                        log=lambda s: console.print(f"[bold]demo[/] {s}", highlight=False))
    console.print(f"open {path}")


def main() -> None:
    app(prog_name="skingen")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
