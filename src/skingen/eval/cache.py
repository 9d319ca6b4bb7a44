"""On-disk cache of real-set features, so evaluating many synthetic sets reads the real images once.

An entry is keyed by (set fingerprint = manifest sha256 + split, or the file listing of a plain
folder; number of images; evaluation size; the extractor's full ``describe()``: mode, weights hash).
Any change to one of them gives a new key, so a stale entry is never read. The cache lives in
``$SKINGEN_CACHE_DIR``, else ``$XDG_CACHE_HOME/skingen``, else ``~/.cache/skingen``; deleting it is always safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from skingen.runs import atomic_path

CACHE_ENV = "SKINGEN_CACHE_DIR"
FORMAT = 1


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "skingen"


class FeatureCache:
    """``get(key)`` / ``put(key, features)`` with ``key`` a JSON-able dict; files are ``features/<hash>.npz``."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(fingerprint: str, n: int, size: int, extractor: dict) -> dict:
        return {"format": FORMAT, "set": fingerprint, "n": n, "size": size, "extractor": extractor}

    def _path(self, key: dict) -> tuple[Path, str]:
        text = json.dumps(key, sort_keys=True, default=str)
        return self.root / "features" / f"{hashlib.sha256(text.encode()).hexdigest()[:32]}.npz", text

    def get(self, key: dict) -> np.ndarray | None:
        path, text = self._path(key)
        try:
            with np.load(path) as z:
                if str(z["key"]) == text:  # guards against a truncated name collision
                    self.hits += 1
                    return z["features"]
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):  # missing or unreadable entry: recompute
            pass
        self.misses += 1
        return None

    def put(self, key: dict, features: np.ndarray) -> None:
        path, text = self._path(key)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, features=features, key=np.array(text))


def cached_features(images, extractor, size: int, cache: FeatureCache | None, batch_size: int = 32) -> np.ndarray:
    """``float32 [N,D]`` features of an :class:`~skingen.data.imagesets.ImageSet` at ``size`` px in one loaded
    extractor, read from ``cache`` when there (keyed by the set's fingerprint, which must not be empty)."""
    if cache is not None and not images.fingerprint:
        raise ValueError("cached_features: the image set has no fingerprint to key the cache by")
    key = FeatureCache.key(images.fingerprint, len(images), size, extractor.describe())
    hit = cache.get(key) if cache is not None else None
    if hit is not None:
        return hit
    parts = [extractor(batch) for _, batch in images.batches(size, batch_size)]
    feats = np.concatenate(parts).astype(np.float32)
    if cache is not None:
        cache.put(key, feats)
    return feats
