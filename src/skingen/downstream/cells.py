"""Finished classifiers of a downstream study, kept on disk so that a stopped study continues where it stopped.

A fine-tune costs minutes on a CPU and a study trains dozens. When one is stopped (Ctrl-C, a job's time limit, a
closed laptop), running the same command again trains only the classifiers that are missing: each finished one
is stored under a key made of everything that decides it — the bytes of its training images and labels, of the
val and test images, the resolved training config, the seed, classical on or off, the class names, the device
type, the torch version and the source of the modules that train and build classifiers (so an edited recipe
never reads an old entry). Training is deterministic for a seed on a CPU, so a stored classifier is the one a
rerun would train: reusing it changes no number. Probes are not stored (they take seconds).

Entries live in ``classifiers/<hash>/`` of the feature cache's folder (:func:`~skingen.eval.cache.default_cache_dir`:
``$SKINGEN_CACHE_DIR``, else ``$XDG_CACHE_HOME/skingen``, else ``~/.cache/skingen``): the classifier
(:func:`~skingen.nn.classifiers.save_classifier`), ``cell.json`` (its val score, when its weights were taken,
the training seconds and the full key) and ``test_probs.npy``. Deleting them is always safe.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from skingen.eval.cache import default_cache_dir
from skingen.nn.classifiers import load_classifier, save_classifier
from skingen.runs import read_json, write_json

FORMAT = 1


@lru_cache(maxsize=1)  # the modules are imported once per process: read their files once
def _code_fingerprint() -> str:
    """sha256 of the modules whose code decides a trained classifier."""
    from skingen.downstream import probe, train, views
    from skingen.nn import classifiers

    h = hashlib.sha256()
    for module in (train, views, probe, classifiers):
        h.update(Path(module.__file__).read_bytes())
    return h.hexdigest()


def _tensor_hash(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(str((tuple(t.shape), str(t.dtype))).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class ClassifierCells:
    """``get(key)`` / ``put(key, trained, test_probs)``; ``key`` from :meth:`key`. ``hits`` counts reuses."""

    def __init__(self, root: str | Path | None = None):
        self.root = (Path(root) if root is not None else default_cache_dir()) / "classifiers"
        self.hits = 0

    @staticmethod
    def key(x: torch.Tensor, y: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor, test_x: torch.Tensor,
            labels: tuple[str, ...], cfg, seed: int, classical: bool, device: str) -> dict:
        """The key of one classifier: training ``x uint8 [N,3,S,S]`` / ``y int64 [N]``, val and test images,
        the resolved ``TrainConfig`` and the rest of what :func:`~skingen.downstream.train.train_classifier` and
        the test prediction depend on."""
        return {"format": FORMAT, "train": _tensor_hash(x, y), "val": _tensor_hash(val_x, val_y),
                "test": _tensor_hash(test_x), "labels": list(labels), "config": asdict(cfg), "seed": seed,
                "classical": classical, "device": torch.device(device).type, "torch": torch.__version__,
                "code": _code_fingerprint()}

    def _folder(self, key: dict) -> Path:
        text = json.dumps(key, sort_keys=True, default=str)
        return self.root / hashlib.sha256(text.encode()).hexdigest()[:32]

    def get(self, key: dict, device: str = "cpu"):
        """The stored ``(TrainedClassifier, test_probs float [N_test,k])``, or None (missing, another key, damaged)."""
        from skingen.downstream.train import TrainedClassifier

        folder = self._folder(key)
        try:
            cell = read_json(folder / "cell.json")
            if json.dumps(cell["key"], sort_keys=True, default=str) != json.dumps(key, sort_keys=True, default=str):
                return None  # a truncated-hash collision
            probs = np.load(folder / "test_probs.npy")
            model, spec = load_classifier(folder, device=device)
        except Exception:  # a missing or unreadable entry, whatever the reason: train it again
            return None
        self.hits += 1
        return TrainedClassifier(model, spec, cell["val_balanced_accuracy"], cell["best_images"], cell["seconds"]), probs

    def put(self, key: dict, trained, probs: np.ndarray) -> None:
        """Store one finished classifier; a partly written entry is never read (``cell.json`` is written last)."""
        folder = self._folder(key)
        shutil.rmtree(folder, ignore_errors=True)
        save_classifier(folder, trained.model, trained.spec)
        np.save(folder / "test_probs.npy", probs)
        write_json(folder / "cell.json", {"key": key, "val_balanced_accuracy": trained.val_balanced_accuracy,
                                          "best_images": trained.best_images, "seconds": trained.seconds})
