"""The seam score: does a repainted region show its box?

A visible seam is an edge the source did not have, along the border of a repainted region. The score is
the mean gradient magnitude on the *boundary ring* of every region of a run (``width`` px on each side of
its border; the image's own border excluded) in the output, divided by the same on the source at those
pixels. 1.0 = the borders carry as much edge as the source did there; > 1 = seams; < 1 = the borders were
smoothed (a blurry fill). Gradient = Sobel magnitude (scikit-image) of the mean of the RGB channels.
Written here because no library scores inpainting seams.
"""

from __future__ import annotations

import numpy as np
import torch

from skingen.inpaint.regions import Region


def boundary_ring(regions: list[Region], size: int, width: int = 2) -> np.ndarray:
    """``bool [size,size]``: pixels within ``width`` px of the border of any region (inside or outside it),
    not counting a border that is the image's own edge."""
    from scipy.ndimage import binary_dilation, binary_erosion

    ring = np.zeros((size, size), dtype=bool)
    for region in regions:
        painted = region.paint(size).numpy()
        # border_value=1: the image edge is not a region border, so erosion does not eat in from it
        ring |= binary_dilation(painted, iterations=width) & ~binary_erosion(painted, iterations=width, border_value=1)
    return ring


def gradient_magnitude(image: torch.Tensor) -> np.ndarray:
    """``[3,H,W]`` in [-1, 1] -> Sobel magnitude ``float [H,W]`` of the channel mean."""
    from skimage.filters import sobel

    return sobel(image.detach().float().mean(0).cpu().numpy())


def seam_score(source: torch.Tensor, output: torch.Tensor, regions: list[Region], width: int = 2) -> float:
    """The seam score (module docstring) of ``output`` against ``source`` (both ``[3,S,S]`` in [-1, 1]);
    NaN when there is no ring or the source is flat along it."""
    ring = boundary_ring(regions, source.shape[-1], width)
    if not ring.any():
        return float("nan")
    before = float(gradient_magnitude(source)[ring].mean())
    if before <= 1e-8:
        return float("nan")
    return float(gradient_magnitude(output)[ring].mean()) / before
