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
an intensity-first colour space), so windows are converted with OpenCV's 8-bit Lab and back. They draw no random
numbers: runs of one crop differ only by their regions.
"""

from __future__ import annotations

import numpy as np
import torch

from skingen.errors import SkingenError
from skingen.inpaint.iterative import RegionFiller

PREFIX = "opencv:"
METHODS = ("telea", "ns", "shiftmap", "fsr-fast", "fsr-best")
RADIUS = 3   #: neighbourhood radius of Telea / Navier–Stokes in px (OpenCV's documented example value)


def is_opencv_name(name: str) -> bool:
    return str(name).startswith(PREFIX)


def _fill_one(image: np.ndarray, hole: np.ndarray, method: str) -> np.ndarray:
    """``uint8 [h,w,3]`` RGB with ``hole`` ``bool [h,w]`` (True = to fill) -> ``uint8 [h,w,3]`` RGB."""
    import cv2

    if method in ("telea", "ns"):
        flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
        return cv2.inpaint(image, hole.astype(np.uint8) * 255, RADIUS, flag)
    algorithm = {"shiftmap": cv2.xphoto.INPAINT_SHIFTMAP, "fsr-fast": cv2.xphoto.INPAINT_FSR_FAST,
                 "fsr-best": cv2.xphoto.INPAINT_FSR_BEST}[method]
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2Lab)
    out = np.zeros_like(lab)
    cv2.xphoto.inpaint(lab, (~hole).astype(np.uint8) * 255, out, algorithm)  # xphoto's mask: nonzero = known
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
