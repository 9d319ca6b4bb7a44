"""Train one classifier on in-memory images and predict class probabilities.

Every arm of the study gets the same budget of training images seen (``images``), so adding synthetic
images changes *what* the classifier sees, not *how much* it trains. With ``select='val'`` the model kept
is the one with the best balanced accuracy on the real validation split (ties: lower val loss), checked
every ``eval_every`` images; with ``patience`` > 0 training stops after that many checks without a better
one. With ``select='last'`` the whole budget is trained and the last weights are kept.

Recipes (:data:`RECIPES`; a ``None`` field of :class:`TrainConfig` takes its architecture's value):
AdamW, linear warm-up over ``warmup`` of the steps, then cosine annealing or (``schedule='constant'``) a
constant learning rate. From scratch (``small-cnn``, ``resnet18`` without weights): one learning rate,
cosine, no label smoothing, no early stopping, best on val.

Fine-tuning (``efficientnet-lite0``; ``resnet18`` with ImageNet weights): the new head at ``lr``, the
pretrained backbone at ``backbone_lr`` (5x lower, so the ImageNet features are adapted, not overwritten),
label smoothing 0.1, decoupled weight decay 0.01, batch norm frozen (``bn_stats='frozen'``: the ImageNet
running statistics in training too; its scale and shift still train: with TF's slow BN momentum (0.01) a
short fine-tune would otherwise train on batch statistics while evaluating on running statistics that have
barely moved, and the probe-initialised head would see other features in training than it was fitted on).
EfficientNet-Lite0 keeps its stem and first 11 MBConv blocks (stages 1-5, up to 1/16 of the input side)
frozen and trains stages 6-7, the head convolution and the head (79% of the parameters): the frozen layers
are the high-resolution ones, ~90% of the CPU time of a forward pass at 128 px, so their output is computed
once per training view (without gradients) and a fine-tune costs about a tenth of a full one.
The new head starts from a linear probe (``probe_init``; "LP-FT", Kumar et al. 2022): a logistic regression
on the pretrained features of the training images, C chosen on val (:func:`skingen.downstream.probe.train_probe`),
folded into the head. A random head sends large random gradients into the backbone during the first
steps and distorts the features it is meant to reuse; starting from the probe, the fine-tune begins where a
probe ends.

The views (``dihedral``): every training image is seen as one of its 8 right-angle rotations / mirror
images (:func:`dihedral`, drawn per image and step; a skin crop has no up or left), and ``tta`` predicts
with the mean probability over the 8. How long to train and which weights to keep were chosen once, by
grouped (``source_id``) stratified 5-fold cross-validation on the 387 training crops of the 3-class
measles / chickenpox / monkeypox task (out-of-fold balanced accuracy; the 48 val images are too few to rank
checkpoints: with ``select='val'`` every seed kept the probe-initialised start). Out-of-fold balanced
accuracy after 0 / 4 / 8 / 12 / 16 / 24 epochs at a constant learning rate: 0.857 / 0.874 / 0.875 / 0.883 /
0.890 / 0.882, with TTA 0.829 / 0.895 / 0.885 / 0.902 / 0.893 / 0.903; hence 12 epochs of the full train
split (4640 images seen), the last weights, TTA on.
The input size was chosen the same way afterwards (``bench/detector_cv.py``, the same folds for both): 224 px,
the size the network was pretrained at, 0.910 out-of-fold against 0.896 at 128 px (the crops are upsampled).
Every layer then costs about 3x its 128 px time: 6-16 minutes per fine-tune on one busy CPU thread instead
of 3-8 (``--size 128`` for the cheaper one).

Classical augmentation (``classical=True``) is the torchvision ``transforms.v2`` baseline: random
rotation (±20°), random resized crop (scale 0.6-1), horizontal and vertical flips, colour jitter
(brightness/contrast/saturation 0.2, hue 0.02). Drawn per image and step when the whole network trains;
with a frozen prefix, ``views`` draws per image (seeded by its pixels, as for the probes:
:func:`skingen.downstream.views.augmented_view`) whose prefix outputs are computed once.

Determinism: with one ``seed`` the batch order (a seeded generator) and every random transform (the
global torch generator, seeded inside a forked RNG state so callers' state is untouched) are fixed, so a
CPU run gives identical probabilities each time.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace
from typing import Annotated, Callable

import numpy as np
import torch
from torch import nn

from skingen.config import Fraction, NonNegativeInt, PositiveInt, Range
from skingen.nn.classifiers import ARCHS, PRETRAINED, ClassifierSpec, build_classifier, parameter_groups
from skingen.downstream.probe import PREFIX, PROBES, is_probe, probe_name
from skingen.downstream.views import augmented_view, classical_transform
from skingen.stats import balanced_accuracy
from skingen.errors import SkingenError


RECIPES = {
    "scratch": {"size": 64, "images": 8000, "lr": 2e-3, "backbone_lr": 2e-3, "weight_decay": 1e-4, "eval_every": 1000,
                "label_smoothing": 0.0, "patience": 0, "warmup": 0.15, "freeze": 0, "probe_init": False,
                "bn_stats": "train", "select": "val", "schedule": "cosine", "dihedral": False, "tta": False},
    # chosen once by grouped 5-fold CV on mc3-128's train split (module docstring), never on test
    "fine-tune": {"size": 224, "images": 4640, "lr": 5e-4, "backbone_lr": 1e-4, "weight_decay": 1e-2, "eval_every": 400,
                  "label_smoothing": 0.1, "patience": 0, "warmup": 0.15, "freeze": 11,
                  "probe_init": True, "bn_stats": "frozen", "select": "last", "schedule": "constant",
                  "dihedral": True, "tta": True},
    "probe": {"size": 128},  # the rest of a probe's recipe is in skingen.downstream.probe
}


@dataclass(frozen=True)
class TrainConfig:
    """``None`` = the architecture's recipe (module docstring); :meth:`resolved` fills them in."""
    arch: str = "small-cnn"
    size: Annotated[int, Range(16, 1024)] | None = None  # px: 64 from scratch, 224 for the fine-tune, 128 for the probes (they resize inside)
    images: PositiveInt | None = None  # training images seen by every arm (a cap when early stopping)
    batch: Annotated[int, Range(1, 4096)] = 32
    lr: Annotated[float, Range(0, 1, open_lo=True)] | None = None  # peak learning rate of the head (of everything when training from scratch)
    backbone_lr: Annotated[float, Range(0, 1)] | None = None  # peak learning rate of the rest of the network
    weight_decay: Annotated[float, Range(0, 1)] | None = None
    eval_every: PositiveInt | None = None  # images between validation checks (model selection, early stopping)
    label_smoothing: Annotated[float, Range(0, 1, open_hi=True)] | None = None
    patience: NonNegativeInt | None = None  # checks without a better val score before stopping; 0 = never stop early
    warmup: Fraction | None = None  # share of the steps spent warming up the learning rate
    freeze: NonNegativeInt | None = None  # efficientnet-lite0: leading MBConv blocks kept frozen (with the stem)
    probe_init: bool | None = None  # start the new head from a linear probe on the frozen features (LP-FT)
    bn_stats: str | None = None  # "train": batch norm uses batch statistics in training; "frozen": ImageNet ones
    weights: str | None = None  # ImageNet state dict: resnet18 (else from scratch); efficientnet-lite0 (else shipped)
    views: Annotated[int, Range(1, 64)] = 4  # classical views per training image for the classical arms (probes; fine-tunes with a frozen prefix)
    select: str | None = None  # "val": keep the best checkpoint on val (early stopping); "last": train the whole budget
    schedule: str | None = None  # after the warm-up: "cosine" annealing to 0, or "constant"
    dihedral: bool | None = None  # train on the 8 right-angle rotations / flips of every image (one drawn per step)
    tta: bool | None = None  # predict with the mean probability over the 8 rotations / flips of each image

    def __post_init__(self) -> None:
        if self.batch < 1 or (self.images is not None and self.images < self.batch):
            raise SkingenError(f"train.images ({self.images}) must be at least train.batch ({self.batch}) >= 1")
        if self.warmup is not None and not 0 <= self.warmup < 1:
            raise SkingenError(f"train.warmup must be in [0, 1), got {self.warmup}")
        if self.arch not in ARCHS and not is_probe(self.arch):
            raise SkingenError(f"unknown classifier '{self.arch}' (use one of {', '.join(ARCHS)}, "
                               f"{', '.join(PREFIX + p for p in PROBES)})")
        if is_probe(self.arch):
            probe_name(self.arch)
        if self.bn_stats not in (None, "train", "frozen"):
            raise SkingenError(f"train.bn_stats must be 'train' or 'frozen', got {self.bn_stats!r}")
        if self.views < 0:
            raise SkingenError(f"train.views must be >= 0, got {self.views}")
        if self.select not in (None, "val", "last"):
            raise SkingenError(f"train.select must be 'val' or 'last', got {self.select!r}")
        if self.schedule not in (None, "cosine", "constant"):
            raise SkingenError(f"train.schedule must be 'cosine' or 'constant', got {self.schedule!r}")

    @property
    def recipe(self) -> str:
        if is_probe(self.arch):
            return "probe"
        return "fine-tune" if self.arch in PRETRAINED or (self.arch == "resnet18" and self.weights) else "scratch"

    def resolved(self) -> "TrainConfig":
        """This config with every ``None`` replaced by the recipe's value."""
        recipe = RECIPES[self.recipe]
        return replace(self, **{k: v for k, v in recipe.items() if getattr(self, k) is None})


@dataclass
class TrainedClassifier:
    model: nn.Module
    spec: ClassifierSpec
    val_balanced_accuracy: float
    best_images: int  # images seen when the kept weights were taken
    seconds: float


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """``uint8 [N,3,S,S]`` -> float in [-1, 1]."""
    return images.float().div(127.5).sub(1.0)


def dihedral(images: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k``-th (0-7) of the 8 right-angle rotations / mirror images of ``[..., H, W]`` images; 0 = unchanged.
    Skin crops have no up or left, so all 8 are images of the same lesion."""
    out = torch.rot90(images, k % 4, dims=(-2, -1))
    return out.flip(-1) if k >= 4 else out


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch: int = 256, device: str = "cpu", tta: bool = False) -> np.ndarray:
    """Class probabilities ``float64 [N,k]`` for ``uint8 [N,3,S,S]`` images; ``tta``: the mean over the 8
    rotations / flips of each image (:func:`dihedral`)."""
    model.eval()
    views = range(8) if tta else range(1)
    out = [torch.stack([torch.softmax(model(to_unit(dihedral(images[i:i + batch], v)).to(device)).double(), -1)
                        for v in views]).mean(0).cpu()
           for i in range(0, len(images), batch)]
    return torch.cat(out).numpy() if out else np.zeros((0, model.head.out_features))


def train_classifier(images: torch.Tensor, labels: torch.Tensor, val_images: torch.Tensor, val_labels: torch.Tensor,
                     class_names: tuple[str, ...], cfg: TrainConfig, seed: int, classical: bool = False,
                     device: str = "cpu", progress: Callable[[int, int], None] | None = None) -> TrainedClassifier:
    """Train on ``images uint8 [N,3,S,S]`` / ``labels int64 [N]`` (S = ``cfg.size``); select on the val set
    (``select='val'``) or keep the last weights (``select='last'``).

    The loss weights classes by inverse training frequency, so a class the augmentation made larger
    does not win by its count alone.
    """
    t0 = time.perf_counter()
    cfg = cfg.resolved()
    k = len(class_names)
    spec = ClassifierSpec(arch=cfg.arch, labels=tuple(class_names), size=cfg.size, weights=cfg.weights,
                          extra={"tta": bool(cfg.tta)})
    counts = torch.bincount(labels, minlength=k).double()
    weights = torch.where(counts > 0, counts.sum() / (k * counts.clamp(min=1)), torch.zeros_like(counts)).float()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_classifier(spec).to(device)
        freeze = cfg.freeze if hasattr(model, "freeze_prefix") else 0
        if freeze:
            model.freeze_prefix(freeze)
        backbone, head = parameter_groups(model)
        backbone = [p for p in backbone if p.requires_grad]
        view_of = _training_views(cfg, classical, freeze)
        cached = None
        if freeze:
            cached = torch.stack([_prefix_outputs(model, view(images), freeze, device) for view in view_of])
        augment = classical_transform(cfg.size) if classical and not freeze else None
        if cfg.probe_init:  # on the unaugmented images' features
            plain = cached[0] if freeze and not classical else (_prefix_outputs(model, images, freeze, device)
                                                                  if freeze else None)
            _init_head_from_probe(model, images, labels, val_images, val_labels, k, freeze, plain, device)
        opt = torch.optim.AdamW([{"params": backbone, "lr": cfg.backbone_lr}, {"params": head, "lr": cfg.lr}],
                                weight_decay=cfg.weight_decay)
        steps = cfg.images // cfg.batch
        sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_factor(steps, cfg.warmup, cfg.schedule))
        loss_fn = nn.CrossEntropyLoss(weight=weights.to(device), label_smoothing=cfg.label_smoothing)
        order = torch.Generator().manual_seed(seed)
        perm, pos = torch.randperm(len(images), generator=order), 0
        by_val = cfg.select == "val"
        best, best_state, best_at, stale = (-1.0, 0.0), None, 0, 0
        if cfg.probe_init and by_val:  # the probe-initialised network is the first candidate
            best, best_state = _val_score(model, val_images, val_labels, k, device), copy.deepcopy(model.state_dict())
        eval_steps = max(1, cfg.eval_every // cfg.batch)
        for step in range(1, steps + 1):
            if pos + cfg.batch > len(perm):
                perm, pos = torch.randperm(len(images), generator=order), 0
            idx = perm[pos:pos + cfg.batch] if len(perm) >= cfg.batch else perm
            pos += cfg.batch
            view = torch.randint(len(view_of), (len(idx),), generator=order)
            _train_mode(model, cfg.bn_stats)
            if cached is not None:
                logits = model.forward_from(cached[view, idx].to(device), freeze)
            else:
                logits = model(to_unit(_views(images[idx], view, view_of, augment)).to(device))
            loss = loss_fn(logits, labels[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if by_val and (step % eval_steps == 0 or step == steps):
                score = _val_score(model, val_images, val_labels, k, device)
                if score > best:
                    best, best_state, best_at, stale = score, copy.deepcopy(model.state_dict()), step * cfg.batch, 0
                else:
                    stale += 1
                if cfg.patience and stale >= cfg.patience:
                    break
            if progress and (step % eval_steps == 0 or step == steps):
                progress(step, steps)
    if by_val:
        model.load_state_dict(best_state)
    else:
        best, best_at = _val_score(model, val_images, val_labels, k, device, cfg.tta), steps * cfg.batch
    return TrainedClassifier(model.eval(), spec, best[0], best_at, time.perf_counter() - t0)


def _training_views(cfg: TrainConfig, classical: bool, freeze: int) -> list[Callable[[torch.Tensor], torch.Tensor]]:
    """The training views of every image: the classical arm's augmented draws (with a frozen prefix, whose output
    is then computed once per view, ``[V,N,...]``), else the 8 rotations / flips, else the image itself."""
    if classical and freeze:
        return [lambda x, v=v: augmented_view(x, v, cfg.size) for v in range(max(1, cfg.views))]
    if cfg.dihedral:
        return [lambda x, v=v: dihedral(x, v) for v in range(8)]
    return [lambda x: x]


def _views(x: torch.Tensor, view: torch.Tensor, view_of: list, augment: Callable | None) -> torch.Tensor:
    """The batch ``x`` (``uint8 [B,3,S,S]``) as seen in training: a fresh classical augmentation, else view
    ``view[i]`` of image ``i``."""
    if augment is not None:
        return torch.stack([augment(im) for im in x])
    if len(view_of) > 1:
        return torch.stack([view_of[v](im) for v, im in zip(view.tolist(), x)])
    return x


def _lr_factor(steps: int, warmup: float, schedule: str) -> Callable[[int], float]:
    """Learning-rate multiplier at each step: linear warm-up over ``warmup`` of the steps, then constant or
    cosine annealing to 0."""
    import math

    ramp = max(1, int(round(warmup * steps)))

    def factor(step: int) -> float:
        if step < ramp:
            return (step + 1) / ramp
        if schedule == "constant":
            return 1.0
        return 0.5 * (1 + math.cos(math.pi * (step - ramp) / max(1, steps - ramp)))

    return factor


def _train_mode(model: nn.Module, bn_stats: str) -> None:
    model.train()
    if bn_stats == "frozen":
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


@torch.no_grad()
def _init_head_from_probe(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, val_images: torch.Tensor,
                          val_labels: torch.Tensor, k: int, freeze: int, cached: torch.Tensor | None, device: str,
                          batch: int = 64) -> None:
    """Set ``model.head`` to a logistic regression on the network's (eval-mode) features: the probe's
    standardisation folded into the linear layer, ``W' = W / sd``, ``b' = b - W' mean``."""
    from skingen.downstream.probe import train_probe

    was_training = model.training
    model.eval()

    def feats(x: torch.Tensor, pre: torch.Tensor | None) -> np.ndarray:
        out = []
        for i in range(0, len(x), batch):
            if pre is not None:
                out.append(model.features_from(pre[i:i + batch], freeze))
            else:
                out.append(model.features(to_unit(x[i:i + batch]).to(device)))
        return torch.cat(out).cpu().numpy() if out else np.zeros((0, model.head.in_features), np.float32)

    probe = train_probe(feats(images, cached), labels.numpy(), feats(val_images, None), val_labels.numpy(), k)
    coef, bias = probe.model.coef_, probe.model.intercept_
    if coef.shape[0] == 1:  # scikit-learn's binary form: one logit for the second class
        coef, bias = np.concatenate([np.zeros_like(coef), coef]), np.concatenate([[0.0], bias])
    weight = np.zeros((k, coef.shape[1]))
    intercept = np.full(k, -1e4)  # a class absent from training stays impossible, as in the probe
    weight[probe.model.classes_] = coef / probe.scaler.scale_
    intercept[probe.model.classes_] = bias - weight[probe.model.classes_] @ probe.scaler.mean_
    model.head.weight.copy_(torch.as_tensor(weight, dtype=model.head.weight.dtype))
    model.head.bias.copy_(torch.as_tensor(intercept, dtype=model.head.bias.dtype))
    model.train(was_training)


@torch.no_grad()
def _prefix_outputs(model: nn.Module, images: torch.Tensor, blocks: int, device: str, batch: int = 64) -> torch.Tensor:
    """The frozen prefix's output ``[N,C,h,w]`` for ``images uint8 [N,3,S,S]``, computed once per training view."""
    return torch.cat([model.prefix(to_unit(images[i:i + batch]).to(device), blocks)
                      for i in range(0, len(images), batch)])


def _val_score(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, k: int, device: str,
               tta: bool = False) -> tuple[float, float]:
    """(balanced accuracy, minus mean cross-entropy) on the val set: ordered, so a tie in accuracy (common
    on a few dozen images) goes to the more confident model. (0, 0) without val images."""
    if not len(images):
        return 0.0, 0.0
    probs = predict(model, images, device=device, tta=tta)
    y = labels.numpy()
    nll = -np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None)).mean()
    return float(balanced_accuracy(y, probs.argmax(-1), k)[0]), -float(nll)
