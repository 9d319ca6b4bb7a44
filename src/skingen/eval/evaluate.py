"""``evaluate``: measure synthetic image sets against a real one in several complementary ways.

Each set is read once per evaluation (batch by batch) for all feature spaces and the SWD descriptors;
the real set's and the training set's features come from the on-disk cache when present. Metrics:

- ``fid``, ``kid``, ``prdc``: in every available feature space (``features``; Inception is skipped with
  a note when its weights cannot be had, the weights-free spaces always work); FID and KID carry the
  real-vs-real floor at the set's N (``eval/floor.py``: another real split against the reference);
- ``swd``: Laplacian-pyramid sliced Wasserstein distance (no network);
- ``memorisation``: near-copies of *training* images (the real folder's ``train`` split when it has one,
  else the real set itself; or the ``train`` set given), with the closest pairs as a contact sheet;
- ``diversity``: mean MS-SSIM over random pairs, for each synthetic set and for the real set (and between
  images of one parent crop, for sets made with several runs per crop);
- ``speed``: seconds per image recorded by ``skingen sample``;
- ``c2st`` (only when asked for): the critic, a classifier two-sample test in one feature space
  (``eval/c2st.py``), AUROC with its real-vs-real floor at the set's N; every image's out-of-fold
  P(synthetic) goes to ``c2st_scores.csv``.

A metric that cannot be computed for one set (e.g. too few images) is recorded with its error and a
note; the others go on. Library code: returns an :class:`Evaluation`, never prints.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, Callable

import numpy as np

from skingen.config import Range, Seed, check_fields
from skingen.errors import SkingenError
from skingen.eval.c2st import C2stConfig, c2st, groups_of_rows
from skingen.eval.cache import FeatureCache
from skingen.eval.diversity import DiversityConfig, ms_ssim_diversity
from skingen.eval.features import INCEPTION_MODES, FeatureExtractor, FeaturesUnavailable, make_extractor
from skingen.eval.fid import KidConfig, frechet_distance, kernel_distance
from skingen.eval.floor import FloorConfig, floor_at, floor_set
from skingen.data.imagesets import ImageSet, open_data, seconds_per_image
from skingen.seeding import numpy_rng
from skingen.eval.memorisation import MemorisationConfig, closest_pairs_sheet, memorisation
from skingen.eval.prdc import PrdcConfig, precision_recall_density_coverage
from skingen.eval.swd import SwdConfig, SwdDescriptors, relative_to_floor, swd

METRICS = ("fid", "kid", "prdc", "swd", "memorisation", "diversity", "speed", "c2st")
DEFAULT_METRICS = METRICS[:-1]  # c2st fits 25+ classifiers per set: asked for by name
FEATURE_METRICS = ("fid", "kid", "prdc", "c2st")
FLOOR_METRICS = {"fid", "kid", "c2st"}


@dataclass(frozen=True)
class EvaluateConfig:
    metrics: tuple[str, ...] = DEFAULT_METRICS
    # order matters: the first available one is the main table's (colour before pixels: see docs/evaluation.md)
    features: tuple[str, ...] = ("inception", "efficientnet-lite0", "colour", "pixels")
    inception_mode: str = "legacy-tf"  # or "clean" (see eval/features.py)
    size: Annotated[int, Range(0, 4096)] = 0  # evaluation size in px; 0 = the real set's image size
    batch_size: Annotated[int, Range(1, 4096)] = 32
    seed: Seed = 0
    kid: KidConfig = field(default_factory=KidConfig)
    prdc: PrdcConfig = field(default_factory=PrdcConfig)
    swd: SwdConfig = field(default_factory=SwdConfig)
    memorisation: MemorisationConfig = field(default_factory=MemorisationConfig)
    diversity: DiversityConfig = field(default_factory=DiversityConfig)
    floor: FloorConfig = field(default_factory=FloorConfig)
    c2st: C2stConfig = field(default_factory=C2stConfig)

    def __post_init__(self) -> None:
        check_fields(self)  # the ranges also when built in code (load_config checks them too)
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown or not self.metrics:
            raise SkingenError(f"unknown metric '{unknown[0] if unknown else ''}' (choose from {', '.join(METRICS)})")
        if self.inception_mode not in INCEPTION_MODES:  # checked here: without inception features it was ignored
            raise SkingenError(f"unknown Inception resize mode '{self.inception_mode}' (use one of "
                               f"{', '.join(INCEPTION_MODES)})")


@dataclass
class Evaluation:
    """Everything ``write_report`` needs: JSON-able ``record`` plus the contact sheets (``uint8 [H,W,3]``)."""

    record: dict
    sheets: dict[str, np.ndarray]
    notes: list[str]
    tables: dict[str, list[dict]] = field(default_factory=dict)  # file name -> rows (c2st_scores.csv)


class _Progress:
    def __init__(self, total: int, callback: Callable[[int, int], None] | None):
        self.done, self.total, self.callback = 0, total, callback

    def advance(self, n: int) -> None:
        self.done += n
        if self.callback:
            self.callback(min(self.done, self.total), self.total)


def default_train_set(real: ImageSet) -> ImageSet:
    """The memorisation reference: the real folder's ``train`` split when it has one, else the real set."""
    if real.manifest_sha256 is None or real.split == "train":
        return real
    try:
        return open_data(f"{real.root}:train")
    except SkingenError:
        return real


def _image_size(images: ImageSet) -> int:
    w, h = images.sizes()[0]
    return min(w, h)


def _size_note(images: ImageSet, size: int) -> str:
    sizes = images.sizes()
    other = sum(1 for s in sizes if s != (size, size))
    if not other:
        return ""
    shapes = sorted({f"{w}x{h}" for w, h in sizes if (w, h) != (size, size)})[:3]
    return f"{images.name}: {other} of {len(sizes)} images ({', '.join(shapes)}) centre-cropped and resized to {size} px"


def _scan(images: ImageSet, extractors: list[FeatureExtractor], size: int, cfg: EvaluateConfig,
          cache: FeatureCache | None, want_swd: bool, progress: _Progress) -> tuple[dict, list | None]:
    """Features per extractor (``float32 [N,D]``; from the cache when ``cache`` has them) and SWD descriptors."""
    feats: dict[str, np.ndarray] = {}
    keys = {}
    for ex in extractors:
        if cache is not None:
            keys[ex.name] = FeatureCache.key(images.fingerprint, len(images), size, ex.describe())
            hit = cache.get(keys[ex.name])
            if hit is not None:
                feats[ex.name] = hit
    todo = [ex for ex in extractors if ex.name not in feats]
    swd_desc = SwdDescriptors(size, cfg.swd, cfg.seed) if want_swd else None
    if todo or swd_desc:
        parts: dict[str, list] = {ex.name: [] for ex in todo}
        for start, batch in images.batches(size, cfg.batch_size):
            for ex in todo:
                parts[ex.name].append(ex(batch))
            if swd_desc:
                swd_desc.add(start, batch)
            progress.advance(len(batch))
        for ex in todo:
            feats[ex.name] = np.concatenate(parts[ex.name])
            if cache is not None:
                cache.put(keys[ex.name], feats[ex.name])
    else:
        progress.advance(len(images))
    return feats, swd_desc.finish() if swd_desc else None


def _extractors(cfg: EvaluateConfig, inception_weights, device: str,
                notes: list[str]) -> tuple[list[FeatureExtractor], FeatureExtractor | None, dict]:
    """Loaded feature extractors for FID/KID/PRDC, the memorisation extractor, and {name: reason} of skipped ones."""
    def build(spec: str) -> FeatureExtractor:
        return make_extractor(spec, inception_weights, cfg.inception_mode, device)

    metric_ex, unavailable = [], {}
    if any(m in cfg.metrics for m in FEATURE_METRICS):
        for spec in dict.fromkeys(cfg.features):
            ex = build(spec)
            if any(e.name == ex.name for e in metric_ex):  # 'pixels' and 'pixels:16' are one space
                continue
            try:
                ex.load()
            except FeaturesUnavailable as exc:
                unavailable[ex.name] = str(exc)
                notes.append(str(exc))
                continue
            metric_ex.append(ex)
    memo_ex = None
    if "memorisation" in cfg.metrics:
        memo_ex = build(cfg.memorisation.features)
        memo_ex = next((e for e in metric_ex if e.describe() == memo_ex.describe()), memo_ex)
        try:
            memo_ex.load()
        except FeaturesUnavailable as exc:
            unavailable[f"memorisation:{memo_ex.name}"] = str(exc)
            notes.append(f"memorisation skipped: {exc}")
            memo_ex = None
    return metric_ex, memo_ex, unavailable


def _set_info(images: ImageSet) -> dict:
    return {"name": images.name, "path": images.label, "n": len(images), "manifest_sha256": images.manifest_sha256,
            "models": images.column_values("model"), "checkpoints": images.column_values("checkpoint")}


@dataclass
class _Run:
    """What every synthetic set is measured against, computed once per evaluation."""

    cfg: EvaluateConfig
    real: ImageSet
    train: ImageSet | None
    size: int
    device: str
    metric_ex: list[FeatureExtractor]
    memo_ex: FeatureExtractor | None
    real_feats: dict
    real_desc: list | None
    train_feats: np.ndarray | None
    prog: _Progress
    notes: list[str]
    floor: ImageSet | None = None
    floor_feats: dict = field(default_factory=dict)
    floors: dict = field(default_factory=dict)  # (extractor, N) -> floor_at(...)
    floor_swd: dict | None = None
    sheets: dict[str, np.ndarray] = field(default_factory=dict)
    c2st_floors: dict = field(default_factory=dict)  # N -> C2stResult of floor vs reference
    c2st_rows: list[dict] = field(default_factory=list)


def evaluate(real: ImageSet, fakes: list[ImageSet], cfg: EvaluateConfig = EvaluateConfig(), *,
             train: ImageSet | None = None, inception_weights=None,
             device: str = "cpu", cache: FeatureCache | None = None,
             progress: Callable[[int, int], None] | None = None) -> Evaluation:
    """Measure each of ``fakes`` against ``real`` (module docstring). ``cache=None`` disables the feature cache."""
    t0 = time.perf_counter()
    hits0, misses0 = (cache.hits, cache.misses) if cache is not None else (0, 0)
    if not fakes:
        raise SkingenError("nothing to evaluate: give at least one --synthetic folder")
    if len(real) < 2:
        raise SkingenError(f"the real set {real.label} has {len(real)} image(s); at least 2 are needed")
    notes: list[str] = []
    size = cfg.size or _image_size(real)
    metric_ex, memo_ex, unavailable = _extractors(cfg, inception_weights, device, notes)
    train = (train or default_train_set(real)) if memo_ex else None
    want_swd = "swd" in cfg.metrics
    floor = None
    if want_swd or (metric_ex and FLOOR_METRICS & set(cfg.metrics)):
        floor, floor_note = floor_set(real, cfg.floor)
        notes += [floor_note] if floor_note else []
    # the floor set is often the training split: read it once for both
    floor_is_train = (floor is not None and train is not None and train is not real
                      and floor.fingerprint == train.fingerprint)
    div_pairs = cfg.diversity.pairs if "diversity" in cfg.metrics else 0
    total = len(real) + (len(train) if train is not None and train is not real else 0) + sum(map(len, fakes)) \
        + (len(floor) if floor is not None and not floor_is_train else 0) + 2 * div_pairs * (1 + len(fakes))
    prog = _Progress(total, progress)
    notes += [n for n in (_size_note(s, size) for s in [real, *fakes]) if n]

    real_ex = metric_ex + ([memo_ex] if memo_ex and train is real and memo_ex not in metric_ex else [])
    real_feats, real_desc = _scan(real, real_ex, size, cfg, cache, want_swd, prog)
    train_feats, floor_feats, floor_desc = None, {}, None
    if memo_ex is not None and train is not real:
        train_ex = list({e.name: e for e in [memo_ex] + (metric_ex if floor_is_train else [])}.values())
        feats, desc = _scan(train, train_ex, size, cfg, cache, want_swd and floor_is_train, prog)
        train_feats = feats[memo_ex.name]
        if floor_is_train:
            floor_feats, floor_desc = feats, desc
    elif memo_ex is not None:
        train_feats = real_feats[memo_ex.name]
    if floor is not None and not floor_is_train:
        floor_feats, floor_desc = _scan(floor, metric_ex, size, cfg, cache, want_swd, prog)
    run = _Run(cfg, real, train, size, device, metric_ex, memo_ex, real_feats, real_desc, train_feats, prog, notes,
               floor, floor_feats)
    if floor_desc is not None:  # all floor images (SWD compares equal descriptor counts, min of the two sets)
        run.floor_swd = swd(real_desc, floor_desc, SwdDescriptors(size, cfg.swd).levels, cfg.swd, cfg.seed)

    record = {
        "real": {**_set_info(real), "split": real.split, "image_size": _image_size(real)},
        "train": {**_set_info(train), "split": train.split} if train is not None else None,
        "size": size,
        "config": _config_dict(cfg),
        "extractors": {ex.name: ex.describe() for ex in metric_ex}
        | ({"memorisation": memo_ex.describe()} if memo_ex else {}),
        "unavailable": unavailable,
        "floor": _floor_info(run),
    }
    if div_pairs:
        record["real"]["diversity"] = _diversity(real, run)
    record["sets"] = [{**_set_info(fake), "metrics": _measure(run, fake)} for fake in fakes]
    record["notes"] = list(dict.fromkeys(notes))
    record["seconds"] = round(time.perf_counter() - t0, 2)
    if cache is not None:
        record["cache"] = {"dir": str(cache.root), "hits": cache.hits - hits0, "misses": cache.misses - misses0}
    return Evaluation(record, run.sheets, record["notes"], {"c2st_scores.csv": run.c2st_rows} if run.c2st_rows else {})


def _measure(run: _Run, fake: ImageSet) -> dict[str, dict]:
    """Every requested metric of one synthetic set; a metric that fails is recorded with its error."""
    cfg = run.cfg
    common = {"n_real": len(run.real), "n_fake": len(fake), "size": run.size,
              "real_manifest_sha256": run.real.manifest_sha256, "fake_manifest_sha256": fake.manifest_sha256,
              "checkpoints": fake.column_values("checkpoint")}
    scan_ex = run.metric_ex + ([run.memo_ex] if run.memo_ex and run.memo_ex not in run.metric_ex else [])
    feats, desc = _scan(fake, scan_ex, run.size, cfg, None, "swd" in cfg.metrics, run.prog)
    metrics: dict[str, dict] = {}

    def measure(key: str, fn: Callable[[], dict]) -> None:
        try:
            metrics[key] = {**fn(), **common}
        except SkingenError as exc:
            metrics[key] = {"error": str(exc), **common}
            run.notes.append(f"{fake.name}: {key}: {exc}")

    for ex in run.metric_ex:
        a, b, mode = run.real_feats[ex.name], feats[ex.name], ex.describe()
        if "fid" in cfg.metrics:
            measure(f"fid/{ex.name}", lambda: {**_fid(a, b, ex.name, mode, run.notes),
                                               "floor": _floor(run, ex.name, len(fake), "fid")})
        if "kid" in cfg.metrics:
            measure(f"kid/{ex.name}", lambda: {**_kid(a, b, cfg, ex.name, mode, run.notes, fake),
                                               "floor": _floor(run, ex.name, len(fake), "kid")})
        if "prdc" in cfg.metrics:
            measure(f"prdc/{ex.name}", lambda: {**precision_recall_density_coverage(a, b, cfg.prdc.k),
                                                "extractor": ex.name, "mode": mode})
    if "c2st" in cfg.metrics:
        measure("c2st", lambda: _c2st(run, fake, feats))
    if "swd" in cfg.metrics:
        measure("swd", lambda: _swd(run, desc))
    if run.memo_ex is not None:
        measure("memorisation", lambda: _memorisation(run, fake, feats[run.memo_ex.name]))
    if "diversity" in cfg.metrics:
        measure("diversity", lambda: _diversity(fake, run))
    if "speed" in cfg.metrics:
        value, source = seconds_per_image(fake)
        metrics["speed"] = {"seconds_per_image": value, "source": source}
    return metrics


def _c2st(run: _Run, fake: ImageSet, feats: dict) -> dict:
    """The critic of ``fake`` against the reference, its real-vs-real floor at the same N, and the scores' rows."""
    cfg, name = run.cfg.c2st, run.cfg.c2st.features
    if name not in feats:
        raise SkingenError(f"c2st reads {name} features: add {name} to --features (available: {', '.join(feats)})")
    real = run.real
    r = c2st(run.real_feats[name], feats[name], groups_of_rows(real.rows, real.ids), groups_of_rows(fake.rows, fake.ids),
             cfg, run.cfg.seed)
    for i, (image_id, score) in enumerate(zip(list(real.ids) + list(fake.ids), r.scores)):
        run.c2st_rows.append({"set": fake.name, "id": image_id, "origin": "synthetic" if r.labels[i] else "real",
                              "group": int(r.groups[i]), "p_synthetic": round(float(score), 6)})
    return {**r.record(), "extractor": name, "floor": _c2st_floor(run, name, len(fake))}


def _c2st_floor(run: _Run, name: str, n: int) -> dict | None:
    """The critic of ``n`` real floor images (first ``n`` of a seeded permutation) against the reference."""
    if run.floor is None or name not in run.floor_feats:
        return None
    n = min(n, len(run.floor))
    if n not in run.c2st_floors:
        pick = np.sort(numpy_rng(run.cfg.seed, "c2st-floor").permutation(len(run.floor))[:n])
        floor = run.floor
        rows = [floor.rows[i] for i in pick]
        run.c2st_floors[n] = c2st(run.real_feats[name], run.floor_feats[name][pick],
                                  groups_of_rows(run.real.rows, run.real.ids),
                                  groups_of_rows(rows, [floor.ids[i] for i in pick]), run.cfg.c2st, run.cfg.seed)
    f = run.c2st_floors[n]
    return {"auroc": f.auroc, "auroc_ci": list(f.auroc_ci), "accuracy": f.accuracy, "n": n, "set": run.floor.label}


def _floor_info(run: _Run) -> dict | None:
    """The floor set and its SWD against the reference."""
    if run.floor is None:
        return None
    return {**_set_info(run.floor), "split": run.floor.split, "draws": run.cfg.floor.draws,
            **({"swd": run.floor_swd} if run.floor_swd else {})}


def _swd(run: _Run, desc: list) -> dict:
    cfg = run.cfg
    r = swd(run.real_desc, desc, SwdDescriptors(run.size, cfg.swd).levels, cfg.swd, cfg.seed)
    return {**r, **(relative_to_floor(r, run.floor_swd) if run.floor_swd else {}),
            "normalise": cfg.swd.normalise, "per_image": cfg.swd.per_image}


def _floor(run: _Run, name: str, n: int, metric: str) -> dict | None:
    """The real-vs-real floor of ``metric`` in feature space ``name`` at N=``n`` (computed once per N)."""
    if run.floor is None or name not in run.floor_feats:
        return None
    key = (name, n)
    if key not in run.floors:
        run.floors[key] = floor_at(run.real_feats[name], run.floor_feats[name], n, run.cfg.floor, run.cfg.kid,
                                   run.cfg.seed)
        if run.floors[key]["n"] < n:
            run.notes.append(f"floor at N={run.floors[key]['n']} < {n} (the floor set {run.floor.label} has "
                             f"{len(run.floor)} images): FID floors at smaller N read higher")
    f = run.floors[key]
    return {"value": f[metric], "std": f[f"{metric}_std"], "n": f["n"], "draws": f["draws"], "set": run.floor.label}


def _fid(a, b, name: str, mode: dict, notes: list[str]) -> dict:
    note = _dim_note(a, b, name)
    if note:
        notes.append(note)
    return {"value": frechet_distance(a, b), "extractor": name, "mode": mode, "note": note}


def _dim_note(a: np.ndarray, b: np.ndarray, name: str) -> str:
    n = min(len(a), len(b))
    return (f"FID in {name} features: N={n} < feature dim {a.shape[1]}, the covariance is rank-deficient and FID is "
            "biased upwards; compare sets only at equal N" if n < a.shape[1] else "")


def _kid(a, b, cfg: EvaluateConfig, name: str, mode: dict, notes: list[str], fake: ImageSet) -> dict:
    parents = [r.get("parent_id") or f"#{i}" for i, r in enumerate(fake.rows)] if fake.rows else None
    r = kernel_distance(a, b, cfg.kid, cfg.seed, parents)
    if r.note:
        notes.append(r.note)
    if r.parents:
        notes.append(f"{fake.name}: KID leaves pairs of one parent_id out (N={len(fake)} images of {r.parents} "
                     "parents; runs of one crop are near-copies)")
    return {"value": r.mean, "std": r.std, "subset_size": r.subset_size, "subsets": r.subsets, "note": r.note,
            "extractor": name, "mode": mode, **({"parents": r.parents} if r.parents else {})}


def _memorisation(run: _Run, fake: ImageSet, fake_feats: np.ndarray) -> dict:
    cfg, train, ex, size = run.cfg, run.train, run.memo_ex, run.size
    r = memorisation(fake_feats, run.train_feats, list(train.groups), cfg.memorisation.ratio)
    order = np.argsort(r.ratio, kind="stable")[: cfg.memorisation.sheet_pairs]
    run.sheets[fake.name] = closest_pairs_sheet(r, fake.load(order, size), train.load(r.nearest[order], size), order)
    closest = [{"fake": fake.ids[i], "train": train.ids[int(r.nearest[i])], "ratio": float(r.ratio[i]),
                "distance": float(r.d1[i])} for i in order]
    return {"fraction": r.fraction, "flagged": r.flagged, "threshold": r.threshold, "n_train": len(train),
            "train_manifest_sha256": train.manifest_sha256, "extractor": ex.name, "mode": ex.describe(),
            "median_ratio": float(np.median(r.ratio)), "closest": closest}


def _diversity(images: ImageSet, run: _Run) -> dict:
    done = [0]
    size = run.size

    def step(d: int, total: int) -> None:  # the bar budgets 2 image loads per random pair; sibling pairs share it
        n = round(2 * run.cfg.diversity.pairs * d / total)
        run.prog.advance(n - done[0])
        done[0] = n

    r = ms_ssim_diversity(images, size, run.cfg.diversity, run.cfg.seed, run.cfg.batch_size, run.device, step)
    if r.scales < 5:
        run.notes.append(f"MS-SSIM uses {r.scales} of 5 scales at {size} px (torchmetrics' 11 px window needs >= 176 px for 5)")
    record = {"ms_ssim": r.mean, "std": r.std, "pairs": r.pairs, "scales": r.scales, "n": len(images)}
    if r.siblings_mean is not None:
        record.update(ms_ssim_same_parent=r.siblings_mean, same_parent_pairs=r.sibling_pairs)
    return record


def _config_dict(cfg: EvaluateConfig) -> dict:
    from skingen.config import to_dict

    return to_dict(cfg)
