"""Checks on a finished set of generated images that catch a broken model the numbers would not show.

A checkpoint with damaged but finite weights (or a collapsed generator) can still "sample": every image
then comes out as one flat colour, or all images are the same picture. ``sample`` reports that as a
warning (console and ``sample.json``) instead of passing it on as data.
"""

from __future__ import annotations

import numpy as np


class ConstantSetCheck:
    """Feed batches of ``uint8 [N,H,W,3]`` images; :meth:`warnings` says whether the whole set was constant.

    Flat: every channel of every image spans at most 1 grey level (rounding). Identical: more than one
    image, all equal to the first, pixel for pixel."""

    def __init__(self) -> None:
        self.n = 0
        self.all_flat = True
        self.all_identical = True
        self._first: np.ndarray | None = None

    def update(self, images: np.ndarray) -> None:
        for img in np.asarray(images):
            if self._first is None:
                self._first = img.copy()
            elif self.all_identical and not np.array_equal(img, self._first):
                self.all_identical = False
            if self.all_flat:
                span = img.reshape(-1, img.shape[-1]).max(0).astype(int) - img.reshape(-1, img.shape[-1]).min(0)
                self.all_flat = bool(span.max() <= 1)
            self.n += 1

    @classmethod
    def combined(cls, checks: list["ConstantSetCheck"]) -> "ConstantSetCheck":
        """One check over the images of several (the processes' shares, in order)."""
        out = cls()
        for c in checks:
            if c.n == 0:
                continue
            if out._first is None:
                out._first = c._first
            out.all_identical = out.all_identical and c.all_identical and bool(np.array_equal(c._first, out._first))
            out.all_flat = out.all_flat and c.all_flat
            out.n += c.n
        return out

    def warnings(self) -> list[str]:
        if self.n == 0:
            return []
        if self.all_flat:
            return [f"constant sample set: all {self.n} image(s) are a single flat colour; the checkpoint's weights "
                    f"are probably broken (retrain, or sample an earlier checkpoint)"]
        if self.n > 1 and self.all_identical:
            return [f"constant sample set: all {self.n} images are identical; the model ignores its seed "
                    f"(mode collapse or broken weights)"]
        return []
