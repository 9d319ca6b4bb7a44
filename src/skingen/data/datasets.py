"""Torch dataset over a prepared data folder's manifest."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from skingen.data.manifest import SPLITS, read_manifest
from skingen.errors import SkingenError
from skingen.imageio import read_image, read_mask, to_tensor
from skingen.seeding import numpy_rng


class ManifestDataset:
    """Items of one split of a data folder.

    Each item is a dict: ``image`` float ``[3,H,W]`` in [-1, 1]; ``lesion`` float ``{0,1}`` ``[1,H,W]``
    (1 = ill skin; zeros when the folder has no masks) and ``coloured`` ``[3,H,W]`` in [-1, 1] when the
    manifest has them; ``label`` int (index into ``self.labels``, sorted over *all* splits so indices
    agree between splits); ``id`` str. Horizontal flips (``flip=True``) are decided by
    (seed, epoch, index) only, so an epoch is reproducible whatever the worker count; call
    :meth:`set_epoch` each epoch.
    """

    def __init__(self, folder: str | Path, split: str | None = "train", flip: bool = False, seed: int = 0):
        import torch  # noqa: F401  (fail early and clearly if torch is missing)

        if split is not None and split not in SPLITS:
            raise SkingenError(f"unknown split '{split}' (use one of {', '.join(SPLITS)})")
        self.folder = Path(folder)
        rows = read_manifest(self.folder)
        self.labels = sorted({r.get("label", "") for r in rows})
        self.rows = [r for r in rows if split is None or r["split"] == split]
        self.flip, self.seed, self.epoch = flip, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        import torch

        row = self.rows[index]
        image = to_tensor(read_image(self.folder / row["image"]))
        h, w = image.shape[-2:]
        item = {"id": row["id"], "label": self.labels.index(row.get("label", "")), "image": image}
        if row.get("lesion"):
            item["lesion"] = torch.from_numpy(read_mask(self.folder / row["lesion"])).float()[None]
        else:
            item["lesion"] = torch.zeros(1, h, w)
        if row.get("coloured"):
            item["coloured"] = to_tensor(read_image(self.folder / row["coloured"]))
        if self.flip and numpy_rng(self.seed, self.epoch, index).random() < 0.5:
            for k in ("image", "lesion", "coloured"):
                if k in item:
                    item[k] = item[k].flip(-1)
        return item
