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
# bits (its thumbnail by ~6), while distinct crops differ by >= 26 bits and >= 22 (measured on textured crops)
SHIFTED_BITS, SHIFTED_MAD = 24, 8.0


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


def transformed_copies(images: list[np.ndarray], names: list[str], reference: Fingerprints) -> list[tuple[str, str]]:
    """``(name of image, reference name)`` for every image of which some flip or quarter turn is a near-duplicate
    of a reference picture, by prepare's rule or a shift-tolerant one (a looser hash, a closer thumbnail: a shift
    of a few pixels moves a small crop's hash); the turns are tried explicitly because neither survives them."""
    if not images or not len(reference.phash):
        return []
    variants = [(i, fingerprint(v)[1:]) for i, image in enumerate(images) for v in dihedral(image)]
    phs = np.array([ph for _, (ph, _) in variants], dtype=np.uint64)
    ths = np.stack([th for _, (_, th) in variants])
    pairs = [pair for bits, mad in ((NEAR_DUP_BITS, NEAR_DUP_MAD), (SHIFTED_BITS, SHIFTED_MAD))
             for pair in cross_matches(phs, ths, reference.phash, reference.thumb, bits, mad)]
    found = dict.fromkeys((variants[a][0], b) for a, b in pairs)
    return [(names[i], reference.names[j]) for i, j in found]
