"""GLIDE-style iterative inpainting: a *run* turns one source crop into a new image in *steps*.

Each step picks a region (:mod:`skingen.inpaint.regions`) and inpaints it from the rest of the image
as it is now; after 9-12 steps a new image of the same content has emerged (the reference work's best
method by human judgement). Written by hand because no library does it; the denoising itself is a
pluggable :class:`RegionFiller` (the ``inpaint`` model, other diffusers backends, or an oracle in tests).

Speed: a step denoises only a square *context window* around its region (``context`` × its side)
instead of the whole image, and runs from several sources (and several runs of one source) that are
at the same step are batched into one network call when their windows have the same size.

Randomness: the regions of a run come from a generator seeded by the run's seed, and step ``k``'s
denoising noise from a generator derived from (seed, k) — so a run depends only on (filler,
source, seed, parameters), never on which other runs share its batches. Kept pixels are copied
back after every step, whatever the filler returns, so they never change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Annotated, Callable

import numpy as np
import torch

from skingen.config import NonNegative, Positive, PositiveInt, Range, check_fields
from skingen.errors import SkingenError
from skingen.inpaint.regions import (PLACEMENTS, SHAPES, Region, check_choice, edit_counts, plan_regions, region_side,
                                     torch_rand, window_box)
from skingen.seeding import numpy_rng

#: ``fill(source [B,3,h,w] in [-1,1], keep float {0,1} [B,1,h,w], generators: one per row) -> [B,3,h,w]``:
#: new content where ``keep`` = 0 (what it returns where ``keep`` = 1 is ignored); it moves inputs to its own device
FillFn = Callable[[torch.Tensor, torch.Tensor, list[torch.Generator]], torch.Tensor]


@dataclass(frozen=True)
class RegionFiller:
    """What repaints one region in each of a batch of windows (:data:`FillFn`), with what the algorithm needs
    to know about it: the trained ``inpaint`` model, RePaint, Stable Diffusion, OpenCV, or an oracle in tests."""

    fill: FillFn
    multiple: int = 1       #: window sides are rounded up to a multiple of this (the network's downsampling)
    evaluations: int = 1    #: network evaluations per image per fill (solver steps), for the cost report
    resize_to: int | None = None  #: side every window is resized to before the network (cost counts its pixels)


@dataclass(frozen=True)
class IterativeParams:
    """Parameters of one iterative-inpainting run. Region sizes ≤ 1 are fractions of the image side, larger are
    px; a feather ≤ 1 is a fraction of each region's side, larger is px."""

    steps: PositiveInt = 10                     #: regions per run (at most; coverage or the cap may end it sooner)
    # the defaults are the measured winners at 256 px (docs/inpainting.md: seam A/B and Inception KID on the measles test crops)
    shape: str = "blob"                 #: box | blob | mixed
    size: Positive = 0.1875                #: region side at the first step (48 px of 256)
    size_end: Positive | None = None       #: region side at the last step (linear in between); None = constant
    placement: str = "least-covered"    #: random | least-covered
    coverage: Annotated[float, Range(0, 1, open_lo=True)] | None = None       #: end the run once this fraction of pixels has been repainted
    repeat_cap: PositiveInt | None = None       #: never repaint a pixel more than this many times
    context: Annotated[float, Range(1, 1000)] | None = 2.0         #: window side / region side; None = denoise the whole image
    feather: NonNegative = 0.125              #: how far a fill fades in from the region's border (0 = hard edge; 6 of 48 px)

    def __post_init__(self) -> None:
        check_fields(self)
        check_choice("region shape", self.shape, SHAPES)
        check_choice("placement", self.placement, PLACEMENTS)
        if 0.5 < self.feather <= 1:  # a fade longer than half the side never reaches full strength at the centre
            raise SkingenError(f"feather must be at most 0.5 as a fraction of the region side (or px if > 1), "
                               f"got {self.feather}")

    def plan(self, image_size: int, seed: int) -> list[Region]:
        """The regions of the run with ``seed`` on an ``image_size`` px image."""
        end = None if self.size_end is None else region_side(self.size_end, image_size)
        smallest = min(region_side(self.size, image_size), end or image_size)
        if feather_px(self.feather, smallest) > smallest / 2:
            raise SkingenError(f"feather {self.feather:g} px is more than half the {smallest} px region side: the fill "
                               f"would never reach full strength (use at most {smallest // 2} px, or a fraction <= 0.5)")
        return plan_regions(image_size, self.steps, torch_rand(torch.Generator().manual_seed(int(seed))),
                            shape=self.shape, side_start=region_side(self.size, image_size), side_end=end,
                            placement=self.placement, coverage=self.coverage, cap=self.repeat_cap)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


#: side of the frames kept for the strip: a 4096 px crop's 11 frames at full size took 2.2 GB (and its strip 10 GB)
FRAME_SIDE = 512


@dataclass
class IterativeResult:
    """One run. ``source`` and ``image``: ``[3,S,S]`` in [-1, 1], before and after; ``frames``: the source then
    the image after each step, exactly (``S`` <= :data:`FRAME_SIDE`) or area-shrunk to that side (larger crops:
    frames are for the strip, memory stays bounded by the output); ``edit_map``: int ``[S,S]``, how many times
    each pixel was repainted; ``evaluations``: network evaluations spent on this image; ``pixels``: pixels passed
    through the network (window area, or the area it is resized to, × evaluations)."""

    seed: int
    regions: list[Region]
    source: torch.Tensor
    image: torch.Tensor | None = None
    frames: list[torch.Tensor] = field(default_factory=list)
    edit_map: torch.Tensor | None = None
    evaluations: int = 0
    pixels: int = 0

    @property
    def coverage(self) -> float:
        return float((self.edit_map > 0).float().mean())


def step_generator(seed: int, step: int) -> torch.Generator:
    """The denoising-noise generator of step ``step`` of the run with ``seed``."""
    return torch.Generator().manual_seed(int(numpy_rng(int(seed), "inpaint-step", step).integers(2**62)))


def feather_px(feather: float, region_side: int) -> float:
    """The feather in px: values ≤ 1 are fractions of the region's side (so one setting suits any image size and
    a region that shrinks over a run), larger values are px."""
    return feather * region_side if feather <= 1 else feather


def fade_in(region: Region, size: int, feather: float, window: tuple[int, int, int]) -> torch.Tensor | None:
    """How much of the fill replaces the source in ``window`` (top, left, side): float ``[side,side]``, 0 outside
    ``region``, rising inside it as min(1, d / f) with d the distance (px) to the nearest kept pixel and f
    :func:`feather_px`, so a fill fades in from the old content instead of meeting it at a hard edge. None when
    ``feather`` is 0."""
    if feather <= 0:
        return None
    from scipy.ndimage import distance_transform_edt

    top, left, side = window
    inside = region.paint(size).numpy()
    alpha = np.minimum(distance_transform_edt(inside) / feather_px(feather, region.side), 1.0)
    return torch.from_numpy(alpha[top:top + side, left:left + side]).float()


def run_iterative(filler: RegionFiller, sources: torch.Tensor, seeds: list[int], params: IterativeParams = IterativeParams(),
                  batch: int = 16, progress: Callable[[int, int], None] | None = None) -> list[IterativeResult]:
    """Run ``params`` once per row of ``sources`` (``[R,3,H,W]`` in [-1, 1]; repeat a row for several runs of
    one source) with run seed ``seeds[i]``; at most ``batch`` windows per filler call. ``progress(done, total)``
    is called after each step."""
    if sources.ndim != 4 or sources.shape[1] != 3 or sources.shape[-1] != sources.shape[-2]:
        raise SkingenError(f"sources must be square images [R,3,S,S], got {tuple(sources.shape)}")
    if len(seeds) != len(sources):
        raise SkingenError(f"{len(sources)} sources but {len(seeds)} seeds")
    if batch < 1:
        raise SkingenError("batch must be at least 1")
    size = sources.shape[-1]
    images = sources.detach().clone()
    runs = [IterativeResult(int(s), params.plan(size, s), images[i].clone(), frames=[_frame(images[i])])
            for i, s in enumerate(seeds)]
    total = max(len(r.regions) for r in runs)
    for k in range(total):
        jobs: dict[int, list[tuple[int, int, int, torch.Tensor]]] = {}  # window side -> (run, top, left, keep)
        for i, run in enumerate(runs):
            if k < len(run.regions):
                region = run.regions[k]
                top, left, side = window_box(region, size, params.context, filler.multiple)
                keep = ~region.paint(size)[top:top + side, left:left + side]
                jobs.setdefault(side, []).append((i, top, left, keep, fade_in(region, size, params.feather,
                                                                               (top, left, side))))
        for side, group in jobs.items():
            for start in range(0, len(group), batch):
                chunk = group[start:start + batch]
                src = torch.stack([images[i, :, t:t + side, l:l + side] for i, t, l, *_ in chunk])
                keep = torch.stack([kp for _, _, _, kp, _ in chunk])[:, None]
                out = filler.fill(src, keep.float(),
                                     [step_generator(runs[i].seed, k) for i, *_ in chunk]).to(images)
                if out.shape != src.shape:
                    raise SkingenError(f"filler returned {tuple(out.shape)} for windows {tuple(src.shape)}")
                for (i, t, l, _, alpha), s, o, kp in zip(chunk, src, out, keep):
                    o = o.clamp(-1, 1)
                    # alpha is 0 on kept pixels, so they stay exactly the source's with a feather too
                    images[i, :, t:t + side, l:l + side] = torch.where(kp, s, o) if alpha is None else s + alpha * (o - s)
                    runs[i].evaluations += filler.evaluations
                    runs[i].pixels += (filler.resize_to or side) ** 2 * filler.evaluations
        for i, run in enumerate(runs):
            if k < len(run.regions):
                run.frames.append(_frame(images[i]))
        if progress:
            progress(k + 1, total)
    for i, run in enumerate(runs):
        run.image = images[i].clone()
        run.edit_map = edit_counts(run.regions, size)
    return runs


def _frame(image: torch.Tensor) -> torch.Tensor:
    """``image`` ``[3,S,S]`` as a strip frame: a copy, area-shrunk to :data:`FRAME_SIDE` when larger."""
    if image.shape[-1] <= FRAME_SIDE:
        return image.clone()
    return torch.nn.functional.interpolate(image[None].float(), size=FRAME_SIDE, mode="area")[0].to(image.dtype)


def derive_lesion(source_lesion: np.ndarray, output: np.ndarray, edit_map: np.ndarray) -> np.ndarray:
    """An *estimated* lesion mask of an output: the source's mask where the image was never repainted,
    the training-free auto mask of the output where it was. ``bool [H,W]``, ``uint8 [H,W,3]``, ``int [H,W]``
    -> ``bool [H,W]``."""
    from skingen.data.masks import auto_lesion_mask

    fresh, _ = auto_lesion_mask(output)
    return np.where(edit_map > 0, fresh, source_lesion.astype(bool))


def lift(result: IterativeResult, source: torch.Tensor) -> IterativeResult:
    """A run made on a shrunken copy of ``source`` (``[3,S,S]`` in [-1, 1]), brought back to ``S``: the repainted
    pixels are upsampled (bicubic) and pasted into ``source``, every other pixel stays the source's own,
    bit-exact. How a filler that works at one size (a whole-image model) serves larger crops, as the reference
    work ran GLIDE at 64 px and upsampled. Regions map by nearest neighbour (output pixel ``y`` shows work
    pixel ``floor(y * s / S)``), so the lifted edit map is the work map upsampled; cost columns stay the work's."""
    small, big = result.source.shape[-1], source.shape[-1]
    if small == big:
        return result
    index = torch.arange(big) * small // big
    regions = [_lift_region(r, small, big, index) for r in result.regions]
    steps = [edit_counts(regions[:k], big) > 0 for k in range(len(result.frames))]
    frames = [_frame(_paste(source, f, painted)) for f, painted in zip(result.frames, steps)]
    edit_map = edit_counts(regions, big)
    return IterativeResult(result.seed, regions, source.clone(), _paste(source, result.image, edit_map > 0), frames,
                           edit_map, result.evaluations, result.pixels)


def _lift_region(region: Region, small: int, big: int, index: torch.Tensor) -> Region:
    """``region`` on a ``small`` image as the pixels of a ``big`` one that show it (``index``: big -> small px)."""
    painted = region.paint(small)[index][:, index]
    rows, cols = painted.any(1).nonzero()[:, 0], painted.any(0).nonzero()[:, 0]
    side = int(max(rows[-1] - rows[0], cols[-1] - cols[0])) + 1  # the bounding square (1 px taller or wider
    top, left = min(int(rows[0]), big - side), min(int(cols[0]), big - side)  # at a fractional scale)
    return Region(top, left, side, region.kind, painted[top:top + side, left:left + side].clone())


def _paste(source: torch.Tensor, work: torch.Tensor, painted: torch.Tensor) -> torch.Tensor:
    """``source`` with its ``painted`` pixels (bool ``[S,S]``) taken from ``work`` (``[3,s,s]``) upsampled to ``S``."""
    from skingen.imageio import from_tensor, resize_image, to_tensor

    if not painted.any():
        return source.clone()
    up = to_tensor(resize_image(from_tensor(work), source.shape[-1], "bicubic")).to(source)
    return torch.where(painted, up, source)
