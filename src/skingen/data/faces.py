"""Faces in photos: found by OpenCV's Haar cascades, so that ``prepare`` can keep them out of the crops.

The photos are of ill people, often children, and many show a face. A generator trained on face crops can
reproduce them, so by default every crop that intersects a detected face is dropped (``FaceConfig.policy``).

Detector: OpenCV's frontal-face cascade plus its profile cascade run on the image and on its mirror (the
profile cascade only knows faces turning one way). Both ship inside the OpenCV wheel
(``cv2.data.haarcascades``): offline, no download. Photos are shrunk so their long side is at most
``max_side`` px (the cascades' cost grows with the pixel count; faces that matter are larger than
``min_face`` of the short side anyway), and every box is grown by ``margin`` on each side because the
cascades' boxes cover eyes to mouth but not the forehead, chin or ears.
How well it works on the measles photos (precision, recall, crops lost per policy): ``bench/faces.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from skingen.data.crops import Box
from skingen.errors import SkingenError

POLICIES = ("keep", "drop-crops", "drop-photos")


@dataclass(frozen=True)
class FaceConfig:
    policy: str = "drop-crops"  # keep | drop-crops (crops touching a face) | drop-photos (photos with a face)
    max_side: int = 480  # photos are detected at this long side at most
    min_face: float = 0.08  # smallest face side searched, as a fraction of the photo's short side
    min_neighbors: int = 5  # cascade detections that must agree (higher: fewer false faces, more missed)
    margin: float = 0.25  # each detected box grows by this fraction of its side on every side
    profile: bool = True  # also run the profile cascade (and on the mirrored photo)

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise SkingenError(f"faces policy must be one of {', '.join(POLICIES)}, got '{self.policy}'")


@lru_cache(maxsize=None)
def _cascade(name: str):
    import cv2

    path = cv2.data.haarcascades + name
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise SkingenError(f"OpenCV face cascade not found at {path}: install opencv-contrib-python-headless<5 "
                           "(OpenCV 5 wheels no longer ship the Haar cascades)")
    return cascade


@dataclass(frozen=True)
class Detection:
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1) in photo pixels, margin included, clipped to the photo
    neighbours: int  # raw cascade hits merged into this box (the cascades' confidence)
    cascade: str  # "frontal" or "profile"


def raw_detections(image: np.ndarray, cfg: FaceConfig = FaceConfig()) -> list[Detection]:
    """Every box the cascades find in ``image`` (``uint8 [H,W,3]`` RGB) with at least 3 neighbours; the
    policy keeps those with ``cfg.min_neighbors`` (so ``bench/faces.py`` can sweep it in one pass).
    Deterministic (no randomness in the cascades)."""
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, cfg.max_side / max(h, w))
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    gray = cv2.equalizeHist(gray)
    gh, gw = gray.shape
    min_px = max(20, int(cfg.min_face * min(gh, gw)))
    out: list[Detection] = []

    def run(name: str, kind: str, mirrored: bool) -> None:
        img = np.ascontiguousarray(gray[:, ::-1]) if mirrored else gray
        boxes, hits = _cascade(name).detectMultiScale2(img, scaleFactor=1.1, minNeighbors=3, minSize=(min_px, min_px))
        for (x, y, bw, bh), n in zip(boxes if len(boxes) else [], hits if len(boxes) else []):
            x = gw - (x + bw) if mirrored else x
            m = cfg.margin
            x0, y0 = (x - m * bw) / scale, (y - m * bh) / scale
            x1, y1 = (x + (1 + m) * bw) / scale, (y + (1 + m) * bh) / scale
            box = (max(0, int(x0)), max(0, int(y0)), min(w, int(np.ceil(x1))), min(h, int(np.ceil(y1))))
            out.append(Detection(box, int(n), kind))

    run("haarcascade_frontalface_default.xml", "frontal", False)
    if cfg.profile:
        run("haarcascade_profileface.xml", "profile", False)
        run("haarcascade_profileface.xml", "profile", True)
    return out


def detect_faces(image: np.ndarray, cfg: FaceConfig = FaceConfig()) -> list[tuple[int, int, int, int]]:
    """Face boxes ``(x0, y0, x1, y1)`` in the pixels of ``image`` (``uint8 [H,W,3]`` RGB), margin included
    and clipped to the image."""
    return [d.box for d in raw_detections(image, cfg) if d.neighbours >= cfg.min_neighbors]


def box_touches_face(box: Box, faces: list[tuple[int, int, int, int]]) -> bool:
    """Whether the square crop ``box`` ``(x0, y0, side)`` shares any pixel with a face box."""
    x0, y0, s = box
    return any(x0 < fx1 and fx0 < x0 + s and y0 < fy1 and fy0 < y0 + s for fx0, fy0, fx1, fy1 in faces)
