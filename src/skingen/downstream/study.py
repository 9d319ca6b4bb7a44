"""``skingen downstream``: does augmentation help a skin-illness classifier?

Arms (each trained once per seed and per fraction of the real training data, same budget of images seen):
``real``; ``real+classical`` (torchvision transforms, :mod:`skingen.downstream.train`); for each
synthetic set and ratio R > 0: ``real+<set>@R`` and (unless ``combined`` is off) ``real+classical+<set>@R``.
Classifiers: trained networks (:mod:`skingen.downstream.train`) or linear probes on frozen pretrained
features (``probe:NAME``, :mod:`skingen.downstream.probe`).

- Fractions: per class, the real training groups (``source_id``) in a seeded order are taken until the
  fraction of that class's crops is reached (at least one group); the order depends on the seed only,
  so a smaller fraction is a subset of a larger one.
- Ratio R: synthetic images per real training image *of the same class*, for the classes the set
  covers (a measles generator adds measles only). Children of real images (``parent_id``) are only
  used when their parent (or, for a parent from another data folder, its photo group) is in the chosen fraction. When a set has too few images, all are used and
  the achieved ratio is recorded (``ratio_actual``).
- Evaluation: the real test split only (synthetic images never reach val or test; see
  :mod:`skingen.downstream.augment` for the leakage checks). Model selection on the real val split.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Callable

import numpy as np
import torch

from skingen.config import Range, check_fields
from skingen.data.datasets import ManifestDataset
from skingen.downstream.augment import SyntheticSet, check_leakage, load_synthetic, select_synthetic
from skingen.downstream.cells import ClassifierCells
from skingen.downstream.probe import ProbeFeatures, is_probe, make_probe_extractor, train_probe
from skingen.stats import metric_values
from skingen.downstream.train import TrainConfig, TrainedClassifier, predict, train_classifier
from skingen.eval.cache import FeatureCache
from skingen.errors import SkingenError
from skingen.imageio import read_image
from skingen.seeding import numpy_rng


@dataclass(frozen=True)
class StudyConfig:
    fractions: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)
    seeds: Annotated[int, Range(1, 1000)] = 5
    ratios: tuple[float, ...] = (0, 1, 3, 10)
    classical: bool = True  # include the classical-augmentation arms
    combined: bool = True  # with classical: also the real+classical+SET@R arms (synthetic and classical together)
    classes: tuple[str, ...] = ()  # study only these classes (e.g. measles, chickenpox, monkeypox); () = all
    # Side (fraction of the image side) of a bottom-left square filled with mid-grey in every image, real and
    # synthetic: hides a watermark there (DermNet's sits at about x 9-27%, y 68-92% of a 640x480 photo,
    # x 0-19% of its centred square crop); 0 = off.
    blank_corner: Annotated[float, Range(0, 1, open_hi=True)] = 0.0
    n_boot: Annotated[int, Range(1, 1_000_000)] = 1000  # bootstrap resamples for the confidence intervals
    feature_cache: bool = True  # probes: keep features in the evaluate feature cache ($SKINGEN_CACHE_DIR)
    # trained classifiers: keep each finished one there too, so a stopped study, run again, trains only the
    # missing ones (:mod:`skingen.downstream.cells`)
    classifier_cache: bool = True
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        check_fields(self)  # the ranges also when built in code (load_config checks them too)
        if not self.fractions or any(not 0 < f <= 1 for f in self.fractions):
            raise SkingenError(f"fractions must be in (0, 1], got {list(self.fractions)}")
        if any(r < 0 for r in self.ratios):
            raise SkingenError(f"ratios must be >= 0, got {list(self.ratios)}")


@dataclass(frozen=True)
class Arm:
    name: str
    classical: bool
    synthetic: str = ""  # set name
    ratio: float = 0.0


@dataclass
class Images:
    """Images of one source at the study size: ``uint8 [N,3,S,S]``, labels ``int64 [N]`` and their rows;
    for a probe also their frozen features ``f [N,D]`` and those of their classical views ``views [V,N,D]``."""
    x: torch.Tensor
    y: torch.Tensor
    rows: list[dict[str, str]]
    f: np.ndarray | None = None
    views: np.ndarray | None = None

    def subset(self, index: list[int]) -> "Images":
        idx = torch.as_tensor(index, dtype=torch.long)
        return Images(self.x[idx], self.y[idx], [self.rows[i] for i in index],
                      None if self.f is None else self.f[index], None if self.views is None else self.views[:, index])


@dataclass
class StudyResult:
    labels: tuple[str, ...]
    arms: list[Arm]
    runs: list[dict]  # one record per (arm, fraction, seed)
    probs: dict[tuple[str, float], np.ndarray]  # (arm, fraction) -> [seeds, N_test, k]
    test: Images
    best: TrainedClassifier | None  # None for probes (nothing to save as a classifier checkpoint)
    best_run: dict
    synthetic: list[SyntheticSet]
    seconds: float
    feature_seconds: float = 0.0  # probes: time spent extracting features (cache misses)
    config: StudyConfig | None = None  # what ran, for the report
    data: str = ""  # the real data folder


def arms_for(cfg: StudyConfig, set_names: list[str]) -> list[Arm]:
    arms = [Arm("real", False)] + ([Arm("real+classical", True)] if cfg.classical else [])
    for name in set_names:
        for r in (r for r in cfg.ratios if r > 0):
            arms.append(Arm(f"real+{name}@{r:g}", False, name, r))
            if cfg.classical and cfg.combined:
                arms.append(Arm(f"real+classical+{name}@{r:g}", True, name, r))
    return arms


def load_images(folder: Path, rows: list[dict[str, str]], labels: tuple[str, ...], size: int,
                blank_corner: float = 0.0) -> Images:
    """Decode ``rows`` of ``folder`` (paths relative to it) resized to ``size`` (antialiased bilinear);
    ``blank_corner``: see :class:`StudyConfig`."""
    import torch.nn.functional as F

    from skingen.imageio import to_tensor

    xs = []
    for r in rows:
        img = to_tensor(read_image(folder / r["image"]))
        if img.shape[-2:] != (size, size):
            img = F.interpolate(img[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
        xs.append(img.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8))
    x = torch.stack(xs) if xs else torch.zeros(0, 3, size, size, dtype=torch.uint8)
    side = int(round(blank_corner * size))
    if side:
        x[:, :, size - side:, :side] = 128
    y = torch.tensor([labels.index(r["label"]) for r in rows], dtype=torch.long)
    return Images(x, y, rows)


def fraction_indices(rows: list[dict[str, str]], fraction: float, seed: int) -> list[int]:
    """Indices of a group-safe, per-class ``fraction`` of ``rows`` (module docstring)."""
    by_label: dict[str, dict[str, list[int]]] = {}
    for i, r in enumerate(rows):
        by_label.setdefault(r["label"], {}).setdefault(r["source_id"], []).append(i)
    chosen: list[int] = []
    for label in sorted(by_label):
        groups = by_label[label]
        names = sorted(groups)
        order = numpy_rng(seed, "fraction", label).permutation(len(names))
        target = fraction * sum(len(v) for v in groups.values())
        taken: list[int] = []
        for j in order:
            if taken and len(taken) >= target - 1e-9:
                break
            taken += groups[names[j]]
        chosen += taken
    return sorted(chosen)


def _synthetic_for(images: Images, real_train: Images, ratio: float, seed: int, labels: tuple[str, ...]
                   ) -> tuple[list[int], float]:
    """Indices into the synthetic ``images`` for one arm, and the achieved ratio over the covered classes."""
    present = {r["id"] for r in real_train.rows}
    # a parent from another data folder (a generator trained on its own crops of the same photos) counts by
    # its photo group; fractions take whole groups, so for parents of this folder the two tests agree
    groups = {r["source_id"] for r in real_train.rows}
    eligible = [i for i, r in enumerate(images.rows)
                if not r.get("parent_id") or r["parent_id"] in present or r.get("source_id") in groups]
    real_counts = Counter(r["label"] for r in real_train.rows)
    covered = sorted({images.rows[i]["label"] for i in eligible})
    want = {lab: int(round(ratio * real_counts.get(lab, 0))) for lab in covered}
    rows = [dict(images.rows[i], _index=str(i)) for i in eligible]
    chosen = [int(r["_index"]) for r in select_synthetic(rows, want, lambda r: r["label"], seed)]
    n_real = sum(real_counts.get(lab, 0) for lab in covered)
    return sorted(chosen), (len(chosen) / n_real if n_real else 0.0)


def run_study(data: str | Path, synthetic: list[str], cfg: StudyConfig = StudyConfig(), device: str = "cpu",
              progress: Callable[[int, int, str | None], None] | None = None,
              log: Callable[[str], None] | None = None) -> StudyResult:
    """Train and test every arm (module docstring); returns everything the report needs. ``log`` gets one
    line per trained classifier."""
    t0 = time.perf_counter()
    cfg = replace(cfg, train=cfg.train.resolved())
    data = Path(data)
    rows, labels = _study_rows(data, cfg)
    sets = [load_synthetic(s) for s in synthetic]
    names = [s.name for s in sets]
    if len(set(names)) != len(names):
        raise SkingenError(f"synthetic sets need distinct folder names, got {names}")
    for s in sets:
        check_leakage(rows, s, data)
    size = cfg.train.size
    split_rows = {s: [r for r in rows if r["split"] == s] for s in ("train", "val", "test")}
    train_all, val, test = (load_images(data, split_rows[s], labels, size, cfg.blank_corner)
                            for s in ("train", "val", "test"))
    synth_images = {s.name: load_images(s.folder, s.rows, labels, size, cfg.blank_corner) for s in sets}
    arms = arms_for(cfg, names)
    probe = is_probe(cfg.train.arch)
    feature_seconds = 0.0
    if probe:
        feature_seconds = _probe_features(cfg, device, progress, {"train": train_all, "val": val, "test": test},
                                          synth_images)
    total = len(arms) * len(cfg.fractions) * cfg.seeds
    runs, probs = [], {}
    best, best_run, done = None, {}, 0
    cells = ClassifierCells() if cfg.classifier_cache and not probe else None
    for fraction in cfg.fractions:
        for seed in range(cfg.seeds):
            real = train_all.subset(fraction_indices(train_all.rows, fraction, seed))
            trained_sets: dict[tuple, tuple[str, TrainedClassifier, np.ndarray]] = {}
            for arm in arms:
                idx, ratio_actual = ([], 0.0) if not arm.synthetic else \
                    _synthetic_for(synth_images[arm.synthetic], real, arm.ratio, seed, labels)
                # a set too small for two ratios gives them the same images: train once, report both
                key = (arm.classical, arm.synthetic, tuple(idx))
                if key not in trained_sets:
                    part = synth_images[arm.synthetic].subset(idx) if arm.synthetic else None
                    trained, p, reused = _train_arm(arm, real, part, val, test, labels, cfg, seed, device, probe,
                                                    cells)
                    trained_sets[key] = (arm.name, trained, p)
                    same_as = ""
                    note = f"{trained.seconds:.0f} s" + (" (an earlier run's, from the cache)" if reused else "")
                else:
                    same_as, trained, p = trained_sets[key]
                    note = f"same images as {same_as}"
                probs.setdefault((arm.name, fraction), []).append(p)
                record = {"arm": arm.name, "classical": arm.classical, "synthetic": arm.synthetic,
                          "ratio": arm.ratio, "ratio_actual": round(ratio_actual, 4), "fraction": fraction,
                          "seed": seed, "n_real": len(real.y), "n_synthetic": len(idx), "same_as": same_as,
                          "val_balanced_accuracy": round(trained.val_balanced_accuracy, 4),
                          "best_images": getattr(trained, "best_images", 0), "probe_C": getattr(trained, "C", ""),
                          "seconds": round(trained.seconds, 2) if not same_as else 0.0,
                          **{f"test_{k}": round(v, 4) for k, v in metric_values(test.y.numpy(), p).items()}}
                runs.append(record)
                if not probe and (best is None or trained.val_balanced_accuracy > best.val_balanced_accuracy):
                    best, best_run = trained, record
                done += 1
                if log:
                    log(f"[{done}/{total}] {arm.name} fraction {fraction:g} seed {seed}: {len(real.y)} real + "
                        f"{len(idx)} synthetic, val BA {trained.val_balanced_accuracy:.3f}, test BA "
                        f"{record['test_balanced_accuracy']:.3f}, {note}")
                if progress:
                    progress(done, total, f"{arm.name} f={fraction:g} seed {seed}")
    stacked = {k: np.stack(v) for k, v in probs.items()}
    return StudyResult(labels, arms, runs, stacked, test, best, best_run, sets, time.perf_counter() - t0, feature_seconds,
                       config=cfg, data=str(data))


def _study_rows(data: Path, cfg: StudyConfig) -> tuple[list[dict[str, str]], tuple[str, ...]]:
    """The rows of ``data`` in the study (``cfg.classes``) and its class names, checked: every image labelled,
    at least two classes, a train and a test split."""
    ds = ManifestDataset(data, split=None)
    rows = ds.rows
    if cfg.classes:
        unknown = sorted(set(cfg.classes) - set(ds.labels))
        if unknown:
            raise SkingenError(f"{data}: no class(es) {', '.join(unknown)} (classes: {', '.join(ds.labels)})")
        rows = [r for r in rows if r.get("label") in cfg.classes]
    labels = tuple(sorted({r.get("label", "") for r in rows}))
    if "" in labels:
        raise SkingenError(f"{data}: some images have no label; the downstream study needs a class for every image")
    if len(labels) < 2:
        raise SkingenError(f"{data}: the downstream study needs at least 2 classes, found {list(labels)}")
    for split in ("train", "test"):
        if not any(r["split"] == split for r in rows):
            raise SkingenError(f"{data}: no images in the {split} split")
    return rows, labels


def _probe_features(cfg: StudyConfig, device: str, progress, real: dict[str, Images], synth: dict[str, Images]
                    ) -> float:
    """Frozen features of every image (``.f``) and of the classical arms' augmented views (``.views``), computed
    once (and cached); the seconds they took."""
    if cfg.classical and cfg.train.views < 1:
        raise SkingenError("a probe's classical arms train on augmented views: set train.views >= 1 or --no-classical")
    fx = ProbeFeatures(make_probe_extractor(cfg.train.arch, device), FeatureCache() if cfg.feature_cache else None,
                       progress=progress)
    for what, imgs in (*real.items(), *synth.items()):
        imgs.f = fx.features(imgs.x, what)
        if cfg.classical and (what == "train" or (cfg.combined and what in synth)):
            imgs.views = fx.views(imgs.x, cfg.train.views, cfg.train.size, what)
    return fx.seconds


def _train_arm(arm: Arm, real: Images, synth: Images | None, val: Images, test: Images, labels: tuple[str, ...],
               cfg: StudyConfig, seed: int, device: str, probe: bool, cells: ClassifierCells | None
               ) -> tuple[TrainedClassifier, np.ndarray, bool]:
    """One arm's classifier on ``real`` + ``synth`` (its chosen synthetic images), its test probabilities and
    whether it came from ``cells`` (trained by an earlier, stopped run of the study)."""
    if probe:
        trained = _fit_probe(real, synth, val, arm.classical, len(labels))
        return trained, trained.predict(test.f), False
    x, y = (real.x, real.y) if synth is None else (torch.cat([real.x, synth.x]), torch.cat([real.y, synth.y]))
    key = cells.key(x, y, val.x, val.y, test.x, labels, cfg.train, seed, arm.classical, device) if cells else None
    stored = cells.get(key, device) if cells else None
    if stored:
        return (*stored, True)
    trained = train_classifier(x, y, val.x, val.y, labels, cfg.train, seed, classical=arm.classical, device=device)
    p = predict(trained.model, test.x, device=device, tta=bool(cfg.train.tta))
    if cells:
        cells.put(key, trained, p)
    return trained, p, False


def _fit_probe(real: Images, synth: Images | None, val: Images, classical: bool, k: int):
    """A probe on the features of ``real`` (+ ``synth``): the originals, or their classical views."""
    parts = [real] + ([synth] if synth is not None else [])
    if classical:
        feats = np.concatenate([p.views.reshape(-1, p.views.shape[-1]) for p in parts])
        ys = np.concatenate([np.tile(p.y.numpy(), p.views.shape[0]) for p in parts])
    else:
        feats = np.concatenate([p.f for p in parts])
        ys = np.concatenate([p.y.numpy() for p in parts])
    return train_probe(feats, ys, val.f, val.y.numpy(), k)
