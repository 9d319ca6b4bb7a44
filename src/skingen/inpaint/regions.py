"""Regions to repaint: their shapes, where they go, and the context window around them.

A *region* is the set of pixels one inpainting step repaints (1 = repainted, the complement of
``keep``). Shapes are axis-aligned squares (``box``) or ``blob``s: a random ellipse with a wobbly
boundary, binarised, inscribed in a square. The same generator draws the regions the ``inpaint``
model is trained on and the ones the iterative algorithm uses, so training and use agree.

Placement is ``random`` (uniform over positions inside the image) or ``least-covered``: the position
whose square covers the fewest earlier repaints (ties broken at random), so the same pixels are not
repainted again and again — the original work saw that repeated re-masking blurs ("xerox" effect).
A per-pixel repeat cap excludes positions whose square holds a pixel already repainted ``cap`` times.
Placement scores use the region's bounding square (exact for boxes, conservative for blobs).

Every random choice goes through a ``rand(n) -> float tensor [n] in [0, 1)`` callable, so callers decide
the stream: the training loop's checkpointed generator, or one generator per run seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from skingen.errors import SkingenError

SHAPES = ("box", "blob", "mixed")
PLACEMENTS = ("random", "least-covered")
Rand = Callable[[int], torch.Tensor]


def check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SkingenError(f"{what} must be one of {', '.join(choices)}, got '{value}'")


def torch_rand(generator: torch.Generator) -> Rand:
    """``rand`` drawing from ``generator`` (on the CPU)."""
    return lambda n: torch.rand(n, generator=generator)


@dataclass(frozen=True)
class Region:
    """A square at (``top``, ``left``) of side ``side`` px; ``inside`` bool ``[side,side]`` marks the repainted
    pixels in it (all True for a box)."""

    top: int
    left: int
    side: int
    kind: str
    inside: torch.Tensor

    def paint(self, size: int) -> torch.Tensor:
        """The region on a ``size``×``size`` image: bool ``[size,size]``, True = repainted."""
        out = torch.zeros(size, size, dtype=torch.bool)
        out[self.top:self.top + self.side, self.left:self.left + self.side] = self.inside
        return out

    def describe(self) -> dict[str, object]:
        return {"top": self.top, "left": self.left, "side": self.side, "shape": self.kind,
                "pixels": int(self.inside.sum())}


def region_side(size_value: float, image_size: int) -> int:
    """Side in px: values ≤ 1 are fractions of the image side, larger values are pixels."""
    if size_value <= 0:
        raise SkingenError(f"region size must be positive, got {size_value}")
    side = round(size_value * image_size) if size_value <= 1 else round(size_value)
    if side > image_size:
        raise SkingenError(f"region side {side} px is larger than the {image_size} px image")
    return max(2, side)


def blob(side: int, rand: Rand) -> torch.Tensor:
    """A random blob inscribed in a ``side``×``side`` square: bool ``[side,side]``.

    An ellipse (axis ratio 0.6–1, random rotation) whose radius wobbles with angle by three random
    low-frequency harmonics, grown until it touches the square; the centre pixel is always in.
    """
    u = rand(10).double()
    ratio, rot = 0.6 + 0.4 * float(u[0]), math.pi * float(u[1])
    amps, phases = 0.15 * u[2:5], 2 * math.pi * u[5:8]
    c = torch.linspace(-1, 1, side, dtype=torch.float64) if side > 1 else torch.zeros(1, dtype=torch.float64)
    y, x = torch.meshgrid(c, c, indexing="ij")
    xr = x * math.cos(rot) + y * math.sin(rot)
    yr = (-x * math.sin(rot) + y * math.cos(rot)) / ratio
    rho, theta = torch.sqrt(xr**2 + yr**2), torch.atan2(yr, xr)
    wobble = 1 + sum(a * torch.cos(k * theta + p) for k, a, p in zip((2, 3, 4), amps, phases))
    f = rho / wobble
    # the largest such shape inside the square: it touches the square where f is smallest on the border
    edge = torch.cat([f[0], f[-1], f[:, 0], f[:, -1]])
    inside = f <= edge.min()
    inside[side // 2, side // 2] = True
    return inside


def draw_shape(kind: str, side: int, rand: Rand) -> tuple[str, torch.Tensor]:
    """(box | blob, bool ``[side,side]``); ``mixed`` picks box or blob with equal odds."""
    check_choice("region shape", kind, SHAPES)
    if kind == "mixed":
        kind = "box" if float(rand(1)[0]) < 0.5 else "blob"
    return kind, (torch.ones(side, side, dtype=torch.bool) if kind == "box" else blob(side, rand))


def _pick(allowed: torch.Tensor, rand: Rand) -> tuple[int, int]:
    """A uniformly random True position of a bool ``[h,w]`` map."""
    idx = allowed.flatten().nonzero().flatten()
    i = int(idx[min(int(float(rand(1)[0]) * len(idx)), len(idx) - 1)])
    return divmod(i, allowed.shape[1])


def place(counts: torch.Tensor, side: int, placement: str, rand: Rand, cap: int | None = None) -> tuple[int, int] | None:
    """Top-left corner for a ``side`` px square on an image whose pixels were repainted ``counts`` times
    (int ``[H,W]``), or None when the repeat ``cap`` leaves no room."""
    check_choice("placement", placement, PLACEMENTS)
    if placement == "random" and cap is None:  # every corner is allowed: what _pick draws, without the integral image
        rows, cols = counts.shape[0] - side + 1, counts.shape[1] - side + 1
        return divmod(min(int(float(rand(1)[0]) * rows * cols), rows * cols - 1), cols)
    c = counts.double()
    # square sums for every top-left corner from the integral image: O(H·W) whatever the side
    s = torch.nn.functional.pad(c.cumsum(0).cumsum(1), (1, 0, 1, 0))
    sums = s[side:, side:] - s[:-side, side:] - s[side:, :-side] + s[:-side, :-side]
    allowed = torch.ones_like(sums, dtype=torch.bool)
    if cap is not None:
        peak = torch.nn.functional.max_pool2d(c[None, None], side, stride=1)[0, 0]
        allowed = peak < cap
        if not allowed.any():
            return None
    if placement == "least-covered":
        best = sums[allowed].min()
        allowed = allowed & (sums == best)
    return _pick(allowed, rand)


def plan_regions(size: int, steps: int, rand: Rand, shape: str = "box", side_start: int = 16,
                 side_end: int | None = None, placement: str = "least-covered", coverage: float | None = None,
                 cap: int | None = None) -> list[Region]:
    """The regions of one run on a ``size`` px image, in order.

    The side goes linearly from ``side_start`` to ``side_end`` over the steps. The run ends after
    ``steps`` regions, as soon as the fraction of pixels repainted at least once reaches ``coverage``,
    or when the repeat ``cap`` leaves no room for the next region.
    """
    if steps < 1:
        raise SkingenError(f"steps must be at least 1, got {steps}")
    if coverage is not None and not 0 < coverage <= 1:
        raise SkingenError(f"coverage must be in (0, 1], got {coverage}")
    if cap is not None and cap < 1:
        raise SkingenError(f"repeat cap must be at least 1, got {cap}")
    end = side_start if side_end is None else side_end
    counts = torch.zeros(size, size, dtype=torch.int32)
    regions: list[Region] = []
    for k in range(steps):
        side = round(side_start + (end - side_start) * (k / (steps - 1) if steps > 1 else 0))
        corner = place(counts, side, placement, rand, cap)
        if corner is None:
            break
        kind, inside = draw_shape(shape, side, rand)
        region = Region(corner[0], corner[1], side, kind, inside)
        regions.append(region)
        counts += region.paint(size)
        if coverage is not None and float((counts > 0).float().mean()) >= coverage:
            break
    return regions


def edit_counts(regions: list[Region], size: int) -> torch.Tensor:
    """How many times each pixel was inside a region: int ``[size,size]``."""
    counts = torch.zeros(size, size, dtype=torch.int32)
    for r in regions:
        counts += r.paint(size)
    return counts


def window_box(region: Region, size: int, context: float | None, multiple: int = 1) -> tuple[int, int, int]:
    """(top, left, side) of the square window denoised for ``region``: ``context`` × its side, rounded up to
    a ``multiple`` (the network's), centred on it and moved inside the image; the whole image when
    ``context`` is None or the window would not be smaller."""
    if context is None:
        return 0, 0, size
    if context < 1:
        raise SkingenError(f"context must be at least 1 (window side / region side), got {context}")
    side = min(size, multiple * math.ceil(context * region.side / multiple))
    centre_y, centre_x = region.top + region.side / 2, region.left + region.side / 2
    top = min(max(0, round(centre_y - side / 2)), size - side)
    left = min(max(0, round(centre_x - side / 2)), size - side)
    return top, left, side


def random_regions(n: int, size: int, rand: Rand, min_side: int, max_side: int, shapes: tuple[str, ...] = ("box", "blob")
                   ) -> list[Region]:
    """``n`` training regions of one common random side in [``min_side``, ``max_side``] (one side per
    batch, so a batch can be cut to one window size), each of a random shape among ``shapes``, at a
    random position."""
    side = min_side + min(int(float(rand(1)[0]) * (max_side - min_side + 1)), max_side - min_side)
    counts = torch.zeros(size, size, dtype=torch.int32)
    out = []
    for _ in range(n):
        kind = shapes[min(int(float(rand(1)[0]) * len(shapes)), len(shapes) - 1)]
        top, left = place(counts, side, "random", rand)
        out.append(Region(top, left, side, *draw_shape(kind, side, rand)))
    return out
