"""The near-duplicate rule: one place for ``prepare`` (grouping photos) and the content leak checks.

Two pictures are near-duplicates when their 64-bit perceptual hashes (ImageHash's ``phash``) differ in at
most ``NEAR_DUP_BITS`` bits *and* the mean absolute difference of their 16x16 RGB thumbnails (box filter,
0..255) is at most ``NEAR_DUP_MAD``: the hash survives re-encoding, resizing and small edits; the thumbnail
test keeps two different photos with a similar layout apart. :func:`transformed_copies` extends the rule to
the 8 flips and quarter turns of a picture (a mirrored or rotated copy of a held-out crop is still that crop).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

NEAR_DUP_BITS = 10  # perceptual-hash Hamming distance (of 64 bits)
NEAR_DUP_MAD = 16.0  # mean abs difference of 16x16 RGB thumbnails, 0..255
# For copies of held-out pictures, also a shift-tolerant pair: a 2 px shift of a 32 px crop moves its hash by ~20
# bits (its thumbnail by ~6), while distinct crops differ by >= 26 bits and >= 22 (measured on textured crops).
SHIFTED_BITS, SHIFTED_MAD = 24, 8.0
# That loose pair is confirmed by aligning the two pictures (:func:`aligned_residual`): a shifted copy aligns to
# ~0, while crops of nearly featureless skin of *different* photos pass the loose pair too (23 false pairs, 22
# images refused, among 306 inpainted crops of the procedural demo photos) and align no better than 6.1-9.1
# (0..255) with a detail of 5.8-13.6. A pair is a copy when the residual is at most ALIGN_BASE + ALIGN_SHARE x the
# reference's detail (those 23: thresholds up to 5.4, the closest 0.7 below its residual).
ALIGN_BASE, ALIGN_SHARE, ALIGN_SIZE = 2.0, 0.25, 128


def pixel_sha256(image: np.ndarray) -> str:
    """SHA-256 of a decoded photo's pixels and shape: its identity whatever its file name or format."""
    return hashlib.sha256(image.tobytes() + str(image.shape).encode()).hexdigest()


def fingerprint(image: np.ndarray) -> tuple[str, int, np.ndarray]:
    """``uint8 [H,W,3]`` -> (sha256 of the pixels and shape, 64-bit pHash, ``int16 [16,16,3]`` thumbnail)."""
    import imagehash
    from PIL import Image

    from skingen.imageio import resize_image

    ph = int(str(imagehash.phash(Image.fromarray(image))), 16)  # imagehash takes a PIL image
    thumb = resize_image(image, 16, "box").astype(np.int16)
    return pixel_sha256(image), ph, thumb


def _bits(phashes: np.ndarray) -> np.ndarray:
    n = len(phashes)
    return np.unpackbits(np.asarray(phashes, dtype=np.uint64).astype(">u8").view(np.uint8).reshape(n, 8), axis=1)


def cross_matches(ph_a: np.ndarray, th_a: np.ndarray, ph_b: np.ndarray, th_b: np.ndarray,
                  bits: int = NEAR_DUP_BITS, mad: float = NEAR_DUP_MAD) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``: picture ``i`` of set A is a near-duplicate of picture ``j`` of set B.

    ``ph_*``: ``uint64 [n]`` pHashes; ``th_*``: ``[n,16,16,3]`` thumbnails (any numeric dtype, 0..255)."""
    if len(ph_a) == 0 or len(ph_b) == 0:
        return []
    bits_a, bits_b = _bits(ph_a), _bits(ph_b)
    th_a, th_b = np.asarray(th_a, np.float32), np.asarray(th_b, np.float32)
    pairs = []
    for start in range(0, len(ph_a), 512):  # chunked: memory stays O(512 * n)
        dist = (bits_a[start:start + 512, None, :] != bits_b[None, :, :]).sum(-1)
        for i, j in zip(*np.nonzero(dist <= bits)):
            i += start
            if np.abs(th_a[i] - th_b[j]).mean() <= mad:
                pairs.append((int(i), int(j)))
    return pairs


def near_duplicate_pairs(phashes: np.ndarray, thumbs: np.ndarray, bits: int = NEAR_DUP_BITS,
                         mad: float = NEAR_DUP_MAD) -> list[tuple[int, int]]:
    """Pairs ``(i < j)`` within one set that are near-duplicates."""
    if len(phashes) < 2:
        return []
    return [(i, j) for i, j in cross_matches(phashes, thumbs, phashes, thumbs, bits, mad) if i < j]


@dataclass(frozen=True)
class Fingerprints:
    """Fingerprints of a list of pictures: ``names[k]`` (a path to show the user) has ``phash[k]`` and ``thumb[k]``."""

    names: tuple[str, ...]
    phash: np.ndarray  # uint64 [n]
    thumb: np.ndarray  # int16 [n,16,16,3]

    def matches(self, other: "Fingerprints") -> list[tuple[str, str]]:
        """``(name here, name there)`` for every near-duplicate pair between the two lists."""
        return [(self.names[i], other.names[j])
                for i, j in cross_matches(self.phash, self.thumb, other.phash, other.thumb)]


def fingerprint_files(paths: list, reader=None) -> Fingerprints:
    """Fingerprints of image files (read with :func:`skingen.imageio.read_image` unless ``reader`` is given)."""
    from skingen.imageio import read_image

    reader = reader or read_image
    names, phs, ths = [], [], []
    for p in paths:
        _, ph, th = fingerprint(reader(p))
        names.append(str(p))
        phs.append(ph)
        ths.append(th)
    return Fingerprints(tuple(names), np.array(phs, dtype=np.uint64),
                        np.stack(ths) if ths else np.zeros((0, 16, 16, 3), np.int16))


def dihedral(image: np.ndarray) -> list[np.ndarray]:
    """The 8 flips and quarter turns of ``uint8 [H,W,3]`` (the first is ``image`` itself)."""
    turns = [np.rot90(image, k) for k in range(4)]
    return [np.ascontiguousarray(t) for t in turns + [t[:, ::-1] for t in turns]]


def aligned_residual(image: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(residual, detail) of two ``uint8 [H,W,3]`` pictures compared at the smaller side (at most ALIGN_SIZE px):
    the smallest mean absolute difference (0..255) over the overlap under integer shifts of up to 5% of the
    side (at least 3 px), and the reference's mean absolute deviation from its mean colour."""
    from skingen.imageio import resize_image

    side = min(image.shape[0], image.shape[1], reference.shape[0], reference.shape[1], ALIGN_SIZE)
    a, b = (resize_image(x, side, "box").astype(np.float32) for x in (image, reference))
    reach = max(3, int(np.ceil(0.05 * side)))
    best = np.inf
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            ya, yb, xa, xb = max(dy, 0), max(-dy, 0), max(dx, 0), max(-dx, 0)
            h, w = side - abs(dy), side - abs(dx)
            best = min(best, float(np.abs(a[ya:ya + h, xa:xa + w] - b[yb:yb + h, xb:xb + w]).mean()))
    return best, float(np.abs(b - b.mean((0, 1))).mean())


def transformed_copies(images: list[np.ndarray], names: list[str], reference: Fingerprints,
                       reader=None) -> list[tuple[str, str]]:
    """``(name of image, reference name)`` for every image of which some flip or quarter turn is a near-duplicate
    of a reference picture, by prepare's rule or a shift-tolerant one (a looser hash, a closer thumbnail: a shift
    of a few pixels moves a small crop's hash) confirmed by aligning the pictures (:func:`aligned_residual`; the
    reference picture read from its name with ``reader``, default :func:`skingen.imageio.read_image`); the turns
    are tried explicitly because neither rule survives them."""
    from skingen.imageio import read_image

    if not images or not len(reference.phash):
        return []
    reader = reader or read_image
    views = [(i, v) for i, image in enumerate(images) for v in dihedral(image)]
    prints = [fingerprint(v)[1:] for _, v in views]
    phs = np.array([ph for ph, _ in prints], dtype=np.uint64)
    ths = np.stack([th for _, th in prints])
    pairs = cross_matches(phs, ths, reference.phash, reference.thumb, NEAR_DUP_BITS, NEAR_DUP_MAD)
    loose = cross_matches(phs, ths, reference.phash, reference.thumb, SHIFTED_BITS, SHIFTED_MAD)
    for a, b in sorted(set(loose) - set(pairs)):
        residual, detail = aligned_residual(views[a][1], reader(reference.names[b]))
        if residual <= ALIGN_BASE + ALIGN_SHARE * detail:
            pairs.append((a, b))
    found = dict.fromkeys((views[a][0], b) for a, b in pairs)
    return [(names[i], reference.names[j]) for i, j in found]
