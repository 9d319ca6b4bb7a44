"""Torch dataset over a prepared data folder's manifest."""

from __future__ import annotations

from pathlib import Path


from skingen.data.manifest import SPLITS, read_manifest
from skingen.errors import SkingenError
from skingen.imageio import read_image, read_mask, to_tensor
from skingen.seeding import numpy_rng


class ManifestDataset:
    """Items of one split of a data folder.

    Each item is a dict: ``image`` float ``[3,H,W]`` in [-1, 1]; ``lesion`` float ``{0,1}`` ``[1,H,W]``
    (1 = ill skin; zeros when the folder has no masks) and ``coloured`` ``[3,H,W]`` in [-1, 1] when the
    manifest has them; ``label`` int (index into ``self.labels``: the sorted values of ``label_column``
    over *all* splits, so indices agree between splits); ``id`` str. With ``size``, images are resized
    (antialiased bilinear; masks nearest) to ``size``×``size``. Horizontal flips (``flip=True``) are decided by
    (seed, epoch, index) only, so an epoch is reproducible whatever the worker count; call
    :meth:`set_epoch` each epoch.
    """

    def __init__(self, folder: str | Path, split: str | None = "train", flip: bool = False, seed: int = 0,
                 size: int | None = None, label_column: str = "label"):
        import torch  # noqa: F401  (fail early and clearly if torch is missing)

        if split is not None and split not in SPLITS:
            raise SkingenError(f"unknown split '{split}' (use one of {', '.join(SPLITS)})")
        self.folder = Path(folder)
        rows = read_manifest(self.folder)
        if rows and label_column not in rows[0]:
            raise SkingenError(f"{self.folder / 'manifest.csv'} has no column '{label_column}' "
                               f"(columns: {', '.join(rows[0])})")
        self.label_column = label_column
        self.labels = sorted({r.get(label_column, "") for r in rows})
        self.rows = [r for r in rows if split is None or r["split"] == split]
        if not self.rows:
            raise SkingenError(f"{self.folder}: no images in split '{split}'")
        self.flip, self.seed, self.epoch, self.size = flip, seed, 0, size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        import torch

        row = self.rows[index]
        image = to_tensor(read_image(self.folder / row["image"]))
        h, w = image.shape[-2:]
        item = {"id": row["id"], "label": self.labels.index(row.get(self.label_column, "")), "image": image}
        if row.get("lesion"):
            item["lesion"] = torch.from_numpy(read_mask(self.folder / row["lesion"])).float()[None]
        else:
            item["lesion"] = torch.zeros(1, h, w)
        if row.get("coloured"):
            item["coloured"] = to_tensor(read_image(self.folder / row["coloured"]))
        if self.size is not None and (h, w) != (self.size, self.size):
            item = _resized(item, self.size)
        if self.flip and numpy_rng(self.seed, self.epoch, index).random() < 0.5:
            for k in ("image", "lesion", "coloured"):
                if k in item:
                    item[k] = item[k].flip(-1)
        return item


def _resized(item: dict, size: int) -> dict:
    import torch.nn.functional as F

    out = dict(item)
    for k in ("image", "coloured"):
        if k in item:
            out[k] = F.interpolate(item[k][None], size=(size, size), mode="bilinear", antialias=True,
                                   align_corners=False)[0].clamp(-1, 1)
    out["lesion"] = F.interpolate(item["lesion"][None], size=(size, size), mode="nearest")[0]
    return out


class InMemoryDataset:
    """All items of ``dataset`` decoded once and kept in memory (images as uint8), for fast epochs on
    small data sets. Items are the same dicts as the wrapped dataset's."""

    def __init__(self, dataset, progress=None):
        import torch

        self.labels = getattr(dataset, "labels", None)
        self.items = []
        for i in range(len(dataset)):
            item = dict(dataset[i])
            for k in ("image", "coloured"):
                if k in item:  # [-1, 1] -> uint8: 4x less memory; the sources are 8-bit images anyway
                    item[k] = item[k].add(1).mul(127.5).round().to(torch.uint8)
            self.items.append(item)
            if progress:
                progress(i + 1, len(dataset))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        item = dict(self.items[index])
        for k in ("image", "coloured"):
            if k in item:
                item[k] = item[k].float().div(127.5).sub(1.0)
        return item
