"""Training-free denoisers for the iterative algorithm: OpenCV's classical inpainting methods.

The baseline a user tries first: no training, any resolution, deterministic. Names for ``skingen inpaint``
(given where a run folder would go):

| name | method |
|---|---|
| ``opencv:telea`` | Telea 2004, fast marching (``cv2.inpaint``) |
| ``opencv:ns`` | Navier–Stokes (Bertalmio et al. 2001, ``cv2.inpaint``) |
| ``opencv:shiftmap`` | exemplar-based shift-map (He & Sun 2012, ``cv2.xphoto.inpaint``) |
| ``opencv:fsr-fast``, ``opencv:fsr-best`` | frequency-selective reconstruction (Seiler et al. 2015, ``cv2.xphoto``; best is slow) |

Telea and Navier–Stokes propagate the boundary inwards (smooth fills, no texture); shift-map and FSR copy or
synthesise texture from the rest of the window. The xphoto methods work on CIELAB (their documentation asks for
an intensity-first colour space), so windows are converted with OpenCV's 8-bit Lab and back; windows under
``XPHOTO_MIN_SIDE`` px get a mirrored margin and an integer upscale first (small crops), and a pixel xphoto leaves
unfilled is a one-line error, never a coloured blob. They draw no random numbers: runs of one crop differ only by
their regions.
"""

from __future__ import annotations

import numpy as np
import torch

from skingen.errors import SkingenError
from skingen.generation.backends import Backend, LoadedFiller
from skingen.inpaint.iterative import RegionFiller

PREFIX = "opencv:"
METHODS = ("telea", "ns", "shiftmap", "fsr-fast", "fsr-best")
RADIUS = 3   #: neighbourhood radius of Telea / Navier–Stokes in px (OpenCV's documented example value)
XPHOTO_MIN_SIDE = 64  #: windows smaller than this are filled by shift-map / FSR at an integer upscale


def is_opencv_name(name: str) -> bool:
    return str(name).startswith(PREFIX)


def _fill_one(image: np.ndarray, hole: np.ndarray, method: str) -> np.ndarray:
    """``uint8 [h,w,3]`` RGB with ``hole`` ``bool [h,w]`` (True = to fill) -> ``uint8 [h,w,3]`` RGB."""
    import cv2

    if method in ("telea", "ns"):
        flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
        return cv2.inpaint(image, hole.astype(np.uint8) * 255, RADIUS, flag)
    # shift-map leaves most of a hole unfilled (zeros) in windows under ~40 px (measured on 64 px demo crops, where
    # windows are 24 px), and FSR diverges to black where such a hole touches the window's edge: a small window
    # gets a mirrored margin (so the hole has known pixels on every side) and is filled at an integer upscale
    h, w = hole.shape
    if min(h, w) >= XPHOTO_MIN_SIDE:
        return _fill_xphoto(image, hole, method)
    pad = min(h, w) // 2
    image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    hole = np.pad(hole, pad)
    scale = -(-XPHOTO_MIN_SIDE // min(hole.shape))
    big = cv2.resize(image, (image.shape[1] * scale, image.shape[0] * scale), interpolation=cv2.INTER_CUBIC)
    filled = _fill_xphoto(big, np.kron(hole, np.ones((scale, scale), bool)), method)
    return cv2.resize(filled, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_AREA)[pad:pad + h, pad:pad + w]


def _fill_xphoto(image: np.ndarray, hole: np.ndarray, method: str) -> np.ndarray:
    import cv2

    algorithm = {"shiftmap": cv2.xphoto.INPAINT_SHIFTMAP, "fsr-fast": cv2.xphoto.INPAINT_FSR_FAST,
                 "fsr-best": cv2.xphoto.INPAINT_FSR_BEST}[method]
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2Lab)
    out = np.zeros_like(lab)
    cv2.xphoto.inpaint(lab, (~hole).astype(np.uint8) * 255, out, algorithm)  # xphoto's mask: nonzero = known
    # a pixel xphoto did not fill stays (0, 0, 0), which no sRGB colour maps to in 8-bit Lab (black is (0, 128, 128))
    unfilled = int((out[hole] == 0).all(-1).sum())
    if unfilled:
        raise SkingenError(f"{PREFIX}{method} left {unfilled} of {int(hole.sum())} pixels of a region unfilled in a "
                           f"{hole.shape[1]}x{hole.shape[0]} px window; use a larger --size or --context, or another "
                           f"method (opencv:telea fills any window)")
    return cv2.cvtColor(out, cv2.COLOR_Lab2RGB)


def opencv_filler(name: str) -> RegionFiller:
    """The :class:`RegionFiller` called ``name`` (``opencv:<method>``, module docstring)."""
    method = str(name)[len(PREFIX):] if is_opencv_name(name) else str(name)
    if method not in METHODS:
        raise SkingenError(f"unknown OpenCV inpainting method '{method}' (choose {', '.join(PREFIX + m for m in METHODS)})")
    try:
        import cv2
    except ImportError as e:  # pragma: no cover - a dependency; only a broken install lacks it
        raise SkingenError(f"OpenCV is not installed ({e}); pip install opencv-contrib-python-headless") from None
    if method not in ("telea", "ns") and not hasattr(cv2, "xphoto"):
        raise SkingenError(f"{PREFIX}{method} needs cv2.xphoto from opencv-contrib; this OpenCV lacks it "
                           "(pip install opencv-contrib-python-headless instead of opencv-python)")

    def fill(source: torch.Tensor, keep: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        rgb = ((source.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        holes = keep.detach().cpu()[:, 0] < 0.5
        out = [torch.from_numpy(_fill_one(np.ascontiguousarray(x.permute(1, 2, 0).numpy()), h.numpy(), method))
               for x, h in zip(rgb, holes)]
        filled = torch.stack(out).permute(0, 3, 1, 2).float() / 127.5 - 1
        return torch.where(keep.cpu() > 0.5, source.cpu(), filled.to(source.dtype))

    # no network: 0 evaluations, so the cost columns count no pixels through a network
    return RegionFiller(fill, multiple=1, evaluations=0)


BACKEND = Backend("opencv", "opencv:telea, opencv:ns, opencv:shiftmap, opencv:fsr-fast, opencv:fsr-best (training-free, "
                  "at the crops' own resolution)", claims=is_opencv_name,
                  load=lambda req: LoadedFiller(opencv_filler(req.run), None, req.run.replace(":", "-"), ""),
                  order=10, example=lambda folder: "opencv:telea")
